"""Answer-position bias (relalign.positions): counts by hand on a tiny run and a synthetic study."""

import json

import numpy as np
import pandas as pd
import pytest

from relalign import positions


def test_top_position_counts_and_breaks_ties_low():
    assert positions.top_position([2, 0, 2, 1]) == (2, 0.5)
    assert positions.top_position([3, 1, 1, 3]) == (1, 0.5)
    with pytest.raises(ValueError, match="no positions"):
        positions.top_position([])


def test_displayed_position_is_the_index_in_the_rows_order():
    rows = pd.DataFrame({"qid": ["a", "a", "b"], "variation": [0, 1, 0], "order": [[0, 1, 2], [2, 0, 1], [1, 2, 0]],
                         "weak_target": [2, 2, 2], "gold_target": [0, 0, 1]})
    assert positions.displayed_positions(rows).tolist() == [2, 0, 1]
    assert positions.displayed_positions(rows, "gold_target").tolist() == [0, 1, 0]
    assert positions.displayed_positions(rows, canonical=True).tolist() == [2, 2, 1]  # a's second row in a's first order


def _run(root, seed, naive, naive_acc, name="lora", views=None):
    """A finished multiple-choice run: 4 questions of B in two variations (the canonical order and
    its reverse), the weak supervisor's and three methods' answers on C (6 questions)."""
    d = root / "sciq" / (name if seed == 0 else f"{name}-seed{seed}")
    (d / "methods").mkdir(parents=True)
    canonical, reverse = [0, 1, 2], [2, 1, 0]
    weak_targets = [1, 1, 1, 0]  # favourite position 1 in the canonical view (3 of 4)
    recs = [{"qid": f"q{i}", "variation": 0, "order": canonical, "weak_target": t, "gold_target": i % 3}
            for i, t in enumerate(weak_targets)]
    recs += [{"qid": f"q{i}", "variation": 1, "order": reverse, "weak_target": 2, "gold_target": i % 3} for i in range(4)]
    pd.DataFrame(recs).to_parquet(d / "weak_labels.parquet", index=False)
    (d / "weak_supervisor.json").write_text(json.dumps({"accuracy": 0.5, "predictions": [1, 1, 1, 1, 0, 2]}))
    for method, pred, acc in (("naive", naive, naive_acc), ("reweighting", [0, 1, 2, 0, 1, 2], 0.8),
                              ("ceiling", [0, 1, 2, 2, 1, 0], 0.9)):
        (d / "methods" / f"{method}.json").write_text(json.dumps({"accuracy": acc, "predictions": pred}))
    training = {"training": {"views": views}} if views else {}
    (d / "metrics.json").write_text(json.dumps({"dataset": "sciq", "seed": seed, "params": {"name": name, **training}}))
    return d


def test_run_positions_by_hand(tmp_path):
    rows = {r["source"]: r for r in positions.run_positions(_run(tmp_path, 0, [1, 1, 1, 1, 1, 0], 0.4))}
    assert rows["weak labels B"]["top"] == 1 and rows["weak labels B"]["top_share"] == 0.75
    assert rows["weak labels B"]["favourite_share"] == 0.75 and np.isnan(rows["weak labels B"]["accuracy"])
    # gold of B: choices 0, 1, 2, 0 shown in the canonical order; the favourite (1) holds one of four
    assert rows["gold B"]["favourite_share"] == 0.25 and rows["gold B"]["top"] == 0
    # every answer in the canonical prompt (views: canonical): 1, 1, 1, 0 and choice 2 four times
    k = rows["weak labels B, K answers"]
    assert k["top"] == 2 and k["top_share"] == 0.5 and k["favourite_share"] == 3 / 8
    # views: variations -- as shown: the reversed order shows choice 2 at position 0
    shown = {r["source"]: r for r in positions.run_positions(_run(tmp_path, 1, [1] * 6, 0.4), views="variations")}
    assert shown["weak labels B, K answers"]["top"] == 0 and shown["weak labels B, K answers"]["top_share"] == 5 / 8
    assert rows["naive"]["favourite_share"] == pytest.approx(5 / 6) and rows["naive"]["accuracy"] == 0.4
    assert rows["reweighting"]["favourite_share"] == pytest.approx(2 / 6)
    assert rows["weak"]["favourite_share"] == pytest.approx(4 / 6) and rows["weak"]["split"] == "C"
    assert {r["favourite"] for r in rows.values()} == {1}


def test_open_answer_runs_have_no_positions(tmp_path):
    d = tmp_path / "gsm8k" / "x"
    d.mkdir(parents=True)
    pd.DataFrame({"qid": ["q0"], "variation": [0], "weak_target": [3.0]}).to_parquet(d / "weak_labels.parquet")
    assert positions.run_positions(d) == []


def test_naive_accuracy_against_its_share_across_seeds(tmp_path):
    # five seeds: the more naive answers the favourite position, the lower its accuracy
    shares = [[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 0, 0], [1, 1, 1, 0, 0, 2], [1, 1, 0, 0, 2, 2]]
    runs = [_run(tmp_path, s, pred, 0.3 + 0.1 * s) for s, pred in enumerate(shares)]
    table = positions.position_table(runs)
    assert set(table["seed"]) == set(range(5)) and (table["study"] == "lora").all()
    row = positions.position_correlation(table).iloc[0]
    assert row["n_seeds"] == 5 and row["rho"] == pytest.approx(-1.0) and row["p"] < 0.05
    assert row["weak_labels_share"] == 0.75 and row["gold_share"] == 0.25 and row["k_answers_share"] == 3 / 8
    assert row["naive_share"] == pytest.approx(np.mean([1, 5 / 6, 4 / 6, 3 / 6, 2 / 6])) and row["naive_share_max"] == 1.0
    assert row["others_share"] == pytest.approx(2 / 6) and row["ceiling_share"] == pytest.approx(2 / 6)
    assert (table.loc[table["source"] == "weak labels B, K answers", "top"] == 2).all()  # views: canonical
    shown = positions.position_table([_run(tmp_path / "v", 0, [1] * 6, 0.4, views="variations")])
    assert shown.set_index("source").loc["weak labels B, K answers", "top"] == 0  # the run's own views
    assert positions.position_correlation(table, min_seeds=6).empty
    assert positions.position_correlation(positions.position_table(runs[:3])).empty


def test_position_figure_puts_naive_at_its_share(tmp_path):
    from relalign import plots

    runs = [_run(tmp_path, s, pred, 0.5) for s, pred in enumerate([[1, 1, 1, 0, 0, 2], [1, 1, 0, 0, 2, 2]])]
    fig = plots.position_figure(positions.position_table(runs), [("sciq", "lora")])
    ax = fig.axes[0]
    naive = [c for c, t in zip(ax.collections, ax.get_legend().get_texts()) if t.get_text() == "naive"][0]
    assert ax.get_title() == "sciq/lora" and sorted(map(tuple, naive.get_offsets().tolist())) == [(2 / 6, 0.5), (3 / 6, 0.5)]
    assert [t.get_text() for t in ax.texts] == ["0", "1"]  # naive's points carry their seed
