"""The weighted loss inside HF Trainer is exact at any batch layout (issue: weighted fine-tuning).

One optimisation step with plain SGD (lr 1, no momentum, no decay) moves every trainable
parameter by minus its gradient, so comparing parameters after one step compares gradients.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from datasets import Dataset
from transformers import TrainingArguments

from relalign.lora import WeightedCollator, WeightedTrainer, encode_rows
from loss_reference import weighted_token_loss
from relalign.losses import IGNORE_INDEX

PROMPTS = [f"Question : what is the {w} of number {i} ? Answer :" for i, w in
           enumerate(["sun", "moon", "star", "earth", "mars", "venus", "iron", "gold"])]
ANSWERS = [" A . jupiter", " B . gas rock", " C . ice", " D . water fire heat", " A . salt", " B . sugar cell",
           " C . atom", " D . light sound plant"]
WEIGHTS = [1.0, 0.5, 0.25, 1.0, 0.0, 0.75, 1.0, 0.1]


def _lora_model(base):
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    cfg = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj"],
                     init_lora_weights=False, task_type="CAUSAL_LM")  # random A and B: every LoRA weight gets a gradient
    return get_peft_model(copy.deepcopy(base), cfg)


def _rows(tok, answers=ANSWERS, weights=WEIGHTS):
    return encode_rows(tok, PROMPTS, answers, weights, max_length=64)


def _one_step(tiny_model, tmp_path, micro: int, accumulation: int, rows=None, normalisation="answer_tokens"):
    base, tok = tiny_model
    model = _lora_model(base)
    args = TrainingArguments(
        output_dir=str(tmp_path / f"b{micro}x{accumulation}"), per_device_train_batch_size=micro,
        gradient_accumulation_steps=accumulation, max_steps=1, learning_rate=1.0, optim="sgd",
        lr_scheduler_type="constant", weight_decay=0.0, max_grad_norm=0.0, logging_steps=1, save_strategy="no",
        report_to=[], seed=0, data_seed=0, remove_unused_columns=False, dataloader_pin_memory=False,
        disable_tqdm=True,
    )
    trainer = WeightedTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows or _rows(tok)),
                              data_collator=WeightedCollator(tok.pad_token_id), normalisation=normalisation)
    trainer.train()
    params = {n: p.detach().cpu().clone() for n, p in model.named_parameters() if p.requires_grad}  # CUDA too
    loss = next(h["loss"] for h in trainer.state.log_history if "loss" in h)
    return params, loss, trainer


def test_batch_8_equals_batch_2_with_accumulation_4(tiny_model, tmp_path):
    a, loss_a, _ = _one_step(tiny_model, tmp_path, 8, 1)
    b, loss_b, _ = _one_step(tiny_model, tmp_path, 2, 4)
    assert loss_a == pytest.approx(loss_b, abs=1e-5)
    assert a.keys() == b.keys() and len(a) > 0
    for n in a:
        torch.testing.assert_close(a[n], b[n], atol=1e-5, rtol=0, msg=n)


def test_the_reference_normalisation_trains_on_the_mean_over_every_position(tiny_model, tmp_path):
    """normalisation all_positions: one step (one micro-batch of all 8 rows) moves the adapter by minus
    the gradient of the reference's loss, weight x token loss averaged over every position."""
    base, tok = tiny_model
    stepped, loss, _ = _one_step(tiny_model, tmp_path, 8, 1, normalisation="all_positions")
    model = _lora_model(base)
    batch = WeightedCollator(tok.pad_token_id)(_rows(tok))
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    shift_labels = batch["labels"][:, 1:]
    ce = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)), shift_labels.reshape(-1),
                                           reduction="none")  # 0 where the label is -100, as in the reference
    ref = (ce.view(shift_labels.shape) * batch["weight"][:, None]).mean()
    ref.backward()
    assert loss == pytest.approx(ref.item(), abs=1e-5)
    for n, p in model.named_parameters():
        if p.requires_grad:
            torch.testing.assert_close(stepped[n], (p - p.grad).detach(), atol=1e-5, rtol=0, msg=n)
    ours, _, _ = _one_step(tiny_model, tmp_path, 8, 1)
    assert any(not torch.allclose(ours[n], stepped[n]) for n in ours)  # the two normalisations train differently


