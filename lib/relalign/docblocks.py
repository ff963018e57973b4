"""The Markdown blocks of README.md, docs/results.md and docs/lora.md that are made from the committed
runs, so that a number in them cannot drift from the results: each lives between
``<!-- name:start -->`` and ``<!-- name:end -->``; ``relalign report --markdown`` prints README's,
``relalign report --write`` fills all three files, and tests/test_readme.py checks that they hold what
the runs give."""

from __future__ import annotations

import json
import math
import shlex
from pathlib import Path

import pandas as pd

from .compare import ALL_ROWS, against_all_rows, all_rows_power, conditions, conditions_markdown, seed_minutes
from .evaluation import METHOD_ORDER
from .positions import position_correlation, position_table
from .rundir import RunDir
from .summary import (findings_markdown, intervals, load_metrics, markdown_table, methods_long, non_seed_overrides,
                      power_table, runs_table, study_of, training_mode)

__all__ = ["END_TO_END", "filled", "block", "readme_blocks", "study_markdown", "all_rows_markdown", "runs_markdown",
           "power_markdown", "positions_markdown", "sweep_markdown", "results_blocks", "RESULTS_STUDIES", "variants_markdown",
           "NORMALISATION_STUDIES", "STRONG_LR_STUDIES", "common_seeds", "docs_blocks"]

END_TO_END = Path("results") / "benchmarks" / "end_to_end.json"  # benchmarks/end_to_end.py's report
# docs/lora.md's comparison of the loss normalisations: study -> how it normalises
NORMALISATION_STUDIES = {"lora": "answer tokens", "lora-allpos": "all positions, every training",
                         "lora-refnorm": "all positions, re-weighting only (the reference)"}
# docs/lora.md's comparisons of the strong model's learning rates: dataset -> {study -> its rate}
STRONG_LR_STUDIES = {"sciq": {"lora": "1e-3 (the weak supervisor's)", "lora-slr8e-4": "8e-4", "lora-slr": "6e-4",
                              "lora-slr3e-4": "3e-4"},
                     "mmlu": {"lora": "1e-3 (the weak supervisor's)", "lora-slr6e-4": "6e-4"}}
# docs/results.md's per-study tables
RESULTS_STUDIES = [("sciq", "default"), ("mmlu", "offline"), ("ethics", "offline"), ("hellaswag", "offline"),
                   ("boolq", "offline"), ("gsm8k", "offline"), ("sciq", "lora"), ("sciq", "lora-slr"), ("mmlu", "lora"),
                   ("ethics", "lora"), ("ethics", "lora-a2000")]


def filled(text: str, blocks: dict[str, str]) -> str:
    """``text`` with each ``<!-- name:start -->`` .. ``<!-- name:end -->`` block's body replaced."""
    for name, body in blocks.items():
        start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
        if start not in text or end not in text:
            raise ValueError(f"no {start} ... {end} block")
        text = text[: text.index(start) + len(start)] + "\n" + body + "\n" + text[text.index(end):]
    return text


def block(text: str, name: str) -> str:
    """The body of ``text``'s block ``name`` (ValueError where there is none)."""
    start, end = f"<!-- {name}:start -->\n", f"\n<!-- {name}:end -->"
    if start not in text or end not in text:
        raise ValueError(f"no <!-- {name}:start --> ... <!-- {name}:end --> block")
    return text[text.index(start) + len(start): text.index(end)]


def readme_blocks(runs: list[Path], repo: Path, iv: pd.DataFrame | None = None,
                  power: pd.DataFrame | None = None) -> dict[str, str]:
    """README's blocks: the across-datasets table, the significance calls and the design conditions
    (with the seed times of ``repo``'s :data:`END_TO_END`); ``iv`` and ``power`` are
    :func:`relalign.summary.intervals` and :func:`relalign.summary.power_table` of ``runs`` where the
    caller has them."""
    iv = intervals(runs) if iv is None else iv
    power = power_table(runs) if power is None else power
    design = conditions(iv, power, runs_table(runs), seed_minutes(repo / END_TO_END))
    return {"summary-table": markdown_table(runs, iv), "findings": findings_markdown(runs, iv, power),
            "conditions": conditions_markdown(design)}


