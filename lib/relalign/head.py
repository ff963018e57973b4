"""``head`` training mode: a small option scorer on a frozen model's features.

The frozen model scores each prompt once (:mod:`relalign.scoring`); the head turns the
per-option features into one logit per listed option:

    s_j = a . prior_j  +  w . z(h_j)  +  b_pos[j]

* ``prior_j`` -- the model's own option log-probabilities: the length-normalised and summed
  log-likelihood of option j's text where it stands in the listing, and the log-probability
  of its letter (normalised over the letters). ``a`` is pulled towards a one-hot ``a0`` on
  ``prior`` (default: the length-normalised log-likelihood), so an untrained head *is* the
  model's zero-shot answer, and training moves away from it only as far as the data asks.
  (A head trained from scratch on frozen features fell below the model's own zero-shot answer
  on HellaSwag; see ``shared/study/assets.md``.)
* ``z(h_j)`` -- the standardised mean hidden state over option j's tokens;
* ``b_pos`` -- a bias per listing position (letter bias).

The fit minimises

    L(a, b, w) = sum_i sum_j t_ij (-log softmax(s_i)_j) / n_rows  +  l2 (|a - a0|^2 + |b|^2 + |w|^2)

where ``t_ij`` is the summed weight of the training rows of prompt i labelled j and ``n_rows``
the number of training rows: the mean over rows of weight x cross-entropy, the normalisation of
the LoRA mode (:mod:`relalign.losses`). With ``l2 > 0`` the objective is strictly convex, so it
has exactly one minimiser, which L-BFGS finds in float64 to a gradient tolerance. The fit
therefore depends on no learning rate, step count or starting point, and features that differ in
their last digits (fp32 kernels round differently on different CPUs) give heads that differ as
little. (Full-batch Adam at a constant rate, which this replaces, never converged: each of the
~1,500 weights kept oscillating by about the step size, and the last iterate hung on rounding.)

The penalty's strength is chosen from a grid by cross-validation on the training rows, folds
grouped by question, with the one-standard-error rule: the strongest penalty whose mean
validation loss is within one standard error (over folds) of the lowest. Grid points whose losses
differ by rounding noise are ties that the rule resolves towards the stronger penalty.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_softmax

if TYPE_CHECKING:  # scoring needs torch; a head does not
    from .scoring import ScoredPrompts


PRIORS = ("ll_mean", "ll_sum", "letter")
GRADIENT_TOLERANCE = 1e-9  # L-BFGS stops when no gradient entry is larger ...
CONVERGED = 1e-6  # ... and a fit whose largest gradient entry stays above this is an error
MAX_ITERATIONS = 20_000
AUX_STAGES = 20  # at most this many convex solves find the auxiliary loss's fixed point


@dataclass
class HeadSettings:
    prior: str = "ll_mean"  # which prior the head starts at
    use_hidden: bool = True
    l2: float | None = None  # penalty on w, b and a's distance from a0; None: chosen by CV
    l2_grid: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0)
    cv_folds: int = 5
    seed: int = 0  # assigns questions to cross-validation folds
    # Auxiliary confidence loss (Burns et al. 2023): the targets mix the weak labels with the
    # head's own hardened predictions at aux_coef (see _fit); 0: off.
    aux_coef: float = 0.0


def prior_features(sp: ScoredPrompts) -> np.ndarray:
    """[n, m, 3] scalar features per option, in the order of :data:`PRIORS` (float64)."""
    lp = sp.option_logprob.astype(np.float64)
    ll_mean = lp / np.maximum(sp.option_ntokens, 1)
    letter = log_softmax(sp.letter_logprob.astype(np.float64), axis=1)
    return np.stack([ll_mean, lp, letter], axis=-1)


def prior_start(prior: str) -> np.ndarray:
    """``a0``: the one-hot on ``prior`` that makes an untrained head the zero-shot answer."""
    if prior not in PRIORS:
        raise ValueError(f"head prior must be one of {PRIORS}, got {prior!r}")
    return np.eye(len(PRIORS))[PRIORS.index(prior)]


@dataclass
class OptionHead:
    """A fitted head: its weights, the standardisation of the hidden states, and how it was fitted."""

    a: np.ndarray  # [3]
    b: np.ndarray  # [m]
    w: np.ndarray | None  # [d], None without hidden states
    mu: np.ndarray | None  # [d]
    sd: np.ndarray | None  # [d]
    l2: float
    iterations: int  # L-BFGS iterations, summed over the solves of the fit

    def logits(self, prior: np.ndarray, hidden: np.ndarray | None) -> np.ndarray:
        s = prior @ self.a + self.b
        if self.w is not None:
            s = s + ((hidden.astype(np.float64) - self.mu) / self.sd) @ self.w
        return s

    def save(self, path: Path) -> None:
        arrays = {"a": self.a, "b": self.b, "l2": np.float64(self.l2), "iterations": np.int64(self.iterations)}
        if self.w is not None:
            arrays.update(w=self.w, mu=self.mu, sd=self.sd)
        with open(path, "wb") as f:
            np.savez(f, **arrays)

    @classmethod
    def load(cls, path: Path) -> "OptionHead":
        with np.load(path) as z:
            hidden = {k: z[k] if k in z else None for k in ("w", "mu", "sd")}
            return cls(a=z["a"], b=z["b"], l2=float(z["l2"]), iterations=int(z["iterations"]), **hidden)


def target_matrix(targets: np.ndarray, weights: np.ndarray | None, n_options: int) -> np.ndarray:
    """[n, m] target weights: row i puts ``weights[i]`` on its target position."""
    targets = np.asarray(targets)
    n = len(targets)
    if targets.ndim != 1 or not np.issubdtype(targets.dtype, np.integer):
        raise ValueError("targets must be integer listing positions, one per row")
    if ((targets < 0) | (targets >= n_options)).any():
        raise ValueError("targets must be listing positions in [0, n_options)")
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != (n,):
        raise ValueError(f"need one weight per row: {w.shape} vs {n}")
    t = np.zeros((n, n_options))
    t[np.arange(n), targets] = w
    return t


@dataclass
class _Problem:
    """What one fit sees: float64 priors [n, m, 3], standardised hidden states [n, m, d] (or
    None), target weights [n, m] and the number of training rows they stand for."""

    prior: np.ndarray
    z: np.ndarray | None
    t: np.ndarray
    n_rows: float

    @property
    def sizes(self) -> tuple[int, int, int]:
        return self.prior.shape[2], self.t.shape[1], 0 if self.z is None else self.z.shape[2]


def _standardiser(hidden: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    flat = hidden.reshape(-1, hidden.shape[-1]).astype(np.float64)
    return flat.mean(0), np.maximum(flat.std(0), 1e-6)


def _unpack(theta: np.ndarray, sizes: tuple[int, int, int]):
    k, m, _ = sizes
    return theta[:k], theta[k:k + m], theta[k + m:]


def _logits(theta: np.ndarray, p: _Problem) -> np.ndarray:
    a, b, w = _unpack(theta, p.sizes)
    s = p.prior @ a + b
    return s if p.z is None else s + p.z @ w


def cross_entropy(logits: np.ndarray, t: np.ndarray, n_rows: float) -> float:
    """sum(t * -log softmax(logits)) / n_rows: the weighted mean cross-entropy over training rows."""
    return float(-(t * log_softmax(logits, axis=1)).sum() / max(n_rows, 1.0))


def _objective(theta: np.ndarray, p: _Problem, l2: float, a0: np.ndarray) -> tuple[float, np.ndarray]:
    """The penalised loss and its gradient."""
    a, b, w = _unpack(theta, p.sizes)
    logp = log_softmax(_logits(theta, p), axis=1)
    n = max(p.n_rows, 1.0)
    loss = -(p.t * logp).sum() / n + l2 * (((a - a0) ** 2).sum() + (b**2).sum() + (w**2).sum())
    g = (np.exp(logp) * p.t.sum(1, keepdims=True) - p.t) / n  # d loss / d logits
    grad_w = np.einsum("nm,nmd->d", g, p.z) if p.z is not None else np.zeros(0)
    grad = np.concatenate([np.einsum("nm,nmk->k", g, p.prior), g.sum(0), grad_w]) + 2 * l2 * (theta - _start(p, a0))
    return float(loss), grad


def _start(p: _Problem, a0: np.ndarray) -> np.ndarray:
    """The untrained head (the zero-shot answer), which is also the penalty's centre."""
    k, m, d = p.sizes
    return np.concatenate([a0, np.zeros(m + d)])


