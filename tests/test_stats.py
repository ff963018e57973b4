"""Bootstrap intervals, p-values and calls of relalign.stats, checked against the exact bootstrap
distribution of tiny cases (every resample enumerated), scipy's bootstrap and hand-computed values."""

from collections import Counter
from itertools import combinations_with_replacement, product
from math import factorial, prod

import numpy as np
import pytest
import scipy.stats
from scipy.stats import binom

from relalign.stats import N_BOOT, bootstrap_methods, calls, holm, holm_mc_se, parse_correct


def test_parse_correct():
    assert parse_correct("0110").tolist() == [False, True, True, False]
    for bad in ("", "01x"):
        with pytest.raises(ValueError):
            parse_correct(bad)


def test_holm_by_hand():
    # sorted 0.01, 0.02, 0.04 -> 3 x 0.01, 2 x 0.02, 1 x 0.04 = 0.03, 0.04, 0.04
    assert holm([0.04, 0.01, 0.02]).tolist() == pytest.approx([0.04, 0.03, 0.04])
    # sorted 0.01, 0.03, 0.04 -> 0.03, 0.06, 0.04: the last is raised to 0.06 by the monotonicity step
    assert holm([0.01, 0.04, 0.03]).tolist() == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.6, 0.9]).tolist() == [1.0, 1.0]
    assert np.isnan(holm([np.nan, 0.5])[0]) and holm([np.nan, 0.5])[1] == 0.5


def test_holm_mc_se_is_that_of_the_p_value_each_adjustment_comes_from():
    se = holm_mc_se([0.01, 0.04, 0.03], [0.001, 0.002, 0.003])
    # 0.03 = 3 x p[0]; 0.06 = 2 x p[2] for both p[2] and p[1] (raised to it)
    assert se.tolist() == pytest.approx([0.003, 0.006, 0.006])
    assert np.isnan(holm_mc_se([np.nan, 0.5], [0.1, 0.01])[0])


def test_calls_by_hand():
    out = calls([0.01, 0.049, 0.2, 0.045, 0.04, np.nan], [0.001, 0.001, 0.01, 0.002, 0.003, np.nan], alpha=0.05)
    assert out.tolist() == ["significant", "too close to call", "not significant", "too close to call",
                            "significant", None]


# --- the exact bootstrap distribution of a tiny case -------------------------------------------------------


def _bits(s):
    return np.array([c == "1" for c in s])


TINY = {  # two seeds of six test questions
    "weak": [_bits("100000"), _bits("010000")],
    "naive": [_bits("110100"), _bits("111000")],
    "better": [_bits("111110"), _bits("111101")],
    "worse": [_bits("100000"), _bits("101000")],
    "ceiling": [_bits("111110"), _bits("111111")],
}


def exact_bootstrap(correct):
    """Every outcome of the bootstrap that draws the seeds with replacement and, for each drawn
    seed, its questions with replacement (the same for every method), with its probability:
    (outcomes x methods) numbers right summed over the drawn seeds, and the probabilities. Every
    seed needs the same number of questions (accuracy = number right / (seeds x questions))."""
    methods = list(correct)
    n_seeds = len(correct[methods[0]])
    per_seed = []
    for s in range(n_seeds):
        table = np.column_stack([correct[m][s] for m in methods]).astype(int)
        n = len(table)
        dist = Counter()
        for drawn in combinations_with_replacement(range(n), n):
            counts = np.bincount(drawn, minlength=n)
            dist[tuple(counts @ table)] += factorial(n) / prod(factorial(c) for c in counts) / n**n
        per_seed.append(dist)
    total = Counter()
    for seeds in product(range(n_seeds), repeat=n_seeds):
        dist = Counter({(0,) * len(methods): 1.0})
        for s in seeds:
            summed = Counter()
            for k1, p1 in dist.items():
                for k2, p2 in per_seed[s].items():
                    summed[tuple(a + b for a, b in zip(k1, k2))] += p1 * p2
            dist = summed
        for k, p in dist.items():
            total[k] += p / n_seeds**n_seeds
    return {m: np.array([k[j] for k in total]) for j, m in enumerate(methods)}, np.array(list(total.values()))


@pytest.fixture(scope="module")
def tiny():
    right, prob = exact_bootstrap(TINY)
    assert prob.sum() == pytest.approx(1.0)
    return right, prob, bootstrap_methods(TINY), bootstrap_methods(TINY, level=0.8)


def assert_quantile(bound, values, prob, q, n_boot):
    """``bound`` is a q-quantile of the exact distribution up to Monte Carlo error: the exact
    probability below it is at most q, and at or below it at least q (each within 4 SE)."""
    tol = 4 * np.sqrt(q * (1 - q) / n_boot)
    assert prob[values < bound - 1e-9].sum() <= q + tol
    assert prob[values <= bound + 1e-9].sum() >= q - tol


