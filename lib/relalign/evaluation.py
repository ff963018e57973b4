"""Metrics: accuracy, performance gap recovered, and how well a score finds wrong weak labels.

Pure numpy / pandas / scikit-learn (no torch).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from .selection import METHODS

# How tables and figures order the rows of metrics.json's "methods": the weak supervisor, then the methods.
METHOD_ORDER = ("weak", *METHODS)

__all__ = [
    "accuracy",
    "pgr",
    "error_auroc",
    "expected_calibration_error",
    "score_report",
    "accuracy_by_entropy",
    "accuracy_by_variation",
    "agreement_profile",
    "label_quality",
    "reliability_matrix",
    "method_table",
]


def accuracy(predicted, gold) -> float:
    predicted, gold = np.asarray(predicted), np.asarray(gold)
    if predicted.shape != gold.shape or predicted.size == 0:
        raise ValueError(f"need equally long, non-empty predictions and labels: {predicted.shape} vs {gold.shape}")
    return float((predicted == gold).mean())


def pgr(acc, acc_weak, acc_ceiling):
    """Performance gap recovered (Burns et al. 2023): (acc - weak) / (ceiling - weak).

    NaN where the ceiling does not beat the weak supervisor (there is no gap to recover). Floats
    give a float; arrays (bootstrap draws) are taken element-wise and give an array.
    """
    acc, weak, ceiling = (np.asarray(x, dtype=float) for x in (acc, acc_weak, acc_ceiling))
    gap = ceiling - weak
    out = np.where(gap > 0, (acc - weak) / np.where(gap > 0, gap, 1.0), np.nan)
    return float(out) if out.ndim == 0 else out


def error_auroc(correct, score, higher_means_reliable: bool = True) -> float:
    """AUROC of ``score`` for telling right weak labels from wrong ones (0.5 = no better than chance).

    ``higher_means_reliable=False`` for scores such as entropy, where a low value means reliable.
    NaN when all labels are right or all are wrong.
    """
    correct = np.asarray(correct, dtype=bool)
    score = np.asarray(score, dtype=float)
    if correct.all() or not correct.any():
        return math.nan
    return float(roc_auc_score(correct, score if higher_means_reliable else -score))


def expected_calibration_error(prob_right, correct, bins: int = 10) -> float:
    """ECE: the mean over ``bins`` equal-width bins of |accuracy - mean probability|, weighted by
    the bin's share of the rows (``prob_right`` in [0, 1]: the probability that a label is right)."""
    p = np.asarray(prob_right, dtype=float)
    y = np.asarray(correct, dtype=float)
    if p.shape != y.shape or p.size == 0:
        raise ValueError(f"need equally long, non-empty probabilities and outcomes: {p.shape} vs {y.shape}")
    if ((p < 0) | (p > 1)).any():
        raise ValueError("probabilities must lie in [0, 1]")
    idx = np.minimum((p * bins).astype(int), bins - 1)
    ece = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            ece += m.mean() * abs(y[m].mean() - p[m].mean())
    return float(ece)


def score_report(table: pd.DataFrame, k: int, n_options: int | None, percentile: float = 50.0) -> pd.DataFrame:
    """How well each reliability score of :data:`relalign.reliability.SCORES` (that ``table``
    has) finds the wrong weak labels among all K rows of B, one row per score:

    * ``auroc`` -- telling right labels from wrong ones (0.5 = chance);
    * ``ece`` -- calibration of the score read as the probability that the label is right;
    * ``kept_fraction``, ``precision``, ``recall`` -- the filter that keeps the rows at least as
      reliable as the score's ``percentile`` (the paper: H <= median): the accuracy of the kept
      labels, and the share of the right labels that it keeps.
    """
    from .reliability import SCORES
    from .selection import kept_by_score

    correct = table["correct"].to_numpy(bool)
    out = {}
    for name, score in SCORES.items():
        if score.column not in table.columns or table[score.column].isna().any():
            continue
        kept = kept_by_score(table, score, percentile).to_numpy()
        out[name] = {
            "kind": score.kind,
            "auroc": error_auroc(correct, table[score.column], higher_means_reliable=score.higher_is_reliable),
            "ece": expected_calibration_error(score.as_probability(table, k, n_options), correct),
            "kept_fraction": float(kept.mean()),
            "precision": float(correct[kept].mean()) if kept.any() else math.nan,
            "recall": float((kept & correct).sum() / correct.sum()) if correct.any() else math.nan,
        }
    return pd.DataFrame.from_dict(out, orient="index")


