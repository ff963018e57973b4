"""How large a difference from naive a study can detect: its minimum detectable difference (MDE).

Pure numpy / scipy (no torch). A study compares ``m`` methods with naive on the same test
questions in each of its seeds and calls a difference significant when its two-sided bootstrap
p-value, Holm-adjusted over the ``m`` comparisons, is below ``alpha`` (:mod:`relalign.stats`). A
single true effect among nulls must clear Holm's first bar, ``alpha / m``. The difference in
accuracy between a method and naive, averaged over ``n_seeds`` seeds of ``n_test`` questions, has
variance

    SE^2 = (within / n_test + seed_var) / n_seeds

where ``within`` is the variance of one question's difference (right minus wrong, 0 where the two
agree: the discordance, the share of questions where exactly one of them is right, less the
squared mean difference) and ``seed_var`` how much the true difference itself moves from seed to
seed (other splits, other training), beyond what ``within`` explains. The bootstrap's own spread
is wider than SE (:func:`minimum_detectable_difference`), and the MDE at ``power`` is the true
difference that clears the bar with that probability.

:func:`variance_components` measures ``within`` and ``seed_var`` from a study's runs;
:func:`simulated_power` runs the study's own bootstrap test on synthetic studies, to check the
formula (``tests/test_power.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping, Sequence

import numpy as np
from scipy.stats import norm

__all__ = ["Variance", "variance_components", "minimum_detectable_difference", "seeds_needed", "simulated_power",
           "study_power", "replicate_variance", "with_trainings", "TARGET_MDE"]

TARGET_MDE = 4.0  # points: the detectable difference a study is designed for (relalign.compare.conditions)


@dataclass(frozen=True)
class Variance:
    """What the MDE of one comparison depends on, measured on a study's seeds."""

    n_test: float  # questions per seed (mean over seeds)
    n_seeds: int
    within: float  # variance of one question's difference, mean over seeds
    seed_var: float  # variance of the true difference between seeds (0 when not measurable)
    discordance: float  # share of questions where exactly one of the two is right, mean over seeds


