"""The committed significance calls (results/summary/intervals.csv, written by `relalign report`)
against an independent, plain re-implementation of the paired bootstrap over seeds and test
questions, run on the committed per-question results (``test_correct``) of every study under
results/. Nothing of relalign.stats is used here: a disagreement means one of the two is wrong,
or intervals.csv is stale."""

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "results"
ALPHA = 0.05
N_DRAWS = 20_000
RNG_SEED = 20_240_611  # this test's own, unrelated to the library's
NOT_COMPARED = {"weak", "naive", "ceiling"}
CHUNK = 1_000  # draws at a time (bounds memory)


def committed_studies(results: Path) -> dict[tuple[str, str], dict[str, list[np.ndarray]]]:
    """Per (dataset, study): method -> whether each test question was answered right, one array
    per seed (in seed order), for the methods every seed has. A study is the finished runs (no
    INCOMPLETE file) of one params file: the same dataset and params name."""
    runs = defaultdict(list)
    for path in sorted(results.glob("*/*/metrics.json")):
        m = json.loads(path.read_text())
        if (path.parent / "INCOMPLETE").exists() or not m.get("test_correct"):
            continue
        runs[(m["dataset"], m["params"]["name"])].append(m)
    studies = {}
    for key, ms in runs.items():
        ms.sort(key=lambda m: m["seed"])
        methods = [k for k in ms[0]["test_correct"] if all(k in m["test_correct"] for m in ms)]
        studies[key] = {k: [np.array([c == "1" for c in m["test_correct"][k]]) for m in ms] for k in methods}
    return studies


def bootstrap_accuracy(correct: dict[str, list[np.ndarray]], n_draws: int, rng: np.random.Generator) -> np.ndarray:
    """(draws x methods) accuracies: per draw, the seeds drawn with replacement, and for each drawn
    seed its questions drawn with replacement, the same questions for every method; the accuracy
    is the mean over the drawn seeds of the mean over the drawn questions."""
    n_seeds = len(next(iter(correct.values())))
    seeds = [np.column_stack([runs[s] for runs in correct.values()]) for s in range(n_seeds)]  # questions x methods
    out = []
    for start in range(0, n_draws, CHUNK):
        k = min(CHUNK, n_draws - start)
        drawn_seeds = rng.integers(0, len(seeds), size=(k, len(seeds)))
        acc = np.zeros((k, len(correct)))
        for slot in range(len(seeds)):
            for s, table in enumerate(seeds):
                rows = np.flatnonzero(drawn_seeds[:, slot] == s)
                questions = rng.integers(0, len(table), size=(len(rows), len(table)))
                acc[rows] += table[questions].mean(axis=1)
        out.append(acc / len(seeds))
    return np.concatenate(out)


def two_sided_p(d: np.ndarray) -> tuple[float, float]:
    """2 min(P(d <= 0), P(d >= 0)) capped at 1, and its Monte Carlo standard error."""
    q = min((d <= 0).mean(), (d >= 0).mean())
    return min(1.0, 2 * q), 2 * np.sqrt(q * (1 - q) / len(d))


def holm(p: list[float], se: list[float]) -> tuple[list[float], list[float]]:
    """Holm-adjusted p-values (step-down, monotone, capped at 1), each with the Monte Carlo
    standard error of the raw p-value it is a multiple of."""
    order = sorted(range(len(p)), key=lambda i: p[i])
    adjusted, adjusted_se = [0.0] * len(p), [0.0] * len(p)
    running, running_se = 0.0, 0.0
    for rank, i in enumerate(order):
        factor = len(p) - rank
        if factor * p[i] > running:
            running, running_se = factor * p[i], factor * se[i]
        adjusted[i], adjusted_se[i] = min(1.0, running), running_se
    return adjusted, adjusted_se


def independent_calls(results: Path, n_draws: int = N_DRAWS, seed: int = RNG_SEED) -> pd.DataFrame:
    """Per (dataset, study, compared method): the difference from naive's p-value and its Holm
    adjustment over the methods compared, each with its Monte Carlo standard error."""
    rng = np.random.default_rng(seed)
    rows = []
    for (dataset, study), correct in sorted(committed_studies(results).items()):
        acc = dict(zip(correct, bootstrap_accuracy(correct, n_draws, rng).T))
        compared = [m for m in correct if m not in NOT_COMPARED]
        p, se = zip(*[two_sided_p(acc[m] - acc["naive"]) for m in compared])
        p_holm, p_holm_se = holm(list(p), list(se))
        rows += [{"dataset": dataset, "study": study, "method": m, "p_value": p[j], "p_se": se[j],
                  "p_holm": p_holm[j], "p_holm_se": p_holm_se[j]} for j, m in enumerate(compared)]
    return pd.DataFrame(rows)


def check_committed_calls(intervals_csv: Path, results: Path = RESULTS) -> pd.DataFrame:
    """Asserts that every significance call of ``intervals_csv`` agrees with the independent
    bootstrap of the committed runs: a firm call ("significant" / "not significant") is the
    independent p_holm's side of alpha, with p-values equal within Monte Carlo error, and a call
    marked too close to call has its independent p_holm near alpha. Returns both side by side."""
    committed = pd.read_csv(intervals_csv)
    stale = {"p_mc_se", "p_holm_mc_se", "call", "n_boot"} - set(committed.columns)
    assert not stale, f"{intervals_csv} predates Monte Carlo errors and calls (no {sorted(stale)}): regenerate it"
    committed = committed[~committed["method"].isin(NOT_COMPARED)]
    ours = independent_calls(results)
    both = committed.merge(ours, on=["dataset", "study", "method"], how="outer", suffixes=("", "_ind"),
                           indicator=True)
    missing = both.loc[both["_merge"] != "both", ["dataset", "study", "method", "_merge"]]
    assert missing.empty, f"in only one of intervals.csv and results/:\n{missing}"
    for _, r in both.iterrows():
        where = (f"{r['dataset']}/{r['study']} {r['method']}: committed p_holm {r['p_holm']:.4f} ± "
                 f"{r['p_holm_mc_se']:.4f} ({r['call']}), independent {r['p_holm_ind']:.4f} ± {r['p_holm_se']:.4f}")
        noise = np.hypot(r["p_holm_mc_se"], r["p_holm_se"])
        assert abs(r["p_holm"] - r["p_holm_ind"]) <= 4 * noise + 2 / N_DRAWS, where
        assert abs(r["p_value"] - r["p_value_ind"]) <= 4 * np.hypot(r["p_mc_se"], r["p_se"]) + 2 / N_DRAWS, where
        assert bool(r["significant"]) == (r["call"] == "significant"), where
        if r["call"] == "too close to call":
            assert abs(r["p_holm_ind"] - ALPHA) < 3 * r["p_holm_mc_se"] + 4 * noise, where
        else:
            assert r["call"] in ("significant", "not significant"), where
            assert (r["p_holm_ind"] < ALPHA) == (r["call"] == "significant"), where
    return both


@pytest.mark.skipif(not (RESULTS / "summary" / "intervals.csv").is_file(), reason="no committed summary")
def test_committed_significance_calls_agree_with_an_independent_bootstrap():
    both = check_committed_calls(RESULTS / "summary" / "intervals.csv")
    assert len(both) > 0
