"""Batched generation for tasks whose answers are free text (GSM8K): left padding, prompts sorted
by length so that batches waste little padding, decoding pinned by the caller (greedy by default),
results returned in the prompts' order. The reference generated one prompt at a time with each
checkpoint's own generation config (method.md, defects 3 and 6).

With ``stop_after_final`` a row stops once its "#### N" line is complete
(:func:`~relalign.answers.final_line_complete`): its parsed answer and trimmed solution are then
exactly those of the full generation (untrained models often write "#### N" and then go on with
another question). A row that has finished, by that line or by an end of sequence, leaves its
batch within ``CHUNK`` tokens, so one long-winded row does not keep the whole batch decoding."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Sequence

import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from .answers import final_line_complete
from .progress import Bar

__all__ = ["Decoding", "FinalAnswerStop", "generate"]


# Every other logits processor a checkpoint's generation_config.json could switch on, switched off:
# HF generate fills each setting the call leaves out from the checkpoint (Qwen2.5 instruct models,
# for one, ship repetition_penalty 1.05-1.1 and top_k 20), so decoding would depend on where the
# weights came from (method.md, defect 3).
NEUTRAL = dict(
    repetition_penalty=1.0, encoder_repetition_penalty=1.0, no_repeat_ngram_size=0, encoder_no_repeat_ngram_size=0,
    min_length=0, min_new_tokens=None, bad_words_ids=None, sequence_bias=None, suppress_tokens=None,
    begin_suppress_tokens=None, forced_bos_token_id=None, forced_eos_token_id=None,
    exponential_decay_length_penalty=None, typical_p=1.0, min_p=None, epsilon_cutoff=0.0, eta_cutoff=0.0,
    guidance_scale=None, renormalize_logits=False, remove_invalid_values=False,
)


@dataclass(frozen=True)
class Decoding:
    """Everything that decides the generated text; it is part of any cache key of the answers."""

    max_new_tokens: int = 256
    do_sample: bool = False  # greedy by default
    temperature: float = 1.0  # used only when sampling
    top_p: float = 1.0
    seed: int = 0
    stop_after_final: bool = False  # stop a row once its "#### N" line is complete

    def kwargs(self) -> dict:
        kw = {"max_new_tokens": self.max_new_tokens, "do_sample": self.do_sample, **NEUTRAL}
        if self.do_sample:  # plain temperature / nucleus sampling: no top-k cut-off (HF's default is 50)
            kw.update(temperature=self.temperature, top_p=self.top_p, top_k=0)
        else:  # pinned: no checkpoint's generation config can switch on sampling
            kw.update(temperature=None, top_p=None, top_k=None)
        return kw

    def as_dict(self) -> dict:
        d = asdict(self)
        if not self.stop_after_final:  # the cache keys of runs made before this option existed
            del d["stop_after_final"]
        if self.do_sample:  # sampled answers cached before top-k was pinned off had HF's top-k of 50
            d["top_k"] = 0
        return d


@lru_cache(maxsize=4)
def _newline_ids(tokenizer) -> frozenset[int]:
    """The ids of the tokens whose text holds a newline (about a second for a 150k vocabulary)."""
    return frozenset(i for tok, i in tokenizer.get_vocab().items() if "\n" in tokenizer.convert_tokens_to_string([tok]))


class FinalAnswerStop(StoppingCriteria):
    """Per row: done once the text generated after the prompt (the first ``prompt_width``
    columns) has a complete "#### N" line. Rows are decoded only when their newest token holds a
    newline, the only token that can complete the line."""

    def __init__(self, tokenizer, prompt_width: int):
        self.tokenizer = tokenizer
        self.width = prompt_width
        self.newline = _newline_ids(tokenizer)

    def __call__(self, input_ids: torch.LongTensor, scores=None, **kwargs) -> torch.BoolTensor:
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        for r in range(input_ids.shape[0]):
            if int(input_ids[r, -1]) in self.newline:
                text = self.tokenizer.decode(input_ids[r, self.width :], skip_special_tokens=True)
                done[r] = final_line_complete(text)
        return done


CHUNK = 16  # new tokens per generate call; between calls, the rows that have finished leave the batch


def _eos_ids(model) -> set[int]:
    eos = model.generation_config.eos_token_id
    return set() if eos is None else {int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos])}


def _finished(tokens: list[int], eos: set[int], tokenizer, stop_after_final: bool) -> bool:
    """Whether a row's generated tokens are final: it wrote an end of sequence (HF pads a finished
    row with the pad token, often an EOS itself), or, with ``stop_after_final``, a complete
    "#### N" line."""
    if any(t in eos for t in tokens):
        return True
    return stop_after_final and final_line_complete(tokenizer.decode(tokens, skip_special_tokens=True))


def _generate_batch(model, tokenizer, ids: torch.Tensor, att: torch.Tensor, decoding: Decoding, pad_id: int,
                    chunk: int) -> list[list[int]]:
    """One left-padded batch, ``chunk`` new tokens per ``model.generate`` call. The key/value
    cache goes from one call to the next, less the rows that have finished, so a batch costs what
    its unfinished rows cost rather than a full batch until its longest row ends (on a CPU a row
    costs about a tenth of a batch-32 step). Greedy decoding writes the same tokens as one call."""
    width = ids.shape[1]
    eos = _eos_ids(model)
    stop = StoppingCriteriaList([FinalAnswerStop(tokenizer, width)]) if decoding.stop_after_final else None
    kwargs = decoding.kwargs()
    out: list[list[int]] = [[] for _ in range(ids.shape[0])]
    rows = list(range(ids.shape[0]))  # the batch rows still writing, in the order of ``ids``
    cache, left = None, decoding.max_new_tokens
    while rows and left > 0:
        kwargs["max_new_tokens"] = min(chunk, left)
        gen = model.generate(input_ids=ids, attention_mask=att, pad_token_id=pad_id, stopping_criteria=stop,
                             cache=cache, return_dict_in_generate=True, **kwargs)
        new = gen.sequences[:, ids.shape[1]:]
        left -= new.shape[1]
        keep = []
        for r, i in enumerate(rows):
            out[i] += new[r].tolist()
            if not _finished(out[i], eos, tokenizer, decoding.stop_after_final):
                keep.append(r)
        if not keep or left <= 0:
            break
        ids = gen.sequences
        att = torch.cat([att, torch.ones_like(new)], dim=1)
        cache = gen.cache
        if len(keep) < len(rows):
            sel = torch.tensor(keep, device=ids.device)
            ids, att = ids[sel], att[sel]
            try:
                cache.batch_select_indices(sel)
            except (AttributeError, NotImplementedError):  # a cache that cannot drop rows: the rest start afresh
                cache = None
            rows = [rows[r] for r in keep]
    return out


@torch.inference_mode()
def generate(model, tokenizer, prompts: Sequence[str], decoding: Decoding = Decoding(), batch_size: int = 8,
             progress: bool | str = True, chunk: int = CHUNK) -> list[str]:
    """The text each prompt's continuation, generated in left-padded batches of similar length."""
    if not prompts:
        return []
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = next(model.parameters()).device
    enc = [tokenizer(p, add_special_tokens=True)["input_ids"] for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: len(enc[i]))
    out: list[str | None] = [None] * len(prompts)
    if decoding.do_sample:
        torch.manual_seed(decoding.seed)
    desc = progress if isinstance(progress, str) else "generating"
    with Bar(total=len(prompts), desc=desc, disable=not progress, unit="prompt") as bar:
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            width = max(len(enc[i]) for i in idx)
            ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
            att = torch.zeros((len(idx), width), dtype=torch.long)
            for r, i in enumerate(idx):  # left padding: every prompt ends at the last column
                ids[r, width - len(enc[i]) :] = torch.tensor(enc[i])
                att[r, width - len(enc[i]) :] = 1
            tokens = _generate_batch(model, tokenizer, ids.to(device), att.to(device), decoding, pad_id, chunk)
            for r, i in enumerate(idx):
                out[i] = tokenizer.decode(tokens[r], skip_special_tokens=True)
            bar.update(len(idx))
    return out  # type: ignore[return-value]
