"""The run's two models, one in memory at a time, and what they compute, cached on disk.

:class:`ModelPool` loads the weak or the strong model when a stage first needs it (and lets the
other go: two models of a few GB each do not share a small machine). :func:`cached_scorer` and
:func:`cached_generator` put the expensive passes behind the cache: a prompt is scored, or a
completion generated, once per model, number format and (for generation) trained adapter and
decoding, whatever set of prompts it is asked in and whichever run asks.
"""

from __future__ import annotations

import gc
from typing import Callable, Sequence

import numpy as np

from .cache import RowStore, digest, fingerprint
from .prompts import Prompt

__all__ = ["ModelPool", "cached_scorer", "cached_generator", "SCORES_VERSION", "GENERATIONS_VERSION"]

SCORES_VERSION = 2  # bump when scoring or prompt rendering changes what a prompt's scores are
GENERATIONS_VERSION = 1  # bump when generation changes what a completion is


class ModelPool:
    """``(model, tokenizer)`` of ``weak`` or ``strong``, loaded on first use, one at a time."""

    def __init__(self, params):
        self.params = params
        self._loaded: dict[str, tuple] = {}

    def model_id(self, role: str) -> dict:
        """What a cached score, generation or trained adapter of ``role``'s model depends on: the
        model, the number format it is loaded in (bf16 and fp32 write different answers) and, where
        ``compute.threads`` pins it, torch's thread count (a CPU sums in another order on more threads)."""
        from .models import resolve_dtype

        r = self.params.compute
        threads = {"threads": r.threads} if r.threads is not None else {}
        return {**self.params.model_spec(role).describe(), "dtype": resolve_dtype(r.dtype, r.device), **threads}

    def model(self, role: str):
        if role not in self._loaded:
            from .models import load_model

            self.release()
            r = self.params.compute
            self._loaded[role] = load_model(self.params.model_spec(role), self.params.resolved_cache_dir(),
                                            dtype=r.dtype, device=r.device, device_map=r.device_map)
        return self._loaded[role]

    def release(self) -> None:
        """Let the loaded model go (before another process trains with it, or another model loads)."""
        self._loaded.clear()
        gc.collect()


def cached_scorer(pool: ModelPool, cache_root, role: str) -> Callable:
    """``score(prompts, desc) -> ScoredPrompts`` with ``role``'s frozen model (:mod:`relalign.scoring`),
    each prompt scored once and kept under ``cache_root/scores``."""
    store = RowStore(cache_root / "scores" / fingerprint("scores", SCORES_VERSION, model=pool.model_id(role))[:32])
    s = pool.params.compute

    def score(prompts: Sequence[Prompt], desc: str):
        from .scoring import ScoredPrompts, score_prompts

        def compute(positions: list[int]) -> dict:
            model, tok = pool.model(role)
            return score_prompts(model, tok, [prompts[i] for i in positions], max_tokens_per_batch=s.max_tokens_per_batch,
                                 shared_prefix=s.shared_prefix, progress=f"{role} model: {desc}").as_dict()

        return ScoredPrompts.from_dict(store.get([digest([p.text, p.option_spans]) for p in prompts], compute))

    return score


def cached_generator(pool: ModelPool, cache_root, role: str, trained: str | None, decoding,
                     model_for: Callable[[], tuple]) -> Callable:
    """``generate(prompts, desc) -> texts`` by ``role``'s model -- the base model (``trained`` None) or
    the one trained with fingerprint ``trained``, which ``model_for()`` returns as (model, tokenizer,
    close) -- with ``decoding`` (:class:`relalign.generation.Decoding`), each completion generated once
    and kept under ``cache_root/generations``."""
    store = RowStore(cache_root / "generations" / fingerprint("generations", GENERATIONS_VERSION, model=pool.model_id(role),
                                                              trained=trained, decoding=decoding.as_dict())[:32])
    batch_size = pool.params.generation.batch_size

    def generate(prompts: Sequence[Prompt], desc: str) -> list[str]:
        from .generation import generate as run_generation

        def compute(positions: list[int]) -> dict:
            model, tok, close = model_for()
            out = run_generation(model, tok, [prompts[i].text for i in positions], decoding, batch_size,
                                 progress=f"{role} model: {desc}")
            close()
            return {"text": np.array(out, dtype=str)}

        return [str(t) for t in store.get([digest(p.text) for p in prompts], compute)["text"]]

    return generate
