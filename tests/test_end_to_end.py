"""benchmarks/end_to_end.py's report: a run's time is kept under its params file and its variant,
and is what the design table reads (relalign.compare.seed_minutes)."""

import json
import sys

import pytest

from relalign.compare import seed_minutes
from relalign.params import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
end_to_end = pytest.importorskip("end_to_end")


def _finished(root, name, overrides, seconds):
    run = root / name
    run.mkdir()
    (run / "metrics.json").write_text(json.dumps({
        "dataset": "sciq", "n": {"A": 1, "B": 2, "C": 3}, "weak_model": "w", "strong_model": "s",
        "params": {"seed": 0, "training": {"mode": "lora"}}, "methods": {"weak": {}, "naive": {"accuracy": 0.5}}}))
    (run / "run_status.json").write_text(json.dumps({"status": "complete", "params_file": "params/x.yaml",
                                                     "overrides": overrides, "seconds": seconds, "started": 0.0}))
    return run


def test_a_variant_is_timed_beside_its_params_file_not_over_it(tmp_path, monkeypatch):
    monkeypatch.setattr(end_to_end, "REPO", tmp_path)
    plain = end_to_end.from_run(_finished(tmp_path, "plain", ["seed=0"], 600.0))
    pilot = end_to_end.from_run(_finished(tmp_path, "pilot", ["seed=0", "name=pilot", "training.lora.strong_lr=6e-4"],
                                          1200.0))
    report = {end_to_end.report_key(e): e for e in (plain, pilot)}
    assert list(report) == ["params/x.yaml", "params/x.yaml [name=pilot; training.lora.strong_lr=6e-4]"]
    path = tmp_path / "end_to_end.json"
    path.write_text(json.dumps({"runs": report}))
    assert seed_minutes(path) == {("params/x.yaml", ""): 10.0,
                                  ("params/x.yaml", "name=pilot; training.lora.strong_lr=6e-4"): 20.0}
