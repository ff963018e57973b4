"""Across datasets: collect the ``metrics.json`` of every finished run under ``results/`` into
tables (no models are loaded), for notebook 07 and ``relalign batch``."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .evaluation import METHOD_ORDER
from .params import Params
from .power import study_power
from .rundir import RunDir
from .stats import ALPHA, CLOSE_SE, MAX_BOOT, N_BOOT, SIGNIFICANT, TOO_CLOSE, bootstrap_methods, parse_correct

__all__ = ["find_runs", "load_metrics", "run_table", "methods_long", "runs_table", "non_seed_overrides", "variant", "run_seconds", "effect_table",
           "study_outcomes", "intervals", "bootstrap_studies", "power_table", "POWER_COLUMNS", "power_row", "significance_lines", "markdown_table",
           "findings_markdown", "scratch_dir", "differences"]


def find_runs(results_root: str | Path) -> list[Path]:
    """Run directories under ``results_root`` (``<dataset>/<name>/``) that finished: they hold a
    metrics.json and no INCOMPLETE marker. Sorted by dataset, then run name."""
    root = Path(results_root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such results folder")
    return sorted(p.parent for p in root.glob("*/*/metrics.json") if RunDir(p.parent).finished())


def load_metrics(run: Path) -> dict:
    """A finished run's metrics.json."""
    return RunDir(run).read("metrics")


def run_table(run_dir: str | Path, markdown: bool = False) -> str:
    """One finished run's comparison -- each method's accuracy on C, PGR and training rows, then a
    line on the zero-shot answers, the weak labels and the filter -- as aligned text, or as
    Markdown (``relalign summary --markdown``)."""
    m = load_metrics(Path(run_dir))
    pgr = {k: "-" if r["pgr"] is None or math.isnan(r["pgr"]) else f"{r['pgr']:.2f}" for k, r in m["methods"].items()}
    z, rel = m.get("zero_shot_accuracy") or {}, m["reliability"]
    footer = (f"Zero-shot accuracy on C: weak {z.get('weak', math.nan):.3f}, strong {z.get('strong', math.nan):.3f}. "
              f"Weak labels of B (canonical prompt): accuracy {m['weak_label_accuracy']:.3f}; AUROC for telling wrong "
              f"labels from right ones: entropy {rel['entropy_auroc']:.3f}, reliability {rel['reliability_auroc']:.3f}; "
              f"the filter keeps {rel['kept_fraction']:.0%} of the rows, at label accuracy {rel['kept_accuracy']:.3f}.")
    if markdown:
        lines = ["| method | accuracy on C | PGR | training rows |", "|---|---:|---:|---:|"]
        lines += [f"| {k} | {r['accuracy']:.3f} | {pgr[k]} | {r['n_train']} |" for k, r in m["methods"].items()]
        return "\n".join(lines + ["", footer])
    lines = [f"{m['dataset']}: weak {m['weak_model']} -> strong {m['strong_model']}  (n = {m['n']})",
             f"{'method':<22}{'accuracy':>9}{'PGR':>8}{'n_train':>9}"]
    lines += [f"{k:<22}{r['accuracy']:>9.3f}{pgr[k]:>8}{r['n_train'] or '':>9}" for k, r in m["methods"].items()]
    return "\n".join(lines + [footer])


def study_of(metrics: dict) -> str:
    """The study a run belongs to: its params' name (the runs of one params file over seeds share it)."""
    return (metrics.get("params") or {}).get("name") or "?"


def methods_long(runs: list[Path]) -> pd.DataFrame:
    """One row per (run, method): dataset, study, run, seed, method, accuracy, pgr, n_train."""
    rows = []
    for run in runs:
        m = load_metrics(run)
        for name, r in m["methods"].items():
            pgr = r.get("pgr")
            rows.append({"dataset": m["dataset"], "study": study_of(m), "run": run.name, "seed": m.get("seed"),
                         "method": name, "accuracy": r["accuracy"], "pgr": math.nan if pgr is None else pgr,
                         "n_train": r.get("n_train")})
    return pd.DataFrame(rows, columns=["dataset", "study", "run", "seed", "method", "accuracy", "pgr", "n_train"])


