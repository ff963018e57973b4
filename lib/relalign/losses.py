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


def weighted_token_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    row_weights: torch.Tensor,
    num_items_in_batch: int | torch.Tensor | None = None,
) -> torch.Tensor:
    """Causal-LM loss: ``labels`` [b, L] hold -100 outside the answer; ``row_weights`` [b].

    ``num_items_in_batch``: answer tokens in the whole step (all micro-batches, all
    processes); defaults to this batch's count.
    """
    shift_logits = logits[:, :-1, :].float()
    shift_labels = labels[:, 1:]
    ce = F.cross_entropy(
        shift_logits.reshape(-1, shift_logits.size(-1)),
        shift_labels.reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="none",
    ).view(shift_labels.shape)
    mask = shift_labels != IGNORE_INDEX
    weighted = (ce * row_weights.to(ce.dtype)[:, None] * mask).sum()
    denom = mask.sum() if num_items_in_batch is None else num_items_in_batch
    if isinstance(denom, torch.Tensor):
        denom = denom.to(weighted.device)
    return weighted / denom
