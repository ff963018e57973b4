"""Training sets for the strong model: which weak-labelled rows it sees, with what weight.

Pure pandas (no torch). Every builder takes the per-row weak-answer table of split B (one row
per question and variation, with ``entropy`` and ``reliability`` from
:func:`relalign.reliability.question_table`) and returns the rows to train on with columns
``qid``, ``variation``, ``target`` (the label) and ``weight``.

Methods (``shared/study/method.md``):

========================  ==========================================================
naive                     the canonical prompt's weak answer, one row per question
ceiling                   the canonical prompt with the ground-truth answer
filtering                 every row of the questions with H(x) <= tau (tau = median)
filtering_sampled         as many rows as B has questions, drawn from filtering's
reweighting               every row, weighted by its reliability r(a_k|x)
reweighting_sampled       as many rows as B has questions, drawn from reweighting's
========================  ==========================================================

Beyond the paper:

========================  ==========================================================
filtering_reweighting     filtering's rows, each weighted by its reliability r(a_k|x)
filtering_prob            every row whose mean probability p̄(a_k|x) over the K
                          variations is at least the median (a continuous score)
aux_confidence            naive's rows, trained with the auxiliary confidence loss of
                          Burns et al. 2023 (the loss, not the rows, differs)
kept_XXX (threshold       the XXX/1000 most reliable rows (by H, ties broken by p̄ or r),
sweep, not a method)      weight 1: strong accuracy against the kept fraction
========================  ==========================================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from .reliability import SCORES, Score

COLUMNS = ["qid", "variation", "target", "weight"]

__all__ = [
    "METHODS",
    "SUPERVISOR",
    "SelectionSettings",
    "entropy_threshold",
    "kept_by_entropy",
    "kept_by_score",
    "kept_top",
    "sample_rows",
    "sweep_name",
    "Method",
    "build_training_set",
]


@dataclass(frozen=True)
class SelectionSettings:
    """What the selection step needs from params."""

    percentile: float = 50.0  # tau = this percentile of H over all rows
    seed: int = 0  # for the sampled variants


def entropy_threshold(entropy: pd.Series | np.ndarray, percentile: float = 50.0) -> float:
    """tau: the given percentile of H over all rows (the paper uses the median)."""
    values = np.asarray(entropy, dtype=float)
    if values.size == 0:
        raise ValueError("no entropy values")
    if not 0 <= percentile <= 100:
        raise ValueError(f"percentile must be in [0, 100], got {percentile}")
    return float(np.percentile(values, percentile))


def kept_by_entropy(table: pd.DataFrame, tau: float) -> pd.Series:
    """Boolean mask of the rows whose question has H(x) <= tau (all K rows of a kept question)."""
    return table["entropy"] <= tau + 1e-12


def kept_by_score(table: pd.DataFrame, score: Score | str, percentile: float = 50.0) -> pd.Series:
    """Rows at least as reliable as ``score``'s ``percentile`` over all rows: for a score where low
    means reliable (entropy) H <= its percentile, else the score >= its (100 - percentile)
    percentile. For entropy this is :func:`kept_by_entropy` at tau."""
    score = SCORES[score] if isinstance(score, str) else score
    x = table[score.column]
    if score.higher_is_reliable:
        return x >= entropy_threshold(x, 100 - percentile) - 1e-12
    return x <= entropy_threshold(x, percentile) + 1e-12


def _reliability_rank(table: pd.DataFrame) -> np.ndarray:
    """Row positions from most to least reliable: by H, ties broken by p̄ where the table has it
    (else by r), then by position (stable)."""
    tie = table["mean_prob"] if "mean_prob" in table.columns else table["reliability"]
    return np.lexsort((-tie.to_numpy(float), table["entropy"].to_numpy(float)))


def kept_top(table: pd.DataFrame, fraction: float) -> pd.Series:
    """Boolean mask of the ``fraction`` most reliable rows (rounded; at least one row)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"kept fraction must be in (0, 1], got {fraction}")
    n = max(1, int(round(fraction * len(table))))
    mask = np.zeros(len(table), dtype=bool)
    mask[_reliability_rank(table)[:n]] = True
    return pd.Series(mask, index=table.index)


def sweep_name(fraction: float) -> str:
    """The training-set name of the threshold sweep's point ``fraction`` ("kept_300" for 0.3)."""
    return f"kept_{int(round(fraction * 1000)):03d}"


