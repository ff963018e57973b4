"""Comparisons across a dataset's studies, for notebook 07: head mode against LoRA (:func:`by_mode`), and
each method against training on every weak-labelled row unweighted (:func:`against_all_rows`), the
control that separates what the reliability scores add from what seeing the K answers adds, with
what a null against it rules out (:func:`all_rows_power`); and whether a study's design can answer
the question at all (:func:`conditions`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from .evaluation import METHOD_ORDER
from .power import TARGET_MDE, study_power
from .rundir import RunDir
from .selection import sweep_name
from .stats import MAX_BOOT, N_BOOT, SIGNIFICANT, parse_correct
from .summary import POWER_COLUMNS, bootstrap_studies, load_metrics, power_row, study_of, study_outcomes, variant

__all__ = ["ALL_ROWS", "by_mode", "mode_lines", "all_rows_outcomes", "against_all_rows", "all_rows_power", "seed_minutes",
           "conditions", "conditions_markdown", "MIN_GAP", "MAX_MDE", "MAX_MINUTES"]


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


def mode_lines(iv: pd.DataFrame, runs: pd.DataFrame) -> list[str]:
    """One sentence per study of a dataset that was run in more than one training mode: naive's PGR
    with its interval, how many methods are significantly better than naive (Holm), and the range
    of the methods' differences from naive (``iv``: :func:`intervals`; ``runs``: :func:`runs_table`)."""
    if iv.empty or "diff" not in iv.columns:
        return []
    mode = runs.groupby(["dataset", "study"])["mode"].first()
    modes = mode.groupby(level="dataset").nunique()
    lines = []
    for (dataset, study), g in iv.groupby(["dataset", "study"], sort=True):
        if modes.get(dataset, 0) < 2 or "naive" not in set(g["method"]):
            continue
        naive = g[g["method"] == "naive"].iloc[0]
        compared = g[~g["method"].isin(["weak", "naive", "ceiling"])]
        better = compared[(compared["call"] == SIGNIFICANT) & (compared["diff"] > 0)]
        lines.append(f"{dataset}/{study} ({mode.get((dataset, study), '?')}): naive recovers "
                     f"{naive['pgr']:.0%} of the gap [{naive['pgr_lo']:.0%}, {naive['pgr_hi']:.0%}]; "
                     f"{len(better)} of {len(compared)} methods significantly better than naive; differences from "
                     f"naive {compared['diff'].min():+.1f} to {compared['diff'].max():+.1f} points")
    return lines


ALL_ROWS = "kept_1000"  # the sweep point that keeps every row of B, unweighted: the methods' control


def all_rows_outcomes(runs: list[Path]) -> dict[tuple[str, str], dict[str, list[np.ndarray]]]:
    """:func:`study_outcomes` of the studies whose every seed's threshold sweep has the all-rows point
    (:data:`ALL_ROWS`: every weak-labelled row of B, all K variations, weight 1), with that point
    added and the ceiling and the weak supervisor left out."""
    seeds: dict[tuple[str, str], list[tuple[int, np.ndarray | None]]] = {}
    for run in runs:
        m = load_metrics(run)
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
    table = bootstrap_studies(all_rows_outcomes(runs), reference=ALL_ROWS, n_boot=n_boot, max_boot=max_boot)
    if table.empty:
        return pd.DataFrame(columns=["dataset", "study", "method", "accuracy", "diff", "diff_lo", "diff_hi", "call"])
    return table


def all_rows_power(runs: list[Path], power: float = 0.8) -> pd.DataFrame:
    """What a "no better than the all-rows control" can rule out: per study with that control
    (:func:`all_rows_outcomes`), the smallest true difference from it, in points, that
    :func:`against_all_rows`'s test detects with probability ``power`` (every method it compares,
    naive included, in the Holm count and in the pooled variance), with the discordance, the seed
    spread of a method's difference from the control, the sizes and the seeds for
    :data:`~relalign.power.TARGET_MDE` points (inf: more than 100); the columns of
    :func:`relalign.summary.power_table`."""
    rows = [power_row(dataset, study, study_power(correct, reference=ALL_ROWS, exclude=(), power=power))
            for (dataset, study), correct in all_rows_outcomes(runs).items()]
    return pd.DataFrame(rows, columns=POWER_COLUMNS)


MIN_GAP, MAX_MDE, MAX_MINUTES = 10.0, TARGET_MDE, 60.0  # the design conditions a study is held to (docs/lora.md)


def seed_minutes(report: str | Path) -> dict[tuple[str, str], float]:
    """Minutes of one seed from an empty cache per (params file, :func:`~relalign.summary.variant`), from
    ``benchmarks/end_to_end.py``'s report (``results/benchmarks/end_to_end.json``); {} where there is no report."""
    path = Path(report)
    if not path.is_file():
        return {}
    return {(v.get("params", k), variant(v.get("overrides") or [])): float(v["minutes"])
            for k, v in json.loads(path.read_text())["runs"].items() if v.get("ok")}


