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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

COLUMNS = ["qid", "variation", "target", "weight"]

__all__ = [
    "METHODS",
    "SelectionSettings",
    "entropy_threshold",
    "kept_by_entropy",
    "sample_rows",
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


METHODS: dict[str, Callable[[pd.DataFrame, SelectionSettings], pd.DataFrame]] = {
    "naive": naive,
    "filtering": filtering,
    "filtering_sampled": filtering_sampled,
    "reweighting": reweighting,
    "reweighting_sampled": reweighting_sampled,
    "ceiling": ceiling,
}


def build_training_set(method: str, table: pd.DataFrame, settings: SelectionSettings | None = None) -> pd.DataFrame:
    """The strong model's training rows for ``method`` (a key of :data:`METHODS`)."""
    if method not in METHODS:
        raise KeyError(f"unknown method {method!r}; known: {sorted(METHODS)}")
    needed = {"qid", "variation", "weak_target", "gold_target", "entropy", "reliability"}
    missing = needed - set(table.columns)
    if missing:
        raise ValueError(f"weak-answer table lacks columns {sorted(missing)}")
    rows = METHODS[method](table, settings or SelectionSettings())
    return rows[COLUMNS].reset_index(drop=True)
