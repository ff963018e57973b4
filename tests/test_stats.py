import numpy as np
import pytest

from relalign.stats import bootstrap_methods, holm, parse_correct


def test_parse_correct():
    assert parse_correct("0110").tolist() == [False, True, True, False]
    for bad in ("", "01x"):
        with pytest.raises(ValueError):
            parse_correct(bad)


def test_holm_by_hand():
    # sorted 0.01, 0.02, 0.04 -> 0.03, 0.04, 0.04 (monotone)
    assert holm([0.04, 0.01, 0.02]).tolist() == pytest.approx([0.04, 0.03, 0.04])
    assert np.isnan(holm([np.nan, 0.5])[0]) and holm([np.nan, 0.5])[1] == 0.5


def _runs(p, n=400, seeds=3, seed=0):
    """``seeds`` shuffled test sets with exactly round(p n) right answers each."""
    rng = np.random.RandomState(seed)
    return [rng.permutation(np.arange(n) < round(p * n)) for _ in range(seeds)]


def test_interval_covers_the_truth_and_a_clear_gain_is_significant():
    correct = {"weak": _runs(0.5, seed=1), "naive": _runs(0.6, seed=2), "better": _runs(0.75, seed=3),
               "same": _runs(0.6, seed=4), "ceiling": _runs(0.8, seed=5)}
    out = bootstrap_methods(correct, n_boot=500)
    for m, p in {"weak": 0.5, "naive": 0.6, "better": 0.75, "ceiling": 0.8}.items():
        assert out.loc[m, "acc_lo"] <= p <= out.loc[m, "acc_hi"]
        assert out.loc[m, "acc_lo"] < out.loc[m, "accuracy"] < out.loc[m, "acc_hi"]
    assert bool(out.loc["better", "significant"]) and out.loc["better", "diff_lo"] > 0
    assert not bool(out.loc["same", "significant"])
    assert out.loc["better", "pgr_lo"] < out.loc["better", "pgr"] < out.loc["better", "pgr_hi"]
    assert out.loc["weak", "pgr"] == pytest.approx(0.0) and out.loc["ceiling", "pgr"] == pytest.approx(1.0)
    assert (out["n_seeds"] == 3).all()


def test_paired_draws_make_identical_methods_differ_by_exactly_zero():
    runs = _runs(0.6)
    out = bootstrap_methods({"naive": runs, "copy": [r.copy() for r in runs]}, n_boot=200)
    assert out.loc["copy", "diff_lo"] == out.loc["copy", "diff_hi"] == 0.0
    assert out.loc["copy", "p_value"] == 1.0


def test_more_seeds_and_examples_give_narrower_intervals():
    one = bootstrap_methods({"naive": _runs(0.6, n=100, seeds=1)}, n_boot=500)
    many = bootstrap_methods({"naive": _runs(0.6, n=400, seeds=3)}, n_boot=500)
    assert (many.loc["naive", "acc_hi"] - many.loc["naive", "acc_lo"]) < (one.loc["naive", "acc_hi"] - one.loc["naive", "acc_lo"])


def test_same_params_same_numbers_and_bad_input():
    c = {"naive": _runs(0.6), "x": _runs(0.7, seed=9)}
    assert bootstrap_methods(c, n_boot=100).equals(bootstrap_methods(c, n_boot=100))
    with pytest.raises(ValueError):
        bootstrap_methods({"naive": _runs(0.6, seeds=2), "x": _runs(0.6, seeds=3)})
    with pytest.raises(ValueError):
        bootstrap_methods({"naive": [np.ones(3, bool)], "x": [np.ones(4, bool)]})
