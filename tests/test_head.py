import numpy as np
import pytest
from scipy.special import log_softmax

from relalign.head import (HeadSettings, OptionHead, cross_entropy, cv_losses, fit_head, head_logprobs,
                           one_standard_error_choice, prior_features, prior_start, target_matrix, zero_shot_logprobs)
from relalign.scoring import ScoredPrompts


def _features(n=200, m=4, d=8, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, m, n)
    hidden = rng.normal(size=(n, m, d)).astype(np.float32)
    hidden[np.arange(n), y, 0] += 2.0  # dimension 0 of the right option's hidden state is informative
    ll = rng.normal(size=(n, m)).astype(np.float32)
    ll[np.arange(n), y] += 0.5  # the prior is weakly informative
    sp = ScoredPrompts(letter_logprob=rng.normal(size=(n, m)).astype(np.float32), option_logprob=ll,
                       option_ntokens=np.ones((n, m), np.float32), option_hidden=hidden, last_hidden=None)
    return sp, y


def _penalised_loss(head: OptionHead, sp, t, n_rows, a0):
    loss = cross_entropy(head.logits(prior_features(sp), sp.option_hidden), t, n_rows)
    return loss + head.l2 * (((head.a - a0) ** 2).sum() + (head.b**2).sum() + (head.w**2).sum())


def test_a_huge_penalty_leaves_the_zero_shot_answer():
    sp, y = _features()
    for prior in ("ll_mean", "letter"):
        head = fit_head(sp, y, settings=HeadSettings(prior=prior, l2=1e9))
        np.testing.assert_allclose(head_logprobs(head, sp), zero_shot_logprobs(sp, prior), atol=1e-6)


def test_training_learns_from_the_features():
    sp, y = _features()
    test, yt = _features(seed=1)
    zero = (zero_shot_logprobs(test).argmax(1) == yt).mean()
    head = fit_head(sp, y, settings=HeadSettings(l2=1e-3))
    assert (head_logprobs(head, test).argmax(1) == yt).mean() > zero + 0.2


def test_the_fit_is_the_optimum_of_the_penalised_loss():
    """No step in any direction lowers the objective: the head is its minimiser, not an iterate."""
    sp, y = _features(n=60, d=5)
    s = HeadSettings(l2=0.05)
    head = fit_head(sp, y, settings=s)
    t, a0 = target_matrix(y, None, 4), prior_start(s.prior)
    best = _penalised_loss(head, sp, t, 60, a0)
    rng = np.random.default_rng(0)
    for _ in range(20):
        moved = OptionHead(head.a + 1e-3 * rng.normal(size=3), head.b + 1e-3 * rng.normal(size=4),
                           head.w + 1e-3 * rng.normal(size=5), head.mu, head.sd, head.l2, 0)
        assert _penalised_loss(moved, sp, t, 60, a0) > best


def test_features_rounded_differently_give_the_same_predictions():
    """What a CPU with other fp32 kernels does to the features (relative 1e-6) must not move the
    head: its log-probabilities stay within 1e-4 and no prediction flips."""
    sp, y = _features(n=60, d=64)  # few rows, many features: where an unconverged fit hangs on rounding
    test, _ = _features(n=300, d=64, seed=1)
    rng = np.random.default_rng(1)
    noisy = ScoredPrompts(*(a * (1 + 1e-6 * rng.standard_normal(a.shape)).astype(np.float32)
                            for a in (sp.letter_logprob, sp.option_logprob)), sp.option_ntokens,
                          sp.option_hidden * (1 + 1e-6 * rng.standard_normal(sp.option_hidden.shape)).astype(np.float32),
                          None)
    s = HeadSettings(l2=0.01)
    a, b = head_logprobs(fit_head(sp, y, settings=s), test), head_logprobs(fit_head(noisy, y, settings=s), test)
    np.testing.assert_allclose(a, b, atol=1e-4)
    assert (a.argmax(1) == b.argmax(1)).all()


def test_zero_weight_rows_are_ignored():
    sp, y = _features()
    w = np.r_[np.zeros(100), np.ones(100)]
    one, other = y.copy(), y.copy()
    one[:100] = (y[:100] + 1) % 4
    other[:100] = (y[:100] + 2) % 4
    s = HeadSettings(l2=0.1)
    a, b = fit_head(sp, one, w, s), fit_head(sp, other, w, s)
    for name in ("a", "b", "w"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_deterministic_and_checks_targets():
    sp, y = _features()
    a = head_logprobs(fit_head(sp, y, settings=HeadSettings(l2=0.1)), sp)
    b = head_logprobs(fit_head(sp, y, settings=HeadSettings(l2=0.1)), sp)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError):
        fit_head(sp, y[:-1])
    with pytest.raises(ValueError):
        fit_head(sp, y + 4)
    with pytest.raises(ValueError, match="must be > 0"):
        fit_head(sp, y, settings=HeadSettings(l2=0.0))


