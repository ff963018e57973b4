"""Collecting finished runs across datasets (notebook 07's tables), on synthetic metrics files."""

import json

import matplotlib
import pandas as pd
import pytest

matplotlib.use("Agg")

from relalign import compare, plots, summary  # noqa: E402
from relalign.stats import bootstrap_methods, parse_correct  # noqa: E402

METHODS = ["naive", "filtering", "filtering_sampled", "reweighting", "reweighting_sampled", "ceiling"]


def _run(root, dataset, name, acc, incomplete=False, seed=0, n_test=None, training=None):
    """A finished run's metrics.json; with ``n_test`` also per-example correctness on C (exactly
    round(acc n) right answers per method, in a seeded order)."""
    import numpy as np

    d = root / dataset / (name if seed == 0 else f"{name}-seed{seed}")
    d.mkdir(parents=True)
    weak, ceiling = acc["weak"], acc["ceiling"]
    methods = {m: {"accuracy": a, "pgr": (a - weak) / (ceiling - weak), "n_train": 10} for m, a in acc.items()}
    extra = {}
    if n_test:
        rng = np.random.RandomState(seed)
        extra["test_correct"] = {m: "".join("1" if x else "0" for x in rng.permutation(np.arange(n_test) < round(a * n_test)))
                                 for m, a in acc.items()}
    (d / "metrics.json").write_text(json.dumps({
        "dataset": dataset, "weak_model": "w", "strong_model": "s", "seed": seed, "n": {"A": 1, "B": 10, "C": n_test or 20},
        "weak_label_accuracy": 0.6, "zero_shot_accuracy": {"weak": 0.5, "strong": 0.7},
        "reliability": {"entropy_auroc": 0.7, "reliability_auroc": 0.65, "kept_fraction": 0.5, "kept_accuracy": 0.8},
        "methods": methods, "params": {"name": name, **({"training": training} if training else {})}, "provenance": {"seconds": 120.0}, **extra}))
    if incomplete:
        (d / "INCOMPLETE").write_text("")
    return d


@pytest.fixture
def results(tmp_path):
    base = {"weak": 0.5, "naive": 0.6, "filtering": 0.65, "filtering_sampled": 0.62, "reweighting": 0.58,
            "reweighting_sampled": 0.6, "ceiling": 0.7}
    _run(tmp_path, "sciq", "default", base)
    _run(tmp_path, "mmlu", "offline", {**base, "filtering": 0.55})
    _run(tmp_path, "ethics", "offline", base, incomplete=True)
    (tmp_path / "benchmarks").mkdir()
    return tmp_path


def test_only_finished_runs_are_collected(results):
    runs = summary.find_runs(results)
    assert [f"{r.parent.name}/{r.name}" for r in runs] == ["mmlu/offline", "sciq/default"]
    with pytest.raises(FileNotFoundError):
        summary.find_runs(results / "nowhere")


def test_tables(results):
    runs = summary.find_runs(results)
    long = summary.methods_long(runs)
    assert len(long) == 2 * 7 and set(long["method"]) == {"weak", *METHODS}
    table = summary.runs_table(runs)
    assert table.set_index("dataset").loc["sciq", "gap"] == pytest.approx(0.2)
    assert table.set_index("dataset").loc["sciq", "minutes"] == pytest.approx(2.0)
    effect = summary.effect_table(long)
    assert effect.loc[("sciq", "default"), "filtering"] == pytest.approx(5.0)
    assert effect.loc[("mmlu", "offline"), "filtering"] == pytest.approx(-5.0)
    assert summary.intervals(runs).empty  # these runs predate per-example correctness
    assert "naive" not in effect.columns and "ceiling" not in effect.columns


def test_summary_figure(results):
    runs = summary.find_runs(results)
    fig = plots.summary_figure(summary.methods_long(runs), summary.runs_table(runs))
    assert len(fig.axes) == 3


def test_summary_figure_with_intervals(tmp_path):
    _seeded(tmp_path, gain=0.1)
    runs = summary.find_runs(tmp_path)
    fig = plots.summary_figure(summary.methods_long(runs), summary.runs_table(runs), summary.intervals(runs, n_boot=100))
    assert len(fig.axes[0].containers) >= 5  # bars of every method, plus error bars


