"""Partial LoRA (training.lora.layers: N) is full LoRA restricted to the top N layers, exactly.

Tiny 4-layer models of three families are built here: Llama (SmolLM2's architecture), Qwen2 and
Gemma-3 (text), whose layers alternate sliding-window (window 3, shorter than every sequence here)
and full attention and whose embedding module scales its output. The reference is
``get_peft_model(base, LoraConfig(..., layers_to_transform=top))`` run the ordinary way on token ids;
the partial run feeds the top layers the cached states of the bottom. LoRA dropout is 0 and batches
are right-padded with rows of different lengths.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from datasets import Dataset

from relalign.learners import LoraLearner, _log_softmax
from relalign.lora import WeightedCollator, WeightedTrainer, answer_text, encode_rows, training_arguments
from relalign.params import LoraParams
from relalign.partial import (PER_LAYER_CONFIG, CachedStatesCollator, PartialTrainer, StateStore, bottom_states,
                              decoder, top_layer_indices, top_only)
from relalign.prompts import Question, render
from relalign.scoring import score_prompts

FAMILIES = ["llama", "qwen2", "gemma3_text"]
PROMPTS = [f"Question : what is the {w} of number {i} ? Answer :" + " the sun" * (i % 3)
           for i, w in enumerate(["sun", "moon", "star", "earth", "mars", "venus"])]
ANSWERS = [" A . jupiter", " B . gas rock", " C . ice", " D . water fire heat", " A . salt", " B . sugar cell"]
WEIGHTS = [1.0, 0.5, 0.25, 1.0, 0.0, 0.75]
TOL = dict(atol=1e-5, rtol=0)


@pytest.fixture(scope="module")
def tok(tiny_model):
    return tiny_model[1]


def _config(family: str, vocab: int):
    from transformers import Gemma3TextConfig, LlamaConfig, Qwen2Config

    common = dict(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=4, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=256, pad_token_id=0, bos_token_id=2, eos_token_id=3)
    if family == "llama":
        return LlamaConfig(**common, tie_word_embeddings=False)
    if family == "qwen2":
        return Qwen2Config(**common)
    return Gemma3TextConfig(**common, head_dim=8, sliding_window=3, layer_types=["sliding_attention", "full_attention"] * 2)


@pytest.fixture(scope="module")
def bases(tok):
    """A random 4-layer model per family."""
    from transformers import AutoModelForCausalLM

    out = {}
    for family in FAMILIES:
        torch.manual_seed(0)
        out[family] = AutoModelForCausalLM.from_config(_config(family, len(tok))).eval()
    return out


def _peft(base, top: list[int], init: bool = False):
    """The reference: ordinary LoRA on a copy of ``base``, on the layers ``top`` only; by default with
    random A and B, so that every weight gets a gradient (``init``: peft's own start, B = 0, as the
    learner starts)."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    cfg = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj"], layers_to_transform=top,
                     init_lora_weights=init, task_type="CAUSAL_LM")
    return get_peft_model(copy.deepcopy(base), cfg).train()


def _rows(tok):
    return encode_rows(tok, PROMPTS, ANSWERS, WEIGHTS, max_length=64)


def _loss_and_grads(trainer_class, model, batch, tmp_path, **kwargs):
    from transformers import TrainingArguments

    args = TrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True)
    trainer = trainer_class(model=model, args=args, train_dataset=[], data_collator=None, **kwargs)
    loss = trainer.compute_loss(model, dict(batch))
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


def _full_batch(tok, rows):
    """The reference's batch: token ids, right-padded, with explicit positions 0..length-1."""
    batch = WeightedCollator(tok.pad_token_id)(rows)
    b, width = batch["input_ids"].shape
    batch["position_ids"] = torch.arange(width).expand(b, width)
    return batch