def _p(r: pd.Series) -> str:
    """Holm-adjusted p with its Monte Carlo standard error."""
    return "< 0.001" if r["p_holm"] < 0.0005 else f"{r['p_holm']:.3f} ± {r['p_holm_mc_se']:.3f}"


def study_markdown(iv: pd.DataFrame, long: pd.DataFrame, dataset: str, study: str) -> str:
    """One study's methods (``iv``: :func:`relalign.summary.intervals`; ``long``:
    :func:`relalign.summary.methods_long`): accuracy on C per seed and its mean with the 95% interval,
    PGR, the difference from naive with its interval, Holm-adjusted p and call, and the training rows."""
    g = iv[(iv["dataset"] == dataset) & (iv["study"] == study)].set_index("method")
    runs = long[(long["dataset"] == dataset) & (long["study"] == study)].sort_values("seed", kind="stable")
    lines = ["| method | accuracy on C, per seed | mean [95% CI] | PGR | − naive, points [95% CI] | Holm p (± MC SE) | call | "
             "training rows (seed 0) |", "|---|---:|---:|---:|---:|---:|---|---:|"]
    for method in sorted(g.index, key=lambda m: METHOD_ORDER.index(m) if m in METHOD_ORDER else len(METHOD_ORDER)):
        r, per = g.loc[method], runs[runs["method"] == method]
        diff = "" if method in ("weak", "naive") else f"{r['diff']:+.1f} [{r['diff_lo']:+.1f}, {r['diff_hi']:+.1f}]"
        tested = method not in ("weak", "naive", "ceiling")
        n_train = per["n_train"].iloc[0] if len(per) else None
        lines.append(f"| {method} | {' / '.join(f'{a:.3f}' for a in per['accuracy'])} | {r['accuracy']:.3f} "
                     f"[{r['acc_lo']:.3f}, {r['acc_hi']:.3f}] | {r['pgr']:.2f} | {diff} | {_p(r) if tested else ''} | "
                     f"{r['call'] if tested else ''} | "
                     f"{'' if n_train is None or (isinstance(n_train, float) and math.isnan(n_train)) else int(n_train)} |")
    return "\n".join(lines)


def all_rows_markdown(control: pd.DataFrame, dataset: str, study: str) -> str:
    """One study's methods against training on every row of B unweighted
    (``control``: :func:`relalign.compare.against_all_rows`)."""
    g = control[(control["dataset"] == dataset) & (control["study"] == study)].set_index("method")
    lines = [f"| against every row, unweighted ({g.loc[ALL_ROWS, 'accuracy']:.3f}) | − all rows, points [95% CI] | "
             "Holm p (± MC SE) | call |", "|---|---:|---:|---|"]
    for method, r in g.drop(index=ALL_ROWS).iterrows():
        lines.append(f"| {method} ({r['accuracy']:.3f}) | {r['diff']:+.1f} [{r['diff_lo']:+.1f}, {r['diff_hi']:+.1f}] | "
                     f"{_p(r)} | {r['call']} |")
    return "\n".join(lines)