def test_the_reference_normalisation_averages_the_micro_batches_of_a_step(tiny_model, tmp_path):
    base, tok = tiny_model
    model = _lora_model(base)
    args = TrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True)
    trainer = WeightedTrainer(model=model, args=args, train_dataset=Dataset.from_list(_rows(tok)),
                              data_collator=WeightedCollator(tok.pad_token_id), normalisation="all_positions")
    batch = WeightedCollator(tok.pad_token_id)(_rows(tok)[:2])
    with torch.no_grad():
        alone = trainer.compute_loss(model, dict(batch))  # outside a step: this micro-batch's own mean
        trainer.current_gradient_accumulation_steps = 4
        in_step = trainer.compute_loss(model, dict(batch), num_items_in_batch=torch.tensor(99))
    torch.testing.assert_close(in_step, alone / 4)  # one of the step's 4 micro-batches; answer tokens play no part
    with pytest.raises(ValueError, match="normalisation"):
        WeightedTrainer(model=model, args=args, train_dataset=Dataset.from_list(_rows(tok)),
                        data_collator=WeightedCollator(tok.pad_token_id), normalisation="tokens")


def test_weights_of_one_give_the_models_own_loss(tiny_model):
    base, tok = tiny_model
    model = _lora_model(base).eval()
    batch = WeightedCollator(tok.pad_token_id)(_rows(tok, weights=[1.0] * 8))
    with torch.no_grad():
        own = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]).loss
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    ours = weighted_token_loss(logits, batch["labels"], batch["weight"])
    torch.testing.assert_close(ours, own, atol=1e-5, rtol=1e-5)


def test_the_output_layer_runs_only_where_an_answer_token_is_predicted(tiny_model, tmp_path):
    base, tok = tiny_model
    prompts = ["Question : what is the sun ? Answer :", "Question : what is the moon of number 3 of number 4 ? Answer :",
               "Question : what is the gold of number 9 ? Answer :"]
    rows = encode_rows(tok, prompts, ANSWERS[:3], WEIGHTS[:3], max_length=64)
    batch = WeightedCollator(tok.pad_token_id)(rows)
    answer_tokens = int((batch["labels"] != IGNORE_INDEX).sum())
    assert answer_tokens < batch["labels"].numel() // 2  # most positions need no logits

    def loss_and_grads(fn):
        model = _lora_model(base)
        loss = fn(model)
        loss.backward()
        return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}

    def full(model):
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        return weighted_token_loss(logits, batch["labels"], batch["weight"])

    seen = []
    def trainer_loss(model):
        model.get_output_embeddings().register_forward_hook(lambda m, i, o: seen.append(i[0].shape[0]))
        args = TrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True)
        trainer = WeightedTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows),
                                  data_collator=WeightedCollator(tok.pad_token_id))
        return trainer.compute_loss(model, dict(batch))

    loss_a, grads_a = loss_and_grads(full)
    loss_b, grads_b = loss_and_grads(trainer_loss)
    assert seen == [answer_tokens]  # the output layer saw one position per answer token, no other
    torch.testing.assert_close(loss_b, loss_a, atol=1e-6, rtol=1e-6)
    for n in grads_a:
        torch.testing.assert_close(grads_b[n], grads_a[n], atol=1e-6, rtol=1e-5, msg=n)


def test_a_zero_weight_row_contributes_no_gradient(tiny_model, tmp_path):
    _, tok = tiny_model
    other = list(ANSWERS)
    other[4] = " C . iron"  # row 4 has weight 0; another label of the same length must change nothing
    rows_a, rows_b = _rows(tok), _rows(tok, answers=other)
    assert rows_a[4]["labels"] != rows_b[4]["labels"]
    assert len(rows_a[4]["labels"]) == len(rows_b[4]["labels"])
    a, _, _ = _one_step(tiny_model, tmp_path, 8, 1, rows_a)
    b, _, _ = _one_step(tiny_model, tmp_path, 8, 1, rows_b)
    for n in a:
        torch.testing.assert_close(a[n], b[n], atol=1e-7, rtol=0, msg=n)


def test_the_weight_column_reaches_the_loss(tiny_model, tmp_path):
    base, tok = tiny_model
    _, _, trainer = _one_step(tiny_model, tmp_path, 4, 1)
    batch = next(iter(trainer.get_train_dataloader()))
    assert "weight" in batch  # not dropped as an unused column
    start = {n: p.detach().clone() for n, p in _lora_model(base).named_parameters() if p.requires_grad}
    zero, _, _ = _one_step(tiny_model, tmp_path, 4, 2, _rows(tok, weights=[0.0] * 8))
    for n in start:
        torch.testing.assert_close(zero[n], start[n], atol=0, rtol=0, msg=n)
    moved, _, _ = _one_step(tiny_model, tmp_path, 4, 2)
    assert any(not torch.equal(moved[n], start[n]) for n in start)