def _solve(p: _Problem, l2: float, a0: np.ndarray, start: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """The minimiser of :func:`_objective` (unique for l2 > 0) and the iterations L-BFGS took."""
    if not l2 > 0:
        raise ValueError(f"the head's l2 must be > 0 (it makes the fit's optimum unique), got {l2}")
    res = minimize(_objective, _start(p, a0) if start is None else start, args=(p, l2, a0), jac=True,
                   method="L-BFGS-B", options={"maxiter": MAX_ITERATIONS, "maxcor": 20, "ftol": 0.0,
                                               "gtol": GRADIENT_TOLERANCE})
    worst = float(np.abs(res.jac).max())
    if worst > CONVERGED:
        raise RuntimeError(f"head fit did not converge: largest gradient entry {worst:.1e} after {res.nit} "
                           f"iterations ({res.message})")
    return res.x, int(res.nit)


def _hardened(logits: np.ndarray) -> np.ndarray:
    """One-hot of each row's argmax."""
    return np.eye(logits.shape[1])[logits.argmax(1)]


def _fit(p: _Problem, l2: float, a0: np.ndarray, s: HeadSettings) -> tuple[np.ndarray, int]:
    """The fitted weights. With the auxiliary confidence loss, the loss's fixed point reached from
    the untrained head: solve ``k`` uses the targets ``(1 - c) t + c rowsum(t) onehot(argmax of
    solve k-1)`` (solve 0: the untrained head, the model's zero-shot answer), until the hardened
    targets stop changing (at most :data:`AUX_STAGES` solves). Burns et al. ramp ``c`` up while
    the model's own predictions become meaningful; a head's start is already the zero-shot answer,
    and a ramp over converged solves would hand the labels the whole fit before ``c`` rises."""
    if s.aux_coef == 0:
        return _solve(p, l2, a0)
    theta, total, used = _start(p, a0), 0, None
    for _ in range(AUX_STAGES):
        hard = _hardened(_logits(theta, p))
        if used is not None and np.array_equal(hard, used):
            break
        mixed = (1.0 - s.aux_coef) * p.t + s.aux_coef * p.t.sum(1, keepdims=True) * hard
        theta, nit = _solve(_Problem(p.prior, p.z, mixed, p.n_rows), l2, a0, start=theta)
        total, used = total + nit, hard
    return theta, total


def _problem(sp: ScoredPrompts, t: np.ndarray, counts: np.ndarray, use_hidden: bool, mask: np.ndarray | None = None):
    """The fit's inputs for the prompts of ``mask`` (all by default), hidden states standardised
    on those prompts; returns the problem and the standardisation (mu, sd, or None)."""
    mask = np.ones(len(t), bool) if mask is None else mask
    hidden = sp.option_hidden[mask] if use_hidden and sp.option_hidden is not None else None
    mu = sd = z = None
    if hidden is not None:
        mu, sd = _standardiser(hidden)
        z = (hidden.astype(np.float64) - mu) / sd
    return _Problem(prior_features(sp)[mask], z, t[mask], float(counts[mask].sum())), mu, sd


def _fit_on(sp: ScoredPrompts, t: np.ndarray, counts: np.ndarray, s: HeadSettings, l2: float,
            mask: np.ndarray | None = None) -> OptionHead:
    """The head fitted at ``l2`` on the prompts of ``mask`` (all by default)."""
    p, mu, sd = _problem(sp, t, counts, s.use_hidden, mask)
    theta, iterations = _fit(p, l2, prior_start(s.prior), s)
    a, b, w = _unpack(theta, p.sizes)
    return OptionHead(a=a, b=b, w=w if p.z is not None else None, mu=mu, sd=sd, l2=l2, iterations=iterations)


def _folds(groups: np.ndarray, s: HeadSettings) -> list[np.ndarray]:
    """Validation masks: the questions (groups) dealt into ``cv_folds`` seeded folds."""
    uniq = np.unique(groups)
    order = np.random.RandomState(s.seed).permutation(len(uniq))
    return [np.isin(groups, uniq[order[f::s.cv_folds]]) for f in range(min(s.cv_folds, len(uniq)))]


def cv_losses(sp: ScoredPrompts, t: np.ndarray, counts: np.ndarray, groups: np.ndarray, s: HeadSettings) -> np.ndarray:
    """[len(l2_grid), folds] validation loss (weighted mean cross-entropy per validation row) of
    a head fitted on the other folds, for each l2 of the grid."""
    folds = _folds(groups, s)
    prior = prior_features(sp)
    out = np.zeros((len(s.l2_grid), len(folds)))
    for i, l2 in enumerate(s.l2_grid):
        for j, val in enumerate(folds):
            head = _fit_on(sp, t, counts, s, l2, ~val)
            hidden = sp.option_hidden[val] if head.w is not None else None
            out[i, j] = cross_entropy(head.logits(prior[val], hidden), t[val], float(counts[val].sum()))
    return out


def one_standard_error_choice(grid: tuple[float, ...], losses: np.ndarray) -> float:
    """The strongest l2 whose mean loss over folds is within one standard error of the lowest mean
    (``losses`` [grid, folds]); with one fold, the lowest mean, ties to the stronger l2."""
    mean = losses.mean(1)
    best = int(np.argmin(mean))
    se = losses[best].std(ddof=1) / np.sqrt(losses.shape[1]) if losses.shape[1] > 1 else 0.0
    within = mean[best] + max(se, 1e-9 * abs(mean[best]))  # a rounding-level difference is a tie
    return max(l2 for l2, m in zip(grid, mean) if m <= within)


def select_l2(sp: ScoredPrompts, t: np.ndarray, counts: np.ndarray, groups: np.ndarray, s: HeadSettings) -> float:
    """The l2 of ``s.l2_grid`` that cross-validation on the training rows prefers (one-SE rule).
    Folds never split a group (a question), so a question's rows are never both trained on and
    validated on."""
    return one_standard_error_choice(tuple(s.l2_grid), cv_losses(sp, t, counts, groups, s))


def fit_head(
    sp: ScoredPrompts,
    targets: np.ndarray,
    weights: np.ndarray | None = None,
    settings: HeadSettings | None = None,
    *,
    counts: np.ndarray | None = None,
    groups: np.ndarray | None = None,
) -> OptionHead:
    """Fit a head on scored prompts.

    ``targets``: one listing position per row (with ``weights``), or an ``[n, m]`` matrix of target
    weights when several training rows share one prompt (:class:`relalign.learners.HeadLearner`
    merges them: the loss is linear in the targets, so this is the same loss, computed once per
    prompt). ``counts[i]``: how many training rows prompt i stands for (the loss's denominator).
    ``groups``: the question of each prompt, for cross-validation when ``settings.l2`` is None.
    """
    s = settings or HeadSettings()
    n, m = sp.letter_logprob.shape
    t = np.asarray(targets, dtype=np.float64) if np.ndim(targets) == 2 else target_matrix(targets, weights, m)
    if t.shape != (n, m):
        raise ValueError(f"need one target per scored prompt: {t.shape[0]} vs {n}")
    counts = np.ones(n) if counts is None else np.asarray(counts, dtype=float)
    l2 = s.l2 if s.l2 is not None else select_l2(sp, t, counts, np.arange(n) if groups is None else np.asarray(groups), s)
    return _fit_on(sp, t, counts, s, l2)


def head_logprobs(head: OptionHead, sp: ScoredPrompts) -> np.ndarray:
    """[n, m] log-probabilities over the listed options (float64)."""
    return log_softmax(head.logits(prior_features(sp), sp.option_hidden if head.w is not None else None), axis=1)


def zero_shot_logprobs(sp: ScoredPrompts, prior: str = "ll_mean") -> np.ndarray:
    """The untrained answer: log-softmax of one prior feature."""
    return log_softmax(prior_features(sp)[..., PRIORS.index(prior)], axis=1)
