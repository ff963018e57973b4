import torch
import torch.nn.functional as F

from relalign.losses import IGNORE_INDEX, weighted_token_loss


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