def test_markdown_table_one_row_per_study_plain_without_intervals(results):
    _run(results, "boolq", "offline", {"weak": 0.5, "naive": 0.6, "filtering": 0.55, "filtering_sampled": 0.6,
                                       "reweighting": 0.52, "reweighting_sampled": 0.58, "ceiling": 0.7})
    md = summary.markdown_table(summary.find_runs(results)).splitlines()
    assert md[0].startswith("| study | mode | weak → strong | seeds | n C | weak | naive |") and len(md) == 5
    assert md[0].endswith("| ceiling | PGR naive | strong 0-shot | AUROC H | min/run |")
    boolq, mmlu, sciq = md[2:]
    assert boolq.startswith("| boolq/offline | head | w → s | 1 | 20 |") and "**" not in boolq and "±" not in boolq
    assert "| 0.550 |" in mmlu and sciq.endswith("| 0.700 | 0.50 | 0.700 | 0.70 | 2 |")  # ceiling, naive's PGR, ...


def test_how_a_study_trained_and_its_models_sizes():
    assert summary.training_mode({}) == "head"
    assert summary.training_mode({"training": {"mode": "lora", "lora": {"layers": 2}}}) == "lora top 2"
    assert summary.training_mode({"training": {"mode": "lora", "lora": {"layers": None}}}) == "lora"
    sizes = {"smollm2-135m-instruct": "135M", "qwen2.5-coder-0.5b-instruct": "0.5B", "Qwen/Qwen2.5-7B-Instruct": "7B",
             "meta-llama/Llama-2-13b-hf": "13B", "gemma-3-270m": "270M", "gpt2": "gpt2"}
    assert {n: summary.model_size(n) for n in sizes} == sizes


def _seeded(root, gain):
    base = {"weak": 0.5, "naive": 0.6, "filtering": 0.6 + gain, "reweighting": 0.6, "ceiling": 0.8}
    for seed in (0, 1, 2):
        _run(root, "sciq", "default", base, seed=seed, n_test=300)


def test_intervals_over_seeds_and_significance(tmp_path):
    _seeded(tmp_path, gain=0.12)
    runs = summary.find_runs(tmp_path)
    assert [r.name for r in runs] == ["default", "default-seed1", "default-seed2"]
    iv = summary.intervals(runs, n_boot=300).set_index("method")
    assert list(iv.index) == ["weak", "naive", "filtering", "reweighting", "ceiling"]  # the study's method order
    assert (iv["n_seeds"] == 3).all() and (iv["n_test"] == 300).all()
    # the study's three runs, in seed order, are one bootstrap over seeds
    metrics = [json.loads((r / "metrics.json").read_text())["test_correct"] for r in runs]
    direct = bootstrap_methods({m: [parse_correct(c[m]) for c in metrics] for m in metrics[0]}, n_boot=300)
    pd.testing.assert_frame_equal(iv.loc[direct.index, direct.columns], direct, check_names=False)
    assert iv.loc["filtering", "call"] == "significant" and iv.loc["reweighting", "call"] == "not significant"
    lines = summary.significance_lines(iv.reset_index())
    assert len(lines) == 1 and "3 seeds" in lines[0] and "300 bootstrap draws" in lines[0]
    f = iv.loc["filtering"]
    assert f["p_holm"] == 0
    assert f"filtering +12.0 points [{f['diff_lo']:+.1f}, {f['diff_hi']:+.1f}], p < 0.001." in lines[0]
    assert "too close" not in lines[0] and "reweighting" not in lines[0]
    md = summary.markdown_table(runs).splitlines()
    assert md[2].startswith("| sciq/default | head | w → s | 3 | 300 |")
    assert "**0.720 ±" in md[2] and "| 0.600 ±" in md[2]  # significant gain in bold, the rest plain


def _close_call(iv: pd.DataFrame, method: str) -> pd.DataFrame:
    """``iv`` with ``method``'s call made too close to call (p_holm 0.049 ± 0.002)."""
    iv = iv.copy()
    row = iv["method"] == method
    iv.loc[row, ["p_holm", "p_holm_mc_se", "call", "significant"]] = [0.049, 0.002, "too close to call", False]
    return iv


