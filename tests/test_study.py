"""The whole pipeline on a tiny model built in the test and a synthetic dataset."""

import json

import numpy as np
import pytest

import relalign.scoring
from relalign.study import Study


def _run_all(study):
    weak = study.weak_supervisor()
    labels = study.weak_labels()
    summary = study.reliability_summary()
    results = {m: study.train_strong(m) for m in study.params.methods}
    return weak, labels, summary, results


def test_head_mode_end_to_end_and_metrics(write_params, tmp_path):
    study = Study.open(write_params(), tmp_path / "run")
    weak, labels, summary, results = _run_all(study)
    k, n_b = study.params.reliability.k, len(study.splits["B"])
    assert len(labels) == k * n_b
    assert set(labels.groupby("qid").size()) == {k}
    assert np.allclose(np.stack(labels["probs"]).sum(1), 1.0, atol=1e-5)
    # answers are identified by text, so the label of a variation is the same choice index as its text
    for _, r in labels.head(20).iterrows():
        q = study.questions[r["qid"]]
        assert q.choices[r["weak_target"]] == r["answer"]
    assert results["naive"]["n_train"] == n_b
    assert results["reweighting"]["n_train"] == k * n_b
    assert results["filtering_sampled"]["n_train"] == n_b
    assert results["ceiling"]["label_accuracy"] == 1.0
    m = study.metrics(seconds=1.0)
    assert set(m["methods"]) == {"weak", *study.params.methods}
    assert m["n"] == {"A": 16, "B": 12, "C": 16}
    assert 0 <= m["reliability"]["kept_fraction"] <= 1
    on_disk = json.loads((study.run_dir / "metrics.json").read_text())
    assert on_disk["methods"]["naive"]["accuracy"] == results["naive"]["accuracy"]
    for key in ("git_commit", "package_versions", "seconds"):
        assert key in on_disk["provenance"]
    # per-question correctness on C, for bootstrap intervals: consistent with each accuracy
    assert set(on_disk["test_correct"]) == {"weak", *study.params.methods}
    for name, bits in on_disk["test_correct"].items():
        assert len(bits) == 16 and bits.count("1") / 16 == pytest.approx(on_disk["methods"][name]["accuracy"])
    scores = on_disk["reliability"]["scores"]
    assert {"entropy", "reliability", "mean_prob", "prob_entropy", "confidence"} <= set(scores)
    assert scores["entropy"]["auroc"] == pytest.approx(summary["entropy_auroc"], nan_ok=True)
    for name, r in on_disk["methods"].items():  # a 95% interval over C's questions around each accuracy
        assert r["acc_lo"] <= r["accuracy"] <= r["acc_hi"]
    # head mode: every strong head is solved to its optimum with the one L2 chosen on naive's rows
    l2 = json.loads((study.run_dir / "trained/strong/l2.json").read_text())["l2"]
    for name in study.params.methods:
        fit = json.loads((study.run_dir / "trained/strong" / name / "head.json").read_text())
        assert fit["l2"] == l2 and fit["iterations"] > 0


def test_threshold_sweep_marks_the_papers_filter(write_params, tmp_path):
    study = Study.open(write_params({"reliability": {"sweep": [0.25, 1.0]}}), tmp_path / "run")
    sweep = study.threshold_sweep()
    assert len(sweep) == 3 and sweep["paper"].tolist() == [False, False, True]
    n_rows = 5 * 12
    assert sweep["rows"].tolist()[:2] == [15, n_rows]
    assert sweep.loc[2, "accuracy"] == study.train_strong("filtering")["accuracy"]
    saved = json.loads((study.run_dir / "sweep.json").read_text())["points"]
    assert [p["fraction"] for p in saved] == sweep["fraction"].tolist()


def test_aux_confidence_and_equal_steps_reach_the_learner(write_params, tmp_path):
    study = Study.open(write_params({"training": {"mode": "lora", "views": "variations", "equal_steps": True,
                                                  "lora": {"max_steps": -1, "epochs": 1}}}), tmp_path / "run")
    assert study.learner("strong", "aux_confidence").lora.aux_coef == study.params.training.aux_coef > 0
    assert study.learner("strong", "naive").lora.aux_coef == 0
    naive_steps = study.learner("strong", "naive").lora.max_steps
    assert naive_steps == 3  # 12 naive rows, batch 4, one epoch
    assert study.learner("strong", "reweighting").lora.max_steps == naive_steps  # 60 rows, same steps
    assert study.fingerprint("strong", "aux_confidence") != study.fingerprint("strong", "naive")


def test_same_params_same_numbers_and_cache_reuse(write_params, tmp_path, monkeypatch):
    path = write_params()
    first = _run_all(Study.open(path, tmp_path / "one"))

    def boom(*a, **k):
        raise AssertionError("scored again although every prompt is cached")

    monkeypatch.setattr(relalign.scoring, "score_prompts", boom)
    second = _run_all(Study.open(path, tmp_path / "two"))
    assert first[0]["accuracy"] == second[0]["accuracy"]
    assert first[1].equals(second[1])
    assert {m: r["accuracy"] for m, r in first[3].items()} == {m: r["accuracy"] for m, r in second[3].items()}


def test_variations_view_scores_each_rows_own_prompt(write_params, tmp_path):
    study = Study.open(write_params({"training": {"views": "variations"}}), tmp_path / "run")
    study.weak_supervisor()
    r = study.train_strong("reweighting")
    assert r["n_train"] == len(study.weak_labels())


def test_lora_mode_trains_adapters_and_reloads_them(write_params, tmp_path):
    study = Study.open(write_params({"training": {"mode": "lora", "views": "variations"}}), tmp_path / "run")
    weak = study.weak_supervisor()
    assert 0 <= weak["zero_shot_accuracy"] <= 1  # the base model's letter answer
    config = json.loads((study.run_dir / "trained" / "weak" / "supervisor" / "adapter" / "adapter_config.json").read_text())
    # the base model as params name it, not the converted copy in this machine's cache
    assert config["base_model_name_or_path"] == study.params.model_spec("weak").reference()
    assert str(study.params.resolved_cache_dir()) not in json.dumps(config)
    labels = study.weak_labels()  # reloads the saved adapter
    assert len(labels) == 5 * 12
    r = study.train_strong("reweighting_sampled")
    assert r["n_train"] == 12
    assert (study.run_dir / "trained" / "strong" / "reweighting_sampled" / "adapter").is_dir()
    # the base model is left without adapter layers for the next method
    model, _ = study.model("strong")
    assert not any("lora" in n for n, _ in model.named_parameters())


def test_methods_the_params_leave_out_are_never_trained(write_params, tmp_path):
    study = Study.open(write_params({"methods": ["naive", "reweighting", "ceiling"], "reliability": {"sweep": [0.5]}}),
                       tmp_path / "run")
    table = study.train_methods(["naive", "filtering", "filtering_sampled"])
    assert table.index.tolist() == ["naive"]
    sweep = study.threshold_sweep()  # no paper point: filtering is not listed
    assert sweep["paper"].tolist() == [False]
    trained = sorted(f.stem for f in (study.run_dir / "methods").glob("*.json"))
    assert "filtering" not in trained and "filtering_sampled" not in trained and "naive" in trained
