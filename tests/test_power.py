"""The minimum detectable difference: its formula against the study's own bootstrap test, and the
variance components measured from runs."""

import numpy as np
import pytest

from relalign.power import (Variance, minimum_detectable_difference, replicate_variance, seeds_needed,
                            simulated_power, study_power, variance_components, with_trainings)


@pytest.mark.parametrize("n_seeds,seed_sd", [(1, 0.0), (3, 0.0), (3, 0.015)])
def test_the_study_detects_its_mde_with_the_stated_power(n_seeds, seed_sd):
    v = Variance(n_test=300, n_seeds=n_seeds, within=0.15, seed_var=seed_sd**2, discordance=0.15)
    mde = minimum_detectable_difference(v, n_compared=4)
    assert simulated_power(mde, 4, 300, n_seeds, 0.15, seed_sd=seed_sd, n_sim=150, n_boot=2000) == pytest.approx(0.8, abs=0.1)
    # and a difference of half the MDE is found far less often
    assert simulated_power(mde / 2, 4, 300, n_seeds, 0.15, seed_sd=seed_sd, n_sim=100, n_boot=2000) < 0.45


def test_mde_by_hand_and_its_scaling():
    v = Variance(n_test=400, n_seeds=1, within=0.1, seed_var=0.0, discordance=0.1)
    # one seed: the bootstrap's spread is the estimate's own, sqrt(0.1 / 400) = 0.0158
    # z(1 - 0.05 / 2) + z(0.8) = 1.960 + 0.842 = 2.802
    assert minimum_detectable_difference(v, 1) == pytest.approx(2.8016 * 0.015811, rel=1e-3)
    assert minimum_detectable_difference(v, 1, n_test=1600) == pytest.approx(minimum_detectable_difference(v, 1) / 2)
    assert minimum_detectable_difference(v, 7) > minimum_detectable_difference(v, 1)  # Holm's bar is higher
    more_seeds = Variance(n_test=400, n_seeds=3, within=0.1, seed_var=0.0, discordance=0.1)
    assert minimum_detectable_difference(more_seeds, 1) < minimum_detectable_difference(v, 1)


def test_variance_components_from_runs():
    a = [np.array([1, 1, 0, 0, 1, 0, 1, 1]), np.array([1, 0, 0, 1])]
    b = [np.array([1, 0, 0, 1, 1, 0, 1, 1]), np.array([1, 0, 0, 1])]
    v = variance_components(a, b)
    # seed 0: differences 0,1,0,-1,0,0,0,0 (mean 0, variance 0.25, discordance 0.25); seed 1: all 0
    assert v.discordance == pytest.approx(0.125) and v.within == pytest.approx(0.125)
    assert v.n_seeds == 2 and v.n_test == 6 and v.seed_var == 0.0  # the two means are equal
    shifted = variance_components([np.ones(100), np.zeros(100)], [np.zeros(100), np.ones(100)])
    assert shifted.seed_var == pytest.approx(2.0)  # means +1 and -1: variance 2, nothing within
    with pytest.raises(ValueError):
        variance_components(a, b[:1])


def test_study_power_pools_the_methods_compared_with_naive():
    rng = np.random.default_rng(0)
    naive = [rng.random(200) < 0.7 for _ in range(3)]
    flip = lambda x, p: np.where(rng.random(x.size) < p, ~x, x)  # noqa: E731
    correct = {"weak": [rng.random(200) < 0.5 for _ in range(3)], "naive": naive,
               "a": [flip(x, 0.1) for x in naive], "b": [flip(x, 0.3) for x in naive], "ceiling": naive}
    out = study_power(correct)
    assert out["n_compared"] == 2 and set(out["by_method"]) == {"a", "b"}
    assert out["by_method"]["a"] < out["mde"] < out["by_method"]["b"]  # b disagrees with naive more often
    assert out["discordance"] == pytest.approx(0.2, abs=0.03)


def test_seeds_needed_is_the_fewest_that_reach_the_target():
    v = Variance(n_test=600, n_seeds=3, within=0.17, seed_var=0.03**2, discordance=0.17)
    s = seeds_needed(v, 7, 0.04)
    assert s is not None and s > 3
    assert minimum_detectable_difference(v, 7, n_seeds=s) <= 0.04 < minimum_detectable_difference(v, 7, n_seeds=s - 1)
    assert seeds_needed(v, 7, 0.5) == 2  # any study of two seeds detects 50 points
    assert seeds_needed(Variance(600, 4, 0.2, 0.09**2, 0.2), 7, 0.04, most=20) is None  # seeds spread by 9 points
    tiny = {"naive": [np.ones(10, bool)] * 2, "a": [np.zeros(10, bool)] * 2}  # 10 questions: every one discordant
    assert study_power(tiny)["seeds_needed"] is None and study_power(tiny, target=100.0)["seeds_needed"] == 2


def test_replicate_variance_recovers_the_training_draw_and_not_the_seeds():
    rng = np.random.default_rng(0)
    seeds = rng.normal(0, 0.08, size=400)  # the seeds move a lot; within a seed the trainings by 0.03
    per_seed = [s + rng.normal(0, 0.03, size=3) for s in seeds]
    var, df = replicate_variance(per_seed + [[1.0]])  # a seed without replicates adds nothing
    assert df == 800 and var == pytest.approx(0.03**2, rel=0.1)
    assert replicate_variance([[0.1, 0.3], [0.5, 0.5]]) == (pytest.approx(0.01), 2)  # by hand: (0.02 + 0) / 2
    with pytest.raises(ValueError):
        replicate_variance([[0.1], [0.2]])


def test_averaging_trainings_shrinks_only_their_part_of_the_seed_variance():
    v = Variance(n_test=600, n_seeds=10, within=0.17, seed_var=0.0064, discordance=0.17)
    assert with_trainings(v, 0.0048, 1) == v
    assert with_trainings(v, 0.0048, 4).seed_var == pytest.approx(0.0064 - 0.0048 * 0.75)
    assert with_trainings(v, 0.01, 10).seed_var == 0.0  # floored: the measured parts need not add up
    assert minimum_detectable_difference(with_trainings(v, 0.0048, 4), 7) < minimum_detectable_difference(v, 7)