def test_a_call_too_close_to_make_is_said_so(tmp_path, monkeypatch):
    _seeded(tmp_path, gain=0.12)
    runs = summary.find_runs(tmp_path)
    iv = _close_call(summary.intervals(runs, n_boot=300), "filtering")
    line = summary.significance_lines(iv)[0]
    assert "too close to call (Holm p within 3 Monte Carlo standard errors of 0.05): filtering +12.0 points" in line
    assert "p = 0.049 ± 0.002" in line
    assert "significantly different" not in line and "no method differs" not in line
    monkeypatch.setattr(summary, "intervals", lambda runs: iv)
    md = summary.markdown_table(runs).splitlines()
    assert "| 0.720 ±" in md[2] and "**" not in md[2] and md[2].count("†") == 1
    assert md[-1].startswith("† too close to call") and md[-2] == ""


def test_no_significant_difference_is_said_so(tmp_path):
    _seeded(tmp_path, gain=0.0)
    lines = summary.significance_lines(summary.intervals(summary.find_runs(tmp_path), n_boot=200))
    assert "no method differs significantly from naive" in lines[0]


def test_minutes_of_a_run_are_its_whole_relalign_run_when_it_completed(results):
    run = results / "sciq" / "default"
    (run / "run_status.json").write_text(json.dumps({"status": "complete", "seconds": 600.0}))
    (results / "mmlu" / "offline" / "run_status.json").write_text(json.dumps({"status": "running"}))
    table = summary.runs_table(summary.find_runs(results)).set_index("dataset")
    assert table.loc["sciq", "minutes"] == pytest.approx(10.0)  # not metrics.json's 2 minutes
    assert table.loc["mmlu", "minutes"] == pytest.approx(2.0)  # no finished run status: metrics.json's time


def test_power_table_says_what_a_null_can_rule_out(tmp_path):
    from relalign.power import study_power

    _seeded(tmp_path, gain=0.0)
    runs = summary.find_runs(tmp_path)
    power = summary.power_table(runs)
    assert len(power) == 1 and power.loc[0, "n_seeds"] == 3 and power.loc[0, "n_compared"] == 2
    correct = summary.study_outcomes(runs)[("sciq", "default")]
    assert power.loc[0, "mde"] == pytest.approx(study_power(correct)["mde"])
    line = summary.significance_lines(summary.intervals(runs, n_boot=200), power)[0]
    assert f"it detects a difference of {power.loc[0, 'mde']:.1f} points with 80% power" in line


def test_differences_name_every_changed_result_and_skip_provenance():
    from relalign.summary import differences

    a = {"methods": {"naive": {"accuracy": 0.8, "pgr": float("nan")}}, "sweep": [1, 2], "provenance": {"git": "x"},
         "params": {"seed": 0}}
    b = {"methods": {"naive": {"accuracy": 0.8000001, "pgr": float("nan")}}, "sweep": [1, 3], "provenance": {"git": "y"},
         "params": {"seed": 1}, "extra": 1}
    assert differences(a, a) == []
    assert differences(a, b) == ["extra: only in the second", "methods.naive.accuracy: 0.8 != 0.8000001",
                                 "sweep[1]: 2 != 3"]
    assert "params.seed: 0 != 1" in differences(a, b, ignore=("provenance",))