def study_outcomes(runs: list[Path]) -> dict[tuple[str, str], dict[str, list[np.ndarray]]]:
    """Per (dataset, study), sorted: method -> whether each test question was answered right, one
    array per seed (seeds in order). A study's runs are its seeds; only the methods that every
    seed has are kept, and runs written before ``test_correct`` existed are left out."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for run in runs:
        m = load_metrics(run)
        if m.get("test_correct"):
            groups.setdefault((m["dataset"], study_of(m)), []).append(m)
    out = {}
    for key, ms in sorted(groups.items()):
        ms = sorted(ms, key=lambda m: m.get("seed", 0))
        common = [k for k in ms[0]["test_correct"] if all(k in m["test_correct"] for m in ms)]
        out[key] = {k: [parse_correct(m["test_correct"][k]) for m in ms] for k in common}
    return out


def power_table(runs: list[Path], power: float = 0.8) -> pd.DataFrame:
    """Per (dataset, study): the smallest true difference from naive, in points, that the study's
    test detects with probability ``power`` (``mde``, :func:`relalign.power.study_power`, from the
    variance components measured on its seeds and pooled over its methods), with the discordance
    with naive, the seed-to-seed spread of the difference (``seed_sd``, points), the sizes, and how
    many seeds of this C would detect :data:`~relalign.power.TARGET_MDE` points (``seeds_needed``; inf:
    more than 100)."""
    rows = [power_row(dataset, study, study_power(correct, power=power))
            for (dataset, study), correct in study_outcomes(runs).items()
            if "naive" in correct and set(correct) - {"weak", "naive", "ceiling"}]
    return pd.DataFrame(rows, columns=POWER_COLUMNS)


POWER_COLUMNS = ["dataset", "study", "mde", "discordance", "seed_sd", "n_test", "n_seeds", "n_compared", "power",
                 "seeds_needed"]


def power_row(dataset: str, study: str, p: dict) -> dict:
    """One row of a power table (:data:`POWER_COLUMNS`) from :func:`relalign.power.study_power`'s
    result ``p``; ``seeds_needed`` inf where more than 100 seeds would be needed."""
    return {"dataset": dataset, "study": study, **{c: p[c] for c in POWER_COLUMNS[2:-1]},
            "seeds_needed": math.inf if p["seeds_needed"] is None else p["seeds_needed"]}


def intervals(runs: list[Path], n_boot: int = N_BOOT, max_boot: int = MAX_BOOT) -> pd.DataFrame:
    """Per (dataset, study, method): accuracy and PGR with 95% bootstrap intervals over test
    examples and seeds, the difference from naive, its Holm-adjusted p-value with its Monte Carlo
    standard error, and the call: significant, not significant or too close to call
    (:func:`relalign.stats.bootstrap_methods`, ``n_boot`` draws, more up to ``max_boot`` for a
    close call). A study's runs are its seeds; only the methods that every seed has are compared,
    and runs written before ``test_correct`` existed are left out."""
    table = bootstrap_studies(study_outcomes(runs), n_boot=n_boot, max_boot=max_boot)
    if table.empty:
        return pd.DataFrame(columns=["dataset", "study", "method", "accuracy", "acc_lo", "acc_hi"])
    rank = {m: i for i, m in enumerate(METHOD_ORDER)}
    return table.sort_values(["dataset", "study", "method"], key=lambda c: c.map(rank) if c.name == "method" else c,
                             kind="stable").reset_index(drop=True)


def bootstrap_studies(outcomes: dict[tuple[str, str], dict[str, list[np.ndarray]]], reference: str = "naive",
                      n_boot: int = N_BOOT, max_boot: int = MAX_BOOT) -> pd.DataFrame:
    """:func:`relalign.stats.bootstrap_methods` of each (dataset, study) of ``outcomes``
    (:func:`study_outcomes`) against ``reference``, stacked into one frame with ``dataset``, ``study``
    and ``method`` columns first; empty where there is no study."""
    frames = []
    for (dataset, study), correct in outcomes.items():
        out = bootstrap_methods(correct, reference=reference, n_boot=n_boot, max_boot=max_boot)
        out.insert(0, "method", out.index)
        out.insert(0, "study", study)
        out.insert(0, "dataset", dataset)
        frames.append(out.reset_index(drop=True))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _difference(r: pd.Series) -> str:
    """A method's difference from naive with its interval and Holm-adjusted p ± its Monte Carlo
    error (p < 0.001 where it rounds to 0)."""
    p = "p < 0.001" if r["p_holm"] < 0.0005 else f"p = {r['p_holm']:.3f} ± {r['p_holm_mc_se']:.3f}"
    return f"{r['method']} {r['diff']:+.1f} points [{r['diff_lo']:+.1f}, {r['diff_hi']:+.1f}], {p}"


def significance_lines(iv: pd.DataFrame, power: pd.DataFrame | None = None) -> list[str]:
    """One sentence per study: which methods differ significantly from naive (Holm-adjusted
    p < 0.05, :data:`relalign.stats.ALPHA`), and which calls are too close to make (p within
    :data:`relalign.stats.CLOSE_SE` Monte Carlo standard errors of 0.05 even after the most
    draws), said as such rather than as a result either way; with ``power`` (:func:`power_table`),
    also the smallest difference the study detects with 80% power, which says what a "no
    difference" can rule out."""
    mde = {} if power is None else {(r["dataset"], r["study"]): r for _, r in power.iterrows()}
    lines = []
    for (dataset, study), g in iv.groupby(["dataset", "study"], sort=False):
        g = g[g["method"].isin(set(g["method"]) - {"weak", "naive", "ceiling"})]
        if "call" not in g.columns or g.empty:
            continue
        seeds = int(g["n_seeds"].iloc[0])
        head = (f"**{dataset}/{study}** ({seeds} seed{'s' if seeds != 1 else ''}, {int(g['n_test'].iloc[0])} test "
                f"questions each, {int(g['n_boot'].max()):,} bootstrap draws): ")
        sig, close = g[g["call"] == SIGNIFICANT], g[g["call"] == TOO_CLOSE]
        clauses = []
        if not sig.empty:
            clauses.append("significantly different from naive: "
                           + "; ".join(_difference(r) for _, r in sig.iterrows()))
        if not close.empty:
            clauses.append(f"too close to call (Holm p within {CLOSE_SE:g} Monte Carlo standard errors of {ALPHA:g}): "
                           + "; ".join(_difference(r) for _, r in close.iterrows()))
        if not clauses:
            best = g.loc[g["diff"].idxmax()]
            clauses.append(f"no method differs significantly from naive (largest: {best['method']} "
                           f"{best['diff']:+.1f} points, 95% CI [{best['diff_lo']:+.1f}, {best['diff_hi']:+.1f}])")
        if (dataset, study) in mde:
            r = mde[(dataset, study)]
            clauses.append(f"it detects a difference of {r['mde']:.1f} points with {r['power']:.0%} power")
        lines.append(head + "; ".join(clauses) + ".")
    return lines