def conditions(iv: pd.DataFrame, power: pd.DataFrame, runs: pd.DataFrame,
               minutes: dict[tuple[str, str], float]) -> pd.DataFrame:
    """Per study with intervals (``iv``: :func:`intervals`), whether its design can answer the question:
    room between the weak supervisor and the ceiling (``gap`` >= :data:`MIN_GAP` points, from the
    bootstrap), naive clearly below the ceiling (``shortfall``, ceiling - naive in points: its 95%
    interval above 0, and at least the detectable difference, else the methods have less to recover
    than the study can see), a small enough
    detectable difference (``mde`` <= :data:`MAX_MDE` points, ``power``: :func:`power_table`) and a
    cheap enough seed (``minutes`` <= :data:`MAX_MINUTES`: :func:`seed_minutes` of the study's params
    file and ``--set`` variant; a variant never timed takes its params file's time, ``timed_variant``
    False; ``runs``: :func:`runs_table`). ``holds`` is whether all four do."""
    cols = ["dataset", "study", "mode", "weak", "ceiling", "gap", "gap_lo", "gap_hi", "pgr", "pgr_lo", "pgr_hi", "shortfall",
            "shortfall_lo", "shortfall_hi", "mde",
            "n_seeds", "seeds_needed", "n_test", "params_file", "minutes", "timed_variant", "room", "below_ceiling",
            "detects", "affordable", "holds"]
    if iv.empty or "gap" not in iv.columns:
        return pd.DataFrame(columns=cols)
    by_study = power.set_index(["dataset", "study"]) if not power.empty else pd.DataFrame(columns=["mde", "seeds_needed"])
    first = runs.groupby(["dataset", "study"])[["mode", "params_file", "variant"]].first()
    rows = []
    for (dataset, study), g in iv.groupby(["dataset", "study"], sort=True):
        by = g.set_index("method")
        if not {"weak", "naive", "ceiling"} <= set(by.index):
            continue
        naive, ceiling, key = by.loc["naive"], by.loc["ceiling"], (dataset, study)
        params_file, timed = first["params_file"].get(key), (first["params_file"].get(key), first["variant"].get(key))
        row = {"dataset": dataset, "study": study, "mode": first["mode"].get(key, "?"),
               "weak": by.loc["weak", "accuracy"], "ceiling": by.loc["ceiling", "accuracy"],
               "gap": naive["gap"], "gap_lo": naive["gap_lo"], "gap_hi": naive["gap_hi"],
               "pgr": naive["pgr"], "pgr_lo": naive["pgr_lo"], "pgr_hi": naive["pgr_hi"],
               "shortfall": ceiling["diff"], "shortfall_lo": ceiling["diff_lo"], "shortfall_hi": ceiling["diff_hi"],
               "mde": float(by_study["mde"].get(key, np.nan)), "n_seeds": int(naive["n_seeds"]),
               "seeds_needed": float(by_study["seeds_needed"].get(key, np.nan)) if "seeds_needed" in by_study else np.nan,
               "n_test": int(naive["n_test"]),
               "params_file": params_file, "timed_variant": timed in minutes,
               "minutes": minutes.get(timed, minutes.get((params_file, ""), np.nan))}
        row["room"] = bool(row["gap"] >= MIN_GAP)
        row["below_ceiling"] = bool(row["shortfall_lo"] > 0 and row["shortfall"] >= row["mde"])
        row["detects"] = bool(row["mde"] <= MAX_MDE)
        row["affordable"] = bool(row["minutes"] <= MAX_MINUTES)
        row["holds"] = row["room"] and row["below_ceiling"] and row["detects"] and row["affordable"]
        rows.append(row)
    return pd.DataFrame(rows, columns=cols)


def conditions_markdown(table: pd.DataFrame) -> str:
    """:func:`conditions` as README's Markdown table: each condition's measurement, marked ✗ where it fails."""
    def mark(ok: bool) -> str:
        return "" if ok else " ✗"

    lines = [f"| study | mode | weak → ceiling | gap, points (≥ {MIN_GAP:g}) | ceiling − naive, points (> 0, ≥ detectable) | "
             f"detectable difference, points (≤ {MAX_MDE:g}) | minutes a seed, cold (≤ {MAX_MINUTES:g}) |",
             "|---|---|---|---:|---:|---:|---:|"]
    for _, r in table.iterrows():
        short = f"{r['shortfall']:.1f} [{r['shortfall_lo']:.1f}, {r['shortfall_hi']:.1f}], PGR {r['pgr']:.2f}"
        need = "" if r["detects"] or np.isnan(r["seeds_needed"]) else (
            f"; {MAX_MDE:g} at more than 100 seeds" if np.isinf(r["seeds_needed"])
            else f"; {MAX_MDE:g} at {r['seeds_needed']:.0f} seeds")
        minutes = "not measured" if np.isnan(r["minutes"]) else f"{r['minutes']:.0f}" + (
            "" if r["timed_variant"] else ", its params file without this study's `--set`")
        lines.append(f"| {r['dataset']}/{r['study']} | {r['mode']} | {r['weak']:.3f} → {r['ceiling']:.3f} | "
                     f"{r['gap']:.1f} [{r['gap_lo']:.1f}, {r['gap_hi']:.1f}]{mark(r['room'])} | "
                     f"{short}{mark(r['below_ceiling'])} | "
                     f"{r['mde']:.1f} ({r['n_seeds']} × {r['n_test']}){mark(r['detects'])}{need} | "
                     f"{minutes}{mark(r['affordable'])} |")
    return "\n".join(lines)

