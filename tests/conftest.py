"""Fixtures: a tiny causal LM and tokenizer built here (no download), synthetic datasets, params."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import yaml

WORDS = (
    "what is the largest planet smallest gas rock water ice fire sun moon star earth mars venus "
    "jupiter saturn iron gold copper salt sugar cell atom proton electron neutron energy heat light "
    "sound plant animal leaf root seed"
).split()


def _synthetic_sciq(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        opts = rng.sample(WORDS, 4)
        rows.append({
            "question": f"what is the {rng.choice(WORDS)} of {rng.choice(WORDS)} number {i}?",
            "correct_answer": opts[0], "distractor1": opts[1], "distractor2": opts[2], "distractor3": opts[3],
            "support": "",
        })
    return rows


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A 2-layer Llama with a word-level tokenizer, saved like any local checkpoint."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out = tmp_path_factory.mktemp("tiny-llama")
    vocab_words = ["[PAD]", "[UNK]", "[BOS]", "[EOS]"] + list("ABCDEFGHIJ") + [
        "Answer", "Question", "the", "science", "question", ".", ":", "?", "of", "number", "what", "is",
        "Choose", "most", "plausible", "continuation",
    ] + WORDS + [str(i) for i in range(200)]
    vocab = {w: i for i, w in enumerate(dict.fromkeys(vocab_words))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                   bos_token="[BOS]", eos_token="[EOS]")
    fast.save_pretrained(out)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         pad_token_id=0, bos_token_id=2, eos_token_id=3, tie_word_embeddings=False)
    LlamaForCausalLM(config).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    return model, tok


@pytest.fixture(scope="session")
def sciq_dir(tmp_path_factory) -> Path:
    """A local SciQ-format dataset: one JSONL file per pool."""
    out = tmp_path_factory.mktemp("sciq")
    with open(out / "validation.jsonl", "w") as f:
        for r in _synthetic_sciq(60):
            f.write(json.dumps(r) + "\n")
    return out


@pytest.fixture
def write_params(tmp_path, tiny_model_dir, sciq_dir):
    """Write a params file for the tiny model on the synthetic data; ``changes`` are merged in."""

    def write(changes: dict | None = None, name: str = "params.yaml") -> Path:
        base = {
            "name": "tiny",
            "seed": 0,
            "cache_dir": str(tmp_path / "cache"),
            "data": {"dataset": "sciq", "source": "local", "path": str(sciq_dir),
                     "splits": {"A": {"pool": "validation", "n": 16}, "B": {"pool": "validation", "n": 12},
                                "C": {"pool": "validation", "n": 16}}},
            "reliability": {"k": 5, "temperature": 0.2, "percentile": 50},
            "weak": {"model": {"source": "local", "path": str(tiny_model_dir)}, "head": {}},
            "strong": {"model": {"source": "local", "path": str(tiny_model_dir)}, "head": {}},
            "training": {"mode": "head", "views": "canonical",
                         "lora": {"batch_size": 4, "micro_batch_size": 2, "max_steps": 2, "lr": 1e-3, "max_length": 128}},
            "compute": {"max_tokens_per_batch": 256},
        }
        _merge(base, changes or {})
        path = tmp_path / name
        path.write_text(yaml.safe_dump(base))
        return path

    return write


def _merge(base: dict, changes: dict) -> None:
    for k, v in changes.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = v


def _write_ethics(folder: Path, n: int, seed: int, name: str) -> None:
    import csv

    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / name, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["label", "input", "is_short", "edited"])
        for i in range(n):
            short = i % 4 != 0
            text = f"I {rng.choice(WORDS)} the {rng.choice(WORDS)} number {i}." if short else \
                " ".join(rng.choice(WORDS) for _ in range(40)) + f" AITA {i}?"
            w.writerow([i % 2, text, str(short), "False"])


@pytest.fixture(scope="session")
def data_root(tmp_path_factory) -> Path:
    """A folder laid out like the shared data folder (RELALIGN_DATA), with synthetic files:
    ethics/commonsense/cm_test.csv and cm_test_hard.csv, gsm8k/train.jsonl and test.jsonl."""
    root = tmp_path_factory.mktemp("data")
    _write_ethics(root / "ethics" / "commonsense", 40, 0, "cm_test.csv")
    _write_ethics(root / "ethics" / "commonsense", 40, 1, "cm_test_hard.csv")
    (root / "gsm8k").mkdir()
    for split, n in (("train", 40), ("test", 10)):
        with open(root / "gsm8k" / f"{split}.jsonl", "w") as f:
            for i in range(n):
                f.write(json.dumps({"question": f"What is {i} plus {i}?", "answer": f"{i} + {i} = {2 * i}\n#### {2 * i}"}) + "\n")
    return root