def runs_markdown(runs: list[Path]) -> str:
    """docs/results.md's table of the committed studies, from each run's metrics.json and run_status.json:
    params file and ``--set`` overrides other than the seed, split sizes, K, seeds, the days the runs
    finished and the commits their provenance names."""
    studies: dict[tuple, dict] = {}
    for run in runs:
        m, status = load_metrics(run), RunDir(run).status()
        sets = non_seed_overrides(status.get("overrides") or [])
        key = (training_mode(m.get("params") or {}) != "head", m["dataset"], study_of(m))
        k = ((m.get("params") or {}).get("reliability") or {}).get("k", "?")
        s = studies.setdefault(key, {"params": status.get("params_file"), "sets": sets, "n": m["n"], "k": k,
                                     "seeds": [], "days": [], "commits": []})
        prov = m.get("provenance") or {}
        s["seeds"].append(m.get("seed"))
        for field, value in (("days", (prov.get("finished") or "?")[:10]), ("commits", (prov.get("git_commit") or "?")[:7])):
            if value not in s[field]:
                s[field].append(value)
    lines = ["| study | params | A / B / C | K | seeds | made on | commit |", "|---|---|---|---:|---|---|---|"]
    for (_, dataset, study), s in sorted(studies.items()):
        where = "?" if not s["params"] else f"`{Path(s['params']).name}`"
        params = (f"[{where}](../{s['params']})" if s["params"] and not s["sets"]
                  else ", ".join([where] + [f"`--set {shlex.quote(o)}`" for o in s["sets"]]))
        lines.append(f"| {dataset}/{study} | {params} | {s['n']['A']} / {s['n']['B']} / {s['n']['C']} | {s['k']} | "
                     f"{', '.join(str(x) for x in sorted(s['seeds']))} | {', '.join(s['days'])} | {', '.join(s['commits'])} |")
    return "\n".join(lines)


def power_markdown(power: pd.DataFrame, reference: str = "naive") -> str:
    """Each study's minimum detectable difference from ``reference`` with what it comes from (``power``:
    :func:`relalign.summary.power_table` against naive, :func:`relalign.compare.all_rows_power` against
    the all-rows control): seeds and test questions, the discordance with ``reference``, the
    seed-to-seed spread of a method's difference, and the seeds its C would need for 4 points."""
    lines = [f"| study | seeds × test questions | discordance with {reference} | seed spread, points | "
             "detectable difference, points | seeds for 4 points |", "|---|---:|---:|---:|---:|---:|"]
    for _, r in power.sort_values(["dataset", "study"]).iterrows():
        need = "more than 100" if math.isinf(r["seeds_needed"]) else f"{r['seeds_needed']:.0f}"
        lines.append(f"| {r['dataset']}/{r['study']} | {r['n_seeds']} × {r['n_test']:.0f} | {r['discordance']:.2f} | "
                     f"{r['seed_sd']:.1f} | {r['mde']:.1f} | {need} |")
    return "\n".join(lines)


def positions_markdown(leaning: pd.DataFrame) -> str:
    """Per study with enough seeds, where the weak labels' favourite position is and who answers C
    there (``leaning``: :func:`relalign.positions.position_correlation` of naive)."""
    lines = ["| study (seeds) | weak labels of B at their favourite (canonical view / K answers as trained) | gold of B there | "
             "naive on C there (largest seed's) | other trained models | ceiling | "
             "Spearman ρ, naive's accuracy vs its share (p) |", "|---|---:|---:|---:|---:|---:|---:|"]
    for _, r in leaning.iterrows():
        lines.append(f"| {r['dataset']}/{r['study']} ({r['n_seeds']}) | {r['weak_labels_share']:.2f} / "
                     f"{r['k_answers_share']:.2f} | {r['gold_share']:.2f} | {r['naive_share']:.2f} "
                     f"({r['naive_share_max']:.2f}) | {r['others_share']:.2f} | {r['ceiling_share']:.2f} | "
                     f"{r['rho']:+.2f} ({r['p']:.3f}) |")
    return "\n".join(lines)