def accuracy_by_entropy(table: pd.DataFrame) -> pd.DataFrame:
    """Weak-label accuracy per entropy value (the paper's Figures 3 and 5): one row per value
    with the accuracy and the number of rows."""
    g = table.groupby(table["entropy"].round(3))["correct"]
    out = pd.DataFrame({"accuracy": g.mean(), "rows": g.size()}).reset_index()
    return out.sort_values("entropy").reset_index(drop=True)


def reliability_matrix(table: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """Mean reliability by weak answer (rows) and ground truth (columns), option i named
    ``names[i]`` (the paper's Figures 4 and 6)."""
    letters = list(names)
    if not letters:  # free-text answers: no fixed set of options, so by whether the label is right
        t = table.assign(weak=np.where(table["correct"], "right", "wrong"), truth="true answer")
        m = t.pivot_table(index="weak", columns="truth", values="reliability", aggfunc="mean")
        return m.reindex(index=["right", "wrong"])
    t = table.assign(weak=table["weak_target"].map(lambda i: letters[int(i)]),
                     truth=table["gold_target"].map(lambda i: letters[int(i)]))
    m = t.pivot_table(index="weak", columns="truth", values="reliability", aggfunc="mean")
    return m.reindex(index=letters, columns=letters)


def method_table(methods: dict[str, dict], acc_weak: float, n_weak: int) -> dict[str, dict]:
    """``metrics.json``'s "methods": the weak supervisor first, then every method with its
    accuracy, PGR against ``methods["ceiling"]``, training-set size and, with LoRA, optimiser steps."""
    ceiling = methods["ceiling"]["accuracy"]
    out = {"weak": {"accuracy": acc_weak, "pgr": pgr(acc_weak, acc_weak, ceiling), "n_train": n_weak}}
    for name, m in methods.items():
        out[name] = {"accuracy": m["accuracy"], "pgr": pgr(m["accuracy"], acc_weak, ceiling), "n_train": m["n_train"]}
        if m.get("optimizer_steps") is not None:  # LoRA; a head is solved to its optimum, no steps to count
            out[name]["optimizer_steps"] = m["optimizer_steps"]
    return out


def accuracy_by_variation(table: pd.DataFrame) -> pd.DataFrame:
    """Weak-label accuracy of each variation (0 = canonical prompt) over the questions of B."""
    g = table.groupby("variation")["correct"]
    return pd.DataFrame({"accuracy": g.mean(), "rows": g.size()})


def agreement_profile(table: pd.DataFrame) -> pd.DataFrame:
    """How many questions got 1, 2, ... distinct answers across their K variations, and how often
    the canonical weak label is right among them."""
    per_q = table.groupby("qid").agg(distinct=("answer", "nunique"))
    canonical = table[table["variation"] == 0].set_index("qid")["correct"]
    per_q["canonical_correct"] = canonical.reindex(per_q.index)
    g = per_q.groupby("distinct")["canonical_correct"]
    return pd.DataFrame({"questions": g.size(), "canonical_label_accuracy": g.mean()})


def label_quality(rows: pd.DataFrame, gold: pd.Series, right: np.ndarray | None = None) -> dict:
    """Size and label accuracy of a training set; ``gold`` maps qid -> true target (or pass
    ``right``, whether each row's label is right, where labels are free text). The weighted
    accuracy counts each row by its weight."""
    if right is None:
        right = (rows["target"].to_numpy() == gold.reindex(rows["qid"]).to_numpy())
    right = np.asarray(right, dtype=bool)
    w = rows["weight"].to_numpy(float)
    return {"rows": len(rows), "questions": int(rows["qid"].nunique()), "label_accuracy": float(right.mean()) if len(rows) else math.nan,
            "weighted_label_accuracy": float((w * right).sum() / w.sum()) if w.sum() > 0 else math.nan,
            "sum_weights": float(w.sum())}
