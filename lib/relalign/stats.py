"""Confidence intervals and significance for accuracy and PGR, over test examples and seeds.

Pure numpy / pandas (no torch). The input is, for every method, whether each test example was
answered right, in each seed's run (the runs of one params file over seeds; each run has its
own splits, so test sets differ between seeds but not between the methods of one seed).

:func:`bootstrap_methods` draws the seeds with replacement and, for each drawn seed, its test
examples with replacement, the same draw for every method (paired). On each draw it computes
every method's accuracy, its PGR and its difference from a reference method; an interval at
``level`` is the matching pair of percentiles of the draws. A difference from the reference has
a two-sided bootstrap p-value, Holm-adjusted over the methods compared.

The p-values are Monte Carlo estimates: each comes with its standard error (``p_mc_se``,
``p_holm_mc_se``). Where an adjusted p-value lies within :data:`CLOSE_SE` standard errors of
``alpha``, more draws are made (doubling, up to ``max_boot``); a call still that close is
reported as "too close to call", never as a firm result. With one seed the intervals cover
test-set sampling only, and say so (``n_seeds``).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .evaluation import pgr

__all__ = ["ALPHA", "N_BOOT", "MAX_BOOT", "CLOSE_SE", "bootstrap_methods", "calls", "holm", "holm_mc_se",
           "parse_correct"]

ALPHA = 0.05  # significance level of the calls
N_BOOT = 20_000  # draws made first
MAX_BOOT = 320_000  # at most this many draws, for a call close to alpha
CLOSE_SE = 3.0  # a call is too close when |p_holm - alpha| < this many Monte Carlo standard errors
_CHUNK = 4_000_000  # resampled test examples per chunk of draws (bounds memory to a few tens of MB)

SIGNIFICANT, NOT_SIGNIFICANT, TOO_CLOSE = "significant", "not significant", "too close to call"


def parse_correct(s: str) -> np.ndarray:
    """The "0110..." strings of metrics.json's ``test_correct`` as a boolean array."""
    if not s or set(s) - {"0", "1"}:
        raise ValueError("a correctness string holds only 0 and 1 and is not empty")
    return np.frombuffer(s.encode(), dtype=np.uint8) == ord("1")


