"""Answer-position bias: how much a model's answers pile up on one option position.

A weak supervisor with a favourite position (letter) gives it as its answer more often than the
truth does. Naive fine-tuning on its labels can teach the strong model that position, and a model
that answers one letter for most questions of C loses accuracy whatever it knows. This module
measures it from a finished run's files, without torch: where the weak labels of B sit (the
canonical option order, which naive trains on) against where the gold answers of B sit, and, for
the weak supervisor and every trained model, the share of C it answers at the weak labels'
favourite position. Across a study's seeds, :func:`position_correlation` asks whether a method's
accuracy falls as that share rises (Spearman's rank correlation and scipy's p-value: no random draw).

Only multiple-choice runs have positions (their weak labels have an ``order`` column); open-answer
runs (GSM8K) are skipped. Every model answers C in the canonical order (the variation-0 prompt),
so a prediction on C, a choice index, is also its position.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from .rundir import WEAK_LABELS, RunDir
from .summary import load_metrics, study_of

__all__ = ["top_position", "displayed_positions", "run_positions", "position_table", "position_correlation"]


def top_position(positions: Sequence[int]) -> tuple[int, float]:
    """The most frequent position in ``positions`` (ties: the lowest) and the share of them there."""
    values, counts = np.unique(np.asarray(positions, dtype=int), return_counts=True)
    if not len(values):
        raise ValueError("no positions to count")
    i = int(counts.argmax())
    return int(values[i]), float(counts[i] / counts.sum())


def displayed_positions(weak_labels: pd.DataFrame, column: str = "weak_target", canonical: bool = False) -> np.ndarray:
    """Where each row's ``column`` (a choice index in the dataset's order) is shown: its index in the
    row's option ``order``, or with ``canonical`` in its question's canonical order (variation 0's),
    the prompt that ``training.views: canonical`` trains every answer with."""
    orders = weak_labels["order"]
    if canonical:
        first = weak_labels[weak_labels["variation"] == 0]
        orders = weak_labels["qid"].map(dict(zip(first["qid"], first["order"])))
    return np.array([list(order).index(int(t)) for order, t in zip(orders, weak_labels[column])])


def _share(predictions: Sequence[int], position: int) -> float:
    p = np.asarray(predictions, dtype=int)
    return float((p == position).mean()) if p.size else float("nan")


def run_positions(run: str | Path, views: str = "canonical") -> list[dict]:
    """One finished run's position rows: ``source`` "gold B" and "weak labels B" (the canonical view,
    variation 0, what naive trains on) and "weak labels B, K answers" (the answers to every variation,
    where the strong model is shown them: with the run's ``training.views`` ``canonical``, each in
    the canonical prompt; with ``variations``, in its own order), then the weak supervisor ("weak")
    and each trained method on C. Each row has its ``top`` position and ``top_share``, and
    ``favourite_share``: the share at the weak labels' favourite (the canonical view's top) position;
    C rows also their ``accuracy``. [] for a run without positions (open answers)."""
    rd = RunDir(run)
    path = rd.root / WEAK_LABELS
    labels = pd.read_parquet(path) if path.is_file() else pd.DataFrame()
    if "order" not in labels.columns:
        return []
    canonical = labels[labels["variation"] == 0]
    favourite, _ = top_position(displayed_positions(canonical))
    trained = displayed_positions(labels, canonical=views != "variations")
    sources = [("B", "gold B", displayed_positions(canonical, "gold_target"), np.nan),
               ("B", "weak labels B", displayed_positions(canonical), np.nan),
               ("B", "weak labels B, K answers", trained, np.nan)]
    weak = rd.read("weak_supervisor")
    sources.append(("C", "weak", weak["predictions"], weak["accuracy"]))
    for method in sorted(p.stem for p in (rd.root / "methods").glob("*.json")):
        m = rd.read_method(method)
        if "predictions" in m:
            sources.append(("C", method, m["predictions"], m["accuracy"]))
    rows = []
    for split, source, positions, acc in sources:
        top, share = top_position(positions)
        rows.append({"split": split, "source": source, "top": top, "top_share": share,
                     "favourite": favourite, "favourite_share": _share(positions, favourite), "accuracy": acc})
    return rows


def position_table(runs: Sequence[Path]) -> pd.DataFrame:
    """:func:`run_positions` of every run, with its dataset, study, run name and seed."""
    rows = []
    for run in runs:
        m = load_metrics(Path(run))
        views = ((m.get("params") or {}).get("training") or {}).get("views", "canonical")
        rows += [{"dataset": m["dataset"], "study": study_of(m), "run": Path(run).name, "seed": m.get("seed"), **r}
                 for r in run_positions(run, views)]
    return pd.DataFrame(rows, columns=["dataset", "study", "run", "seed", "split", "source", "top", "top_share",
                                       "favourite", "favourite_share", "accuracy"])


def position_correlation(table: pd.DataFrame, method: str = "naive", min_seeds: int = 4) -> pd.DataFrame:
    """Per study with at least ``min_seeds`` seeds: how the weak labels of B lean (mean share at their
    favourite position in the canonical view and among all K answers as trained, against gold's share
    there), the share of C that ``method``, the other trained
    methods and the ceiling answer at that position (means over seeds), and Spearman's rank
    correlation between ``method``'s accuracy and its share across the seeds, with its p-value."""
    rows = []
    for (dataset, study), g in table.groupby(["dataset", "study"], sort=True):
        mine = g[g["source"] == method].sort_values("seed")
        if len(mine) < min_seeds:
            continue
        others = g[(g["split"] == "C") & ~g["source"].isin([method, "weak", "ceiling"])]
        rho, p = spearmanr(mine["favourite_share"], mine["accuracy"])
        rows.append({"dataset": dataset, "study": study, "n_seeds": len(mine),
                     "weak_labels_share": g.loc[g["source"] == "weak labels B", "favourite_share"].mean(),
                     "k_answers_share": g.loc[g["source"] == "weak labels B, K answers", "favourite_share"].mean(),
                     "gold_share": g.loc[g["source"] == "gold B", "favourite_share"].mean(),
                     f"{method}_share": mine["favourite_share"].mean(), f"{method}_share_max": mine["favourite_share"].max(),
                     "others_share": others["favourite_share"].mean(),
                     "ceiling_share": g.loc[g["source"] == "ceiling", "favourite_share"].mean(),
                     "rho": float(rho), "p": float(p)})
    return pd.DataFrame(rows)