def test_head_against_lora_per_dataset(tmp_path):
    _seeded(tmp_path, gain=0.0)  # sciq/default, head mode: filtering as naive
    lora = {"weak": 0.4, "naive": 0.6, "filtering": 0.75, "reweighting": 0.6, "ceiling": 0.8}
    for seed in (0, 1, 2):
        _run(tmp_path, "sciq", "lora", lora, seed=seed, n_test=300, training={"mode": "lora", "lora": {"layers": 2}})
    runs = summary.find_runs(tmp_path)
    iv, table = summary.intervals(runs, n_boot=300), summary.runs_table(runs)
    wide = compare.by_mode(iv, table)
    assert list(wide.columns) == ["head", "lora top 2"]
    assert list(wide.index) == [("sciq", "naive"), ("sciq", "filtering"), ("sciq", "reweighting")]
    assert wide.loc[("sciq", "naive"), "head"].startswith("PGR 0.33 [")  # (0.6 - 0.5) / (0.8 - 0.5)
    assert wide.loc[("sciq", "naive"), "lora top 2"].startswith("PGR 0.50 [")
    assert wide.loc[("sciq", "filtering"), "lora top 2"].startswith("+15.0 [") and wide.loc[
        ("sciq", "filtering"), "lora top 2"].endswith("] *")  # significant
    assert wide.loc[("sciq", "filtering"), "head"].startswith("+0.0 [")
    assert not wide.loc[("sciq", "filtering"), "head"].endswith("*")
    fig = plots.mode_figure(iv, table)
    assert len(fig.axes) == 1 and len(fig.axes[0].get_legend().get_texts()) == 2
    fig = plots.seed_figure(summary.methods_long(runs), [("sciq", "lora"), ("sciq", "default")])
    lora_axis = fig.axes[0]
    assert len(fig.axes) == 2 and lora_axis.get_title() == "sciq/lora" and len(lora_axis.get_lines()) == 3  # a line a seed
    assert [t.get_text() for t in lora_axis.get_xticklabels()] == ["weak", "naive", "filtering", "reweighting", "ceiling"]
    assert list(lora_axis.get_lines()[0].get_ydata()) == [0.4, 0.6, 0.75, 0.6, 0.8]
    lines = compare.mode_lines(iv, table)
    assert len(lines) == 2 and lines[0].startswith("sciq/default (head): naive recovers 33% of the gap [")
    assert "0 of 2 methods significantly better" in lines[0] and "1 of 2 methods significantly better" in lines[1]
    assert lines[1].endswith("differences from naive +0.0 to +15.0 points")
    assert compare.mode_lines(iv[iv["study"] == "lora"], table[table["study"] == "lora"]) == []  # one mode only
    for seed in (0, 1, 2):  # a second head study of the dataset: the columns name their studies
        _run(tmp_path, "sciq", "other", lora, seed=seed, n_test=300)
    runs = summary.find_runs(tmp_path)
    wide = compare.by_mode(summary.intervals(runs, n_boot=300), summary.runs_table(runs))
    assert list(wide.columns) == ["head: default", "head: other", "lora top 2"]
    assert compare.by_mode(summary.intervals([], n_boot=10), table).empty


def _with_all_rows(run, accuracy, n_test, seed):
    """Adds the all-rows sweep point to a synthetic run (its sweep.json, as notebook 04 writes it)."""
    import numpy as np

    right = np.random.RandomState(100 + seed).permutation(np.arange(n_test) < round(accuracy * n_test))
    points = [{"fraction": 0.5, "accuracy": 0.0, "correct": "0" * n_test},
              {"fraction": 1.0, "accuracy": accuracy, "correct": "".join("1" if x else "0" for x in right)}]
    (run / "sweep.json").write_text(json.dumps({"points": points}))


def test_methods_against_every_row_unweighted(tmp_path):
    acc = {"weak": 0.4, "naive": 0.6, "filtering": 0.8, "reweighting": 0.7, "ceiling": 0.85}
    for seed in (0, 1, 2):
        _with_all_rows(_run(tmp_path, "sciq", "lora", acc, seed=seed, n_test=300), 0.7, 300, seed)
    _run(tmp_path, "mmlu", "offline", acc, n_test=300)  # no sweep: no control, left out
    runs = summary.find_runs(tmp_path)
    out = compare.against_all_rows(runs, n_boot=300).set_index("method")
    assert list(out.index) == ["kept_1000", "naive", "filtering", "reweighting"]  # no weak, no ceiling
    assert set(out["study"]) == {"lora"} and out.loc["kept_1000", "accuracy"] == pytest.approx(0.7)
    assert out.loc["filtering", "diff"] == pytest.approx(10.0) and out.loc["filtering", "call"] == "significant"
    assert out.loc["naive", "diff"] == pytest.approx(-10.0) and out.loc["reweighting", "diff"] == pytest.approx(0.0)
    # a seed without the point leaves the study out
    (runs[-1] / "sweep.json").unlink()
    assert compare.against_all_rows(summary.find_runs(tmp_path), n_boot=100).empty