def _holm_terms(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each p-value, the multiplier and the index of the p-value its Holm adjustment comes
    from: adjusted[i] = min(1, factor[i] * p[source[i]]), the running maximum of (m - rank) p
    over the p-values up to i's rank (its monotonicity step). NaN is not counted: factor NaN."""
    factor = np.full(len(p), np.nan)
    source = np.arange(len(p))
    ok = np.flatnonzero(~np.isnan(p))
    order = ok[np.argsort(p[ok], kind="stable")]
    best, best_k, best_i = -1.0, 0, 0
    for rank, i in enumerate(order):
        k = len(order) - rank
        if k * p[i] > best:
            best, best_k, best_i = k * p[i], k, i
        factor[i], source[i] = best_k, best_i
    return factor, source


def holm(p: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (NaN stays NaN and is not counted)."""
    p = np.asarray(p, dtype=float)
    factor, source = _holm_terms(p)
    return np.minimum(1.0, factor * p[source])


def holm_mc_se(p: Sequence[float], se: Sequence[float]) -> np.ndarray:
    """Monte Carlo standard error of each Holm-adjusted p-value, given each raw p-value's: the
    adjusted value is a multiple of one raw p-value (:func:`_holm_terms`), so is its error."""
    p, se = np.asarray(p, dtype=float), np.asarray(se, dtype=float)
    factor, source = _holm_terms(p)
    return factor * se[source]


def calls(p_holm: Sequence[float], se: Sequence[float], alpha: float = ALPHA, close: float = CLOSE_SE) -> np.ndarray:
    """The call on each adjusted p-value: "significant" (p < alpha), "not significant", or "too
    close to call" where p lies within ``close`` Monte Carlo standard errors of alpha; None where
    p is NaN (nothing compared)."""
    p, se = np.asarray(p_holm, dtype=float), np.asarray(se, dtype=float)
    out = np.where(p < alpha, SIGNIFICANT, NOT_SIGNIFICANT).astype(object)
    out[np.abs(p - alpha) < close * se] = TOO_CLOSE
    out[np.isnan(p)] = None
    return out


def _seed_tables(correct: Mapping[str, Sequence[np.ndarray]]) -> list[np.ndarray]:
    """Per seed, a (test examples x methods) 0/1 matrix, methods in ``correct``'s order; checks
    that every method has the same seeds and, within a seed, the same non-empty test set."""
    if not correct:
        raise ValueError("no methods")
    arrays = {m: [np.asarray(a, dtype=bool) for a in runs] for m, runs in correct.items()}
    n_seeds = {len(v) for v in arrays.values()}
    if len(n_seeds) != 1 or 0 in n_seeds:
        raise ValueError(f"every method needs the same number of seeds (got {sorted(n_seeds)})")
    tables = []
    for s in range(n_seeds.pop()):
        sizes = {len(v[s]) for v in arrays.values()}
        if len(sizes) != 1 or 0 in sizes:
            raise ValueError(f"seed {s}: every method needs the same, non-empty test set (sizes {sorted(sizes)})")
        tables.append(np.column_stack([v[s] for v in arrays.values()]).astype(float))
    return tables


def _resample_counts(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` draws of ``n`` examples out of ``n`` with replacement, as (k x n) counts per example."""
    idx = rng.integers(0, n, size=(k, n)) + n * np.arange(k)[:, None]
    return np.bincount(idx.ravel(), minlength=k * n).reshape(k, n)


def _draw_once(tables: list[np.ndarray], n_draws: int, rng: np.random.Generator) -> np.ndarray:
    """``n_draws`` paired bootstrap draws of every method's accuracy, (draws x methods): the seeds
    drawn with replacement, each drawn seed's test examples drawn with replacement (the same
    examples for every method), the accuracy averaged over the drawn seeds."""
    n_seeds = len(tables)
    chosen = rng.integers(0, n_seeds, size=(n_draws, n_seeds))
    acc = np.zeros((n_draws, tables[0].shape[1]))
    for s, table in enumerate(tables):
        draw_of_slot = np.nonzero(chosen == s)[0]  # one entry per slot that drew seed s
        counts = _resample_counts(len(table), len(draw_of_slot), rng)
        np.add.at(acc, draw_of_slot, counts @ table / len(table))
    return acc / n_seeds


def _draw(tables: list[np.ndarray], n_draws: int, rng: np.random.Generator) -> np.ndarray:
    """:func:`_draw_once` in chunks of about :data:`_CHUNK` resampled examples each."""
    per_draw = len(tables) * max(len(t) for t in tables)
    size = max(1, _CHUNK // per_draw)
    return np.concatenate([_draw_once(tables, min(size, n_draws - start), rng) for start in range(0, n_draws, size)])


def _interval(x: np.ndarray, level: float) -> tuple[float, float]:
    """The percentile interval at ``level`` of the non-NaN draws ``x`` (NaN if there are none)."""
    x = x[~np.isnan(x)]
    if not len(x):
        return np.nan, np.nan
    lo, hi = np.percentile(x, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return float(lo), float(hi)


def _p_value(d: np.ndarray) -> tuple[float, float]:
    """Two-sided bootstrap p-value of the draws ``d`` of a difference, 2 min(P(d <= 0), P(d >= 0))
    capped at 1, and its Monte Carlo standard error 2 sqrt(q (1 - q) / draws) with q that minimum
    (0 where no draw falls on the other side of 0: p is then below about 1 / draws)."""
    q = min(float((d <= 0).mean()), float((d >= 0).mean()))
    return min(1.0, 2 * q), 2 * float(np.sqrt(q * (1 - q) / len(d)))


def _pgr_columns(draws: np.ndarray, point: np.ndarray, j: int, w: int, c: int, level: float) -> dict:
    """PGR of method ``j`` (columns of ``draws`` / ``point``; ``w`` weak, ``c`` ceiling) with its
    interval, and the ceiling-minus-weak gap in points with its interval. Draws whose gap is not
    positive have no PGR: their fraction is ``pgr_dropped``. Where the gap's own interval reaches
    0 the PGR interval is NaN (the ratio's draws would be dominated by a near-zero denominator)."""
    gap_lo, gap_hi = _interval(100 * (draws[:, c] - draws[:, w]), level)
    pgr_lo, pgr_hi = _interval(pgr(draws[:, j], draws[:, w], draws[:, c]), level) if gap_lo > 0 else (np.nan, np.nan)
    return {"pgr": float(pgr(point[j], point[w], point[c])), "pgr_lo": pgr_lo, "pgr_hi": pgr_hi,
            "pgr_dropped": float((draws[:, c] <= draws[:, w]).mean()),
            "gap": 100 * float(point[c] - point[w]), "gap_lo": gap_lo, "gap_hi": gap_hi}


def _diff_columns(draws: np.ndarray, point: np.ndarray, j: int, r: int, level: float) -> dict:
    """Method ``j`` minus the reference ``r`` in accuracy points, its interval, p-value and the
    p-value's Monte Carlo standard error."""
    d = 100 * (draws[:, j] - draws[:, r])
    lo, hi = _interval(d, level)
    p, se = _p_value(d)
    return {"diff": 100 * float(point[j] - point[r]), "diff_lo": lo, "diff_hi": hi, "p_value": p, "p_mc_se": se}


def _summarise(draws: np.ndarray, point: np.ndarray, methods: list[str], *, weak: str, ceiling: str, reference: str,
               level: float, alpha: float) -> pd.DataFrame:
    """One row per method from the draws (draws x methods) and point accuracies: intervals,
    PGR, the difference from ``reference`` and, over the methods compared with it (all but
    ``reference``, ``weak`` and ``ceiling``), Holm-adjusted p-values and calls."""
    col = {m: j for j, m in enumerate(methods)}
    rows = {}
    for m, j in col.items():
        r = {"accuracy": float(point[j])}
        r["acc_lo"], r["acc_hi"] = _interval(draws[:, j], level)
        if weak in col and ceiling in col:
            r.update(_pgr_columns(draws, point, j, col[weak], col[ceiling], level))
        if reference in col and m != reference:
            r.update(_diff_columns(draws, point, j, col[reference], level))
        rows[m] = r
    out = pd.DataFrame.from_dict(rows, orient="index")
    if "p_value" in out.columns:
        compared = [m for m in out.index if m not in (reference, weak, ceiling)]
        p, se = out.loc[compared, "p_value"].to_numpy(), out.loc[compared, "p_mc_se"].to_numpy()
        out["p_holm"], out["p_holm_mc_se"] = np.nan, np.nan
        out.loc[compared, "p_holm"], out.loc[compared, "p_holm_mc_se"] = holm(p), holm_mc_se(p, se)
        out["call"] = calls(out["p_holm"], out["p_holm_mc_se"], alpha)
        out["significant"] = out["call"] == SIGNIFICANT
    out["n_boot"] = len(draws)
    return out


def _undecided(out: pd.DataFrame) -> bool:
    """Whether a call of :func:`_summarise`'s table is too close to make."""
    return "call" in out.columns and bool((out["call"] == TOO_CLOSE).any())


def bootstrap_methods(
    correct: Mapping[str, Sequence[np.ndarray]],
    *,
    weak: str = "weak",
    ceiling: str = "ceiling",
    reference: str = "naive",
    n_boot: int = N_BOOT,
    max_boot: int = MAX_BOOT,
    level: float = 0.95,
    alpha: float = ALPHA,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per method of ``correct`` (method -> one boolean array per seed, seeds in the same
    order for every method), from ``n_boot`` paired bootstrap draws, doubled while a call is too
    close to ``alpha`` and fewer than ``max_boot`` were made (seeded: the same input gives the
    same numbers):

    - ``accuracy`` (mean over seeds) with its interval at ``level``, ``acc_lo`` / ``acc_hi``;
    - with ``weak`` and ``ceiling``: ``pgr`` with ``pgr_lo`` / ``pgr_hi`` (NaN where the gap's
      interval reaches 0), ``pgr_dropped`` (fraction of draws with gap <= 0, which have no
      PGR) and the gap ceiling - weak in points, ``gap`` / ``gap_lo`` / ``gap_hi``;
    - with ``reference``: the difference from it in points (``diff``, ``diff_lo``, ``diff_hi``),
      its two-sided ``p_value`` and ``p_mc_se``, Holm-adjusted ``p_holm`` and ``p_holm_mc_se``
      over the methods compared, ``call`` ("significant", "not significant" or "too close to
      call") and ``significant`` (a firm significant call only);
    - ``n_boot`` (draws made), ``n_seeds`` and ``n_test`` (mean test-set size)."""
    tables = _seed_tables(correct)
    methods = list(correct)
    point = np.mean([t.mean(axis=0) for t in tables], axis=0)
    rng = np.random.default_rng(seed)

    def summary(draws: np.ndarray) -> pd.DataFrame:
        return _summarise(draws, point, methods, weak=weak, ceiling=ceiling, reference=reference, level=level,
                          alpha=alpha)

    draws = _draw(tables, n_boot, rng)
    out = summary(draws)
    while _undecided(out) and len(draws) < max_boot:
        draws = np.concatenate([draws, _draw(tables, min(len(draws), max_boot - len(draws)), rng)])
        out = summary(draws)
    out["n_seeds"] = len(tables)
    out["n_test"] = int(np.mean([len(t) for t in tables]))
    return out