@pytest.mark.parametrize("level", [0.95, 0.8])
def test_accuracy_and_difference_intervals_are_the_exact_bootstrap_quantiles_at_the_level(tiny, level):
    right, prob, out95, out80 = tiny
    out = out95 if level == 0.95 else out80
    questions = 2 * 6
    for m in TINY:
        acc = right[m] / questions
        assert out.loc[m, "accuracy"] == pytest.approx(np.mean([a.mean() for a in TINY[m]]))
        assert_quantile(out.loc[m, "acc_lo"], acc, prob, (1 - level) / 2, out.loc[m, "n_boot"])
        assert_quantile(out.loc[m, "acc_hi"], acc, prob, (1 + level) / 2, out.loc[m, "n_boot"])
    for m in ("better", "worse"):
        d = 100 * (right[m] - right["naive"]) / questions
        assert_quantile(out.loc[m, "diff_lo"], d, prob, (1 - level) / 2, out.loc[m, "n_boot"])
        assert_quantile(out.loc[m, "diff_hi"], d, prob, (1 + level) / 2, out.loc[m, "n_boot"])


def test_p_values_are_the_exact_two_sided_bootstrap_p_values_within_their_mc_error(tiny):
    right, prob, out, _ = tiny
    exact = {}
    for m in ("better", "worse"):
        d = right[m] - right["naive"]
        q = min(prob[d <= 0].sum(), prob[d >= 0].sum())
        exact[m] = min(1.0, 2 * q)
        se = 2 * np.sqrt(q * (1 - q) / out.loc[m, "n_boot"])
        assert out.loc[m, "p_mc_se"] == pytest.approx(se, rel=0.2)
        assert abs(out.loc[m, "p_value"] - exact[m]) < 4 * se
    # "better" is above naive and "worse" below it: a one-sided p would be about half, or about 1
    assert exact["better"] == pytest.approx(0.0154, abs=1e-4) and exact["worse"] == pytest.approx(0.0893, abs=1e-4)
    adjusted = holm([exact["better"], exact["worse"]])  # 0.031, 0.089
    for m, a in zip(("better", "worse"), adjusted):
        assert abs(out.loc[m, "p_holm"] - a) < 4 * out.loc[m, "p_holm_mc_se"]
    assert out.loc["better", "call"] == "significant" and bool(out.loc["better", "significant"])
    assert out.loc["worse", "call"] == "not significant" and not bool(out.loc["worse", "significant"])
    assert out[["p_holm", "call"]].loc[["weak", "naive", "ceiling"]].isna().all().all()


def test_pgr_by_hand_and_its_interval_is_the_exact_bootstrap_quantile(tiny):
    right, prob, out, _ = tiny
    # over both seeds: weak 2, ceiling 11, naive 6, better 10, worse 3 right of 12
    hand = {"weak": 0.0, "naive": 4 / 9, "better": 8 / 9, "worse": 1 / 9, "ceiling": 1.0}
    assert out["pgr"].to_dict() == pytest.approx(hand)
    gap = right["ceiling"] - right["weak"]
    assert out.loc["naive", "gap"] == pytest.approx(100 * 9 / 12)
    assert_quantile(out.loc["naive", "gap_lo"], 100 * gap / 12, prob, 0.025, out.loc["naive", "n_boot"])
    assert out.loc["naive", "pgr_dropped"] == pytest.approx(prob[gap <= 0].sum(), abs=1e-3)
    kept = gap > 0
    for m in ("naive", "better", "worse"):
        pgr = (right[m][kept] - right["weak"][kept]) / gap[kept]
        assert_quantile(out.loc[m, "pgr_lo"], pgr, prob[kept] / prob[kept].sum(), 0.025, out.loc[m, "n_boot"])
        assert_quantile(out.loc[m, "pgr_hi"], pgr, prob[kept] / prob[kept].sum(), 0.975, out.loc[m, "n_boot"])


def test_no_pgr_interval_where_the_gap_is_not_clearly_positive():
    correct = {"weak": [_bits("1100100"), _bits("0110010")], "naive": [_bits("1110000"), _bits("1011100")],
               "ceiling": [_bits("1101010"), _bits("0111010")]}  # 6, 7 and 8 right of 14
    right, prob = exact_bootstrap(correct)
    out = bootstrap_methods(correct)
    gap = right["ceiling"] - right["weak"]
    assert out.loc["naive", "gap"] == pytest.approx(100 * 2 / 14)
    assert_quantile(out.loc["naive", "gap_lo"], 100 * gap / 14, prob, 0.025, N_BOOT)
    assert out.loc["naive", "gap_lo"] < 0
    assert out.loc["naive", "pgr_dropped"] == pytest.approx(prob[gap <= 0].sum(), abs=4 * np.sqrt(0.25 / N_BOOT))
    assert out.loc["naive", "pgr_dropped"] > 0.2
    assert out.loc["naive", "pgr"] == pytest.approx(0.5)  # the point value stays
    assert out[["pgr_lo", "pgr_hi"]].isna().all().all()


