"""docs/lora.md's tables are what benchmarks/lora_pairs.py makes from its committed report, so the
measured numbers and the costed seeds there cannot drift from the report."""

import json
import sys

import pytest

from relalign.docblocks import filled
from relalign.params import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
lora_pairs = pytest.importorskip("lora_pairs")


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
