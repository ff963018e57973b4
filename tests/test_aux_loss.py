"""The auxiliary confidence loss of Burns et al. 2023 (``logconf_loss_fn``), in both training modes."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from relalign.head import HeadSettings, fit_head, head_logprobs, zero_shot_logprobs
from loss_reference import weighted_token_loss
from relalign.losses import IGNORE_INDEX, aux_coefficient
from relalign.scoring import ScoredPrompts


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


def _conflict(n=40, m=2, seed=0):
    """A confident prior for option 0 on every row, and labels that say option 1 on every row."""
    rng = np.random.default_rng(seed)
    ll = np.log(np.exp(np.array([2.0, -2.0]) + 0.3 * rng.standard_normal((n, m))))
    sp = ScoredPrompts(letter_logprob=np.zeros((n, m), np.float32), option_logprob=ll.astype(np.float32),
                       option_ntokens=np.ones((n, m), np.float32), option_hidden=None, last_hidden=None)
    return sp, np.ones(n, dtype=int)


def _p_label(aux_coef: float) -> float:
    sp, y = _conflict()
    head = fit_head(sp, y, settings=HeadSettings(use_hidden=False, l2=0.01, aux_coef=aux_coef))
    return float(np.exp(head_logprobs(head, sp))[:, 1].mean())


def test_head_with_aux_moves_less_toward_contradicting_labels():
    sp, _ = _conflict()
    start = float(np.exp(zero_shot_logprobs(sp))[:, 1].mean())
    plain, aux = _p_label(0.0), _p_label(0.75)
    assert plain > 0.5 > start  # without aux the head follows the labels past its prior
    assert start < aux < 0.5  # with aux it moves, but keeps its own answer
    assert aux < plain - 0.2


def test_head_with_aux_is_the_plain_fit_where_it_already_agrees_with_the_labels():
    sp, y = _conflict()
    agree = np.zeros_like(y)  # the labels say what the prior says
    plain = fit_head(sp, agree, settings=HeadSettings(use_hidden=False, l2=0.01))
    aux = fit_head(sp, agree, settings=HeadSettings(use_hidden=False, l2=0.01, aux_coef=0.75))
    np.testing.assert_allclose(head_logprobs(aux, sp), head_logprobs(plain, sp), atol=1e-7)


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
    lora = LoraParams(batch_size=1, micro_batch_size=1, max_steps=1, max_length=64)
    learner = LoraLearner(lambda: (base, tok), lora, seed=0, out_dir=tmp_path, aux_coef=0.4, aux_warmup=0.1)
    with pytest.raises(Stop):
        learner.fit("m", [render(q)], [0], [1.0], "fp")
    assert seen["aux_coef"] == 0.4 and seen["aux_warmup"] == 0.1


def test_the_auxiliary_loss_is_part_of_what_a_learner_trains():
    from relalign.learners import HeadLearner, LoraLearner
    from relalign.params import LoraParams

    plain, aux = LoraLearner(None, LoraParams(), 0, "."), LoraLearner(None, LoraParams(), 0, ".", aux_coef=0.5)
    assert plain.describe()["aux_coef"] == 0 and aux.describe()["aux_coef"] == 0.5
    assert HeadLearner(None, HeadSettings(), ".").describe() != HeadLearner(None, HeadSettings(aux_coef=0.5), ".").describe()
    with pytest.raises(Exception):
        LoraParams(aux_coef=0.5)  # not a params key: only the method aux_confidence trains with it
