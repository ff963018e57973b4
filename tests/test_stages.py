"""The whole pipeline on a tiny model built in the test and a synthetic dataset."""

import json

import numpy as np
import pytest

import relalign.reliability
import relalign.scoring
from relalign import answering, stages
from relalign.params import ParamsError
from relalign.stages import open_run


def _run_all(run):
    weak = stages.weak_supervisor(run)
    labels = stages.weak_labels(run)
    summary = stages.reliability_summary(run)
    results = {m: stages.train_strong(run, m) for m in run.params.method_names()}
    return weak, labels, summary, results


def test_head_mode_end_to_end_and_metrics(write_params, tmp_path):
    run = open_run(write_params(), tmp_path / "run")
    weak, labels, summary, results = _run_all(run)
    k, n_b = run.params.reliability.k, len(run.task.splits["B"])
    assert len(labels) == k * n_b
    assert set(labels.groupby("qid").size()) == {k}
    assert np.allclose(np.stack(labels["probs"]).sum(1), 1.0, atol=1e-5)
    # answers are identified by text, so the label of a variation is the same choice index as its text
    for _, r in labels.head(20).iterrows():
        q = run.task.questions[r["qid"]]
        assert q.choices[r["weak_target"]] == r["answer"]
    assert results["naive"]["n_train"] == n_b
    assert results["reweighting"]["n_train"] == k * n_b
    assert results["filtering_sampled"]["n_train"] == n_b
    assert results["ceiling"]["label_accuracy"] == 1.0
    m = stages.metrics(run, seconds=1.0)
    assert set(m["methods"]) == {"weak", *run.params.method_names()}
    assert m["n"] == {"A": 16, "B": 12, "C": 16}
    assert 0 <= m["reliability"]["kept_fraction"] <= 1
    on_disk = json.loads((run.rundir.root / "metrics.json").read_text())
    assert on_disk["methods"]["naive"]["accuracy"] == results["naive"]["accuracy"]
    for key in ("git_commit", "package_versions", "seconds"):
        assert key in on_disk["provenance"]
    # per-question correctness on C, for bootstrap intervals: consistent with each accuracy
    assert set(on_disk["test_correct"]) == {"weak", *run.params.method_names()}
    for name, bits in on_disk["test_correct"].items():
        assert len(bits) == 16 and bits.count("1") / 16 == pytest.approx(on_disk["methods"][name]["accuracy"])
    scores = on_disk["reliability"]["scores"]
    assert {"entropy", "reliability", "mean_prob", "prob_entropy", "confidence"} <= set(scores)
    assert scores["entropy"]["auroc"] == pytest.approx(summary["entropy_auroc"], nan_ok=True)
    for name, r in on_disk["methods"].items():  # a 95% interval over C's questions around each accuracy
        assert r["acc_lo"] <= r["accuracy"] <= r["acc_hi"]
    # head mode: every strong head is solved to its optimum with the one L2 chosen on naive's rows
    l2 = json.loads((run.rundir.root / "trained/strong/l2.json").read_text())["l2"]
    for name in run.params.method_names():
        fit = json.loads((run.rundir.root / "trained/strong" / name / "head.json").read_text())
        assert fit["l2"] == l2 and fit["iterations"] > 0


def test_threshold_sweep_marks_the_papers_filter(write_params, tmp_path):
    run = open_run(write_params({"reliability": {"sweep": [0.25, 1.0]}}), tmp_path / "run")
    sweep = stages.threshold_sweep(run)
    assert len(sweep) == 3 and sweep["paper"].tolist() == [False, False, True]
    n_rows = 5 * 12
    assert sweep["rows"].tolist()[:2] == [15, n_rows]
    assert sweep.loc[2, "accuracy"] == stages.train_strong(run, "filtering")["accuracy"]
    saved = json.loads((run.rundir.root / "sweep.json").read_text())["points"]
    assert [p["fraction"] for p in saved] == sweep["fraction"].tolist()


def test_aux_confidence_and_equal_steps_reach_the_learner(write_params, tmp_path):
    run = open_run(write_params({"training": {"mode": "lora", "views": "variations", "equal_steps": True,
                                              "lora": {"max_steps": -1, "epochs": 1}}}), tmp_path / "run")
    def learner(name):
        return answering.learner_for(run, stages.job(run, "strong", name))

    assert learner("aux_confidence").aux_coef == run.params.training.aux_coef > 0
    assert learner("naive").aux_coef == 0
    naive_steps = learner("naive").lora.max_steps
    assert naive_steps == 3  # 12 naive rows, batch 4, one epoch
    assert learner("reweighting").lora.max_steps == naive_steps  # 60 rows, same steps
    fingerprint = answering.fingerprint_of
    assert fingerprint(run, stages.job(run, "strong", "aux_confidence")) != fingerprint(run, stages.job(run, "strong", "naive"))


