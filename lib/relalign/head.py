"""``head`` training mode: a small option scorer on a frozen model's features.

The frozen model scores each prompt once (:mod:`relalign.scoring`); the head turns the
per-option features into one logit per listed option:

    s_j = a . prior_j  +  w . z(h_j)  +  b_pos[j]

* ``prior_j`` -- the model's own option log-probabilities: the length-normalised and summed
  log-likelihood of option j's text where it stands in the listing, and the log-probability
  of its letter (normalised over the letters). ``a`` starts as a one-hot on
  ``prior`` (default: the length-normalised log-likelihood), so an untrained head *is* the
  model's zero-shot answer, and training moves away from it only as far as the data asks.
  (A head trained from scratch on frozen features fell below the model's own zero-shot answer
  on HellaSwag; see ``shared/study/assets.md``.)
* ``z(h_j)`` -- the standardised mean hidden state over option j's tokens; ``w`` starts at 0.
* ``b_pos`` -- a bias per listing position (letter bias), starting at 0.

The loss is :func:`relalign.losses.weighted_cross_entropy` (computed as
:func:`~relalign.losses.soft_cross_entropy` once per distinct prompt), the same normalisation as
the LoRA mode: the mean over answers of weight x cross-entropy. Training is full-batch Adam with
an L2 penalty that pulls the head back to its start; its strength is chosen from a grid by
cross-validation on the training rows (grouped by question) unless params fix it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .losses import aux_coefficient, aux_soft_targets, soft_cross_entropy
from .scoring import ScoredPrompts

PRIORS = ("ll_mean", "ll_sum", "letter")


def prior_features(sp: ScoredPrompts) -> np.ndarray:
    """[n, m, 3] scalar features per option, in the order of :data:`PRIORS`."""
    ll_mean = sp.option_logprob / np.maximum(sp.option_ntokens, 1)
    letter = sp.letter_logprob - np.logaddexp.reduce(sp.letter_logprob, axis=1, keepdims=True)
    return np.stack([ll_mean, sp.option_logprob, letter], axis=-1).astype(np.float32)


@dataclass
class HeadSettings:
    prior: str = "ll_mean"  # which prior the head starts at
    use_hidden: bool = True
    epochs: int = 300  # full-batch steps
    lr: float = 0.02
    l2: float | None = None  # penalty on w, b and a's distance from its start; None: chosen by CV
    l2_grid: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0)
    cv_folds: int = 5
    seed: int = 0
    # Auxiliary confidence loss (Burns et al. 2023; relalign.losses.aux_soft_targets): full weight
    # aux_coef, ramped linearly from 0 over the first aux_warmup fraction of the epochs; 0: off.
    aux_coef: float = 0.0
    aux_warmup: float = 0.2


class OptionHead(nn.Module):
    def __init__(self, n_options: int, hidden_dim: int, settings: HeadSettings):
        super().__init__()
        if settings.prior not in PRIORS:
            raise ValueError(f"head prior must be one of {PRIORS}, got {settings.prior!r}")
        start = torch.zeros(len(PRIORS))
        start[PRIORS.index(settings.prior)] = 1.0
        self.register_buffer("a0", start)
        self.a = nn.Parameter(start.clone())
        self.w = nn.Parameter(torch.zeros(hidden_dim)) if settings.use_hidden else None
        self.b = nn.Parameter(torch.zeros(n_options))
        self.register_buffer("mu", torch.zeros(hidden_dim))
        self.register_buffer("sd", torch.ones(hidden_dim))

    def forward(self, prior: torch.Tensor, hidden: torch.Tensor | None) -> torch.Tensor:
        s = prior @ self.a + self.b
        if self.w is not None and hidden is not None:
            s = s + ((hidden - self.mu) / self.sd) @ self.w
        return s

    def penalty(self) -> torch.Tensor:
        p = ((self.a - self.a0) ** 2).sum() + (self.b**2).sum()
        if self.w is not None:
            p = p + (self.w**2).sum()
        return p


def _tensors(sp: ScoredPrompts, use_hidden: bool):
    prior = torch.from_numpy(prior_features(sp))
    hidden = torch.from_numpy(sp.option_hidden) if use_hidden and sp.option_hidden is not None else None
    return prior, hidden


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
    t = np.zeros((n, n_options), np.float32)
    t[np.arange(n), targets] = w
    return t


def _train(prior, z, t, n_rows: float, s: HeadSettings, l2: float, head: OptionHead) -> OptionHead:
    """Full-batch Adam on sum(t * -log p) / n_rows + l2 * penalty (z: standardised hidden states).

    With ``s.aux_coef > 0`` the targets t are mixed with the head's own hardened predictions
    (:func:`relalign.losses.aux_soft_targets`) at coefficient
    ``aux_coefficient(step / epochs, s.aux_coef, s.aux_warmup)``."""
    torch.manual_seed(s.seed)
    opt = torch.optim.Adam(head.parameters(), lr=s.lr)
    for step in range(s.epochs):
        opt.zero_grad()
        logits = prior @ head.a + head.b
        if z is not None:
            logits = logits + z @ head.w
        coef = aux_coefficient(step / s.epochs, s.aux_coef, s.aux_warmup)
        loss = soft_cross_entropy(logits, aux_soft_targets(logits, t, coef), n_rows) + l2 * head.penalty()
        loss.backward()
        opt.step()
    head.eval()
    return head


def _new_head(prior, hidden, m: int, s: HeadSettings):
    d = hidden.shape[-1] if hidden is not None else 1
    head = OptionHead(m, d, s)
    z = None
    if hidden is not None:
        flat = hidden.reshape(-1, d)
        head.mu.copy_(flat.mean(0))
        head.sd.copy_(flat.std(0).clamp_min(1e-6))
        z = (hidden - head.mu) / head.sd
    return head, z


def select_l2(sp: ScoredPrompts, t: np.ndarray, counts: np.ndarray, groups: np.ndarray, s: HeadSettings) -> float:
    """The l2 of ``s.l2_grid`` with the lowest cross-validated loss on the training rows themselves.

    Folds never split a group (a question), so a question's rows are never both trained on and
    validated on. Ties go to the stronger penalty."""
    uniq = np.unique(groups)
    order = np.random.RandomState(s.seed).permutation(len(uniq))
    folds = [set(uniq[order[f::s.cv_folds]]) for f in range(min(s.cv_folds, len(uniq)))]
    prior, hidden = _tensors(sp, s.use_hidden)
    tt = torch.from_numpy(t)
    best, best_loss = None, float("inf")
    for l2 in sorted(s.l2_grid, reverse=True):
        losses = []
        for fold in folds:
            val = np.array([g in fold for g in groups])
            tr = torch.from_numpy(~val)
            head, z = _new_head(prior[tr], hidden[tr] if hidden is not None else None, t.shape[1], s)
            _train(prior[tr], z, tt[tr], float(counts[~val].sum()), s, l2, head)
            with torch.no_grad():
                logits = head(prior[torch.from_numpy(val)], hidden[torch.from_numpy(val)] if hidden is not None else None)
                losses.append(float(soft_cross_entropy(logits, tt[torch.from_numpy(val)], float(counts[val].sum()))))
        loss = float(np.mean(losses))
        if loss < best_loss - 1e-9:
            best, best_loss = l2, loss
    return best


def fit_head(
    sp: ScoredPrompts,
    targets: np.ndarray,
    weights: np.ndarray | None = None,
    settings: HeadSettings | None = None,
    *,
    counts: np.ndarray | None = None,
    groups: np.ndarray | None = None,
) -> OptionHead:
    """Train a head on scored prompts.

    ``targets``: one listing position per row (with ``weights``), or an ``[n, m]`` matrix of target
    weights when several training rows share one prompt (:class:`relalign.learners.HeadLearner`
    merges them: the loss is linear in the targets, so this is the same loss, computed once per
    prompt). ``counts[i]``: how many training rows prompt i stands for (the loss's denominator).
    ``groups``: the question of each prompt, for cross-validation when ``settings.l2`` is None.
    """
    s = settings or HeadSettings()
    n, m = sp.letter_logprob.shape
    t = np.asarray(targets, dtype=np.float32) if np.ndim(targets) == 2 else target_matrix(targets, weights, m)
    if t.shape != (n, m):
        raise ValueError(f"need one target per scored prompt: {t.shape[0]} vs {n}")
    counts = np.ones(n) if counts is None else np.asarray(counts, dtype=float)
    l2 = s.l2
    if l2 is None:
        l2 = select_l2(sp, t, counts, np.arange(n) if groups is None else np.asarray(groups), s)
    prior, hidden = _tensors(sp, s.use_hidden)
    head, z = _new_head(prior, hidden, m, s)
    head.l2 = l2
    return _train(prior, z, torch.from_numpy(t), float(counts.sum()), s, l2, head)


@torch.no_grad()
def head_logprobs(head: OptionHead, sp: ScoredPrompts) -> np.ndarray:
    """[n, m] log-probabilities over the listed options."""
    prior, hidden = _tensors(sp, head.w is not None)
    return torch.log_softmax(head(prior, hidden), dim=-1).numpy()


def zero_shot_logprobs(sp: ScoredPrompts, prior: str = "ll_mean") -> np.ndarray:
    """The untrained answer: log-softmax of one prior feature."""
    x = prior_features(sp)[..., PRIORS.index(prior)]
    return x - np.logaddexp.reduce(x, axis=1, keepdims=True)
