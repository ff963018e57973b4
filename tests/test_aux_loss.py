"""The auxiliary confidence loss of Burns et al. 2023 (``logconf_loss_fn``), in both training modes."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from relalign.head import HeadSettings, OptionHead, _train
from relalign.losses import (
    IGNORE_INDEX,
    aux_coefficient,
    aux_soft_cross_entropy,
    aux_soft_targets,
    soft_cross_entropy,
    weighted_token_loss,
)


# ---- the coefficient


def test_coefficient_ramps_linearly_then_stays_full():
    assert aux_coefficient(0.0, 0.5, 0.2) == 0.0
    assert aux_coefficient(0.05, 0.5, 0.2) == pytest.approx(0.125)
    assert aux_coefficient(0.1, 0.5, 0.2) == pytest.approx(0.25)
    assert aux_coefficient(0.2, 0.5, 0.2) == pytest.approx(0.5)
    assert aux_coefficient(0.7, 0.5, 0.2) == pytest.approx(0.5)
    assert aux_coefficient(1.0, 0.5, 0.2) == pytest.approx(0.5)


def test_coefficient_without_warmup_or_weight():
    assert aux_coefficient(0.0, 0.75, 0.0) == 0.75
    assert aux_coefficient(0.3, 0.75, 0.0) == 0.75
    assert aux_coefficient(0.5, 0.0, 0.2) == 0.0


# ---- head mode


def test_head_loss_with_coef_0_is_exactly_the_plain_loss():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 4, generator=g)
    t = torch.rand(6, 4, generator=g)
    assert aux_soft_targets(logits, t, 0.0) is t
    assert torch.equal(aux_soft_cross_entropy(logits, t, 9.0, 0.0), soft_cross_entropy(logits, t, 9.0))


def test_head_loss_equals_plain_when_the_prediction_is_the_weak_label():
    logits = torch.tensor([[3.0, 0.0, -1.0], [0.0, 2.0, 1.0], [-1.0, 0.0, 0.5]])
    t = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, 1.0]])  # every label is the argmax
    plain = soft_cross_entropy(logits, t, 4.0)
    torch.testing.assert_close(aux_soft_cross_entropy(logits, t, 4.0, 1.0), plain, atol=1e-7, rtol=0)
    torch.testing.assert_close(aux_soft_cross_entropy(logits, t, 4.0, 0.5), plain, atol=1e-7, rtol=0)


def test_mixed_target_by_hand():
    # Row 0 stands for two merged rows of weight 1 labelled 0; row 1 for one row of weight 0.5 labelled 1.
    logits = torch.tensor([[0.0, 3.0, 1.0], [0.0, 0.0, 5.0]], requires_grad=True)  # argmax 1 and 2
    t = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.5, 0.0]])
    c = 0.25
    mixed = aux_soft_targets(logits, t, c)
    torch.testing.assert_close(mixed, torch.tensor([[1.5, 0.5, 0.0], [0.0, 0.375, 0.125]]))
    assert not mixed.requires_grad  # the hardened prediction is a detached target
    assert mixed.sum(-1).tolist() == t.sum(-1).tolist()  # each row keeps its total weight
    logp = torch.log_softmax(logits.detach(), -1)
    by_hand = -(2.0 * ((1 - c) * logp[0, 0] + c * logp[0, 1]) + 0.5 * ((1 - c) * logp[1, 1] + c * logp[1, 2])) / 3
    torch.testing.assert_close(aux_soft_cross_entropy(logits, t, 3.0, c), by_hand)


def _old_train(prior, t, n_rows, s, l2, head):
    """The head's training loop before the auxiliary loss existed."""
    torch.manual_seed(s.seed)
    opt = torch.optim.Adam(head.parameters(), lr=s.lr)
    for _ in range(s.epochs):
        opt.zero_grad()
        loss = soft_cross_entropy(prior @ head.a + head.b, t, n_rows) + l2 * head.penalty()
        loss.backward()
        opt.step()
    return head


def _conflict(n=40, m=2, seed=0):
    """A confident prior for option 0 on every row, and labels that say option 1 on every row."""
    g = torch.Generator().manual_seed(seed)
    prior = torch.zeros(n, m, 3)
    prior[..., 0] = torch.log_softmax(torch.tensor([2.0, -2.0]) + 0.3 * torch.randn(n, m, generator=g), -1)
    t = torch.zeros(n, m)
    t[:, 1] = 1.0
    return prior, t


def test_head_with_coef_0_trains_exactly_as_before():
    prior, t = _conflict()
    s = HeadSettings(use_hidden=False, epochs=40, aux_coef=0.0)
    new = _train(prior, None, t, 40.0, s, 0.01, OptionHead(2, 1, s))
    old = _old_train(prior, t, 40.0, s, 0.01, OptionHead(2, 1, s))
    for (n, a), (_, b) in zip(new.named_parameters(), old.named_parameters()):
        assert torch.equal(a, b), n


def test_head_with_aux_moves_less_toward_contradicting_labels():
    prior, t = _conflict()

    def p_label(aux_coef):
        s = HeadSettings(use_hidden=False, epochs=200, lr=0.02, aux_coef=aux_coef, aux_warmup=0.2)
        head = _train(prior, None, t, 40.0, s, 0.01, OptionHead(2, 1, s))
        with torch.no_grad():
            return torch.softmax(prior @ head.a + head.b, -1)[:, 1].mean().item()

    start = torch.softmax(prior[..., 0], -1)[:, 1].mean().item()
    plain, aux = p_label(0.0), p_label(0.75)
    assert plain > 0.5 > start  # without aux the head follows the labels past its prior
    assert start < aux < 0.5  # with aux it moves, but keeps its own answer
    assert aux < plain - 0.2


# ---- LoRA mode (token loss)


