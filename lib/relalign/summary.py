"""Across datasets: collect the ``metrics.json`` of every finished run under ``results/`` into
tables (no models are loaded), for notebook 07 and ``relalign batch``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from .evaluation import METHOD_ORDER
from .params import Params
from .runner import INCOMPLETE

__all__ = ["find_runs", "methods_long", "runs_table", "effect_table", "markdown_table", "scratch_dir"]


def find_runs(results_root: str | Path) -> list[Path]:
    """Run directories under ``results_root`` (``<dataset>/<name>/``) that finished: they hold a
    metrics.json and no INCOMPLETE marker. Sorted by dataset, then run name."""
    root = Path(results_root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such results folder")
    return sorted(p.parent for p in root.glob("*/*/metrics.json") if not (p.parent / INCOMPLETE).exists())


def _load(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def methods_long(runs: list[Path]) -> pd.DataFrame:
    """One row per (run, method): dataset, run, method, accuracy, pgr, n_train."""
    rows = []
    for run in runs:
        m = _load(run)
        for name, r in m["methods"].items():
            pgr = r.get("pgr")
            rows.append({"dataset": m["dataset"], "run": run.name, "method": name, "accuracy": r["accuracy"],
                         "pgr": math.nan if pgr is None else pgr, "n_train": r.get("n_train")})
    return pd.DataFrame(rows, columns=["dataset", "run", "method", "accuracy", "pgr", "n_train"])


def runs_table(runs: list[Path]) -> pd.DataFrame:
    """One row per run: models, sizes, the weak-strong gap and how well the reliability scores
    separate wrong weak labels from right ones."""
    rows = []
    for run in runs:
        m = _load(run)
        acc = {k: v["accuracy"] for k, v in m["methods"].items()}
        rel = m["reliability"]
        rows.append({
            "dataset": m["dataset"], "run": run.name, "weak_model": m["weak_model"], "strong_model": m["strong_model"],
            "n_B": m["n"]["B"], "n_C": m["n"]["C"],
            "weak": acc.get("weak"), "naive": acc.get("naive"), "ceiling": acc.get("ceiling"),
            "gap": acc["ceiling"] - acc["weak"] if "ceiling" in acc and "weak" in acc else math.nan,
            "weak_label_accuracy": m["weak_label_accuracy"],
            "entropy_auroc": rel["entropy_auroc"], "reliability_auroc": rel["reliability_auroc"],
            "strong_zero_shot": (m.get("zero_shot_accuracy") or {}).get("strong", math.nan),
            "minutes": (m.get("provenance") or {}).get("seconds", math.nan) / 60,
        })
    return pd.DataFrame(rows)


def effect_table(long: pd.DataFrame, reference: str = "naive") -> pd.DataFrame:
    """Accuracy of each method minus ``reference``'s, per run (points of accuracy on C): positive
    where the reliability-aware method beat naive fine-tuning."""
    wide = long.pivot_table(index=["dataset", "run"], columns="method", values="accuracy")
    methods = [c for c in wide.columns if c not in ("weak", reference, "ceiling")]
    return wide[methods].sub(wide[reference], axis=0).mul(100).round(1)


def scratch_dir() -> Path:
    """Where notebook 07 writes when opened by hand (never results/): under the default cache."""
    return Params().resolved_cache_dir() / "notebooks" / "summary"


def markdown_table(runs: list[Path]) -> str:
    """The across-datasets table of README: accuracy on C of every method per run, the strong
    model's zero-shot accuracy, the AUROC of the entropy score and the run's wall time."""
    long = methods_long(runs)
    table = runs_table(runs).set_index(["dataset", "run"])
    acc = long.pivot_table(index=["dataset", "run"], columns="method", values="accuracy")
    methods = [m for m in METHOD_ORDER if m in acc.columns]
    head = ["run", "n C", *methods, "strong 0-shot", "AUROC H", "min"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for (dataset, run), row in acc.iterrows():
        t = table.loc[(dataset, run)]
        best = max((m for m in methods if m not in ("weak", "ceiling", "naive")), key=lambda m: row[m], default=None)
        cells = [f"**{row[m]:.3f}**" if m == best and row[m] > row["naive"] else f"{row[m]:.3f}" for m in methods]
        lines.append(f"| {dataset}/{run} | {int(t['n_C'])} | " + " | ".join(cells)
                     + f" | {t['strong_zero_shot']:.3f} | {t['entropy_auroc']:.2f} | {t['minutes']:.0f} |")
    return "\n".join(lines)