def _cached_batch(base, tok, rows, n):
    states = bottom_states(base, [r["input_ids"] for r in rows], n, max_tokens=40, pad_id=tok.pad_token_id)
    return CachedStatesCollator(tok.pad_token_id)([{**r, "states": s} for r, s in zip(rows, states)])


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("n", [1, 3, 4])
def test_loss_and_gradients_equal_full_lora_on_the_top_layers(bases, tok, tmp_path, family, n):
    base = bases[family]
    top = top_layer_indices(base, n)
    rows = _rows(tok)
    assert len({len(r["input_ids"]) for r in rows}) > 2  # padded rows of several lengths
    loss_a, grads_a = _loss_and_grads(WeightedTrainer, _peft(base, top), _full_batch(tok, rows), tmp_path)
    loss_b, grads_b = _loss_and_grads(PartialTrainer, _peft(base, top), _cached_batch(base, tok, rows, n), tmp_path,
                                      layers=n)
    assert len(grads_a) == 4 * n  # q_proj and v_proj, A and B, on each top layer
    torch.testing.assert_close(loss_b, loss_a, **TOL)
    for name in grads_a:
        torch.testing.assert_close(grads_b[name], grads_a[name], **TOL, msg=name)


def test_the_other_loss_settings_run_through_the_same_code(bases, tok, tmp_path):
    """The reference normalisation and the auxiliary confidence loss: the partial call is the same call."""
    base, n = bases["llama"], 2
    top = top_layer_indices(base, n)
    rows = _rows(tok)
    settings = dict(normalisation="all_positions", aux_coef=0.5, aux_warmup=0.0)
    loss_a, grads_a = _loss_and_grads(WeightedTrainer, _peft(base, top), _full_batch(tok, rows), tmp_path, **settings)
    loss_b, grads_b = _loss_and_grads(PartialTrainer, _peft(base, top), _cached_batch(base, tok, rows, n), tmp_path,
                                      layers=n, **settings)
    torch.testing.assert_close(loss_b, loss_a, **TOL)
    for name in grads_a:
        torch.testing.assert_close(grads_b[name], grads_a[name], **TOL, msg=name)


def test_gemma_top_layers_keep_their_own_attention_types(bases, tok, tmp_path, monkeypatch):
    base = bases["gemma3_text"]
    body = decoder(base)
    types = list(base.config.layer_types)
    with top_only(base, 3):
        assert [layer.self_attn.layer_type for layer in body.layers] == base.config.layer_types == types[1:]
    assert len(body.layers) == 4 and base.config.layer_types == types and base.config.num_hidden_layers == 4
    # the test sees a mismatch: with the per-layer list left uncut, layer 1 would attend as layer 0
    monkeypatch.setattr("relalign.partial.PER_LAYER_CONFIG", ())
    rows = _rows(tok)
    loss_a, _ = _loss_and_grads(WeightedTrainer, _peft(base, [1, 2, 3]), _full_batch(tok, rows), tmp_path)
    loss_b, _ = _loss_and_grads(PartialTrainer, _peft(base, [1, 2, 3]), _cached_batch(base, tok, rows, 3), tmp_path,
                                layers=3)
    assert abs(float(loss_a - loss_b)) > 1e-3
    assert PER_LAYER_CONFIG == ("layer_types",)


@pytest.mark.parametrize("family", FAMILIES)
def test_padding_never_changes_a_real_tokens_bottom_state(bases, tok, family):
    seqs = [r["input_ids"] for r in _rows(tok)]
    alone = bottom_states(bases[family], seqs, 2, max_tokens=1, pad_id=tok.pad_token_id)  # one sequence a batch
    padded = bottom_states(bases[family], seqs, 2, max_tokens=10_000, pad_id=tok.pad_token_id)  # one padded batch
    for a, b in zip(alone, padded):
        assert a.shape == (len(a), 32)
        np.testing.assert_allclose(b, a, atol=1e-6, rtol=0)


def test_every_layer_starts_from_the_embedding_modules_output(bases, tok):
    """N = all layers: the cached states are the embeddings, with Gemma's scaling (in its embedding module)."""
    base = bases["gemma3_text"]
    ids = _rows(tok)[0]["input_ids"]
    states = bottom_states(base, [ids], 4, max_tokens=100, pad_id=tok.pad_token_id)[0]
    with torch.no_grad():
        emb = base.get_input_embeddings()(torch.tensor([ids]))[0].numpy()
    np.testing.assert_allclose(states, emb, atol=0, rtol=0)
    assert not np.allclose(states, base.get_input_embeddings().weight[ids].detach().numpy())  # scaled


