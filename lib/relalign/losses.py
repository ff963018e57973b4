"""The one weighted loss every method trains with.

Definition (the same for naive, ceiling, filtering and re-weighting, in both training modes):

    loss = sum over answer tokens t of  w(row of t) * CE(t)  /  (number of answer tokens)

Prompt and padding positions are never counted, and the denominator is the number of answer
tokens, not the sum of the weights: a row of weight 0.5 contributes half the gradient of a row
of weight 1, exactly as the paper's "weight multiplies that row's token loss". With all
weights 1 it is the plain mean token cross-entropy. (The reference averaged its re-weighted
loss over every position, prompt and padding included, so its re-weighting ran at another
effective learning rate than its baselines; see ``shared/study/method.md``, defect 2.)

For gradient accumulation and several processes the denominator must be the number of answer
tokens in the *whole* optimisation step, which HF Trainer passes as ``num_items_in_batch``.

Optional auxiliary confidence loss (Burns et al. 2023, "Weak-to-strong generalization",
``logconf_loss_fn`` in openai/weak-to-strong): the target becomes
``(1 - c) * weak label + c * hardened own prediction`` (detached), with ``c`` ramped by
:func:`aux_coefficient`. With ``c = 0`` every loss here is exactly the plain one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100


def weighted_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mean over rows of weight x cross-entropy; one answer "token" per row (``head`` mode)."""
    ce = F.cross_entropy(logits, targets, reduction="none")
    return (weights.to(ce.dtype) * ce).sum() / max(len(targets), 1)


def soft_cross_entropy(logits: torch.Tensor, target_weights: torch.Tensor, n_rows: float) -> torch.Tensor:
    """``weighted_cross_entropy`` with the rows that share one input merged: ``target_weights[i, j]``
    is the summed weight of the rows of input i labelled j, ``n_rows`` the number of rows."""
    return -(target_weights * torch.log_softmax(logits, dim=-1)).sum() / max(n_rows, 1)


def aux_coefficient(step_frac: float, aux_coef: float, warmup: float) -> float:
    """Weight of the auxiliary confidence term at ``step_frac`` (fraction of training done).

    Ramps linearly from 0 to ``aux_coef`` over the first ``warmup`` fraction of training and
    stays there: ``aux_coef * min(1, step_frac / warmup)``; ``warmup <= 0`` gives full weight
    from the start. (Burns et al.'s ``logconf_loss_fn`` uses ``aux_coef * step_frac`` during
    warm-up and jumps to ``aux_coef`` after it; ours reaches the full value continuously.)
    """
    if aux_coef == 0:
        return 0.0
    if warmup <= 0:
        return float(aux_coef)
    return float(aux_coef) * min(1.0, max(0.0, float(step_frac)) / float(warmup))


def hardened_predictions(logits: torch.Tensor) -> torch.Tensor:
    """One-hot of the argmax of the (detached) logits over the last dimension.

    Burns et al. harden their binary predictions with an adaptive threshold (the quantile that
    gives the weak labels' class balance); we use the argmax, which works for any number of
    options (and for a whole vocabulary in ``lora`` mode)."""
    logits = logits.detach()
    return F.one_hot(logits.argmax(dim=-1), logits.size(-1)).to(logits.dtype)


def aux_soft_targets(logits: torch.Tensor, target_weights: torch.Tensor, coef: float) -> torch.Tensor:
    """Mixed targets for :func:`soft_cross_entropy` (``head`` mode) with the confidence loss:

        (1 - coef) * t  +  coef * rowsum(t) * onehot(argmax(logits))

    ``target_weights`` t [n, m] may carry the summed weights of several merged training rows, so
    the hardened part is scaled by the row sum: each row keeps its total weight, and the loss stays
    the weighted mean over rows of ``(1-c) CE(weak label) + c CE(own argmax)``. The targets are
    detached; ``coef = 0`` returns ``target_weights`` itself.
    """
    if coef == 0:
        return target_weights
    t = target_weights.detach()
    hard = hardened_predictions(logits).to(t.dtype)
    return (1.0 - coef) * t + coef * t.sum(dim=-1, keepdim=True) * hard


def aux_soft_cross_entropy(logits: torch.Tensor, target_weights: torch.Tensor, n_rows: float,
                           coef: float = 0.0) -> torch.Tensor:
    """:func:`soft_cross_entropy` on :func:`aux_soft_targets`; ``coef = 0``: exactly the plain loss."""
    return soft_cross_entropy(logits, aux_soft_targets(logits, target_weights, coef), n_rows)


def weighted_token_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    row_weights: torch.Tensor,
    num_items_in_batch: int | torch.Tensor | None = None,
    aux_coef: float = 0.0,
) -> torch.Tensor:
    """Causal-LM loss: ``labels`` [b, L] hold -100 outside the answer; ``row_weights`` [b].

    ``num_items_in_batch``: answer tokens in the whole step (all micro-batches, all
    processes); defaults to this batch's count.

    ``aux_coef`` c > 0 adds the confidence loss: each answer token's loss becomes
    ``(1-c) CE(weak token) + c CE(argmax token of the detached logits)``, with the same row
    weights and the same denominator. ``c = 0`` is the plain loss, computed the same way.
    """
    shift_logits = logits[:, :-1, :].float()
    shift_labels = labels[:, 1:]

    def token_ce(targets: torch.Tensor) -> torch.Tensor:  # [b, L-1], 0 where the target is IGNORE_INDEX
        return F.cross_entropy(shift_logits.reshape(-1, shift_logits.size(-1)), targets.reshape(-1),
                               ignore_index=IGNORE_INDEX, reduction="none").view(targets.shape)

    ce = token_ce(shift_labels)
    mask = shift_labels != IGNORE_INDEX
    if aux_coef:
        own = shift_logits.detach().argmax(dim=-1).masked_fill(~mask, IGNORE_INDEX)
        ce = (1.0 - aux_coef) * ce + aux_coef * token_ce(own)
    weighted = (ce * row_weights.to(ce.dtype)[:, None] * mask).sum()
    denom = mask.sum() if num_items_in_batch is None else num_items_in_batch
    if isinstance(denom, torch.Tensor):
        denom = denom.to(weighted.device)
    return weighted / denom
