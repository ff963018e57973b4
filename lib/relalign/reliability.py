"""Reliability of weak answers, from the K answers the weak model gave to one question.

Pure functions (no torch): the paper's two count-based scores, exactly as
``shared/study/method.md`` defines them, and a per-question table for a whole split.

* :func:`answer_entropy` -- H(x) = -sum_a p(a|x) ln p(a|x) with p(a|x) = n_a / K,
  natural log, an unparseable answer counting as an answer of its own.
* :func:`frequency_reliability` -- r(a_k|x) = exp((n_{a_k}/K)/T) / sum_{b distinct}
  exp((n_b/K)/T), one weight per answer in the order given.

Beyond the paper, two continuous scores from the weak model's own option probabilities across
the K variations (choice tasks, where those probabilities exist):

* :func:`mean_probability` -- the mean over the K variations of the probability the weak model
  gives to *this row's* answer: p̄(a_k|x) = (1/K) sum_v p_v(a_k|x);
* :func:`probability_entropy` -- the entropy (nats) of the averaged distribution p̄(.|x).

:data:`SCORES` lists every score with its direction and the probability-of-being-right form
that calibration (ECE) uses.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Hashable, Sequence

import numpy as np
import pandas as pd

__all__ = [
    "SCORES",
    "Score",
    "answer_entropy",
    "mean_probability",
    "probability_entropy",
    "frequency_reliability",
    "question_table",
]


def _counts(answers: Sequence[Hashable]) -> Counter:
    if len(answers) == 0:
        raise ValueError("need at least one answer")
    # None (no parseable answer) is an answer of its own, as in the reference.
    return Counter(answers)


def answer_entropy(answers: Sequence[Hashable]) -> float:
    """Entropy (nats) of the empirical distribution of ``answers`` for one question.

    >>> round(answer_entropy(["a", "a", "a", "b", "b"]), 3)
    0.673
    """
    counts = _counts(answers)
    k = len(answers)
    h = -sum((n / k) * math.log(n / k) for n in counts.values())
    return 0.0 if h == 0 else h  # never -0.0


def frequency_reliability(answers: Sequence[Hashable], temperature: float) -> list[float]:
    """Reliability weight of each answer: a softmax over the distinct answers' frequencies.

    ``temperature`` T > 0. The weights of the *distinct* answers sum to one; each of the K
    rows carries the weight of its own answer, so a unanimous question gives 1.0 to every row.

    >>> frequency_reliability(["x", "y"], temperature=1.0)
    [0.5, 0.5]
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    counts = _counts(answers)
    k = len(answers)
    z = {a: (n / k) / temperature for a, n in counts.items()}
    top = max(z.values())
    expz = {a: math.exp(v - top) for a, v in z.items()}  # shifted for stability; ratio unchanged
    total = sum(expz.values())
    return [expz[a] / total for a in answers]


def mean_probability(probs: np.ndarray, answers: Sequence[int]) -> np.ndarray:
    """p̄(a_k|x) for each of the K rows of one question: ``probs`` [K, m] is each variation's
    distribution over the options (in the dataset's order), ``answers`` the option index each row chose.

    >>> mean_probability(np.array([[0.9, 0.1], [0.4, 0.6]]), [0, 1]).round(2).tolist()
    [0.65, 0.35]
    """
    probs = np.asarray(probs, dtype=float)
    if probs.ndim != 2 or len(probs) != len(answers):
        raise ValueError(f"need one distribution per answer: {probs.shape} vs {len(answers)} answers")
    return probs.mean(0)[np.asarray(answers, dtype=int)]


def probability_entropy(probs: np.ndarray) -> float:
    """Entropy (nats) of the mean of the K distributions ``probs`` [K, m].

    >>> round(probability_entropy(np.array([[1.0, 0.0], [0.0, 1.0]])), 3)
    0.693
    """
    p = np.asarray(probs, dtype=float).mean(0)
    p = p[p > 0]
    h = float(-(p * np.log(p)).sum())
    return 0.0 if h <= 0 else h


def question_table(
    weak: pd.DataFrame,
    temperature: float,
    *,
    qid: str = "qid",
    answer: str = "answer",
    variation: str = "variation",
) -> pd.DataFrame:
    """Add per-row ``entropy``, ``reliability`` and ``n_agree`` columns to a long table of weak answers.

    ``weak`` has one row per (question, variation). Where it has the weak model's option
    probabilities (``probs``, dataset order, with the chosen index in ``weak_target``), also
    ``mean_prob`` and ``prob_entropy``. The result keeps its rows and order.
    """
    missing = {qid, answer, variation} - set(weak.columns)
    if missing:
        raise ValueError(f"weak-answer table lacks columns {sorted(missing)}")
    out = weak.sort_values([qid, variation], kind="stable").copy()
    ent, rel, agree, mprob, pent = [], [], [], [], []
    has_probs = "probs" in out.columns and "weak_target" in out.columns
    for _, g in out.groupby(qid, sort=False):
        ans = [None if (isinstance(a, float) and math.isnan(a)) else a for a in g[answer]]
        h = answer_entropy(ans)
        counts = Counter(ans)
        ent.extend([h] * len(ans))
        rel.extend(frequency_reliability(ans, temperature))
        agree.extend(counts[a] for a in ans)
        if has_probs:
            probs = np.stack([np.asarray(p, dtype=float) for p in g["probs"]])
            mprob.extend(mean_probability(probs, g["weak_target"].to_numpy()))
            pent.extend([probability_entropy(probs)] * len(ans))
    out["entropy"] = np.asarray(ent, dtype=float)
    out["reliability"] = np.asarray(rel, dtype=float)
    out["n_agree"] = np.asarray(agree, dtype=int)
    if has_probs:
        out["mean_prob"] = np.asarray(mprob, dtype=float)
        out["prob_entropy"] = np.asarray(pent, dtype=float)
    return out.loc[weak.index]


@dataclass(frozen=True)
class Score:
    """A reliability score: the column of :func:`question_table` it lives in, whether a higher
    value means a more reliable label, and where it comes from. ``entropy_over`` marks an entropy
    (of the K "answers" or of the "options" distribution), which bounds it for :meth:`as_probability`."""

    column: str
    higher_is_reliable: bool
    kind: str  # "count" (the paper's, from the K answers) | "probability" (from the weak model's probabilities)
    description: str
    entropy_over: str | None = None

    def as_probability(self, table: pd.DataFrame, k: int, n_options: int | None) -> np.ndarray:
        """The score mapped to [0, 1] as a probability that the label is right (for ECE): itself
        where it already is one, 1 - H / H_max for an entropy (H_max = ln of the number of
        values it can spread over: min(K, options) answers, or the options)."""
        x = table[self.column].to_numpy(float)
        if self.entropy_over is None:
            return np.clip(x, 0.0, 1.0)
        n = min(k, n_options or k) if self.entropy_over == "answers" else (n_options or k)
        return np.clip(1.0 - x / math.log(n), 0.0, 1.0) if n > 1 else np.ones_like(x)


SCORES: dict[str, Score] = {
    "entropy": Score("entropy", False, "count", "H(x): entropy of the K answers (paper)", "answers"),
    "reliability": Score("reliability", True, "count", "r(a|x): softmax of the answer frequencies (paper)"),
    "mean_prob": Score("mean_prob", True, "probability", "mean probability of this answer over the K variations"),
    "prob_entropy": Score("prob_entropy", False, "probability", "entropy of the averaged option distribution",
                          "options"),
    "confidence": Score("confidence", True, "probability", "the weak model's probability of its answer, one prompt"),
}