def runs_table(runs: list[Path]) -> pd.DataFrame:
    """One row per run: models, sizes, the weak-strong gap and how well the reliability scores
    separate wrong weak labels from right ones."""
    rows = []
    for run in runs:
        m, status = load_metrics(run), RunDir(run).status()
        acc = {k: v["accuracy"] for k, v in m["methods"].items()}
        rel = m["reliability"]
        scores = rel.get("scores") or {}
        rows.append({
            "dataset": m["dataset"], "study": study_of(m), "run": run.name, "seed": m.get("seed"),
            "weak_model": m["weak_model"], "strong_model": m["strong_model"],
            "n_B": m["n"]["B"], "n_C": m["n"]["C"],
            "weak": acc.get("weak"), "naive": acc.get("naive"), "ceiling": acc.get("ceiling"),
            "gap": acc["ceiling"] - acc["weak"] if "ceiling" in acc and "weak" in acc else math.nan,
            "weak_label_accuracy": m["weak_label_accuracy"],
            "entropy_auroc": rel["entropy_auroc"], "reliability_auroc": rel["reliability_auroc"],
            "mean_prob_auroc": (scores.get("mean_prob") or {}).get("auroc", math.nan),
            "strong_zero_shot": (m.get("zero_shot_accuracy") or {}).get("strong", math.nan),
            "pgr_naive": (m["methods"].get("naive") or {}).get("pgr", math.nan),
            "mode": training_mode(m.get("params") or {}),
            "minutes": run_seconds(run, m) / 60,
            "params_file": status.get("params_file"), "variant": variant(status.get("overrides") or []),
        })
    return pd.DataFrame(rows)