def sample_rows(rows: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """``n`` rows drawn without replacement (all rows if there are fewer), in a seeded order."""
    if n < 0:
        raise ValueError("n must be >= 0")
    if n >= len(rows):
        return rows.copy()
    return rows.sample(n=n, random_state=np.random.RandomState(seed)).sort_index()


def _rows(table: pd.DataFrame, target: str, weight: pd.Series | float) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "qid": table["qid"].to_numpy(),
            "variation": table["variation"].to_numpy(),
            "target": table[target].to_numpy(),
            "weight": np.broadcast_to(np.asarray(weight, dtype=float), (len(table),)).copy(),
        },
        index=table.index,
    )
    return out


def _canonical(table: pd.DataFrame) -> pd.DataFrame:
    return table[table["variation"] == 0]


def naive(table: pd.DataFrame, s: SelectionSettings) -> pd.DataFrame:
    return _rows(_canonical(table), "weak_target", 1.0)


def ceiling(table: pd.DataFrame, s: SelectionSettings) -> pd.DataFrame:
    return _rows(_canonical(table), "gold_target", 1.0)


def filtering(table: pd.DataFrame, s: SelectionSettings) -> pd.DataFrame:
    tau = entropy_threshold(table["entropy"], s.percentile)
    return _rows(table[kept_by_entropy(table, tau)], "weak_target", 1.0)


def filtering_sampled(table: pd.DataFrame, s: SelectionSettings) -> pd.DataFrame:
    return sample_rows(filtering(table, s), table["qid"].nunique(), s.seed)


def reweighting(table: pd.DataFrame, s: SelectionSettings) -> pd.DataFrame:
    return _rows(table, "weak_target", table["reliability"])


def reweighting_sampled(table: pd.DataFrame, s: SelectionSettings) -> pd.DataFrame:
    return sample_rows(reweighting(table, s), table["qid"].nunique(), s.seed)


def filtering_reweighting(table: pd.DataFrame, s: SelectionSettings) -> pd.DataFrame:
    tau = entropy_threshold(table["entropy"], s.percentile)
    kept = table[kept_by_entropy(table, tau)]
    return _rows(kept, "weak_target", kept["reliability"])


def filtering_prob(table: pd.DataFrame, s: SelectionSettings) -> pd.DataFrame:
    return _rows(table[kept_by_score(table, "mean_prob", s.percentile)], "weak_target", 1.0)


@dataclass(frozen=True)
class Method:
    """How a method builds its training rows, and whether it trains with the auxiliary
    confidence loss instead of the plain weighted loss. ``needs``: columns of the reliability
    table beyond the basic ones (a method needing ``mean_prob`` runs on choice tasks only)."""

    build: Callable[[pd.DataFrame, SelectionSettings], pd.DataFrame]
    aux_loss: bool = False
    needs: tuple[str, ...] = ()


SUPERVISOR = "supervisor"  # the one thing the weak model trains: its training name beside the methods

METHODS: dict[str, Method] = {
    "naive": Method(naive),
    "filtering": Method(filtering),
    "filtering_sampled": Method(filtering_sampled),
    "reweighting": Method(reweighting),
    "reweighting_sampled": Method(reweighting_sampled),
    "filtering_reweighting": Method(filtering_reweighting),
    "filtering_prob": Method(filtering_prob, needs=("mean_prob",)),
    "aux_confidence": Method(naive, aux_loss=True),
    "ceiling": Method(ceiling),
}
PAPER_METHODS = ("naive", "filtering", "filtering_sampled", "reweighting", "reweighting_sampled", "ceiling")
_SWEEP = re.compile(r"kept_(\d{3,4})$")


def method_spec(name: str) -> Method:
    """The :class:`Method` of a method name or of a threshold-sweep point (:func:`sweep_name`)."""
    if name in METHODS:
        return METHODS[name]
    m = _SWEEP.match(name)
    if m and 0 < int(m.group(1)) <= 1000:
        fraction = int(m.group(1)) / 1000
        return Method(lambda t, s: _rows(t[kept_top(t, fraction)], "weak_target", 1.0))
    raise KeyError(f"unknown method {name!r}; known: {', '.join(METHODS)} (and kept_XXX sweep points)")


def build_training_set(method: str, table: pd.DataFrame, settings: SelectionSettings | None = None) -> pd.DataFrame:
    """The strong model's training rows for ``method`` (a key of :data:`METHODS` or a sweep point)."""
    spec = method_spec(method)
    needed = {"qid", "variation", "weak_target", "gold_target", "entropy", "reliability", *spec.needs}
    missing = needed - set(table.columns)
    if missing:
        raise ValueError(f"{method}: the weak-answer table lacks columns {sorted(missing)}")
    rows = spec.build(table, settings or SelectionSettings())
    return rows[COLUMNS].reset_index(drop=True)
