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
from tqdm import tqdm  # text bars: readable in stored notebook outputs and logs

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
    """Token id of " A", " B", ... (the answer letter as it follows "Answer:")."""
    ids = []
    for letter in letters:
        toks = tokenizer(" " + letter, add_special_tokens=False)["input_ids"]
        if len(toks) != 1:
            toks = tokenizer(letter, add_special_tokens=False)["input_ids"]
        if len(toks) != 1:
            raise ValueError(f"answer letter {letter!r} is not a single token for this tokenizer")
        ids.append(toks[0])
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


@torch.inference_mode()
def score_prompts(
    model,
    tokenizer,
    prompts: Sequence[Prompt],
    *,
    keep_hidden: bool = True,
    max_tokens_per_batch: int = 4096,
    progress: bool | str = True,
) -> ScoredPrompts:
    """Score every prompt's options in length-sorted, padded batches.

    ``max_tokens_per_batch`` bounds padded batch size x length, which keeps memory flat and
    wastes little on padding because batches are built from prompts of similar length.
    """
    if not prompts:
        raise ValueError("no prompts to score")
    m = len(prompts[0].option_spans)
    if any(len(p.option_spans) != m for p in prompts):
        raise ValueError("all prompts in one call must list the same number of options")
    letters = prompts[0].letters
    letter_ids = torch.tensor(letter_token_ids(tokenizer, letters))

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

    order = sorted(range(n), key=lambda i: len(ids[i]))
    batches: list[list[int]] = []
    cur: list[int] = []
    for i in order:
        if cur and (len(cur) + 1) * len(ids[i]) > max_tokens_per_batch:
            batches.append(cur)
            cur = []
        cur.append(i)
    if cur:
        batches.append(cur)

    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    body = _body(model)
    desc = progress if isinstance(progress, str) else "scoring prompts"
    with tqdm(total=n, desc=desc, disable=not progress, unit="prompt") as bar:
        for batch in batches:
            L = max(len(ids[i]) for i in batch)
            inp = torch.full((len(batch), L), pad_id, dtype=torch.long)
            att = torch.zeros((len(batch), L), dtype=torch.long)
            for r, i in enumerate(batch):
                inp[r, : len(ids[i])] = torch.tensor(ids[i])
                att[r, : len(ids[i])] = 1
            hidden = body(input_ids=inp.to(device), attention_mask=att.to(device)).last_hidden_state
            # Gather the positions whose logits are read: position t-1 predicts token t.
            rows, pos, targets, owner = [], [], [], []
            for r, i in enumerate(batch):
                last = len(ids[i]) - 1
                rows.append(r), pos.append(last), targets.append(-1), owner.append((i, -1))
                for j, toks in enumerate(spans[i]):
                    for t in toks:
                        if t == 0:
                            continue  # a first token has no prediction; never the case after a prompt
                        rows.append(r), pos.append(t - 1), targets.append(ids[i][t]), owner.append((i, j))
            sel = hidden[torch.tensor(rows, device=device), torch.tensor(pos, device=device)]
            logp = torch.log_softmax(output_logits(model, sel), dim=-1).cpu()
            tgt = torch.tensor(targets)
            is_opt = tgt >= 0
            tok_lp = torch.zeros(len(rows))
            tok_lp[is_opt] = logp[is_opt].gather(1, tgt[is_opt, None]).squeeze(1)
            for k, (i, j) in enumerate(owner):
                if j < 0:
                    letter_lp[i] = logp[k, letter_ids].numpy()
                else:
                    opt_lp[i, j] += float(tok_lp[k])
                    opt_nt[i, j] += 1
            if keep_hidden:
                h = hidden.float().cpu()
                for r, i in enumerate(batch):
                    last_h[i] = h[r, len(ids[i]) - 1].numpy()
                    for j, toks in enumerate(spans[i]):
                        opt_h[i, j] = h[r, toks].mean(0).numpy()
            bar.update(len(batch))
    return ScoredPrompts(letter_lp, opt_lp, opt_nt, opt_h, last_h)