QUESTION_WEIGHTS = [1.0, 0.5, 1.0, 0.25, 1.0, 0.75]


def _questions():
    return [Question(str(i), f"Question : what is the {w} of number {i} ?" + " the sun" * (i % 3),
                     ("ice", "fire heat", "rock", "atom"), i % 4)
            for i, w in enumerate(["sun", "moon", "star", "earth", "mars", "venus"])]


@pytest.mark.parametrize("family", FAMILIES)
def test_three_trainer_steps_and_the_letter_scores_equal_full_lora(bases, tok, tmp_path, family):
    """LoraLearner with layers 2 against the ordinary run of the same adapter through WeightedTrainer:
    the same adapter after 3 optimiser steps (batch 4 = 2 x accumulation 2, the last batch short), the
    same letter log-probabilities, and the saved adapter scores the same on the full base model."""
    from peft import PeftModel, get_peft_model_state_dict
    from safetensors.torch import load_file

    base = copy.deepcopy(bases[family])
    prompts = [render(q) for q in _questions()]
    targets = [q.answer for q in _questions()]
    lora = LoraParams(r=4, alpha=8, dropout=0.0, lr=1e-2, batch_size=4, micro_batch_size=2, max_steps=3,
                      max_length=64, layers=2)
    # the reference: the learner's own steps, with adapters on the same layers, on token ids
    rows = encode_rows(tok, [p.text for p in prompts], [answer_text(p, t) for p, t in zip(prompts, targets)],
                       QUESTION_WEIGHTS, lora.max_length)
    reference = _peft(base, [2, 3], init=True)  # torch.manual_seed(0) first, as the learner does
    start = {k: v.clone() for k, v in get_peft_model_state_dict(reference).items()}
    WeightedTrainer(model=reference, args=training_arguments(tmp_path / "ref", lora, 0, save_strategy="no"),
                    train_dataset=Dataset.from_list(rows), data_collator=WeightedCollator(tok.pad_token_id)).train()
    reference.eval()

    learner = LoraLearner(lambda: (base, tok), lora, seed=0, out_dir=tmp_path / "partial", batch_tokens=40)
    predictor = learner.fit("m", prompts, targets, QUESTION_WEIGHTS, fingerprint="fp")
    saved = load_file(tmp_path / "partial" / "m" / "adapter" / "adapter_model.safetensors")
    expected = get_peft_model_state_dict(reference)
    assert saved.keys() == expected.keys() and len(saved) == 8
    for name in saved:
        torch.testing.assert_close(saved[name], expected[name], **TOL, msg=name)
        assert not torch.equal(saved[name], start[name]), name  # training moved every weight

    test = [render(q, (3, 2, 1, 0)) for q in _questions()]
    full = _log_softmax(score_prompts(reference, tok, test, keep_hidden=False, option_logprobs=False,
                                      max_tokens_per_batch=40, progress=False).letter_logprob)
    np.testing.assert_allclose(predictor.logprobs(test), full, atol=1e-5, rtol=0)
    predictor.close()
    assert not any("lora" in n for n, _ in base.named_parameters()) and len(decoder(base).layers) == 4
    # an ordinary peft adapter: loaded onto the whole base model, it scores as the partial predictor did
    loaded = PeftModel.from_pretrained(base, tmp_path / "partial" / "m" / "adapter").eval()
    again = _log_softmax(score_prompts(loaded, tok, test, keep_hidden=False, option_logprobs=False,
                                       shared_prefix=True, progress=False).letter_logprob)
    np.testing.assert_allclose(again, full, atol=1e-5, rtol=0)
    loaded.unload()


