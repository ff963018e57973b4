"""Collecting finished runs across datasets (notebook 07's tables), on synthetic metrics files."""

import json

import matplotlib
import pytest

matplotlib.use("Agg")

from relalign import plots, summary  # noqa: E402

METHODS = ["naive", "filtering", "filtering_sampled", "reweighting", "reweighting_sampled", "ceiling"]


def _run(root, dataset, name, acc, incomplete=False):
    d = root / dataset / name
    d.mkdir(parents=True)
    weak, ceiling = acc["weak"], acc["ceiling"]
    methods = {m: {"accuracy": a, "pgr": (a - weak) / (ceiling - weak), "n_train": 10} for m, a in acc.items()}
    (d / "metrics.json").write_text(json.dumps({
        "dataset": dataset, "weak_model": "w", "strong_model": "s", "seed": 0, "n": {"A": 1, "B": 10, "C": 20},
        "weak_label_accuracy": 0.6, "zero_shot_accuracy": {"weak": 0.5, "strong": 0.7},
        "reliability": {"entropy_auroc": 0.7, "reliability_auroc": 0.65, "kept_fraction": 0.5, "kept_accuracy": 0.8},
        "methods": methods, "params": {}, "provenance": {"seconds": 120.0}}))
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
    assert "naive" not in effect.columns and "ceiling" not in effect.columns


def test_summary_figure(results):
    runs = summary.find_runs(results)
    fig = plots.summary_figure(summary.methods_long(runs), summary.runs_table(runs))
    assert len(fig.axes) == 3


def test_markdown_table_marks_the_best_method_only_when_it_beats_naive(results):
    _run(results, "boolq", "offline", {"weak": 0.5, "naive": 0.6, "filtering": 0.55, "filtering_sampled": 0.6,
                                       "reweighting": 0.52, "reweighting_sampled": 0.58, "ceiling": 0.7})
    md = summary.markdown_table(summary.find_runs(results)).splitlines()
    assert md[0].startswith("| run | n C | weak | naive |") and len(md) == 5
    boolq, mmlu, sciq = md[2:]
    assert boolq.startswith("| boolq/offline | 20 |") and "**" not in boolq  # nothing beat naive there
    assert "**0.620**" in mmlu  # filtering_sampled, the best, above naive
    assert "**0.650**" in sciq and sciq.endswith("| 0.70 | 2 |")