def _batch(seed=0, b=4, L=7, V=11):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(b, L, V, generator=g)
    labels = torch.randint(0, V, (b, L), generator=g)
    labels[:, :3] = IGNORE_INDEX
    labels[1, 5:] = IGNORE_INDEX
    return logits, labels


def test_token_loss_with_coef_0_is_bit_identical():
    logits, labels = _batch()
    w = torch.tensor([1.0, 0.5, 0.0, 2.0])
    assert torch.equal(weighted_token_loss(logits, labels, w, aux_coef=0.0), weighted_token_loss(logits, labels, w))
    assert torch.equal(weighted_token_loss(logits, labels, w, 13, aux_coef=0.0), weighted_token_loss(logits, labels, w, 13))


def test_token_loss_equals_plain_when_the_prediction_is_the_weak_token():
    logits, _ = _batch()
    labels = torch.full(logits.shape[:2], IGNORE_INDEX)
    labels[:, 1:] = logits[:, :-1].argmax(-1)  # position i predicts token i+1: label it with the argmax
    labels[:, :3] = IGNORE_INDEX
    w = torch.tensor([1.0, 0.5, 0.25, 2.0])
    plain = weighted_token_loss(logits, labels, w)
    torch.testing.assert_close(weighted_token_loss(logits, labels, w, aux_coef=1.0), plain, atol=1e-7, rtol=0)


def test_token_loss_by_hand():
    logits, labels = _batch()
    w = torch.tensor([1.0, 0.5, 0.0, 2.0])
    c = 0.3
    logp = torch.log_softmax(logits[:, :-1], -1)
    y = labels[:, 1:]
    mask = y != IGNORE_INDEX
    ce_weak = -logp.gather(-1, y.clamp_min(0)[..., None])[..., 0]
    ce_own = -logp.max(-1).values
    by_hand = (((1 - c) * ce_weak + c * ce_own) * w[:, None] * mask).sum() / 20
    torch.testing.assert_close(weighted_token_loss(logits, labels, w, 20, aux_coef=c), by_hand)


def test_token_loss_on_a_tiny_causal_lm(tiny_model):
    from relalign.lora import WeightedCollator, encode_rows

    model, tok = tiny_model
    prompts = [f"Question : what is the {w} ? Answer :" for w in ("sun", "moon", "star")]
    rows = encode_rows(tok, prompts, [" A . ice", " B . fire rock", " C . atom"], [1.0, 0.5, 0.25], max_length=64)
    batch = WeightedCollator(tok.pad_token_id)(rows)
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    plain = weighted_token_loss(logits, batch["labels"], batch["weight"])
    aux = weighted_token_loss(logits, batch["labels"], batch["weight"], aux_coef=0.5)
    assert torch.isfinite(aux) and torch.isfinite(plain)
    assert not torch.allclose(aux, plain)


def test_weighted_trainer_ramps_its_coefficient(tiny_model, tmp_path):
    from datasets import Dataset
    from transformers import TrainingArguments

    from relalign.lora import WeightedCollator, WeightedTrainer, encode_rows

    model, tok = tiny_model
    rows = encode_rows(tok, ["Question : what is the sun ? Answer :"], [" A . ice"], [1.0], max_length=32)
    args = TrainingArguments(output_dir=str(tmp_path), report_to=[], save_strategy="no", use_cpu=True,
                             remove_unused_columns=False, dataloader_pin_memory=False, disable_tqdm=True)
    kw = dict(model=copy.deepcopy(model), args=args, train_dataset=Dataset.from_list(rows),
              data_collator=WeightedCollator(tok.pad_token_id))
    assert WeightedTrainer(**kw).aux_coefficient() == 0.0  # off by default
    trainer = WeightedTrainer(**kw, aux_coef=0.5, aux_warmup=0.2)
    trainer.state.max_steps = 100
    for step, want in ((0, 0.0), (10, 0.25), (20, 0.5), (90, 0.5)):
        trainer.state.global_step = step
        assert trainer.aux_coefficient() == pytest.approx(want)


def test_lora_learner_passes_its_aux_settings(tiny_model, tmp_path, monkeypatch):
    import relalign.lora as lora_mod
    from relalign.learners import LoraLearner
    from relalign.params import LoraParams
    from relalign.prompts import Question, render

    seen = {}

    class Stop(Exception):
        pass

    def fake_trainer(*args, **kwargs):
        seen.update(kwargs)
        raise Stop

    monkeypatch.setattr(lora_mod, "WeightedTrainer", fake_trainer)
    base, tok = copy.deepcopy(tiny_model[0]), tiny_model[1]
    q = Question("0", "Question : what is the sun ?", ("ice", "fire", "rock", "atom"), 0)
    lora = LoraParams(batch_size=1, micro_batch_size=1, max_steps=1, max_length=64, aux_coef=0.4, aux_warmup=0.1)
    with pytest.raises(Stop):
        LoraLearner(lambda: (base, tok), lora, seed=0, out_dir=tmp_path).fit("m", [render(q)], [0], [1.0], "fp")
    assert seen["aux_coef"] == 0.4 and seen["aux_warmup"] == 0.1


def test_fingerprints_are_unchanged_while_aux_is_off():
    from relalign.learners import HeadLearner, LoraLearner
    from relalign.params import LoraParams

    assert "aux_coef" not in LoraLearner(None, LoraParams(), 0, ".").describe()
    assert LoraLearner(None, LoraParams(aux_coef=0.5), 0, ".").describe()["aux_coef"] == 0.5
    assert "aux_warmup" not in HeadLearner(None, HeadSettings(), ".", 4).describe()
    assert HeadLearner(None, HeadSettings(aux_coef=0.5), ".", 4).describe()["aux_warmup"] == 0.2