def non_seed_overrides(overrides: Sequence[str]) -> list[str]:
    """A run's ``--set`` overrides other than its seed, in their order."""
    return [o for o in overrides if not o.replace(" ", "").startswith("seed=")]


def variant(overrides: Sequence[str]) -> str:
    """:func:`non_seed_overrides`, sorted and joined ("" for the params file as it is): runs of one
    params file and variant differ in their seed only."""
    return "; ".join(sorted(non_seed_overrides(overrides)))


def training_mode(params: dict) -> str:
    """How a run trained the strong model, short: ``head``, ``lora`` or ``lora top N`` (adapters on
    the top N decoder layers only)."""
    training = params.get("training") or {}
    mode = training.get("mode", "head")
    layers = (training.get("lora") or {}).get("layers")
    return f"{mode} top {layers}" if mode == "lora" and layers else mode


def model_size(name: str) -> str:
    """A model's size from its name (``smollm2-135m-instruct`` -> ``135M``), or the name."""
    found = re.findall(r"(?<![\w.])(\d+(?:\.\d+)?[mb])(?![a-z])", name.lower().replace("_", "-"))
    return found[-1].upper() if found else name


def run_seconds(run: Path, metrics: dict) -> float:
    """Wall-clock seconds of a run: the whole ``relalign run`` from its run_status.json when it
    completed, else the time up to writing metrics.json (a notebook run by hand: NaN). A resumed run
    timed only its last attempt: NaN (a study's mean minutes leave it out)."""
    st = RunDir(run).status()
    if st.get("resumed"):
        return math.nan
    if st.get("status") == "complete" and st.get("seconds") is not None:
        return float(st["seconds"])
    seconds = (metrics.get("provenance") or {}).get("seconds")
    return math.nan if seconds is None else float(seconds)


def effect_table(long: pd.DataFrame, reference: str = "naive") -> pd.DataFrame:
    """Accuracy of each method minus ``reference``'s, per study (mean over its seeds; points of
    accuracy on C): positive where the reliability-aware method beat naive fine-tuning."""
    wide = long.pivot_table(index=["dataset", "study"], columns="method", values="accuracy", aggfunc="mean")
    methods = [c for c in wide.columns if c not in ("weak", reference, "ceiling")]
    return wide[methods].sub(wide[reference], axis=0).mul(100).round(1)


def scratch_dir() -> Path:
    """Where notebook 07 writes when opened by hand (never results/): under the default cache."""
    return Params().resolved_cache_dir() / "notebooks" / "summary"


CLOSE_MARK = "†"


def _accuracy_cell(r: pd.Series) -> str:
    """A method's accuracy ± the half-width of its interval: bold where significantly better
    than naive, marked :data:`CLOSE_MARK` where the call is too close to make."""
    cell = f"{r['accuracy']:.3f} ±{(r['acc_hi'] - r['acc_lo']) / 2:.3f}"
    if r.get("call") == TOO_CLOSE:
        return f"{cell} {CLOSE_MARK}"
    if bool(r.get("significant", False)) and r["diff"] > 0:
        return f"**{cell}**"
    return cell


