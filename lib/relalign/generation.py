"""Batched generation for tasks whose answers are free text (GSM8K): left padding, prompts sorted
by length so that batches waste little padding, decoding pinned by the caller (greedy by default),
results returned in the prompts' order. The reference generated one prompt at a time with each
checkpoint's own generation config (method.md, defects 3 and 6).

With ``stop_after_final`` a row stops once its "#### N" line is complete
(:func:`~relalign.answers.final_line_complete`): its parsed answer and trimmed solution are then
exactly those of the full generation, and a batch ends when every row has answered instead of
when its most long-winded row reaches ``max_new_tokens`` (untrained models often write "#### N"
and then go on with another question)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Sequence

import torch
from tqdm import tqdm
from transformers import StoppingCriteria, StoppingCriteriaList

from .answers import final_line_complete

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


@torch.inference_mode()
def generate(model, tokenizer, prompts: Sequence[str], decoding: Decoding = Decoding(), batch_size: int = 8,
             progress: bool | str = True) -> list[str]:
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
    with tqdm(total=len(prompts), desc=desc, disable=not progress, unit="prompt") as bar:
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            width = max(len(enc[i]) for i in idx)
            ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
            att = torch.zeros((len(idx), width), dtype=torch.long)
            for r, i in enumerate(idx):  # left padding: every prompt ends at the last column
                ids[r, width - len(enc[i]) :] = torch.tensor(enc[i])
                att[r, width - len(enc[i]) :] = 1
            stop = StoppingCriteriaList([FinalAnswerStop(tokenizer, width)]) if decoding.stop_after_final else None
            gen = model.generate(input_ids=ids.to(device), attention_mask=att.to(device), pad_token_id=pad_id,
                                 stopping_criteria=stop, **decoding.kwargs())
            for r, i in enumerate(idx):
                out[i] = tokenizer.decode(gen[r, width:], skip_special_tokens=True)
            bar.update(len(idx))
    return out  # type: ignore[return-value]
