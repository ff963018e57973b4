"""The paper-scale params files state the reference setup of shared/study/method.md exactly."""

import json
import os
from pathlib import Path

import pytest

from relalign.data import load_pools, make_splits
from relalign.params import load_params

PARAMS = Path(__file__).resolve().parents[1] / "params"
# dataset -> (K, T, max_length, (A, B, C) pools and sizes) from the reference setup
REFERENCE = {
    "hellaswag": (5, 0.2, 512, {"A": ("train", 5000), "B": ("validation", 5000), "C": ("validation", 5000)}),
    "ethics": (2, 1.0, 1600, {"A": ("train", 6955), "B": ("train", 6955), "C": ("test", None)}),
    "mmlu": (5, 0.2, 512, {"A": ("dev", None), "B": ("validation", None), "C": ("test", None)}),
    "gsm8k": (5, 0.2, 512, {"A": ("train", None, [0, 3736]), "B": ("train", None, [3736, 7473]), "C": ("test", None)}),
}
# pools put in the order of pandas DataFrame.sample(frac=1, random_state=SEED) before rows index them
SHUFFLED = {"gsm8k": {"train": 42}}


@pytest.mark.parametrize("dataset", sorted(REFERENCE))
def test_paper_params_match_the_reference_setup(dataset):
    p = load_params(PARAMS / f"{dataset}.yaml")
    k, t, max_length, splits = REFERENCE[dataset]
    assert p.data.dataset == dataset and p.data.source == "hub"
    assert {s: (v.pool, v.n, v.rows) if v.rows else (v.pool, v.n) for s, v in p.data.splits.items()} == splits
    assert p.data.pandas_shuffle_seed == SHUFFLED.get(dataset, {})
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
    assert p.compute.dtype == "bfloat16"


def _reference_gsm8k() -> tuple[Path, dict]:
    """The shared GSM8K folder (RELALIGN_DATA/gsm8k) and the reference's split in it, or a skip."""
    root = os.environ.get("RELALIGN_DATA")
    if not root:
        pytest.skip("RELALIGN_DATA is not set (the folder holding gsm8k/train.jsonl and gsm8k/reference_split.json)")
    folder = Path(root) / "gsm8k"
    if not (folder / "reference_split.json").is_file():
        pytest.skip(f"no {folder / 'reference_split.json'} (the reference's GSM8K split as rows of train.jsonl)")
    return folder, json.loads((folder / "reference_split.json").read_text())


def _train_rows(split) -> list[int]:
    """Rows of train.jsonl, in the split's order (question ids are <pool>-<row in the file>)."""
    assert all(q.qid.startswith("train-") for q in split)
    return [int(q.qid.split("-")[1]) for q in split]


def _gsm8k_splits(params_file: Path, folder: Path) -> dict:
    p = load_params(params_file)
    pools = load_pools(p.adapter(), "local", ["test", "train"], str(folder))
    return make_splits(pools, p.split_specs(), p.seed)


def test_the_paper_gsm8k_split_is_the_reference_split():
    """A and B of params/gsm8k.yaml are the reference's train.csv and validation.csv, row by row."""
    folder, reference = _reference_gsm8k()
    s = _gsm8k_splits(PARAMS / "gsm8k.yaml", folder)
    assert _train_rows(s["A"]) == reference["A"]
    assert _train_rows(s["B"]) == reference["B"]
    assert len(s["C"]) == 1319


def test_the_offline_gsm8k_split_draws_from_the_reference_split():
    """params/gsm8k-offline.yaml (data.path ${RELALIGN_DATA}/gsm8k): A and B are drawn from the
    reference's A and B."""
    folder, reference = _reference_gsm8k()
    s = _gsm8k_splits(PARAMS / "gsm8k-offline.yaml", folder)
    assert [len(s[k]) for k in "ABC"] == [32, 16, 32]
    assert set(_train_rows(s["A"])) <= set(reference["A"]) and set(_train_rows(s["B"])) <= set(reference["B"])