def _paired(method: Sequence[np.ndarray], reference: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Per seed, each question's difference (method right minus reference right: -1, 0 or 1)."""
    if len(method) != len(reference) or not len(method):
        raise ValueError("need the same, non-zero number of seeds for the method and the reference")
    out = []
    for a, b in zip(method, reference):
        a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        if a.shape != b.shape or a.size == 0:
            raise ValueError(f"a seed's test sets differ: {a.shape} vs {b.shape}")
        out.append(a - b)
    return out


def variance_components(method: Sequence[np.ndarray], reference: Sequence[np.ndarray]) -> Variance:
    """``within``, ``seed_var`` and the discordance of a method against the reference (naive) from
    whether each test question was answered right in each seed. ``seed_var`` is the variance of the
    per-seed mean differences (ddof 1) less the part that test-set sampling explains, floored at 0;
    with one seed it cannot be measured and is 0."""
    diffs = _paired(method, reference)
    n = np.array([len(d) for d in diffs], dtype=float)
    means = np.array([d.mean() for d in diffs])
    within = np.array([d.var() for d in diffs])
    seed_var = 0.0
    if len(diffs) > 1:
        seed_var = max(0.0, float(means.var(ddof=1) - np.mean(within / n)))
    return Variance(n_test=float(n.mean()), n_seeds=len(diffs), within=float(within.mean()), seed_var=seed_var,
                    discordance=float(np.mean([np.mean(d != 0) for d in diffs])))


def replicate_variance(per_seed: Sequence[Sequence[float]]) -> tuple[float, int]:
    """The variance of a quantity between replicates of one seed (the same splits and weak labels,
    the strong trainings drawn again: ``training.strong_seed``), pooled over seeds (ddof 1 in each),
    and its degrees of freedom. Seeds with fewer than two values add nothing."""
    groups = [np.asarray(g, dtype=float) for g in per_seed if len(g) > 1]
    df = sum(len(g) - 1 for g in groups)
    if not df:
        raise ValueError("need a seed with at least two replicates")
    return float(sum(((g - g.mean()) ** 2).sum() for g in groups) / df), df


def with_trainings(v: Variance, training_var: float, trainings: int) -> Variance:
    """``v`` for a study in which each seed's accuracy of a method is the mean over ``trainings``
    trainings of it (replicates, on the same test questions) instead of one: the part of the seed
    variance that the training draw makes (``training_var``, :func:`replicate_variance` of the
    difference from naive) shrinks by that factor; the rest -- splits, weak labels -- stays."""
    if trainings < 1:
        raise ValueError("need at least one training")
    return replace(v, seed_var=max(0.0, v.seed_var - training_var * (1 - 1 / trainings)))


def minimum_detectable_difference(v: Variance, n_compared: int, alpha: float = 0.05, power: float = 0.8,
                                  n_test: float | None = None, n_seeds: int | None = None) -> float:
    """The true difference in accuracy (a fraction; x100 for points) that the study's test -- the
    two-level bootstrap of :mod:`relalign.stats`, Holm-adjusted over ``n_compared`` comparisons --
    detects with probability ``power``, given the variance components ``v``, at ``v``'s own test-set
    size and seeds or at ``n_test`` / ``n_seeds`` (what a study of another size would detect).

    The estimate's own standard error is ``SE = sqrt((within / n + seed_var) / S)``. The bootstrap
    draws the S seeds, then each drawn seed's questions: its variance is
    ``SE_boot^2 = (within / n * (2S - 1) / S + seed_var * (S - 1) / S) / S`` (the seed draw counts
    each seed's sampling noise once more), wider than ``SE`` for S > 1, so the test is conservative.
    A difference is called when it exceeds ``z(1 - alpha / (2 m)) SE_boot``, hence
    ``MDE = z(1 - alpha / (2 m)) SE_boot + z(power) SE``. The within-question variance is taken at
    no difference (``discordance``), the conservative end."""
    if n_compared < 1 or not 0 < alpha < 1 or not 0 < power < 1:
        raise ValueError("need n_compared >= 1, 0 < alpha < 1 and 0 < power < 1")
    n = v.n_test if n_test is None else n_test
    s = v.n_seeds if n_seeds is None else n_seeds
    se = np.sqrt((v.discordance / n + v.seed_var) / s)
    se_boot = np.sqrt((v.discordance / n * (2 * s - 1) / s + v.seed_var * (s - 1) / s) / s)
    return float(norm.ppf(1 - alpha / (2 * n_compared)) * se_boot + norm.ppf(power) * se)


def seeds_needed(v: Variance, n_compared: int, target: float, alpha: float = 0.05, power: float = 0.8,
                 most: int = 100) -> int | None:
    """The fewest seeds (at least 2, of ``v``'s test-set size) at which the MDE is at most ``target``
    (a fraction), given the variance components ``v``; None where even ``most`` seeds would not do."""
    for s in range(2, most + 1):
        if minimum_detectable_difference(v, n_compared, alpha, power, n_seeds=s) <= target:
            return s
    return None


def study_power(correct: Mapping[str, Sequence[np.ndarray]], reference: str = "naive",
                exclude: Sequence[str] = ("weak", "ceiling"), alpha: float = 0.05, power: float = 0.8,
                target: float = TARGET_MDE) -> dict:
    """The MDE of a study (method -> one boolean array per seed), from the variance components
    pooled over its methods compared with ``reference``: ``mde`` (points of accuracy), the pooled
    ``discordance``, ``seed_sd`` (points), ``n_compared``, ``n_test`` and ``n_seeds``, the MDE per
    method (``by_method``), and ``seeds_needed`` to detect ``target`` points (:func:`seeds_needed`)."""
    compared = [m for m in correct if m != reference and m not in exclude]
    if reference not in correct or not compared:
        raise ValueError(f"need {reference!r} and at least one method to compare with it")
    parts = {m: variance_components(correct[m], correct[reference]) for m in compared}
    pooled = Variance(n_test=parts[compared[0]].n_test, n_seeds=parts[compared[0]].n_seeds,
                      within=float(np.mean([p.within for p in parts.values()])),
                      seed_var=float(np.mean([p.seed_var for p in parts.values()])),
                      discordance=float(np.mean([p.discordance for p in parts.values()])))
    m = len(compared)
    return {"mde": 100 * minimum_detectable_difference(pooled, m, alpha, power), "discordance": pooled.discordance,
            "seed_sd": 100 * float(np.sqrt(pooled.seed_var)), "n_compared": m, "n_test": pooled.n_test,
            "n_seeds": pooled.n_seeds, "power": power, "alpha": alpha,
            "seeds_needed": seeds_needed(pooled, m, target / 100, alpha, power),
            "by_method": {k: 100 * minimum_detectable_difference(p, m, alpha, power) for k, p in parts.items()}}


def _synthetic_seed(rng: np.random.Generator, n_test: int, p_reference: float, discordance: float,
                    effects: np.ndarray) -> np.ndarray:
    """One seed's (questions x methods) outcomes: column 0 the reference, right with probability
    ``p_reference``; method j is right where the reference is wrong with probability
    (discordance + effects[j]) / 2 overall, and wrong where it is right with probability
    (discordance - effects[j]) / 2: it disagrees on ``discordance`` of the questions and is
    ``effects[j]`` more accurate."""
    ref = rng.random(n_test) < p_reference
    cols = [ref]
    for e in effects:
        gain, loss = (discordance + e) / 2, (discordance - e) / 2
        if not (0 <= loss <= p_reference and 0 <= gain <= 1 - p_reference):
            raise ValueError(f"effect {e} and discordance {discordance} do not fit an accuracy of {p_reference}")
        u = rng.random(n_test)
        cols.append(np.where(ref, u >= loss / p_reference, u < gain / (1 - p_reference)))
    return np.column_stack(cols)


def simulated_power(effect: float, n_compared: int, n_test: int, n_seeds: int, discordance: float,
                    seed_sd: float = 0.0, p_reference: float = 0.7, n_sim: int = 200, n_boot: int = 2000,
                    alpha: float = 0.05, seed: int = 0) -> float:
    """The share of ``n_sim`` synthetic studies in which :func:`relalign.stats.bootstrap_methods`
    gives a method whose true difference from the reference is ``effect`` (a fraction) a
    Holm-adjusted p-value below ``alpha``, beside ``n_compared - 1`` methods with no difference;
    each seed's true difference is ``effect`` plus N(0, seed_sd). (The p-value, not the call: with
    the few draws a simulation can afford, more calls would be too close to make than in a study,
    which draws until they are not.)"""
    from .stats import bootstrap_methods

    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(n_sim):
        seeds = []
        for _s in range(n_seeds):
            effects = np.zeros(n_compared)
            effects[0] = effect + seed_sd * rng.standard_normal()
            effects[1:] = seed_sd * rng.standard_normal(n_compared - 1)
            seeds.append(_synthetic_seed(rng, n_test, p_reference, discordance,
                                         np.clip(effects, -discordance, discordance)))
        correct = {"naive": [s[:, 0] for s in seeds]}
        correct.update({f"m{j}": [s[:, j + 1] for s in seeds] for j in range(n_compared)})
        out = bootstrap_methods(correct, n_boot=n_boot, max_boot=n_boot, alpha=alpha, seed=int(rng.integers(2**31)))
        hits += bool(out.loc["m0", "p_holm"] < alpha)
    return hits / n_sim
