"""Confidence intervals and significance for accuracy and PGR, over test examples and seeds.

Pure numpy / pandas (no torch). The input is, for every method, whether each test example was
answered right, in each seed's run (the runs of one params file over seeds; each run has its
own splits, so test sets differ between seeds but not between the methods of one seed).

:func:`bootstrap_methods` draws, ``n_boot`` times, the seeds with replacement and, for each
drawn seed, its test examples with replacement, the same draw for every method (paired). On
each draw it computes every method's accuracy, its PGR and its difference from a reference
method; the 95% interval is the 2.5 and 97.5 percentiles of the draws. A difference is called
significant when its two-sided bootstrap p-value, Holm-adjusted over the methods compared, is
below ``alpha``. With one seed the interval covers test-set sampling only, and says so
(``n_seeds``).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["bootstrap_methods", "holm", "parse_correct"]


def parse_correct(s: str) -> np.ndarray:
    """The "0110..." strings of metrics.json's ``test_correct`` as a boolean array."""
    if not s or set(s) - {"0", "1"}:
        raise ValueError("a correctness string holds only 0 and 1 and is not empty")
    return np.frombuffer(s.encode(), dtype=np.uint8) == ord("1")


def holm(p: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (NaN stays NaN and is not counted)."""
    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    order = ok[np.argsort(p[ok], kind="stable")]
    m = len(order)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def bootstrap_methods(
    correct: Mapping[str, Sequence[np.ndarray]],
    *,
    weak: str = "weak",
    ceiling: str = "ceiling",
    reference: str = "naive",
    n_boot: int = 2000,
    level: float = 0.95,
    alpha: float = 0.05,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per method of ``correct`` (method -> one boolean array per seed, seeds in the same
    order for every method): ``accuracy`` (mean over seeds) with ``acc_lo`` / ``acc_hi``, ``pgr``
    with ``pgr_lo`` / ``pgr_hi`` (needs ``weak`` and ``ceiling``), the difference from
    ``reference`` in accuracy points (``diff``, ``diff_lo``, ``diff_hi``), its ``p_value``,
    ``p_holm`` and ``significant``, and ``n_seeds`` / ``n_test``."""
    if not correct:
        raise ValueError("no methods")
    arrays = {m: [np.asarray(a, dtype=bool) for a in runs] for m, runs in correct.items()}
    n_seeds = {len(v) for v in arrays.values()}
    if len(n_seeds) != 1 or 0 in n_seeds:
        raise ValueError(f"every method needs the same number of seeds (got {sorted(n_seeds)})")
    n_seeds = n_seeds.pop()
    for s in range(n_seeds):
        sizes = {len(v[s]) for v in arrays.values()}
        if len(sizes) != 1 or 0 in sizes:
            raise ValueError(f"seed {s}: every method needs the same, non-empty test set (sizes {sorted(sizes)})")
    rng = np.random.RandomState(seed)
    chosen = rng.randint(0, n_seeds, size=(n_boot, n_seeds)) if n_seeds > 1 else np.zeros((n_boot, 1), int)
    # per draw and slot, example indices of that slot's seed (test sets of different seeds may differ in size)
    n_test = [len(next(iter(arrays.values()))[s]) for s in range(n_seeds)]
    idx = [[rng.randint(0, n_test[chosen[b, j]], size=n_test[chosen[b, j]]) for j in range(chosen.shape[1])]
           for b in range(n_boot)]

    def draws(runs: list[np.ndarray]) -> np.ndarray:
        return np.array([np.mean([runs[chosen[b, j]][idx[b][j]].mean() for j in range(chosen.shape[1])])
                         for b in range(n_boot)])

    boot = {m: draws(v) for m, v in arrays.items()}
    point = {m: float(np.mean([a.mean() for a in v])) for m, v in arrays.items()}
    lo_q, hi_q = 100 * (1 - level) / 2, 100 * (1 + level) / 2

    def ci(x: np.ndarray) -> tuple[float, float]:
        x = x[~np.isnan(x)]
        return (float(np.percentile(x, lo_q)), float(np.percentile(x, hi_q))) if len(x) else (np.nan, np.nan)

    def pgr_of(acc, w, c):
        gap = c - w
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(gap > 0, (acc - w) / np.where(gap > 0, gap, 1), np.nan)

    has_pgr = weak in boot and ceiling in boot
    rows = {}
    for m in arrays:
        r = {"accuracy": point[m]}
        r["acc_lo"], r["acc_hi"] = ci(boot[m])
        if has_pgr:
            r["pgr"] = float(pgr_of(np.array(point[m]), point[weak], point[ceiling]))
            r["pgr_lo"], r["pgr_hi"] = ci(pgr_of(boot[m], boot[weak], boot[ceiling]))
        if reference in boot and m != reference:
            d = 100 * (boot[m] - boot[reference])
            r["diff"] = 100 * (point[m] - point[reference])
            r["diff_lo"], r["diff_hi"] = ci(d)
            r["p_value"] = float(min(1.0, 2 * min((d <= 0).mean(), (d >= 0).mean())))
        rows[m] = r
    out = pd.DataFrame.from_dict(rows, orient="index")
    if "p_value" in out.columns:
        compared = [m for m in out.index if m not in (reference, weak, ceiling) and not np.isnan(out.loc[m, "p_value"])]
        out["p_holm"] = np.nan
        out.loc[compared, "p_holm"] = holm(out.loc[compared, "p_value"].to_numpy())
        out["significant"] = out["p_holm"] < alpha
    out["n_seeds"] = n_seeds
    out["n_test"] = int(np.mean(n_test))
    return out