def test_prior_features_are_normalised():
    sp, _ = _features(n=3)
    pf = prior_features(sp)
    assert pf.shape == (3, 4, 3)
    np.testing.assert_allclose(np.exp(pf[..., 2]).sum(1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(pf[..., 2], log_softmax(sp.letter_logprob.astype(float), axis=1))


def test_merged_rows_give_the_same_head_as_repeated_rows():
    sp, y = _features(n=40)
    reps = 3
    w = np.tile(np.array([1.0, 0.5, 0.25]), 40)
    rep = ScoredPrompts(*(np.repeat(a, reps, axis=0) for a in (sp.letter_logprob, sp.option_logprob,
                                                              sp.option_ntokens, sp.option_hidden)), None)
    y_rep = np.stack([y, (y + 1) % 4, (y + 2) % 4], 1).reshape(-1)
    s = HeadSettings(l2=0.1)
    a = fit_head(rep, y_rep, w, s)
    t = target_matrix(y_rep, w, 4).reshape(40, reps, 4).sum(1)
    b = fit_head(sp, t, settings=s, counts=np.full(40, reps))
    for name in ("a", "b", "w"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), atol=1e-6)


def test_the_head_saves_and_loads_exactly(tmp_path):
    sp, y = _features(n=30)
    head = fit_head(sp, y, settings=HeadSettings(l2=0.1))
    head.save(tmp_path / "head.npz")
    np.testing.assert_array_equal(head_logprobs(OptionHead.load(tmp_path / "head.npz"), sp), head_logprobs(head, sp))
    bare = fit_head(sp, y, settings=HeadSettings(l2=0.1, use_hidden=False))
    bare.save(tmp_path / "bare.npz")
    assert OptionHead.load(tmp_path / "bare.npz").w is None


def test_cross_validated_l2_comes_from_the_grid_and_is_deterministic():
    sp, y = _features(n=120)
    s = HeadSettings(l2=None, l2_grid=(0.01, 100.0), cv_folds=3)
    a, b = fit_head(sp, y, settings=s), fit_head(sp, y, settings=s)
    assert a.l2 == b.l2 == 0.01  # the hidden feature is informative: a huge penalty would throw it away


def test_one_standard_error_rule_prefers_the_stronger_penalty_within_noise():
    grid = (0.01, 0.1, 1.0, 10.0)
    folds = np.array([[0.50, 0.60, 0.55], [0.51, 0.59, 0.56], [0.53, 0.60, 0.57], [0.90, 0.95, 0.93]])
    # lowest mean: 0.01 (0.55); its standard error over folds is 0.029, so 0.1 (0.5533) and 1.0 (0.5667) tie with it
    assert one_standard_error_choice(grid, folds) == 1.0
    # a difference in the last digits between two grid points never decides the choice
    near = np.array([[0.5, 0.5], [0.5 + 1e-12, 0.5 - 1e-12], [0.7, 0.7], [0.8, 0.8]])
    assert one_standard_error_choice(grid, near) == 0.1
    assert one_standard_error_choice(grid, near[:, :1]) == 0.1  # one fold: the lowest, ties to the stronger


def test_cv_losses_are_validation_losses_of_heads_fitted_on_the_other_folds():
    sp, y = _features(n=30, d=4)
    s = HeadSettings(l2_grid=(0.1, 1.0), cv_folds=3)
    t = target_matrix(y, None, 4)
    groups = np.arange(30)
    losses = cv_losses(sp, t, np.ones(30), groups, s)
    assert losses.shape == (2, 3)
    # fold 0 by hand: the questions the seeded permutation deals to it
    order = np.random.RandomState(s.seed).permutation(30)
    val = np.isin(groups, order[0::3])
    sub = ScoredPrompts(sp.letter_logprob[~val], sp.option_logprob[~val], sp.option_ntokens[~val],
                        sp.option_hidden[~val], None)
    head = fit_head(sub, y[~val], settings=HeadSettings(l2=1.0))
    want = cross_entropy(head.logits(prior_features(sp)[val], sp.option_hidden[val]), t[val], val.sum())
    assert losses[1, 0] == pytest.approx(want, rel=1e-9)
