"""The paper-scale params files state the reference setup of shared/study/method.md exactly."""

from pathlib import Path

import pytest

from relalign.params import load_params

PARAMS = Path(__file__).resolve().parents[1] / "params"
# dataset -> (K, T, max_length, (A, B, C) pools and sizes) from the reference setup
REFERENCE = {
    "hellaswag": (5, 0.2, 512, {"A": ("train", 5000), "B": ("validation", 5000), "C": ("validation", 5000)}),
    "ethics": (2, 1.0, 1600, {"A": ("train", 6955), "B": ("train", 6955), "C": ("test", None)}),
    "mmlu": (5, 0.2, 512, {"A": ("dev", None), "B": ("validation", None), "C": ("test", None)}),
    "gsm8k": (5, 0.2, 512, {"A": ("train", None, [0, 3736]), "B": ("train", None, [3736, 7473]), "C": ("test", None)}),
}


@pytest.mark.parametrize("dataset", sorted(REFERENCE))
def test_paper_params_match_the_reference_setup(dataset):
    p = load_params(PARAMS / f"{dataset}.yaml")
    k, t, max_length, splits = REFERENCE[dataset]
    assert p.data.dataset == dataset and p.data.source == "hub"
    assert {s: (v.pool, v.n, v.rows) if v.rows else (v.pool, v.n) for s, v in p.data.splits.items()} == splits
    assert (p.reliability.k, p.reliability.temperature, p.reliability.percentile) == (k, t, 50)
    assert p.weak.model.source == "hub" and p.weak.model.id == "meta-llama/Llama-2-7b-chat-hf"
    assert p.strong.model.source == "hub" and p.strong.model.id == "mistralai/Mistral-7B-Instruct-v0.2"
    assert p.training.mode == "lora" and p.training.views == "variations"
    lo = p.training.lora
    assert (lo.r, lo.alpha, lo.dropout) == (16, 32, 0.05)
    assert lo.target_modules == ["q_proj", "v_proj"]
    assert lo.lr == 5e-5 and lo.batch_size == 24 and lo.epochs == 3
    assert lo.scheduler == "linear" and lo.warmup_ratio == 0.0
    assert lo.max_length == max_length and lo.max_steps == -1
    assert p.scoring.dtype == "bfloat16"
