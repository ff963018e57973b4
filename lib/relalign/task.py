"""What one run asks, and what counts as a right answer: multiple choice or free text.

A :class:`Task` holds a run's splits and renders every prompt the study shows a model: each
question's canonical prompt and its K variations (``shared/study/method.md``). The stages
(:mod:`relalign.stages`) take a task and never ask which kind it is; the two kinds differ only in
the methods below:

* :class:`ChoiceTask` (multiple choice, binary): an answer is an option, chosen by the model's
  letter (or word) log-probabilities; a variation lists the options in another order; a training
  target is the option's listing position in the row's prompt.
* :class:`OpenTask` (GSM8K): an answer is the final number of a generated solution
  (:func:`relalign.answers.parse_number`; an unparseable one is an answer of its own); a variation
  is another prompt template, or a sampled answer to the canonical prompt; a training target is the
  solution's text.
"""

from __future__ import annotations

from functools import cached_property
from typing import Sequence

import numpy as np
import pandas as pd

from .answers import parse_number, trim_after_final
from .adapters import Adapter
from .evaluation import label_quality
from .prompts import LETTERS, Prompt, Question

__all__ = ["Task", "ChoiceTask", "OpenTask", "make_task"]


class Task:
    """The splits of one run and the prompts of its questions (what both kinds share)."""

    kind = ""

    def __init__(self, adapter: Adapter, splits: dict[str, list[Question]], k: int, seed: int, views: str):
        self.adapter, self.splits, self.k, self.seed, self.views = adapter, splits, k, seed, views

    @cached_property
    def questions(self) -> dict[str, Question]:
        return {q.qid: q for qs in self.splits.values() for q in qs}

    def canonical_prompts(self, split: str) -> list[Prompt]:
        return [self.adapter.render(q) for q in self.splits[split]]

    @cached_property
    def variation_orders(self) -> dict[str, list]:
        """Per question of B, its K variations (option orders, or template numbers)."""
        return {q.qid: self.adapter.variations(q, self.k, self.seed) for q in self.splits["B"]}

    def prompt(self, qid: str, variation: int) -> Prompt:
        """Variation ``variation`` of a question of B (0: the canonical prompt)."""
        order = self.variation_orders[qid][variation] if variation else None
        return self.adapter.render(self.questions[qid], order)

    def row_prompts(self, rows: pd.DataFrame) -> list[Prompt]:
        """The prompt each training row is shown with: its variation's, or with ``views: canonical``
        its question's canonical prompt."""
        return [self.prompt(q, v if self.views == "variations" else 0) for q, v in zip(rows["qid"], rows["variation"])]

    def right_answer(self, question: Question) -> str:
        """The ground truth as a reader wants to see it: the right option's text, or the solution."""
        return question.solution if question.style == "open" else question.choices[question.answer]

    def correct_string(self, predictions: Sequence) -> str:
        """Whether each prediction on C is right, as a string of 0 and 1 (for bootstrap intervals)."""
        gold = [self.right_prediction(q) for q in self.splits["C"]]
        return "".join("1" if p == g else "0" for p, g in zip(predictions, gold))

    def accuracy(self, predictions: Sequence) -> float:
        s = self.correct_string(predictions)
        return s.count("1") / len(s)

    # ---- what the two kinds define

    def right_prediction(self, question: Question):
        raise NotImplementedError

    def supervisor_targets(self, prompts: Sequence[Prompt]) -> np.ndarray:
        """The weak supervisor's training targets on A's canonical prompts: the ground truth."""
        raise NotImplementedError

    def row_targets(self, prompts: Sequence[Prompt], rows: pd.DataFrame) -> np.ndarray:
        """A method's training targets, for the rows' prompts."""
        raise NotImplementedError


