"""docs/lora.md's tables are what benchmarks/lora_pairs.py makes from its committed report, so the
measured numbers and the costed seeds there cannot drift from the report."""

import json
import sys

import pytest

from relalign.docblocks import filled
from relalign.params import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
lora_pairs = pytest.importorskip("lora_pairs")
training_noise = pytest.importorskip("training_noise")


def test_docs_lora_tables_are_made_from_the_committed_report():
    doc = lora_pairs.DOC.read_text()
    report = json.loads(lora_pairs.OUT.read_text())
    assert filled(doc, lora_pairs.doc_blocks(report)) == doc, "run: python benchmarks/lora_pairs.py --docs"


def test_a_seed_costs_what_its_parts_cost():
    rate = {"test_tokens_per_prompt": 10, "bottom_states_seconds_per_token_test": 6.0, "seconds_per_step": 60.0,
            "scoring_seconds_per_prompt": 6.0}
    m = lora_pairs.seed_minutes(rate, rate, a=8, b=8, c=6, k=2, epochs=1, batch=8, trainings=3,
                                strong_sequences_per_question=2.0, answer_tokens=5)
    # weak: states of A's 8 training sequences (15 tokens each), C's 6 and B's 16 prompts (10 tokens), one
    # step, C scored twice (zero-shot, trained) and B's 16 variations once; strong: states of 16 training
    # sequences and C's 6 prompts, 3 runs of one step, C scored 4 times (zero-shot and each run)
    assert m == {"weak_states": 34.0, "weak_training": 1.0, "weak_scoring": 2.8, "strong_states": 30.0,
                 "strong_training": 3.0, "strong_scoring": 2.4, "total": 73.2}


def test_docs_lora_training_noise_tables_are_made_from_the_committed_report():
    doc = training_noise.DOC.read_text()
    report = json.loads(training_noise.OUT.read_text())
    assert filled(doc, training_noise.doc_blocks(report)) == doc, "run: python benchmarks/training_noise.py --docs"


def test_training_noise_separates_the_training_draw_from_the_seeds():
    def metrics(naive: float, rew: float) -> dict:  # a committed seed: 100 questions, the first ones right
        acc = {"naive": naive, "reweighting": rew, "ceiling": 0.9, "filtering": 0.5}
        return {"methods": {"weak": {}, **{m: {"accuracy": a} for m, a in acc.items()}},
                "test_correct": {m: "1" * round(100 * a) + "0" * (100 - round(100 * a)) for m, a in acc.items()}}

    bases = {0: metrics(0.50, 0.80), 1: metrics(0.70, 0.80), 2: metrics(0.60, 0.82)}
    again = {0: (0.52, 0.80), 1: (0.68, 0.80), 2: (0.60, 0.80)}  # naive moves with the seed, not the training
    entry = {"methods": ["naive", "reweighting"],
             "replicates": [{"seed": s, "replicate": 1, "methods": {"naive": {"accuracy": n}, "reweighting": {"accuracy": r}}}
                            for s, (n, r) in again.items()]}
    a = training_noise.analysis(entry, bases)
    assert a["naive"]["per_seed"] == {"0": [0.5, 0.52], "1": [0.7, 0.68], "2": [0.6, 0.6]}
    # pooled over seeds, ddof 1 within each: (0.0002 + 0.0002 + 0) / 3 degrees of freedom
    assert a["naive"]["training_sd"] == pytest.approx(100 * (0.0004 / 3) ** 0.5) and a["naive"]["df"] == 3
    assert a["naive"]["committed_sd"] == pytest.approx(10.0)
    assert a["naive"]["training_share"] < 0.02
    diff = a["reweighting - naive"]
    assert diff["per_seed"]["0"] == pytest.approx([0.30, 0.28])
    design = {d["trainings"]: d for d in diff["design"]}
    assert design[1]["mde"] >= design[10]["mde"]  # averaging trainings never detects less
    assert "design" not in a["naive"] and "design" not in a["reweighting"]