def test_activation_checkpointing_trains_the_same_adapter(bases, tok, tmp_path):
    """The cached states need no gradient: checkpointed top layers train exactly as plain ones."""
    from safetensors.torch import load_file

    prompts = [render(q) for q in _questions()]
    targets = [q.answer for q in _questions()]
    adapters = []
    for checkpointing in (False, True):
        base = copy.deepcopy(bases["qwen2"])
        lora = LoraParams(r=4, alpha=8, dropout=0.0, lr=1e-2, batch_size=4, micro_batch_size=2, max_steps=2,
                          max_length=64, layers=2, gradient_checkpointing=checkpointing)
        LoraLearner(lambda: (base, tok), lora, seed=0, out_dir=tmp_path / str(checkpointing)).fit(
            "m", prompts, targets, [1.0] * 6, fingerprint="fp").close()
        adapters.append(load_file(tmp_path / str(checkpointing) / "m" / "adapter" / "adapter_model.safetensors"))
    for name in adapters[0]:
        torch.testing.assert_close(adapters[1][name], adapters[0][name], **TOL, msg=name)


def test_an_interrupted_partial_run_resumes_from_its_last_checkpoint(tiny_model, tmp_path):
    from transformers import TrainerCallback

    base, tok = copy.deepcopy(tiny_model[0]), tiny_model[1]
    prompts = [render(q) for q in _questions()]
    targets = [q.answer for q in _questions()]

    class Crash(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            if state.global_step == 2:
                raise KeyboardInterrupt("simulated crash")

    class Start(TrainerCallback):
        step = None

        def on_train_begin(self, args, state, control, **kw):
            Start.step = state.global_step

    lora = LoraParams(batch_size=2, micro_batch_size=2, max_steps=4, lr=1e-3, max_length=64, layers=1)
    learner = LoraLearner(lambda: (base, tok), lora, seed=0, out_dir=tmp_path, callbacks=[Crash()], save_steps=1,
                          states_dir=tmp_path / "states")
    with pytest.raises(KeyboardInterrupt):
        learner.fit("m", prompts, targets, [1.0] * 6, fingerprint="fp")
    assert not any("lora" in n for n, _ in base.named_parameters()) and len(decoder(base).layers) == 2
    assert (tmp_path / "m" / "checkpoints" / "checkpoint-2").is_dir()
    assert not (tmp_path / "m" / "fingerprint.txt").exists()
    shards = sorted((tmp_path / "states" / "top-1").glob("shard-*"))
    assert shards  # the bottom states were kept
    resumed = LoraLearner(lambda: (base, tok), lora, seed=0, out_dir=tmp_path, callbacks=[Start()], save_steps=1,
                          states_dir=tmp_path / "states")
    resumed.fit("m", prompts, targets, [1.0] * 6, fingerprint="fp").close()
    assert Start.step == 2
    assert sorted((tmp_path / "states" / "top-1").glob("shard-*")) == shards  # and reused, not computed again
    config = json.loads((tmp_path / "m" / "adapter" / "adapter_config.json").read_text())
    assert config["layers_to_transform"] == [1]


def test_a_run_shares_the_cached_states_between_methods_and_roles(write_params, tmp_path, monkeypatch):
    """Through the study's steps: states under the cache, one folder per model identity (here the weak
    and the strong role are the same tiny model); the strong model's first method computes only its
    own training sequences (C was computed for the weak supervisor), a second method only those it adds."""
    import relalign.partial
    from relalign import stages

    run = stages.open_run(write_params({"training": {"mode": "lora", "views": "variations", "lora": {"layers": 1}}}),
                          tmp_path / "run")
    stages.weak_supervisor(run)
    labels = stages.weak_labels(run).query("variation == 0")  # the weak model answers from its cached states too
    computed = []
    original = relalign.partial.bottom_states

    def counted(model, sequences, *args):
        computed.append(len(sequences))
        return original(model, sequences, *args)

    monkeypatch.setattr(relalign.partial, "bottom_states", counted)
    naive = stages.train_strong(run, "naive")
    assert sum(computed) == naive["n_train"]  # its 12 rows; C is reused
    computed.clear()
    stages.train_strong(run, "ceiling")  # B's canonical prompts again, with the true answers
    assert sum(computed) == int((~labels["correct"]).sum())  # only the rows whose weak label was wrong
    assert [f.name for f in (run.params.resolved_cache_dir() / "bottom_states").glob("*/*")] == ["top-1"]
    config = json.loads((run.where.trained / "strong" / "naive" / "adapter" / "adapter_config.json").read_text())
    assert config["layers_to_transform"] == [1]


def test_the_store_computes_each_sequence_once_and_persists_it(tmp_path):
    calls = []

    def compute(seqs):
        calls.append([list(s) for s in seqs])
        return [np.full((len(s), 3), float(sum(s)), np.float32) for s in seqs]

    store = StateStore(tmp_path, shard_tokens=4)
    got = store.get([[1, 2], [3], [1, 2], [4, 5, 6]], compute)
    assert sorted(sum(calls, [])) == [[1, 2], [3], [4, 5, 6]]  # the repeated sequence once
    assert [g.shape for g in got] == [(2, 3), (1, 3), (2, 3), (3, 3)] and got[3][0, 0] == 15
    assert len(list(tmp_path.glob("shard-*.json"))) == 2  # at most 4 tokens a shard
    calls.clear()
    again = StateStore(tmp_path).get([[4, 5, 6], [7], [3]], compute)  # a new store on the same folder
    assert calls == [[[7]]]
    np.testing.assert_array_equal(again[0], got[3])
    assert again[0].base is not None  # a view of the memory-mapped shard, not a copy


def test_layers_must_fit_the_model(tiny_model, tmp_path):
    base, tok = copy.deepcopy(tiny_model[0]), tiny_model[1]
    learner = LoraLearner(lambda: (base, tok), LoraParams(layers=3, max_steps=1), seed=0, out_dir=tmp_path)
    with pytest.raises(ValueError, match="training.lora.layers is 3, but the model has 2 decoder layers"):
        learner.fit("m", [render(q) for q in _questions()], [0] * 6, [1.0] * 6, fingerprint="fp")


def test_layers_is_part_of_an_adapters_identity_only_where_set():
    assert LoraLearner(None, LoraParams(), 0, ".").describe()["layers"] is None
    assert LoraLearner(None, LoraParams(layers=2), 0, ".").describe()["layers"] == 2


@pytest.mark.parametrize("value", [0, -1])
def test_params_reject_layers_below_one(write_params, value):
    from relalign.params import ParamsError, load_params

    with pytest.raises(ParamsError, match=r"'training.lora.layers': input should be greater than or equal to 1"):
        load_params(write_params({"training": {"lora": {"layers": value}}}))
    assert load_params(write_params({"training": {"lora": {"layers": 2}}})).training.lora.layers == 2


def test_the_untrained_model_answers_from_the_cached_states_as_the_full_model_does(write_params, tmp_path, monkeypatch):
    """Zero-shot in partial LoRA: the untrained top layers on the bottom states that the trained models
    reuse -- the full model's letter log-probabilities, with C's states computed once for both."""
    import relalign.partial
    from relalign import answering, stages

    run = stages.open_run(write_params({"training": {"mode": "lora", "views": "variations", "lora": {"layers": 1}}}),
                          tmp_path / "run")
    computed = []
    original = relalign.partial.bottom_states
    monkeypatch.setattr(relalign.partial, "bottom_states",
                        lambda model, seqs, *a: computed.append(len(seqs)) or original(model, seqs, *a))
    prompts = run.task.canonical_prompts("C")
    got = answering.answers(run, "weak", None)
    assert computed == [len(prompts)]
    model, tok = run.pool.model("weak")
    full = _log_softmax(score_prompts(model, tok, prompts, keep_hidden=False, option_logprobs=False,
                                      progress=False).letter_logprob)
    assert got == run.task.choices(prompts, full).tolist()
    stages.weak_supervisor(run)  # the trained supervisor answers C from the same states
    assert computed[1:] == [len(run.task.canonical_prompts("A"))]
