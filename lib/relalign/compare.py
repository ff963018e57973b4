"""Comparisons across a dataset's studies, for notebook 07: head mode against LoRA (:func:`by_mode`), and
each method against training on every weak-labelled row unweighted (:func:`against_all_rows`), the
control that separates what the reliability scores add from what seeing the K answers adds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from .evaluation import METHOD_ORDER
from .rundir import RunDir
from .selection import sweep_name
from .stats import MAX_BOOT, N_BOOT, SIGNIFICANT, bootstrap_methods, parse_correct
from .summary import _load, study_of, study_outcomes

__all__ = ["ALL_ROWS", "by_mode", "all_rows_outcomes", "against_all_rows"]


def by_mode(iv: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Head against LoRA, per dataset: one row per (dataset, method) and one column per training mode
    (``head``, ``lora top 2``, ...; ``<mode>: <study>`` where a dataset has two studies of one mode),
    each cell naive's PGR (method ``naive``) or the method's difference from naive in points, with
    its 95% bootstrap interval (``iv``: :func:`intervals`; ``runs``: :func:`runs_table`, which says how
    each study trained). Empty where a study lacks the method."""
    if iv.empty or "diff" not in iv.columns:
        return pd.DataFrame()
    mode = runs.groupby(["dataset", "study"])["mode"].first()
    rows = []
    for _, r in iv[~iv["method"].isin(["weak", "ceiling"])].iterrows():
        if r["method"] == "naive":
            cell = f"PGR {r['pgr']:.2f} [{r['pgr_lo']:.2f}, {r['pgr_hi']:.2f}]"
        else:
            cell = f"{r['diff']:+.1f} [{r['diff_lo']:+.1f}, {r['diff_hi']:+.1f}]" + (" *" if r["call"] == SIGNIFICANT else "")
        rows.append({"dataset": r["dataset"], "method": r["method"], "study": r["study"],
                     "mode": mode.get((r["dataset"], r["study"]), "?"), "cell": cell})
    long = pd.DataFrame(rows)
    shared = long.groupby(["dataset", "mode"])["study"].transform("nunique") > 1
    long["column"] = long["mode"].where(~shared, long["mode"] + ": " + long["study"])
    wide = long.pivot(index=["dataset", "method"], columns="column", values="cell").fillna("")
    rank = {m: i for i, m in enumerate(METHOD_ORDER)}
    order = sorted(wide.index, key=lambda k: (k[0], rank.get(k[1], len(rank))))
    wide = wide.loc[order]
    wide.columns.name = None
    return wide


ALL_ROWS = "kept_1000"  # the sweep point that keeps every row of B, unweighted: the methods' control


def all_rows_outcomes(runs: list[Path]) -> dict[tuple[str, str], dict[str, list[np.ndarray]]]:
    """:func:`study_outcomes` of the studies whose every seed's threshold sweep has the all-rows point
    (:data:`ALL_ROWS`: every weak-labelled row of B, all K variations, weight 1), with that point
    added and the ceiling and the weak supervisor left out."""
    seeds: dict[tuple[str, str], list[tuple[int, np.ndarray | None]]] = {}
    for run in runs:
        m = _load(run)
        sweep = RunDir(run).path("sweep")
        points = json.loads(sweep.read_text())["points"] if sweep.is_file() else []
        found = next((parse_correct(p["correct"]) for p in points
                      if sweep_name(p["fraction"]) == ALL_ROWS and "correct" in p), None)
        seeds.setdefault((m["dataset"], study_of(m)), []).append((m.get("seed", 0), found))
    out = {}
    for key, correct in study_outcomes(runs).items():
        control = [c for _, c in sorted(seeds.get(key, []), key=lambda t: t[0])]
        if control and all(c is not None for c in control) and len(control) == len(correct.get("naive", [])):
            out[key] = {ALL_ROWS: control, **{k: v for k, v in correct.items() if k not in ("weak", "ceiling")}}
    return out


def against_all_rows(runs: list[Path], n_boot: int = N_BOOT, max_boot: int = MAX_BOOT) -> pd.DataFrame:
    """Per study with the all-rows point (:func:`all_rows_outcomes`): each method's difference from
    training on every row of B unweighted, with its interval, Holm-adjusted p-value and call, as
    :func:`intervals` does against naive. Re-weighting and filtering train on the same K views of the
    same questions as this control, so a difference from it is what reliability adds beyond seeing the
    K answers; naive's difference is what the K views alone take away."""
    frames = []
    for (dataset, study), correct in all_rows_outcomes(runs).items():
        out = bootstrap_methods(correct, reference=ALL_ROWS, n_boot=n_boot, max_boot=max_boot)
        out.insert(0, "method", out.index)
        out.insert(0, "study", study)
        out.insert(0, "dataset", dataset)
        frames.append(out.reset_index(drop=True))
    if not frames:
        return pd.DataFrame(columns=["dataset", "study", "method", "accuracy", "diff", "diff_lo", "diff_hi", "call"])
    return pd.concat(frames, ignore_index=True)
