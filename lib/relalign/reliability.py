"""Reliability of weak answers, from the K answers the weak model gave to one question.

Pure functions (no torch): the paper's two count-based scores, exactly as
``shared/study/method.md`` defines them, and a per-question table for a whole split.

* :func:`answer_entropy` -- H(x) = -sum_a p(a|x) ln p(a|x) with p(a|x) = n_a / K,
  natural log, an unparseable answer counting as an answer of its own.
* :func:`frequency_reliability` -- r(a_k|x) = exp((n_{a_k}/K)/T) / sum_{b distinct}
  exp((n_b/K)/T), one weight per answer in the order given.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Hashable, Sequence

import numpy as np
import pandas as pd

__all__ = [
    "answer_entropy",
    "frequency_reliability",
    "majority_answer",
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


def majority_answer(answers: Sequence[Hashable]) -> Hashable:
    """The most frequent answer; ties go to the one given first (the canonical prompt's)."""
    counts = _counts(answers)
    best = max(counts.values())
    return next(a for a in answers if counts[a] == best)


def question_table(
    weak: pd.DataFrame,
    temperature: float,
    *,
    qid: str = "qid",
    answer: str = "answer",
    variation: str = "variation",
) -> pd.DataFrame:
    """Add per-row ``entropy``, ``reliability`` and ``n_agree`` columns to a long table of weak answers.

    ``weak`` has one row per (question, variation). The result keeps its rows and order.
    """
    missing = {qid, answer, variation} - set(weak.columns)
    if missing:
        raise ValueError(f"weak-answer table lacks columns {sorted(missing)}")
    out = weak.sort_values([qid, variation], kind="stable").copy()
    ent, rel, agree = [], [], []
    for _, g in out.groupby(qid, sort=False):
        ans = [None if (isinstance(a, float) and math.isnan(a)) else a for a in g[answer]]
        h = answer_entropy(ans)
        counts = Counter(ans)
        ent.extend([h] * len(ans))
        rel.extend(frequency_reliability(ans, temperature))
        agree.extend(counts[a] for a in ans)
    out["entropy"] = np.asarray(ent, dtype=float)
    out["reliability"] = np.asarray(rel, dtype=float)
    out["n_agree"] = np.asarray(agree, dtype=int)
    return out.loc[weak.index]
