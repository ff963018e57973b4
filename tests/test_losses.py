import torch
import torch.nn.functional as F

from loss_reference import weighted_token_loss
from relalign.losses import IGNORE_INDEX


def _batch(seed=0, b=4, L=7, V=11):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(b, L, V, generator=g, requires_grad=True)
    labels = torch.randint(0, V, (b, L), generator=g)
    labels[:, :3] = IGNORE_INDEX  # prompt
    labels[1, 5:] = IGNORE_INDEX  # padding
    return logits, labels


def test_weights_of_one_give_the_plain_mean_token_loss():
    logits, labels = _batch()
    plain = F.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)), labels[:, 1:].reshape(-1),
                            ignore_index=IGNORE_INDEX)
    ours = weighted_token_loss(logits, labels, torch.ones(4))
    assert torch.allclose(ours, plain, atol=1e-6)


def test_zero_weight_row_gets_no_gradient():
    logits, labels = _batch()
    w = torch.tensor([1.0, 0.0, 0.5, 1.0])
    weighted_token_loss(logits, labels, w).backward()
    assert torch.count_nonzero(logits.grad[1]) == 0
    assert torch.count_nonzero(logits.grad[0]) > 0


def test_denominator_is_answer_tokens_not_weight_sum():
    logits, labels = _batch()
    half = weighted_token_loss(logits, labels, torch.full((4,), 0.5))
    full = weighted_token_loss(logits, labels, torch.ones(4))
    assert torch.allclose(half, full / 2)


def test_num_items_in_batch_splits_a_step_exactly():
    logits, labels = _batch(b=8)
    w = torch.linspace(0.1, 1.0, 8)
    whole = weighted_token_loss(logits, labels, w)
    n = (labels[:, 1:] != IGNORE_INDEX).sum()
    parts = sum(weighted_token_loss(logits[i:i + 2], labels[i:i + 2], w[i:i + 2], n) for i in range(0, 8, 2))
    assert torch.allclose(whole, parts, atol=1e-6)


def test_the_two_normalisations_on_a_hand_computed_batch():
    from relalign.losses import loss_denominator

    # uniform logits: every answer token's cross-entropy is ln 4
    logits = torch.zeros(2, 4, 4)
    labels = torch.tensor([[IGNORE_INDEX, IGNORE_INDEX, 1, 2],  # prompt, prompt, two answer tokens
                           [IGNORE_INDEX, 3, IGNORE_INDEX, IGNORE_INDEX]])  # one answer token, then padding
    w = torch.tensor([1.0, 0.5])
    weighted = (1.0 * 2 + 0.5 * 1) * torch.log(torch.tensor(4.0))  # sum of weight x CE over answer tokens
    ours = weighted_token_loss(logits, labels, w, loss_denominator(labels, "answer_tokens", None))
    torch.testing.assert_close(ours, weighted / 3)  # 3 answer tokens
    ref = weighted_token_loss(logits, labels, w, loss_denominator(labels, "all_positions", None))
    torch.testing.assert_close(ref, weighted / 6)  # 2 rows x 3 predicted positions
    # a step of 4 micro-batches: each contributes its mean over positions / 4
    torch.testing.assert_close(weighted_token_loss(logits, labels, w, loss_denominator(labels, "all_positions", None, 4)),
                               weighted / 24)
    import pytest

    with pytest.raises(ValueError, match="normalisation"):
        loss_denominator(labels, "tokens", None)


def test_all_positions_is_the_reference_loss():
    """The reference's CustomTrainer.compute_loss (Hellaswag/our_method_reweighting.py), line by line."""
    from relalign.losses import loss_denominator

    logits, labels = _batch()
    w = torch.tensor([1.0, 0.25, 0.5, 2.0])
    shift_logits = logits[..., :-1, :].contiguous()
    shift_labels = labels[..., 1:].contiguous()
    weights = w.unsqueeze(1).expand(-1, shift_logits.shape[1]).contiguous().view(-1)
    ref = torch.mean(F.cross_entropy(shift_logits.view(-1, logits.size(-1)), shift_labels.view(-1), reduction="none")
                     * weights)
    ours = weighted_token_loss(logits, labels, w, loss_denominator(labels, "all_positions", None))
    torch.testing.assert_close(ours, ref)