def test_what_a_null_against_the_all_rows_control_rules_out(tmp_path):
    from relalign.power import study_power

    acc = {"weak": 0.4, "naive": 0.6, "filtering": 0.7, "reweighting": 0.7, "ceiling": 0.85}
    for seed in (0, 1, 2):  # the control answers C exactly as filtering and re-weighting do; naive does not
        run = _run(tmp_path, "sciq", "lora", acc, seed=seed, n_test=300)
        metrics = json.loads((run / "metrics.json").read_text())
        same = metrics["test_correct"]["reweighting"] = metrics["test_correct"]["filtering"]
        (run / "metrics.json").write_text(json.dumps(metrics))
        (run / "sweep.json").write_text(json.dumps({"points": [{"fraction": 1.0, "accuracy": 0.7, "correct": same}]}))
    _run(tmp_path, "mmlu", "offline", acc, n_test=300)  # no all-rows point: not in the table
    runs = summary.find_runs(tmp_path)
    table = compare.all_rows_power(runs)
    assert list(zip(table["dataset"], table["study"])) == [("sciq", "lora")]
    row = table.iloc[0]
    assert row["n_compared"] == 3 and row["n_seeds"] == 3 and row["n_test"] == 300  # naive is compared too
    naive_only = study_power(compare.all_rows_outcomes(runs)[("sciq", "lora")], reference="naive", exclude=())
    assert row["discordance"] == pytest.approx(naive_only["discordance"] / 3)  # two of three never disagree
    assert row["mde"] < summary.power_table(runs).iloc[0]["mde"]
    assert compare.all_rows_power([]).empty


def test_design_conditions_per_study(tmp_path):
    lora = {"weak": 0.4, "naive": 0.6, "filtering": 0.75, "reweighting": 0.6, "ceiling": 0.8}
    close = {"weak": 0.5, "naive": 0.75, "filtering": 0.76, "reweighting": 0.75, "ceiling": 0.8}
    for seed in (0, 1, 2):
        for study, acc, params_file in (("lora", lora, "params/x-lora.yaml"), ("default", close, "params/x.yaml")):
            run = _run(tmp_path, "sciq", study, acc, seed=seed, n_test=1000)
            (run / "run_status.json").write_text(json.dumps({"status": "complete", "params_file": params_file,
                                                             "seconds": 60.0}))
    report = tmp_path / "end_to_end.json"
    report.write_text(json.dumps({"runs": {"params/x-lora.yaml": {"ok": True, "minutes": 61.0},
                                           "params/x.yaml": {"ok": True, "minutes": 12.0}}}))
    runs = summary.find_runs(tmp_path)
    iv = summary.intervals(runs, n_boot=500)
    power = pd.DataFrame({"dataset": ["sciq", "sciq"], "study": ["lora", "default"], "mde": [3.5, 6.0]})
    minutes = compare.seed_minutes(report)
    table = compare.conditions(iv, power, summary.runs_table(runs), minutes).set_index("study")
    lo, hi = table.loc["lora"], table.loc["default"]
    assert lo["gap"] == pytest.approx(40.0) and lo["shortfall"] == pytest.approx(20.0) and lo["room"]
    assert lo["below_ceiling"] and lo["detects"] and not lo["affordable"] and not lo["holds"]  # 61 min > 60
    assert hi["room"] and hi["shortfall"] == pytest.approx(5.0) and hi["shortfall_lo"] > 0
    assert not hi["below_ceiling"] and not hi["detects"] and hi["affordable"] and not hi["holds"]  # 5 points < MDE 6
    text = compare.conditions_markdown(table.reset_index())
    assert text.count("✗") == 3 and "| sciq/lora |" in text and "40.0 [" in text
    assert "seeds" not in text.replace("(≤ ", "")  # no power table's seeds_needed: nothing said
    power["seeds_needed"] = [2.0, float("inf")]
    lines = compare.conditions_markdown(compare.conditions(iv, power, summary.runs_table(runs), minutes)).splitlines()
    assert "6.0 (3 × 1000) ✗; 4 at more than 100 seeds |" in lines[2] and " at " not in lines[3]  # default, lora
    power["seeds_needed"] = [2.0, 12.0]
    assert "✗; 4 at 12 seeds |" in compare.conditions_markdown(compare.conditions(iv, power, summary.runs_table(runs), minutes))
    power = power.drop(columns="seeds_needed")
    minutes[("params/x-lora.yaml", "")] = 59.0
    assert compare.conditions(iv, power, summary.runs_table(runs), minutes).set_index("study").loc["lora", "holds"]
    power.loc[0, "mde"] = 4.5
    assert not compare.conditions(iv, power, summary.runs_table(runs), minutes).set_index("study").loc["lora", "holds"]
    assert compare.seed_minutes(tmp_path / "none.json") == {}
    assert compare.conditions(summary.intervals([], n_boot=10), power, summary.runs_table(runs), minutes).empty


