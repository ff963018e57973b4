"""The one weighted loss every method trains with.

Definition (the same for naive, ceiling, filtering and re-weighting, in both training modes; the
``head`` mode's objective in :mod:`relalign.head` is this loss with one answer "token" per row):

    loss = sum over answer tokens t of  w(row of t) * CE(t)  /  (number of answer tokens)

Prompt and padding positions are never counted, and the denominator is the number of answer
tokens, not the sum of the weights: a row of weight 0.5 contributes half the gradient of a row
of weight 1, exactly as the paper's "weight multiplies that row's token loss". With all
weights 1 it is the plain mean token cross-entropy. (The reference averaged its re-weighted
loss over every position, prompt and padding included, so its re-weighting ran at another
effective learning rate than its baselines; see ``shared/study/method.md``, defect 2.)

For gradient accumulation and several processes the denominator must be the number of answer
tokens in the *whole* optimisation step, which HF Trainer passes as ``num_items_in_batch``.

``training.lora.loss_normalisation: all_positions`` reproduces the reference instead (its
``CustomTrainer.compute_loss`` in ``*/our_method_reweighting.py``): weight x token loss averaged
over *every* position of a micro-batch, prompt and padding included (they contribute 0), then over
the step's micro-batches. A row's weight still scales its gradient, but the step's size now
depends on how long the prompts and the padding are (:func:`loss_denominator`).

Optional auxiliary confidence loss (Burns et al. 2023, "Weak-to-strong generalization",
``logconf_loss_fn`` in openai/weak-to-strong): the target becomes
``(1 - c) * weak label + c * hardened own prediction`` (detached; the argmax, which works for any
number of options or a whole vocabulary, where Burns et al. harden binary predictions with an
adaptive threshold), with ``c`` ramped by :func:`aux_coefficient`. With ``c = 0`` the loss is
exactly the plain one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

IGNORE_INDEX = -100
NORMALISATIONS = ("answer_tokens", "all_positions")  # answer_tokens: this study's; all_positions: the reference's


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


def answer_token_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    row_weights: torch.Tensor,
    denominator: int | torch.Tensor,
    aux_coef: float = 0.0,
) -> torch.Tensor:
    """The loss over a batch's answer tokens, packed: ``logits`` [n, V] at the n positions that
    predict an answer token, ``targets`` [n] those tokens, ``row_weights`` [n] the weight of each
    one's row; the sum of weight x cross-entropy divided by ``denominator`` (:func:`loss_denominator`).

    ``aux_coef`` c > 0 adds the confidence loss: each answer token's loss becomes
    ``(1-c) CE(weak token) + c CE(argmax token of the detached logits)``, with the same row
    weights and the same denominator. ``c = 0`` is the plain loss, computed the same way.
    """
    import torch
    import torch.nn.functional as F  # here, not at the top: params reads NORMALISATIONS without torch

    logits = logits.float()
    ce = F.cross_entropy(logits, targets, reduction="none")
    if aux_coef:
        ce = (1.0 - aux_coef) * ce + aux_coef * F.cross_entropy(logits, logits.detach().argmax(dim=-1), reduction="none")
    weighted = (ce * row_weights.to(ce.dtype)).sum()
    if isinstance(denominator, torch.Tensor):
        denominator = denominator.to(weighted.device)
    return weighted / denominator


def answer_positions(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows, columns) of the positions that predict an answer token: column t predicts token t + 1,
    so these are the columns before each label that is not -100."""
    return (labels[:, 1:] != IGNORE_INDEX).nonzero(as_tuple=True)


def loss_denominator(labels: torch.Tensor, normalisation: str, num_items_in_batch: int | torch.Tensor | None,
                     micro_batches: int = 1) -> int | torch.Tensor:
    """What :func:`answer_token_loss` divides a micro-batch's weighted token losses by.

    ``answer_tokens``: the answer tokens of the whole optimisation step (``num_items_in_batch``;
    this batch's own count when None). ``all_positions`` (the reference): every predicted position
    of this micro-batch, ``batch x (length - 1)`` of the full ``labels``, prompt and padding
    included, times the ``micro_batches`` of the step, so that the step's loss is the mean of its
    micro-batches' means."""
    if normalisation == "answer_tokens":
        return (labels[:, 1:] != IGNORE_INDEX).sum() if num_items_in_batch is None else num_items_in_batch
    if normalisation == "all_positions":
        return labels[:, 1:].numel() * micro_batches
    raise ValueError(f"loss normalisation must be one of {NORMALISATIONS}, got {normalisation!r}")