def test_seeds_are_drawn_too():
    # right on every question of one seed, wrong on every question of the other: drawing
    # questions cannot move the accuracy, drawing seeds gives 0, 1/2 and 1 (1/4, 1/2, 1/4)
    out = bootstrap_methods({"naive": [np.ones(5, bool), np.zeros(5, bool)]})
    assert (out.loc["naive", "acc_lo"], out.loc["naive", "acc_hi"]) == (0.0, 1.0)


@pytest.mark.parametrize("level", [0.95, 0.9])
def test_one_seed_interval_agrees_with_scipy_percentile_bootstrap(level):
    x = np.random.default_rng(3).random(300) < 0.6
    ours = bootstrap_methods({"naive": [x]}, level=level).loc["naive"]
    ref = scipy.stats.bootstrap((x.astype(float),), np.mean, n_resamples=N_BOOT, method="percentile",
                                confidence_level=level, rng=np.random.default_rng(1)).confidence_interval
    tol = 1 / len(x) + 0.003  # one question, plus the Monte Carlo error of two 20,000-draw percentiles
    assert abs(ours["acc_lo"] - ref.low) < tol and abs(ours["acc_hi"] - ref.high) < tol


def _paired(n, wins, losses):
    """One seed of ``n`` questions: a method right where naive is wrong on ``wins`` of them, the
    other way round on ``losses``, both right on the rest."""
    naive = np.ones(n, bool)
    naive[:wins] = False
    better = np.ones(n, bool)
    better[wins:wins + losses] = False
    return {"naive": [naive], "m": [better]}


def _exact_paired_p(n, wins, losses):
    """The exact two-sided bootstrap p-value of :func:`_paired`: drawn wins W ~ Bin(n, wins/n) and
    drawn losses given W ~ Bin(n - W, losses / (n - wins))."""
    w = np.arange(n + 1)
    pw = binom.pmf(w, n, wins / n)
    p_le = (pw * binom.sf(w - 1, n - w, losses / (n - wins))).sum()  # W - L <= 0
    p_ge = (pw * binom.cdf(w, n - w, losses / (n - wins))).sum()  # W - L >= 0
    return min(1.0, 2 * min(p_le, p_ge))


def test_a_call_close_to_alpha_gets_more_draws_and_is_reported_as_too_close():
    exact = _exact_paired_p(200, 40, 24)
    assert exact == pytest.approx(0.0501, abs=1e-4)
    out = bootstrap_methods(_paired(200, 40, 24), n_boot=20_000, max_boot=80_000).loc["m"]
    assert out["n_boot"] == 80_000
    assert abs(out["p_value"] - exact) < 4 * out["p_mc_se"]
    assert out["call"] == "too close to call" and not out["significant"]
    capped = bootstrap_methods(_paired(200, 40, 24), n_boot=20_000, max_boot=20_000).loc["m"]
    assert capped["n_boot"] == 20_000 and capped["call"] == "too close to call"
    clear = bootstrap_methods(_paired(200, 40, 10), n_boot=20_000, max_boot=80_000).loc["m"]
    assert clear["n_boot"] == 20_000 and clear["call"] == "significant" and clear["p_mc_se"] < 1e-3


def test_paired_draws_make_identical_methods_differ_by_exactly_zero():
    runs = [np.random.default_rng(s).random(100) < 0.6 for s in range(3)]
    out = bootstrap_methods({"naive": runs, "copy": [r.copy() for r in runs]}, n_boot=200)
    assert out.loc["copy", "diff_lo"] == out.loc["copy", "diff_hi"] == 0.0
    assert out.loc["copy", "p_value"] == 1.0 and out.loc["copy", "call"] == "not significant"


def test_more_seeds_and_examples_give_narrower_intervals():
    one = bootstrap_methods({"naive": [np.arange(100) < 60]}, n_boot=2000)
    many = bootstrap_methods({"naive": [np.random.default_rng(s).permutation(np.arange(400) < 240) for s in range(3)]},
                             n_boot=2000)
    width = {k: out.loc["naive", "acc_hi"] - out.loc["naive", "acc_lo"] for k, out in (("one", one), ("many", many))}
    assert width["many"] < width["one"]


def test_same_params_same_numbers_and_bad_input():
    c = {"naive": [np.arange(50) < 30], "x": [np.arange(50) % 3 > 0]}
    assert bootstrap_methods(c, n_boot=100).equals(bootstrap_methods(c, n_boot=100))
    assert not bootstrap_methods(c, n_boot=100).equals(bootstrap_methods(c, n_boot=100, seed=1))
    with pytest.raises(ValueError):
        bootstrap_methods({"naive": [np.ones(3, bool)] * 2, "x": [np.ones(3, bool)] * 3})
    with pytest.raises(ValueError):
        bootstrap_methods({"naive": [np.ones(3, bool)], "x": [np.ones(4, bool)]})
    with pytest.raises(ValueError):
        bootstrap_methods({})