def test_the_loss_normalisation_of_one_training_changes_only_that_training(write_params, tmp_path):
    lora = {"training": {"mode": "lora", "lora": {"max_steps": 1}}}
    plain = open_run(write_params(lora), tmp_path / "plain")
    lora["training"]["lora"]["loss_normalisation_by_method"] = {"reweighting": "all_positions",
                                                                 "supervisor": "all_positions"}
    mixed = open_run(write_params(lora), tmp_path / "mixed")

    def learner(run, role, name):
        return answering.learner_for(run, stages.job(run, role, name))

    assert learner(mixed, "strong", "reweighting").lora.loss_normalisation == "all_positions"
    assert learner(mixed, "weak", "supervisor").lora.loss_normalisation == "all_positions"
    assert learner(mixed, "strong", "naive").lora.loss_normalisation == "answer_tokens"
    assert learner(mixed, "strong", "naive").describe() == learner(plain, "strong", "naive").describe()  # cache reused
    assert learner(mixed, "strong", "reweighting").describe() != learner(plain, "strong", "reweighting").describe()


def test_strong_seed_draws_only_the_strong_trainings_again(write_params, tmp_path):
    def run(strong_seed, name):
        t = {"mode": "lora", "lora": {"max_steps": 1}} | ({} if strong_seed is None else {"strong_seed": strong_seed})
        return open_run(write_params({"training": t}), tmp_path / name)

    def fp(r, role, name):
        return answering.fingerprint_of(r, stages.job(r, role, name))

    base, same, other = run(None, "base"), run(0, "same"), run(7, "other")  # the study's seed is 0
    assert fp(same, "strong", "naive") == fp(base, "strong", "naive")  # the seed's own draw: cache reused
    assert fp(other, "strong", "naive") != fp(base, "strong", "naive")
    assert answering.learner_for(other, stages.job(other, "strong", "naive")).seed == 7
    assert fp(other, "weak", "supervisor") == fp(base, "weak", "supervisor")  # same supervisor, same weak labels
    assert answering.learner_for(other, stages.job(other, "weak", "supervisor")).seed == 0
    with pytest.raises(ParamsError, match="training.strong_seed"):
        open_run(write_params({"training": {"strong_seed": 7}}), tmp_path / "head")


def test_strong_lr_changes_only_the_strong_trainings(write_params, tmp_path):
    def run(lora, name):
        return open_run(write_params({"training": {"mode": "lora", "lora": {"max_steps": 1, "lr": 1e-3, **lora}}}),
                        tmp_path / name)

    def fp(r, role, name):
        return answering.fingerprint_of(r, stages.job(r, role, name))

    base, same, other = run({}, "base"), run({"strong_lr": 1e-3}, "same"), run({"strong_lr": 2e-4}, "other")
    assert fp(same, "strong", "naive") == fp(base, "strong", "naive")  # the lr it had: cache reused
    assert fp(other, "strong", "naive") != fp(base, "strong", "naive")
    assert answering.learner_for(other, stages.job(other, "strong", "naive")).lora.lr == 2e-4
    assert answering.learner_for(other, stages.job(other, "strong", "ceiling")).lora.lr == 2e-4
    assert fp(other, "weak", "supervisor") == fp(base, "weak", "supervisor")  # same supervisor, same weak labels
    assert answering.learner_for(other, stages.job(other, "weak", "supervisor")).lora.lr == 1e-3


def test_pinned_threads_are_set_and_key_what_is_cached(write_params, tmp_path):
    import torch

    before = torch.get_num_threads()
    try:
        free = open_run(write_params(), tmp_path / "free")
        assert torch.get_num_threads() == before and "threads" not in free.pool.model_id("strong")  # keys as before
        one = open_run(write_params({"compute": {"threads": 1}}), tmp_path / "one")
        assert torch.get_num_threads() == 1
        two = open_run(write_params({"compute": {"threads": 2}}), tmp_path / "two")
        assert torch.get_num_threads() == 2
        assert one.pool.model_id("weak") != two.pool.model_id("weak")  # scores and generations
        naive = [answering.fingerprint_of(r, stages.job(r, "strong", "naive")) for r in (one, two)]
        assert naive[0] != naive[1]  # a trained model, and what is cached under it (weak labels)
    finally:
        torch.set_num_threads(before)


