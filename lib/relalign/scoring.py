"""Batched option scoring: one forward pass per prompt, no generation loop.

For a prompt that lists lettered options, a single forward pass gives everything the study
needs from a frozen model:

* ``letter_logprob[j]``: log p(letter_j | prompt) at the last position (the answer the
  model would give by letter),
* ``option_logprob[j]``: the summed log-probability of option j's own tokens *where the
  option stands in the listing* (so it depends on the order of the listing), and its token
  count, for length normalisation,
* ``option_hidden[j]``: the mean last-layer hidden state over option j's tokens,
* ``last_hidden``: the last-layer hidden state at the final position.

Logits are computed only at the positions that are read (option tokens and the last
position), never for the whole sequence: for models with large vocabularies the output
projection would otherwise cost more than the transformer body.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from .progress import Bar
from .prompts import Prompt


@dataclass
class ScoredPrompts:
    """Features of ``n`` prompts with ``m`` options each (arrays are float32)."""

    letter_logprob: np.ndarray  # [n, m]
    option_logprob: np.ndarray  # [n, m] summed log-probability of the option's tokens
    option_ntokens: np.ndarray  # [n, m]
    option_hidden: np.ndarray | None  # [n, m, d]
    last_hidden: np.ndarray | None  # [n, d]

    def __len__(self) -> int:
        return self.letter_logprob.shape[0]

    def as_dict(self) -> dict[str, np.ndarray]:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    @classmethod
    def from_dict(cls, d: dict[str, np.ndarray]) -> "ScoredPrompts":
        return cls(
            letter_logprob=d["letter_logprob"],
            option_logprob=d["option_logprob"],
            option_ntokens=d["option_ntokens"],
            option_hidden=d.get("option_hidden"),
            last_hidden=d.get("last_hidden"),
        )


def letter_token_ids(tokenizer, letters: Sequence[str]) -> list[int]:
    """Token id of " A", " B", ... (the answer letter as it follows "Answer:"). For answers that
    are words (" acceptable", " unacceptable") it is the word's first token, which must differ
    between the answers."""
    ids = []
    for letter in letters:
        toks = tokenizer(" " + letter, add_special_tokens=False)["input_ids"]
        if len(toks) != 1 and len(letter) == 1:
            toks = tokenizer(letter, add_special_tokens=False)["input_ids"]
        if not toks:
            raise ValueError(f"answer {letter!r} has no tokens for this tokenizer")
        ids.append(toks[0])
    if len(set(ids)) != len(ids):
        raise ValueError(f"answers {list(letters)} start with the same token for this tokenizer; "
                         "they cannot be told apart from the next-token distribution")
    return ids


def _option_token_index(offsets: list[tuple[int, int]], spans: Sequence[tuple[int, int]]) -> list[list[int]]:
    """Token positions that overlap each character span (special tokens have empty offsets)."""
    out = []
    for s, e in spans:
        idx = [t for t, (a, b) in enumerate(offsets) if b > a and a < e and b > s]
        if not idx:
            raise ValueError(f"option span {(s, e)} covers no token")
        out.append(idx)
    return out


def output_logits(model, hidden: torch.Tensor) -> torch.Tensor:
    """The model's own output head (with Gemma-style soft-capping) on selected hidden states."""
    logits = model.get_output_embeddings()(hidden)
    cap = getattr(model.config, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return logits.float()


def _body(model):
    """The transformer body (hidden states without the output projection)."""
    return model.get_decoder() if hasattr(model, "get_decoder") else model.base_model


def _listing_start(prompt: Prompt) -> int:
    """Character offset where the lettered listing begins (the line of the first listed option)."""
    first = min(s for s, _ in prompt.option_spans)
    return prompt.text.rfind("\n", 0, first) + 1


def _shared_prefix_groups(ids, offsets, prompts) -> list[tuple[list[int], int]]:
    """Consecutive prompts that share their tokens up to the listing (the K variations of a
    question): ``(members, prefix_length)``. A prompt without a shared prefix forms its own group
    with prefix length 0."""
    def prefix_len(i):
        start = _listing_start(prompts[i])
        n = 0
        for a, b in offsets[i]:
            if b > start or (b == a and n > 0):
                break
            n += 1
        return n

    groups: list[tuple[list[int], int]] = []
    for i in range(len(ids)):
        n = prefix_len(i)
        if groups and groups[-1][1] > 0:
            members, m = groups[-1]
            j = members[0]
            if n == m and ids[i][:n] == ids[j][:n] and len(ids[i]) > n:
                members.append(i)
                continue
        groups.append(([i], n if len(ids[i]) > n else 0))
    return [(g, n if len(g) > 1 else 0) for g, n in groups]


class _Forward:
    """Hidden states of a batch, looked up by (prompt, token position)."""

    def __init__(self, body, ids, batch_groups, pad_id, device, shared: bool):
        self.where: dict[tuple[int, int], tuple[int, int]] = {}
        rows = [i for g, _ in batch_groups for i in g]
        if not shared:
            L = max(len(ids[i]) for i in rows)
            inp = torch.full((len(rows), L), pad_id, dtype=torch.long)
            att = torch.zeros((len(rows), L), dtype=torch.long)
            for r, i in enumerate(rows):
                inp[r, : len(ids[i])] = torch.tensor(ids[i])
                att[r, : len(ids[i])] = 1
            self.hidden = body(input_ids=inp.to(device), attention_mask=att.to(device)).last_hidden_state
            self.offset = {i: (r, 0) for r, i in enumerate(rows)}
            return
        # 1) each group's shared prefix once, left-padded, with its cache
        P = max(n for _, n in batch_groups)
        pre = torch.full((len(batch_groups), P), pad_id, dtype=torch.long)
        pre_att = torch.zeros((len(batch_groups), P), dtype=torch.long)
        for g, (members, n) in enumerate(batch_groups):
            pre[g, P - n:] = torch.tensor(ids[members[0]][:n])
            pre_att[g, P - n:] = 1
        pre_pos = (pre_att.cumsum(1) - 1).clamp(min=0)
        out = body(input_ids=pre.to(device), attention_mask=pre_att.to(device), position_ids=pre_pos.to(device),
                   use_cache=True)
        cache = out.cache if hasattr(out, "cache") else out.past_key_values
        # 2) every member's suffix on top of a copy of its group's cache
        owner = torch.tensor([g for g, (members, _) in enumerate(batch_groups) for _ in members])
        cache.batch_select_indices(owner.to(device))
        plen = [n for members, n in batch_groups for _ in members]
        S = max(len(ids[i]) - n for i, n in zip(rows, plen))
        suf = torch.full((len(rows), S), pad_id, dtype=torch.long)
        suf_att = torch.zeros((len(rows), S), dtype=torch.long)
        for r, (i, n) in enumerate(zip(rows, plen)):
            suf[r, : len(ids[i]) - n] = torch.tensor(ids[i][n:])
            suf_att[r, : len(ids[i]) - n] = 1
        suf_pos = torch.tensor(plen)[:, None] + torch.arange(S)[None, :]
        att = torch.cat([pre_att[owner], suf_att], dim=1)
        self.hidden = body(input_ids=suf.to(device), attention_mask=att.to(device), position_ids=suf_pos.to(device),
                           cache=cache, use_cache=True).last_hidden_state
        self.offset = {i: (r, n) for r, (i, n) in enumerate(zip(rows, plen))}

    def index(self, i: int, t: int) -> tuple[int, int]:
        """(row, column) of prompt i's token position t in ``self.hidden``."""
        r, n = self.offset[i]
        if t < n:
            raise ValueError("a read position fell inside the shared prefix")
        return r, t - n


@torch.inference_mode()
def score_prompts(
    model,
    tokenizer,
    prompts: Sequence[Prompt],
    *,
    keep_hidden: bool = True,
    max_tokens_per_batch: int = 4096,
    shared_prefix: bool = False,
    option_logprobs: bool = True,
    progress: bool | str = True,
) -> ScoredPrompts:
    """Score every prompt's options in length-sorted, padded batches.

    ``max_tokens_per_batch`` bounds the padded tokens of a batch, which keeps memory flat and
    wastes little on padding because batches are built from prompts of similar length.

    ``shared_prefix``: consecutive prompts that are the same up to their option listing (the K
    variations of one question) run their common prefix once and branch from its key/value cache;
    the results equal the plain pass's. Models whose cache cannot be copied across the batch fall
    back to the plain pass.

    ``option_logprobs=False``: the letters only (weak labelling, predictions): logits at the last
    position alone, none at the option tokens; ``option_logprob`` is then NaN (``option_ntokens``
    is still counted). The other outputs are unchanged.
    """
    if not prompts:
        raise ValueError("no prompts to score")
    m = len(prompts[0].option_spans)
    if any(len(p.option_spans) != m for p in prompts):
        raise ValueError("all prompts in one call must list the same number of options")
    answer_ids: dict[tuple[str, ...], torch.Tensor] = {}
    for p in prompts:
        if p.letters not in answer_ids:
            answer_ids[p.letters] = torch.tensor(letter_token_ids(tokenizer, p.letters))

    enc = tokenizer([p.text for p in prompts], return_offsets_mapping=True, add_special_tokens=True)
    ids = enc["input_ids"]
    spans = [_option_token_index(off, p.option_spans) for off, p in zip(enc["offset_mapping"], prompts)]

    n = len(prompts)
    device = next(model.parameters()).device
    d = model.config.get_text_config().hidden_size if hasattr(model.config, "get_text_config") else model.config.hidden_size
    letter_lp = np.zeros((n, m), np.float32)
    opt_lp = np.zeros((n, m), np.float32)
    opt_nt = np.zeros((n, m), np.float32)
    opt_h = np.zeros((n, m, d), np.float32) if keep_hidden else None
    last_h = np.zeros((n, d), np.float32) if keep_hidden else None

    groups = _shared_prefix_groups(ids, enc["offset_mapping"], prompts) if shared_prefix else [([i], 0) for i in range(n)]

    batches: list[list[tuple[list[int], int]]] = []
    cur: list = []
    for g in sorted(groups, key=lambda g: max(len(ids[i]) for i in g[0])):
        width = max(len(ids[i]) for i in g[0])
        if cur and (sum(len(x[0]) for x in cur) + len(g[0])) * width > max_tokens_per_batch:
            batches.append(cur)
            cur = []
        cur.append(g)
    if cur:
        batches.append(cur)

    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    body = _body(model)
    desc = progress if isinstance(progress, str) else "scoring prompts"
    with Bar(total=n, desc=desc, disable=not progress, unit="prompt") as bar:
        for batch_groups in batches:
            shared = shared_prefix and any(pre > 0 for _, pre in batch_groups)
            if shared and any(pre == 0 for _, pre in batch_groups):
                shared = False  # a batch is either all shared or all plain
            try:
                fwd = _Forward(body, ids, batch_groups, pad_id, device, shared)
            except (AttributeError, NotImplementedError, TypeError):
                if not shared:
                    raise
                fwd = _Forward(body, ids, batch_groups, pad_id, device, False)
            batch = [i for g, _ in batch_groups for i in g]
            # Gather the positions whose logits are read: position t-1 predicts token t.
            rows, pos, targets, owner = [], [], [], []
            for i in batch:
                r, c = fwd.index(i, len(ids[i]) - 1)
                rows.append(r), pos.append(c), targets.append(-1), owner.append((i, -1))
                if not option_logprobs:
                    continue
                for j, toks in enumerate(spans[i]):
                    for t in toks:
                        if t == 0:
                            continue  # a first token has no prediction; never the case after a prompt
                        r, c = fwd.index(i, t - 1)
                        rows.append(r), pos.append(c), targets.append(ids[i][t]), owner.append((i, j))
            hidden = fwd.hidden
            sel = hidden[torch.tensor(rows, device=device), torch.tensor(pos, device=device)]
            logp = torch.log_softmax(output_logits(model, sel), dim=-1)
            # Only a few entries per row are read: gather them where the logits are (no copy of
            # the [positions, vocab] matrix), then move the small result to the host.
            tgt = torch.tensor(targets)
            tok_lp = logp.gather(1, tgt.clamp(min=0)[:, None].to(logp.device)).squeeze(1).cpu()
            is_last = [k for k, (_, j) in enumerate(owner) if j < 0]
            letter_cols = torch.stack([answer_ids[prompts[owner[k][0]].letters] for k in is_last])
            letter_rows = torch.tensor(is_last)[:, None].expand_as(letter_cols)
            lp_last = logp[letter_rows.to(logp.device), letter_cols.to(logp.device)].cpu().numpy()
            for r, k in enumerate(is_last):
                letter_lp[owner[k][0]] = lp_last[r]
            opt_k = [k for k, (_, j) in enumerate(owner) if j >= 0]
            if opt_k:
                oi = np.array([owner[k][0] for k in opt_k])
                oj = np.array([owner[k][1] for k in opt_k])
                np.add.at(opt_lp, (oi, oj), tok_lp.numpy()[opt_k])  # in order, as the loop summed
                np.add.at(opt_nt, (oi, oj), 1)
            if keep_hidden:
                h = hidden.float().cpu()
                for i in batch:
                    r, c = fwd.index(i, len(ids[i]) - 1)
                    last_h[i] = h[r, c].numpy()
                    for j, toks in enumerate(spans[i]):
                        idx = [fwd.index(i, t)[1] for t in toks]
                        opt_h[i, j] = h[r, idx].mean(0).numpy()
            bar.update(len(batch))
    if not option_logprobs:
        opt_lp[:] = np.nan
        for i in range(n):
            opt_nt[i] = [sum(1 for t in toks if t > 0) for toks in spans[i]]
    return ScoredPrompts(letter_lp, opt_lp, opt_nt, opt_h, last_h)