class ChoiceTask(Task):
    kind = "choice"

    @property
    def n_options(self) -> int:
        return len(self.splits["A"][0].choices)

    @property
    def n_answer_options(self) -> int:
        """How many answers a question can get: its options."""
        return self.n_options

    @cached_property
    def option_names(self) -> list[str]:
        """How figures name option i: its text where every question has the same options (a
        binary task's two words; per-row templates joined, "acceptable/right"), else its letter."""
        qs = [q for split in self.splits.values() for q in split]
        if all(q.style == "words" for q in qs):
            return ["/".join(dict.fromkeys(q.choices[i] for q in qs)) for i in range(self.n_options)]
        return list(LETTERS[: self.n_options])

    def describe_variation(self, qid: str, variation: int) -> str:
        """One line saying what variation ``variation`` of a question changes."""
        pr = self.prompt(qid, variation)
        return f"order {pr.order}:  " + " | ".join(pr.answer_text(j)[1:] for j in range(len(pr.listed)))

    def right_prediction(self, question: Question) -> int:
        return question.answer

    def supervisor_targets(self, prompts: Sequence[Prompt]) -> np.ndarray:
        return np.array([p.position_of(q.answer) for p, q in zip(prompts, self.splits["A"])])

    def row_targets(self, prompts: Sequence[Prompt], rows: pd.DataFrame) -> np.ndarray:
        return np.array([p.position_of(int(t)) for p, t in zip(prompts, rows["target"])])

    @staticmethod
    def choices(prompts: Sequence[Prompt], logprobs: np.ndarray) -> np.ndarray:
        """Predicted choice index (dataset order) from log-probabilities over listing positions."""
        pos = logprobs.argmax(1)
        return np.array([p.order[j] for p, j in zip(prompts, pos)])

    def weak_label_rows(self, rows: Sequence[tuple[str, int]], prompts: Sequence[Prompt], logprobs: np.ndarray) -> pd.DataFrame:
        """The weak-answer table from the supervisor's log-probabilities on the K variations: one row per
        (question, variation) with ``answer`` (the option's text: answers to different orders are
        compared by text), ``weak_target`` / ``gold_target`` (choice indices in the dataset's order),
        ``correct``, ``confidence`` and ``probs`` (over the choices, dataset order)."""
        recs = []
        for (qid, v), p, row in zip(rows, prompts, logprobs):
            q = self.questions[qid]
            probs = np.zeros(len(q.choices))
            probs[list(p.order)] = np.exp(row)
            choice = int(p.order[int(row.argmax())])
            recs.append({"qid": qid, "variation": v, "order": list(p.order), "answer": q.choices[choice],
                         "weak_target": choice, "gold_target": q.answer, "correct": choice == q.answer,
                         "confidence": float(probs.max()), "probs": probs.tolist()})
        return pd.DataFrame.from_records(recs)

    def label_quality(self, rows: pd.DataFrame) -> dict:
        """Size and label accuracy of a set of training rows of B (:func:`evaluation.label_quality`)."""
        return label_quality(rows, pd.Series({q.qid: q.answer for q in self.splits["B"]}))


class OpenTask(Task):
    kind = "open"
    n_answer_options = None  # any number can be an answer
    option_names: list[str] = []  # answers are numbers, not a fixed set of options

    def __init__(self, *args, sampling: bool = False, temperature: float = 0.0):
        super().__init__(*args)
        self.sampling, self.temperature = sampling, temperature

    def prompt(self, qid: str, variation: int) -> Prompt:
        return super().prompt(qid, 0 if self.sampling else variation)  # a sampled variation answers the canonical prompt

    def describe_variation(self, qid: str, variation: int) -> str:
        if self.sampling:
            return "greedy answer to the canonical prompt" if variation == 0 else \
                f"sampled answer {variation} (T = {self.temperature}) to the canonical prompt"
        return "template: " + self.adapter.templates[self.variation_orders[qid][variation]].replace("\n", " | ")

    def right_prediction(self, question: Question):
        return question.final

    def supervisor_targets(self, prompts: Sequence[Prompt]) -> np.ndarray:
        return np.array([q.solution for q in self.splits["A"]], dtype=object)

    def row_targets(self, prompts: Sequence[Prompt], rows: pd.DataFrame) -> np.ndarray:
        return rows["target"].to_numpy(dtype=object)

    @staticmethod
    def answers(texts: Sequence[str]) -> list:
        """The final number of each generated solution (None where there is none)."""
        return [parse_number(t) for t in texts]

    def weak_label_rows(self, rows: Sequence[tuple[str, int]], texts: Sequence[str]) -> pd.DataFrame:
        """The weak-answer table from the supervisor's solutions: ``answer`` is the parsed final number
        (an unparseable solution is its own answer), ``weak_target`` the solution cut after its final
        answer, ``gold_target`` the true solution."""
        recs = []
        for (qid, v), text in zip(rows, texts):
            q = self.questions[qid]
            number = parse_number(text)
            recs.append({"qid": qid, "variation": v, "answer": number if number is not None else f"unparsed:{v}",
                         "weak_target": trim_after_final(text), "gold_target": q.solution,
                         "correct": number == q.final, "confidence": float("nan")})
        return pd.DataFrame.from_records(recs).sort_values(["qid", "variation"], kind="stable").reset_index(drop=True)

    def label_quality(self, rows: pd.DataFrame) -> dict:
        """A row's label is right when its final number is the true one."""
        gold = {q.qid: q.final for q in self.splits["B"]}
        right = np.array([parse_number(t) == gold[q] for q, t in zip(rows["qid"], rows["target"])])
        return label_quality(rows, pd.Series(gold), right=right)


def make_task(adapter: Adapter, splits: dict[str, list[Question]], params) -> Task:
    """The task of a run: free text where the dataset's adapter is open (GSM8K), else choices."""
    args = (adapter, splits, params.reliability.k, params.seed, params.training.views)
    if adapter.kind == "open":
        g = params.generation
        return OpenTask(*args, sampling=g.variations == "sampling", temperature=g.temperature)
    return ChoiceTask(*args)