def markdown_table(runs: list[Path], iv: pd.DataFrame | None = None) -> str:
    """The across-datasets table of README, one row per study: mean accuracy on C over its seeds of
    every method with the half-width of its 95% interval (bold: significantly better than naive,
    Holm-adjusted; marked † with a footnote where the call is too close to make), how the strong
    model was trained and the two models' sizes, naive's PGR (mean over seeds), the strong
    model's zero-shot accuracy, the AUROC of the entropy score and the mean wall time of a run.
    Studies whose runs predate the intervals show plain accuracies. ``iv``: :func:`intervals` of
    ``runs``, where the caller has them."""
    long = methods_long(runs)
    table = runs_table(runs).groupby(["dataset", "study"]).agg(
        n_C=("n_C", "first"), seeds=("run", "size"), strong_zero_shot=("strong_zero_shot", "mean"),
        entropy_auroc=("entropy_auroc", "mean"), minutes=("minutes", "mean"), mode=("mode", "first"),
        weak_model=("weak_model", "first"), strong_model=("strong_model", "first"), pgr_naive=("pgr_naive", "mean"))
    acc = long.pivot_table(index=["dataset", "study"], columns="method", values="accuracy", aggfunc="mean")
    if iv is None and runs:
        iv = intervals(runs)
    iv = iv.set_index(["dataset", "study", "method"]) if iv is not None else None
    methods = [m for m in METHOD_ORDER if m in acc.columns]
    head = ["study", "mode", "weak → strong", "seeds", "n C", *methods, "PGR naive", "strong 0-shot", "AUROC H",
            "min/run"]
    lines = ["| " + " | ".join(head) + " |", "|---|---|---|" + "---:|" * (len(head) - 3)]
    for (dataset, study), row in acc.iterrows():
        t = table.loc[(dataset, study)]
        cells = []
        for m in methods:
            key = (dataset, study, m)
            if math.isnan(row[m]):
                cells.append("")
            elif iv is not None and key in iv.index:
                cells.append(_accuracy_cell(iv.loc[key]))
            else:
                cells.append(f"{row[m]:.3f}")
        models = f"{model_size(t['weak_model'])} → {model_size(t['strong_model'])}"
        lines.append(f"| {dataset}/{study} | {t['mode']} | {models} | {int(t['seeds'])} | {int(t['n_C'])} | "
                     + " | ".join(cells) + f" | {t['pgr_naive']:.2f} | {t['strong_zero_shot']:.3f} | "
                     f"{t['entropy_auroc']:.2f} | {t['minutes']:.0f} |")
    if any(CLOSE_MARK in line for line in lines[2:]):
        lines += ["", f"{CLOSE_MARK} too close to call: the Holm-adjusted p-value of the difference from naive lies "
                      f"within {CLOSE_SE:g} Monte Carlo standard errors of {ALPHA:g}, so it is called neither "
                      "significant nor not."]
    return "\n".join(lines)


def findings_markdown(runs: list[Path], iv: pd.DataFrame | None = None, power: pd.DataFrame | None = None) -> str:
    """README's "significance" list: one bullet per study from :func:`significance_lines`, with its
    power, made from the runs so that the sentences cannot drift from the numbers."""
    iv = intervals(runs) if iv is None else iv
    power = power_table(runs) if power is None else power
    return "\n".join(f"- {line}" for line in significance_lines(iv, power))


def differences(a: object, b: object, ignore: tuple[str, ...] = ("provenance", "params"), at: str = "") -> list[str]:
    """Where two metrics.json documents differ, as ``key.path: a != b`` lines; the top-level keys
    in ``ignore`` (what names the code and echoes the params, not a result) are skipped. Numbers
    must match exactly: a re-derived result is the same result, not a close one."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            if not at and k in ignore:
                continue
            where = f"{at}.{k}" if at else str(k)
            if k not in a or k not in b:
                out.append(f"{where}: only in {'the first' if k in a else 'the second'}")
            else:
                out += differences(a[k], b[k], ignore, where)
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, ignore, f"{at}[{i}]")]
    same = a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))
    return [] if same else [f"{at}: {str(a)[:60]} != {str(b)[:60]}"]