def sweep_markdown(runs: list[Path], dataset: str, study: str) -> str | None:
    """One study's threshold sweep, mean over its seeds: per kept fraction of B's rows (most reliable
    first), the strong model's accuracy on C and the weak labels' accuracy on the kept rows. Only the
    fractions every seed ran; None where a seed has no sweep.json."""
    points = []
    for run in runs:
        m = load_metrics(run)
        if (m["dataset"], study_of(m)) != (dataset, study):
            continue
        path = RunDir(run).path("sweep")
        if not path.is_file():
            return None
        points += [{"run": run.name, "fraction": p["fraction"], "accuracy": p["accuracy"],
                    "label_accuracy": p.get("label_accuracy", math.nan)}
                   for p in json.loads(path.read_text())["points"] if not p.get("paper")]
    if not points:
        return None
    frame = pd.DataFrame(points)
    every = frame.groupby("fraction")["run"].nunique() == frame["run"].nunique()
    mean = frame[frame["fraction"].isin(every[every].index)].groupby("fraction")[["accuracy", "label_accuracy"]].mean()
    return "\n".join([
        "| kept fraction | " + " | ".join(f"{f:.0%}" for f in mean.index) + " |",
        "|---|" + "---:|" * len(mean),
        "| strong accuracy on C | " + " | ".join(f"{a:.3f}" for a in mean["accuracy"]) + " |",
        "| label accuracy of the kept rows | " + " | ".join(f"{a:.3f}" for a in mean["label_accuracy"]) + " |"])


def results_blocks(runs: list[Path], studies: list[tuple[str, str]] = RESULTS_STUDIES, iv: pd.DataFrame | None = None,
                   control: pd.DataFrame | None = None, power: pd.DataFrame | None = None) -> dict[str, str]:
    """docs/results.md's blocks: ``runs`` (:func:`runs_markdown`), ``power`` and ``power-all-rows``
    (:func:`power_markdown` against naive and against the all-rows control),
    ``positions`` (:func:`positions_markdown`) and,
    per study of ``studies`` that has runs, ``study:<dataset>/<study>`` (:func:`study_markdown`),
    ``sweep:<dataset>/<study>`` (:func:`sweep_markdown`) and, where its sweep has the all-rows point,
    ``all-rows:<dataset>/<study>`` (:func:`all_rows_markdown`)."""
    iv = intervals(runs) if iv is None else iv
    control = against_all_rows(runs) if control is None else control
    long = methods_long(runs)
    out = {"runs": runs_markdown(runs), "power": power_markdown(power_table(runs) if power is None else power),
           "power-all-rows": power_markdown(all_rows_power(runs), "the all-rows control"),
           "positions": positions_markdown(position_correlation(position_table(runs)))}
    for dataset, study in studies:
        if ((iv["dataset"] == dataset) & (iv["study"] == study)).any():
            out[f"study:{dataset}/{study}"] = study_markdown(iv, long, dataset, study)
        sweep = sweep_markdown(runs, dataset, study)
        if sweep is not None:
            out[f"sweep:{dataset}/{study}"] = sweep
        if ((control["dataset"] == dataset) & (control["study"] == study)).any():
            out[f"all-rows:{dataset}/{study}"] = all_rows_markdown(control, dataset, study)
    return out