def test_same_params_same_numbers_and_cache_reuse(write_params, tmp_path, monkeypatch):
    path = write_params()
    first = _run_all(open_run(path, tmp_path / "one"))

    def boom(*a, **k):
        raise AssertionError("scored again although every prompt is cached")

    monkeypatch.setattr(relalign.scoring, "score_prompts", boom)
    second = _run_all(open_run(path, tmp_path / "two"))
    assert first[0]["accuracy"] == second[0]["accuracy"]
    assert first[1].equals(second[1])
    assert {m: r["accuracy"] for m, r in first[3].items()} == {m: r["accuracy"] for m, r in second[3].items()}


def test_variations_view_scores_each_rows_own_prompt(write_params, tmp_path):
    run = open_run(write_params({"training": {"views": "variations"}}), tmp_path / "run")
    stages.weak_supervisor(run)
    r = stages.train_strong(run, "reweighting")
    assert r["n_train"] == len(stages.weak_labels(run))


def test_lora_mode_trains_adapters_and_reloads_them(write_params, tmp_path):
    run = open_run(write_params({"training": {"mode": "lora", "views": "variations"}}), tmp_path / "run")
    weak = stages.weak_supervisor(run)
    assert 0 <= weak["zero_shot_accuracy"] <= 1  # the base model's letter answer
    config = json.loads((run.rundir.root / "trained" / "weak" / "supervisor" / "adapter" / "adapter_config.json").read_text())
    # the base model as params name it, not the converted copy in this machine's cache
    assert config["base_model_name_or_path"] == run.params.model_spec("weak").reference()
    assert str(run.params.resolved_cache_dir()) not in json.dumps(config)
    labels = stages.weak_labels(run)  # reloads the saved adapter
    assert len(labels) == 5 * 12
    r = stages.train_strong(run, "reweighting_sampled")
    assert r["n_train"] == 12
    assert (run.rundir.root / "trained" / "strong" / "reweighting_sampled" / "adapter").is_dir()
    # the base model is left without adapter layers for the next method
    model, _ = run.pool.model("strong")
    assert not any("lora" in n for n, _ in model.named_parameters())


def test_methods_the_params_leave_out_are_never_trained(write_params, tmp_path):
    run = open_run(write_params({"methods": ["naive", "reweighting", "ceiling"], "reliability": {"sweep": [0.5]}}),
                   tmp_path / "run")
    table = stages.train_methods(run, ["naive", "filtering", "filtering_sampled"])
    assert table.index.tolist() == ["naive"]
    sweep = stages.threshold_sweep(run)  # no paper point: filtering is not listed
    assert sweep["paper"].tolist() == [False]
    trained = sorted(f.stem for f in (run.rundir.root / "methods").glob("*.json"))
    assert "filtering" not in trained and "filtering_sampled" not in trained and "naive" in trained


def test_each_step_computes_once_and_metrics_names_what_is_missing(write_params, tmp_path, monkeypatch):
    from relalign.rundir import MissingResult

    run = open_run(write_params({"methods": ["naive", "ceiling"], "reliability": {"sweep": []}}), tmp_path / "run")
    with pytest.raises(MissingResult, match="weak supervisor"):
        stages.metrics(run)
    calls = []
    real = relalign.reliability.question_table
    monkeypatch.setattr(relalign.reliability, "question_table", lambda *a, **k: calls.append(1) or real(*a, **k))
    for m in ("naive", "ceiling", "naive"):
        stages.train_strong(run, m)
    stages.reliability_summary(run)
    assert len(calls) == 1  # the reliability table was built once for all of them


def test_lora_with_canonical_views_trains_every_row_on_its_questions_canonical_prompt(write_params, tmp_path):
    run = open_run(write_params({"training": {"mode": "lora", "views": "canonical", "lora": {"layers": 1}}}),
                   tmp_path / "run")
    stages.weak_supervisor(run)
    data = stages.training_data(run, "strong", "reweighting")
    canonical = {p.text: p for p in run.task.canonical_prompts("B")}
    assert len(data.prompts) == len(stages.weak_labels(run)) and {p.text for p in data.prompts} == set(canonical)
    rows = stages.training_rows(run, "reweighting")
    for p, t, target in zip(data.prompts, data.targets, rows["target"]):
        assert p.position_of(int(target)) == t  # each weak label, at its place in the canonical listing
    assert stages.train_strong(run, "reweighting")["n_train"] == len(rows)


def test_partial_lora_answers_zero_shot_for_both_models(write_params, tmp_path):
    """The untrained top layers on the cached bottom states: for the strong model too (its learner is
    built for no method, so it must not look one up)."""
    run = open_run(write_params({"training": {"mode": "lora", "views": "canonical", "lora": {"layers": 1}}}),
                   tmp_path / "run")
    for role in ("weak", "strong"):
        assert 0 <= stages.zero_shot_accuracy(run, role) <= 1
