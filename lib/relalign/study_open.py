"""The study for open tasks (free-text answers, GSM8K): every step answers by generation.

The same steps as :class:`~relalign.study.Study`, so the notebooks are the same: the weak
supervisor is LoRA-tuned on A's worked solutions; on each of the K variations of a question of B
(prompt templates, or sampled answers) it writes a solution, whose final number (parsed by
:func:`~relalign.answers.parse_number`) is its answer -- an unparseable one counts as its own
answer -- and whose text is the strong model's training target; the strong model is LoRA-tuned
on each method's rows and evaluated by generating on C. Decoding is pinned in params
(``generation``); generations are cached per prompt, model and adapter.
"""

from __future__ import annotations

from functools import cached_property
from typing import Sequence

import numpy as np
import pandas as pd

from .answers import parse_number, trim_after_final
from .cache import digest
from .evaluation import label_quality
from .prompts import Prompt, Question
from .study import Study

__all__ = ["OpenStudy"]


class OpenStudy(Study):
    @property
    def n_options(self) -> int:
        return 0

    @cached_property
    def option_names(self) -> list[str]:
        return []  # answers are numbers, not a fixed set of options

    @property
    def n_answer_options(self) -> None:
        return None  # any number can be an answer

    def right_prediction(self, question: Question):
        return question.final

    def describe_variation(self, qid: str, variation: int) -> str:
        if self.params.generation.variations == "sampling":
            return "greedy answer to the canonical prompt" if variation == 0 else \
                f"sampled answer {variation} (T = {self.params.generation.temperature}) to the canonical prompt"
        return "template: " + self.adapter.templates[self.variation_orders[qid][variation]].replace("\n", " | ")

    def prompt(self, qid: str, variation: int) -> Prompt:
        if self.params.generation.variations == "sampling":
            variation = 0  # every variation is a sample from the canonical prompt
        return super().prompt(qid, variation)

    # ------------------------------------------------------------------ generation, cached

    def decoding(self, sample: int | None = None):
        """Greedy decoding, or sample number ``sample`` (seeded) for sampled variations."""
        from .generation import Decoding

        g = self.params.generation
        if sample is None:
            return Decoding(max_new_tokens=g.max_new_tokens, stop_after_final=g.stop_after_final)
        return Decoding(max_new_tokens=g.max_new_tokens, do_sample=True, temperature=g.temperature, top_p=g.top_p,
                        seed=self.params.seed * 1000 + sample, stop_after_final=g.stop_after_final)

    def generate(self, role: str, name: str | None, prompts: Sequence[Prompt], desc: str, sample: int | None = None) -> list[str]:
        """Texts that ``role``'s model writes after ``prompts``: the base model (``name`` None) or
        the one trained as ``name``. Cached per prompt under model, training and decoding."""
        from .cache import RowStore
        from .generation import generate

        decoding = self.decoding(sample)
        trained = self.fingerprint(role, name) if name else None
        store = RowStore(self.cache.root / "generations" / digest({"model": self.model_id(role), "trained": trained,
                                                                   "decoding": decoding.as_dict()})[:32])

        def compute(positions: list[int]) -> dict:
            texts = [prompts[i].text for i in positions]
            if name:
                predictor = self._fit(role, name)
                out = generate(predictor.model, predictor.tokenizer, texts, decoding, self.params.generation.batch_size,
                               progress=f"{role} model: {desc}")
                predictor.close()
            else:
                model, tok = self.model(role)
                out = generate(model, tok, texts, decoding, self.params.generation.batch_size,
                               progress=f"{role} model: {desc}")
            return {"text": np.array(out, dtype=str)}

        return [str(t) for t in store.get([digest(p.text) for p in prompts], compute)["text"]]

    def _accuracy(self, texts: Sequence[str], questions: Sequence[Question]) -> tuple[float, list]:
        parsed = [parse_number(t) for t in texts]
        return float(np.mean([a == q.final for a, q in zip(parsed, questions)])), parsed

    # ------------------------------------------------------------------ training data

    def training_data(self, role: str, name: str):
        """(prompts, target texts, weights): A's worked solutions for the weak supervisor, a
        method's weak (or, for the ceiling, true) solutions for the strong model."""
        if role == "weak":
            if name != "supervisor":
                raise ValueError(f"the weak model trains only the supervisor, not {name!r}")
            return (self.canonical_prompts("A"), np.array([q.solution for q in self.splits["A"]], dtype=object),
                    np.ones(len(self.splits["A"])))
        rows = self.training_rows(name)
        views = self.params.training.views
        prompts = [self.prompt(q, v if views == "variations" else 0) for q, v in zip(rows["qid"], rows["variation"])]
        return prompts, rows["target"].to_numpy(dtype=object), rows["weight"].to_numpy(float)

    def label_quality(self, rows: pd.DataFrame) -> dict:
        """A row's label is right when its final number is the true one."""
        gold = {q.qid: q.final for q in self.splits["B"]}
        right = np.array([parse_number(t) == gold[q] for q, t in zip(rows["qid"], rows["target"])])
        return label_quality(rows, pd.Series(gold), right=right)

    # ------------------------------------------------------------------ steps

    def test_predictions(self, role: str, name: str) -> tuple[float, list]:
        """(accuracy on C, the parsed final numbers) of ``role``'s model trained as ``name``."""
        texts = self.generate(role, name, self.canonical_prompts("C"), "test split C")
        return self._accuracy(texts, self.splits["C"])

    def zero_shot_accuracy(self, role: str) -> float:
        texts = self.generate(role, None, self.canonical_prompts("C"), "test split C, untrained")
        return self._accuracy(texts, self.splits["C"])[0]

    def weak_labels(self) -> pd.DataFrame:
        """W's solution to each of the K variations of every question of B; ``answer`` is its
        parsed final number (an unparseable solution is its own answer), ``weak_target`` the
        solution text (cut after its final answer), ``gold_target`` the true solution."""
        k = self.params.reliability.k
        sampling = self.params.generation.variations == "sampling"
        rows = [(q, v) for v in range(k) for q in self.splits["B"]]
        prompts = [self.prompt(q.qid, v) for q, v in rows]
        # One generation call per decoding: every greedy prompt together (the K templates, or the
        # canonical prompt), then each sampled variation with its own seed.
        by_decoding: dict[int | None, list[int]] = {}
        for i, (_, v) in enumerate(rows):
            by_decoding.setdefault(v if sampling and v > 0 else None, []).append(i)
        texts: list[str] = [""] * len(rows)
        for sample, idx in by_decoding.items():
            desc = "weak labels" if sample is None else f"weak labels, sample {sample}"
            for i, text in zip(idx, self.generate("weak", "supervisor", [prompts[i] for i in idx], desc, sample=sample)):
                texts[i] = text
        recs = []
        for (q, v), text in zip(rows, texts):
            number = parse_number(text)
            recs.append({"qid": q.qid, "variation": v, "answer": number if number is not None else f"unparsed:{v}",
                         "weak_target": trim_after_final(text), "gold_target": q.solution,
                         "correct": number == q.final, "confidence": float("nan")})
        table = pd.DataFrame.from_records(recs).sort_values(["qid", "variation"], kind="stable").reset_index(drop=True)
        table.to_parquet(self.run_dir / "weak_labels.parquet", index=False)
        return table
