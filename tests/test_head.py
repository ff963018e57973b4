import numpy as np
import torch

from relalign.head import HeadSettings, fit_head, head_logprobs, prior_features, zero_shot_logprobs
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


def test_untrained_head_is_the_zero_shot_answer():
    sp, y = _features()
    head = fit_head(sp, y, settings=HeadSettings(epochs=0))
    np.testing.assert_allclose(head_logprobs(head, sp), zero_shot_logprobs(sp, "ll_mean"), atol=1e-5)
    head = fit_head(sp, y, settings=HeadSettings(epochs=0, prior="letter"))
    np.testing.assert_allclose(head_logprobs(head, sp), zero_shot_logprobs(sp, "letter"), atol=1e-5)


def test_training_learns_from_the_features():
    sp, y = _features()
    test, yt = _features(seed=1)
    zero = (zero_shot_logprobs(test).argmax(1) == yt).mean()
    head = fit_head(sp, y, settings=HeadSettings(epochs=200, l2=1e-3))
    assert (head_logprobs(head, test).argmax(1) == yt).mean() > zero + 0.2


def test_zero_weight_rows_are_ignored():
    sp, y = _features()
    w = np.r_[np.zeros(100), np.ones(100)]
    one, other = y.copy(), y.copy()
    one[:100] = (y[:100] + 1) % 4
    other[:100] = (y[:100] + 2) % 4
    s = HeadSettings(epochs=50)
    a, b = fit_head(sp, one, w, s), fit_head(sp, other, w, s)
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, atol=0, rtol=0)


def test_deterministic_and_checks_targets():
    sp, y = _features()
    a = head_logprobs(fit_head(sp, y, settings=HeadSettings(epochs=30)), sp)
    b = head_logprobs(fit_head(sp, y, settings=HeadSettings(epochs=30)), sp)
    np.testing.assert_array_equal(a, b)
    import pytest

    with pytest.raises(ValueError):
        fit_head(sp, y[:-1])
    with pytest.raises(ValueError):
        fit_head(sp, y + 4)


def test_prior_features_are_normalised():
    sp, _ = _features(n=3)
    pf = prior_features(sp)
    assert pf.shape == (3, 4, 3)
    np.testing.assert_allclose(np.exp(pf[..., 2]).sum(1), 1.0, rtol=1e-5)


def test_merged_rows_give_the_same_head_as_repeated_rows():
    from relalign.head import target_matrix

    sp, y = _features(n=40)
    reps = 3
    w = np.tile(np.array([1.0, 0.5, 0.25]), 40)
    rep = ScoredPrompts(*(np.repeat(a, reps, axis=0) for a in (sp.letter_logprob, sp.option_logprob,
                                                              sp.option_ntokens, sp.option_hidden)), None)
    y_rep = np.stack([y, (y + 1) % 4, (y + 2) % 4], 1).reshape(-1)
    s = HeadSettings(epochs=40, l2=0.1)
    a = fit_head(rep, y_rep, w, s)
    t = target_matrix(y_rep, w, 4).reshape(40, reps, 4).sum(1)
    b = fit_head(sp, t, settings=s, counts=np.full(40, reps))
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, atol=1e-4, rtol=1e-3)


def test_cross_validated_l2_comes_from_the_grid_and_is_deterministic():
    sp, y = _features(n=120)
    s = HeadSettings(epochs=30, l2=None, l2_grid=(0.01, 100.0), cv_folds=3)
    a, b = fit_head(sp, y, settings=s), fit_head(sp, y, settings=s)
    assert a.l2 == b.l2 and a.l2 in (0.01, 100.0)
    assert a.l2 == 0.01  # the hidden feature is informative: a huge penalty would throw it away