def test_a_variant_takes_its_own_seed_time_or_says_it_was_not_timed(tmp_path):
    acc = {"weak": 0.4, "naive": 0.6, "reweighting": 0.7, "ceiling": 0.8}
    for study, sets in (("lora", []), ("lora-refnorm", ["name=lora-refnorm", "methods=[naive, reweighting, ceiling]"])):
        for seed in (0, 1):
            run = _run(tmp_path, "sciq", study, acc, seed=seed, n_test=500)
            (run / "run_status.json").write_text(json.dumps({"status": "complete", "params_file": "params/x-lora.yaml",
                                                             "overrides": [f"seed={seed}", *sets], "seconds": 60.0}))
    report = tmp_path / "end_to_end.json"
    report.write_text(json.dumps({"runs": {"params/x-lora.yaml": {"params": "params/x-lora.yaml", "ok": True,
                                                                  "minutes": 30.0, "overrides": ["seed=1"]}}}))
    runs = summary.find_runs(tmp_path)
    iv = summary.intervals(runs, n_boot=200)
    power = pd.DataFrame({"dataset": ["sciq"] * 2, "study": ["lora", "lora-refnorm"], "mde": [3.0, 3.0]})
    minutes = compare.seed_minutes(report)
    assert minutes == {("params/x-lora.yaml", ""): 30.0}  # the seed is not part of the variant
    table = compare.conditions(iv, power, summary.runs_table(runs), minutes).set_index("study")
    assert table.loc["lora", "timed_variant"] and not table.loc["lora-refnorm", "timed_variant"]
    assert table.loc["lora-refnorm", "minutes"] == 30.0
    lines = compare.conditions_markdown(table.reset_index()).splitlines()
    assert "without this study's `--set`" in lines[-1] and "without" not in lines[-2]
    from relalign import docblocks

    made = docblocks.runs_markdown(runs).splitlines()
    assert made[2] == "| sciq/lora | [`x-lora.yaml`](../params/x-lora.yaml) | 1 / 10 / 500 | ? | 0, 1 | ? | ? |"
    assert made[3].startswith("| sciq/lora-refnorm | `x-lora.yaml`, `--set name=lora-refnorm`, "
                              "`--set 'methods=[naive, reweighting, ceiling]'` | 1 / 10 / 500 | ? | 0, 1 |")
    minutes[("params/x-lora.yaml", "methods=[naive, reweighting, ceiling]; name=lora-refnorm")] = 12.0
    table = compare.conditions(iv, power, summary.runs_table(runs), minutes).set_index("study")
    assert table.loc["lora-refnorm", "minutes"] == 12.0 and table.loc["lora-refnorm", "timed_variant"]


def test_normalisation_studies_side_by_side(tmp_path):
    from relalign import docblocks

    for study, naive in (("lora", 0.6), ("lora-refnorm", 0.6)):
        acc = {"weak": 0.4, "naive": naive, "reweighting": 0.75 if study == "lora" else 0.65,
               **({"reweighting_sampled": 0.7} if study == "lora" else {}), "ceiling": 0.8}
        for seed in (0, 1, 2):
            _with_all_rows(_run(tmp_path, "sciq", study, acc, seed=seed, n_test=300), 0.7, 300, seed)
    runs = summary.find_runs(tmp_path)
    iv, control, power = summary.intervals(runs, n_boot=300), compare.against_all_rows(runs, n_boot=300), summary.power_table(runs)
    lines = docblocks.variants_markdown(iv, control, power).splitlines()
    assert lines[0] == ("| | answer tokens (`sciq/lora`) | all positions, re-weighting only (the reference) "
                        "(`sciq/lora-refnorm`) |")  # lora-allpos has no runs: no column
    assert lines[2].startswith("| naive's PGR (accuracy) | 0.50 [") and "(0.600)" in lines[2]
    assert lines[3].startswith("| ceiling − naive, points | +20.0 [") and "], " not in lines[3]  # no call
    assert lines[4].startswith("| re-weighting − naive, points | +15.0 [") and "| +5.0 [" in lines[4]
    assert lines[6].startswith("| re-weighting − all rows unweighted | +5.0 [") and "| -5.0 [" in lines[6]
    assert lines[7].startswith("| seed spread of a method − naive, points | 0.0 |")  # the same accuracy every seed
    only_reweighting = docblocks.variants_markdown(iv, control, power, studies={"lora-refnorm": "x"}).splitlines()
    assert not any(line.startswith("| reweighting_sampled") for line in only_reweighting)  # no study has it: no row


