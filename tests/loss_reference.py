"""The weighted loss on full causal-LM logits: the plain form the tests hold the trainer's packed
loss (:func:`relalign.losses.answer_token_loss`, logits only at the answer positions) against."""

from __future__ import annotations

import torch

from relalign.losses import answer_positions, answer_token_loss


def weighted_token_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    row_weights: torch.Tensor,
    num_items_in_batch: int | torch.Tensor | None = None,
    aux_coef: float = 0.0,
) -> torch.Tensor:
    """:func:`answer_token_loss` of full causal-LM logits: ``logits`` [b, L, V], ``labels`` [b, L] with
    -100 outside the answer, ``row_weights`` [b]; ``num_items_in_batch``: answer tokens in the whole
    step (all micro-batches, all processes), by default this batch's count."""
    rows, cols = answer_positions(labels)
    denominator = len(rows) if num_items_in_batch is None else num_items_in_batch
    return answer_token_loss(logits[rows, cols], labels[rows, cols + 1], row_weights[rows], denominator, aux_coef)