def test_an_interrupted_lora_run_resumes_from_its_last_checkpoint(tiny_model, tmp_path):
    from transformers import TrainerCallback

    from relalign.learners import LoraLearner
    from relalign.params import LoraParams
    from relalign.prompts import Question, render

    base, tok = copy.deepcopy(tiny_model[0]), tiny_model[1]
    qs = [Question(str(i), f"Question : what is the {w} ?", ("ice", "fire", "rock", "atom"), i % 4)
          for i, w in enumerate(["sun", "moon", "star", "earth", "mars", "venus"])]
    prompts = [render(q) for q in qs]
    targets = [q.answer for q in qs]

    class Crash(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            if state.global_step == 2:  # steps 1 and 2 are done and saved: crash in step 3
                raise KeyboardInterrupt("simulated crash")

    class Start(TrainerCallback):
        step = None

        def on_train_begin(self, args, state, control, **kw):
            Start.step = state.global_step

    lora = LoraParams(batch_size=2, micro_batch_size=2, max_steps=4, lr=1e-3, max_length=64)
    learner = LoraLearner(lambda: (base, tok), lora, seed=0, out_dir=tmp_path, callbacks=[Crash()], save_steps=1,
                          logging_steps=1)
    with pytest.raises(KeyboardInterrupt):
        learner.fit("m", prompts, targets, [1.0] * 6, fingerprint="fp")
    assert not any("lora" in n for n, _ in base.named_parameters())  # the failed run took its adapter away
    assert (tmp_path / "m" / "checkpoints" / "checkpoint-2").is_dir()
    assert not (tmp_path / "m" / "fingerprint.txt").exists()  # not finished, so never mistaken for done
    resumed = LoraLearner(lambda: (base, tok), lora, seed=0, out_dir=tmp_path, callbacks=[Start()], save_steps=1,
                          base_name="org/base@abc")
    resumed.fit("m", prompts, targets, [1.0] * 6, fingerprint="fp").close()
    assert Start.step == 2
    assert (tmp_path / "m" / "fingerprint.txt").read_text() == "fp"
    assert not (tmp_path / "m" / "checkpoints").exists()
    # the adapter names its base as the caller does, not by the folder the base was loaded from
    config = json.loads((tmp_path / "m" / "adapter" / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "org/base@abc"


def test_a_damaged_adapter_is_named_and_trained_again(tiny_model, tmp_path, capsys):
    from transformers import TrainerCallback

    from relalign.learners import LoraLearner
    from relalign.params import LoraParams
    from relalign.prompts import Question, render

    base, tok = copy.deepcopy(tiny_model[0]), tiny_model[1]
    qs = [Question(str(i), f"Question : what is the {w} ?", ("ice", "fire", "rock", "atom"), i % 4)
          for i, w in enumerate(["sun", "moon", "star", "earth"])]
    prompts, targets = [render(q) for q in qs], [q.answer for q in qs]

    class Trained(TrainerCallback):
        runs = 0

        def on_train_begin(self, args, state, control, **kw):
            Trained.runs += 1

    lora = LoraParams(batch_size=2, micro_batch_size=2, max_steps=2, lr=1e-3, max_length=64)
    learner = LoraLearner(lambda: (base, tok), lora, seed=0, out_dir=tmp_path, callbacks=[Trained()])
    first = learner.fit("m", prompts, targets, [1.0] * 4, fingerprint="fp")
    want = first.logprobs(prompts)
    first.close()
    learner.fit("m", prompts, targets, [1.0] * 4, fingerprint="fp").close()
    assert Trained.runs == 1  # intact: loaded, not trained again
    weights = tmp_path / "m" / "adapter" / "adapter_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0xFF  # same size, one byte of a tensor changed
    weights.write_bytes(bytes(data))
    capsys.readouterr()
    again = learner.fit("m", prompts, targets, [1.0] * 4, fingerprint="fp")
    assert Trained.runs == 2
    assert f"{weights} is missing or damaged" in capsys.readouterr().err
    np.testing.assert_allclose(again.logprobs(prompts), want, atol=1e-6)  # the same adapter, trained again
    again.close()


@pytest.mark.parametrize("family", ["llama", "mistral", "qwen2", "gemma", "gemma3_text"])
def test_lora_targets_per_architecture_family(family):
    from types import SimpleNamespace

    from relalign.lora import target_modules_for

    model = SimpleNamespace(config=SimpleNamespace(model_type=family))
    assert target_modules_for(model) == ["q_proj", "v_proj"]
    assert target_modules_for(model, ["o_proj"]) == ["o_proj"]
    with pytest.raises(ValueError, match="target_modules"):
        target_modules_for(SimpleNamespace(config=SimpleNamespace(model_type="mamba")))