def test_sweep_table_is_the_mean_over_seeds_of_the_fractions_every_seed_ran(tmp_path):
    from relalign import docblocks

    acc = {"weak": 0.4, "naive": 0.6, "ceiling": 0.8}
    for seed, points in ((0, [(0.5, 0.70, 0.9), (1.0, 0.60, 0.5)]), (1, [(0.5, 0.80, 0.7), (0.7, 0.5, 0.6), (1.0, 0.62, 0.5)])):
        run = _run(tmp_path, "sciq", "lora", acc, seed=seed, n_test=100)
        rows = [{"fraction": f, "accuracy": a, "label_accuracy": la, "paper": False} for f, a, la in points]
        rows.append({"fraction": 0.5, "accuracy": 0.0, "label_accuracy": 0.0, "paper": True})  # not a sweep point
        (run / "sweep.json").write_text(json.dumps({"points": rows}))
    runs = summary.find_runs(tmp_path)
    table = docblocks.sweep_markdown(runs, "sciq", "lora").splitlines()
    assert table[0] == "| kept fraction | 50% | 100% |"  # 70%: one seed only
    assert table[2] == "| strong accuracy on C | 0.750 | 0.610 |"
    assert table[3] == "| label accuracy of the kept rows | 0.800 | 0.500 |"
    assert docblocks.sweep_markdown(runs, "sciq", "other") is None
    (runs[0] / "sweep.json").unlink()
    assert docblocks.sweep_markdown(runs, "sciq", "lora") is None


def test_studies_compared_on_the_seeds_they_share(tmp_path):
    from relalign import docblocks

    acc = {"weak": 0.4, "naive": 0.6, "ceiling": 0.8}
    for study, seeds in (("lora", (0, 1, 2, 3)), ("lora-allpos", (0, 1, 2)), ("lora-refnorm", (1, 2, 5))):
        for seed in seeds:
            _run(tmp_path, "sciq", study, acc, seed=seed)
    _run(tmp_path, "mmlu", "lora", acc, seed=1)
    runs = summary.find_runs(tmp_path)
    kept = docblocks.common_seeds(runs, "sciq", ["lora", "lora-allpos", "lora-refnorm"])
    assert sorted((r.parent.name, r.name) for r in kept) == [("sciq", n) for n in sorted(
        ["lora-seed1", "lora-seed2", "lora-allpos-seed1", "lora-allpos-seed2", "lora-refnorm-seed1", "lora-refnorm-seed2"])]
    assert len(docblocks.common_seeds(runs, "sciq", ["lora", "absent"])) == 4  # a study with no runs does not count


def test_power_table_as_markdown():
    from relalign import docblocks

    power = pd.DataFrame({"dataset": ["sciq", "mmlu"], "study": ["lora", "lora"], "mde": [11.8, 6.5],
                          "discordance": [0.215, 0.15], "seed_sd": [7.7, 3.3], "n_test": [598.0, 1000.0],
                          "n_seeds": [5, 3], "seeds_needed": [float("inf"), 10.0]})
    lines = docblocks.power_markdown(power).splitlines()
    assert lines[2] == "| mmlu/lora | 3 × 1000 | 0.15 | 3.3 | 6.5 | 10 |"
    assert lines[3] == "| sciq/lora | 5 × 598 | 0.21 | 7.7 | 11.8 | more than 100 |"