def variants_markdown(iv: pd.DataFrame, control: pd.DataFrame, power: pd.DataFrame, dataset: str = "sciq",
                      studies: dict[str, str] = NORMALISATION_STUDIES) -> str:
    """The studies of ``dataset`` that differ in one setting (``studies``: study -> its value), side by
    side: naive's PGR and accuracy, the ceiling's lead over naive, re-weighting's difference from naive
    and from the all-rows control (with intervals and calls), the seed spread of a method's difference
    and the detectable difference (``iv``: :func:`relalign.summary.intervals`; ``control``:
    :func:`relalign.compare.against_all_rows`; ``power``: :func:`relalign.summary.power_table`)."""
    present = [s for s in studies if ((iv["dataset"] == dataset) & (iv["study"] == s)).any()]

    def cell(frame: pd.DataFrame, study: str, method: str, what: str) -> str:
        r = frame[(frame["dataset"] == dataset) & (frame["study"] == study) & (frame["method"] == method)]
        if r.empty:
            return ""
        r = r.iloc[0]
        if what == "pgr":
            return f"{r['pgr']:.2f} [{r['pgr_lo']:.2f}, {r['pgr_hi']:.2f}] ({r['accuracy']:.3f})"
        diff = f"{r['diff']:+.1f} [{r['diff_lo']:+.1f}, {r['diff_hi']:+.1f}]"
        return diff if what == "lead" else f"{diff}, {r['call']}"

    by_study = power.set_index(["dataset", "study"]) if not power.empty else pd.DataFrame(columns=["mde", "seed_sd"])

    def power_cell(study: str, column: str) -> str:
        return f"{by_study[column].get((dataset, study), float('nan')):.1f}"

    rows = [("naive's PGR (accuracy)", lambda s: cell(iv, s, "naive", "pgr")),
            ("ceiling − naive, points", lambda s: cell(iv, s, "ceiling", "lead")),
            ("re-weighting − naive, points", lambda s: cell(iv, s, "reweighting", "diff")),
            ("reweighting_sampled − naive", lambda s: cell(iv, s, "reweighting_sampled", "diff")),
            ("re-weighting − all rows unweighted", lambda s: cell(control, s, "reweighting", "diff")),
            ("seed spread of a method − naive, points", lambda s: power_cell(s, "seed_sd")),
            ("detectable difference, points", lambda s: power_cell(s, "mde"))]
    rows = [(name, get) for name, get in rows if any(get(s) for s in present)]
    lines = ["| | " + " | ".join(f"{studies[s]} (`{dataset}/{s}`)" for s in present) + " |",
             "|---|" + "---:|" * len(present)]
    lines += [f"| {name} | " + " | ".join(get(s) for s in present) + " |" for name, get in rows]
    return "\n".join(lines)


def _side_by_side(runs: list[Path], dataset: str, studies: dict[str, str]) -> str:
    """:func:`variants_markdown` of ``studies`` on the seeds they all ran (:func:`common_seeds`)."""
    paired = common_seeds(runs, dataset, list(studies))
    return variants_markdown(intervals(paired), against_all_rows(paired), power_table(paired), dataset, studies)


def docs_blocks(runs: list[Path], iv: pd.DataFrame | None = None,
                power: pd.DataFrame | None = None) -> dict[str, dict[str, str]]:
    """The generated blocks of docs/ made from the runs, by file: docs/results.md's per-study tables
    (:func:`results_blocks`) and docs/lora.md's comparisons of SciQ's loss normalisations and of each
    dataset's strong learning rates, each on the seeds its studies share (:func:`variants_markdown`);
    ``iv`` and ``power`` as for :func:`readme_blocks`."""
    iv = intervals(runs) if iv is None else iv
    power = power_table(runs) if power is None else power
    return {"docs/results.md": results_blocks(runs, iv=iv, control=against_all_rows(runs), power=power),
            "docs/lora.md": {"normalisation": _side_by_side(runs, "sciq", NORMALISATION_STUDIES),
                             **{f"strong-lr:{d}": _side_by_side(runs, d, studies)
                                for d, studies in STRONG_LR_STUDIES.items()}}}


def common_seeds(runs: list[Path], dataset: str, studies: list[str]) -> list[Path]:
    """The runs of ``dataset``'s ``studies`` whose seed every one of those studies ran (studies that
    differ in one setting compared on the same seeds, not on however many each has)."""
    seeds: dict[str, set] = {study: set() for study in studies}
    mine = []
    for run in runs:
        m = load_metrics(run)
        if m["dataset"] == dataset and study_of(m) in seeds:
            seeds[study_of(m)].add(m.get("seed"))
            mine.append((run, m.get("seed")))
    shared = set.intersection(*[s for s in seeds.values() if s]) if any(seeds.values()) else set()
    return [run for run, seed in mine if seed in shared]
