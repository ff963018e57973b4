import numpy as np
import pandas as pd
import pytest

from relalign.reliability import question_table
from relalign.selection import (
    METHODS,
    PAPER_METHODS,
    SelectionSettings,
    build_training_set,
    entropy_threshold,
    kept_by_entropy,
    kept_by_score,
    kept_top,
    method_spec,
    sample_rows,
    sweep_name,
)

K = 5


def make_table(patterns, seed=0):
    """A weak-answer table: question i's K answers follow patterns[i]; answer 0 is the truth."""
    rows = []
    for i, pattern in enumerate(patterns):
        answers = [a for a, n in enumerate(pattern) for _ in range(n)]
        for v, a in enumerate(answers):
            rows.append({"qid": f"q{i}", "variation": v, "answer": str(a), "weak_target": a, "gold_target": 0})
    return question_table(pd.DataFrame(rows), temperature=0.2)


PATTERNS = [(5,), (4, 1), (3, 2), (3, 1, 1), (2, 2, 1), (2, 1, 1, 1), (1, 1, 1, 1, 1), (5,)]


def test_threshold_is_the_median_over_rows():
    t = make_table(PATTERNS)
    assert entropy_threshold(t["entropy"]) == pytest.approx(np.median(t["entropy"]))
    assert entropy_threshold([0.0, 1.0, 2.0], 100) == 2.0


def test_filtering_keeps_all_k_rows_of_each_kept_question():
    t = make_table(PATTERNS)
    rows = build_training_set("filtering", t)
    tau = entropy_threshold(t["entropy"])
    kept_q = set(t.loc[t["entropy"] <= tau, "qid"])
    assert set(rows["qid"]) == kept_q
    assert rows.groupby("qid").size().eq(K).all()
    assert (rows["weight"] == 1).all()
    assert kept_by_entropy(t, tau).sum() == len(rows)


def test_sampled_variants_have_as_many_rows_as_b_has_questions_and_are_seeded():
    t = make_table(PATTERNS * 3)
    n_q = t["qid"].nunique()
    for m in ("filtering_sampled", "reweighting_sampled"):
        a = build_training_set(m, t, SelectionSettings(seed=1))
        b = build_training_set(m, t, SelectionSettings(seed=1))
        c = build_training_set(m, t, SelectionSettings(seed=2))
        assert len(a) == n_q
        pd.testing.assert_frame_equal(a, b)
        assert not a.equals(c)
    full = build_training_set("filtering", t)
    sampled = build_training_set("filtering_sampled", t)
    assert set(map(tuple, sampled[["qid", "variation"]].values)) <= set(map(tuple, full[["qid", "variation"]].values))


def test_reweighting_uses_every_row_with_its_reliability():
    t = make_table(PATTERNS)
    rows = build_training_set("reweighting", t)
    assert len(rows) == len(t)
    np.testing.assert_allclose(rows["weight"], t["reliability"])


def test_naive_and_ceiling_use_the_canonical_row_once_per_question():
    t = make_table(PATTERNS)
    naive = build_training_set("naive", t)
    ceiling = build_training_set("ceiling", t)
    assert (naive["variation"] == 0).all() and len(naive) == len(PATTERNS)
    assert (ceiling["target"] == 0).all() and len(ceiling) == len(PATTERNS)
    assert naive["target"].tolist() == t[t["variation"] == 0]["weak_target"].tolist()


def test_sample_rows_returns_everything_when_asked_for_more():
    df = pd.DataFrame({"x": range(3)})
    assert len(sample_rows(df, 10, 0)) == 3
    with pytest.raises(ValueError):
        sample_rows(df, -1, 0)


def test_unknown_method_and_missing_columns():
    t = make_table(PATTERNS)
    with pytest.raises(KeyError):
        build_training_set("magic", t)
    with pytest.raises(ValueError):
        build_training_set("naive", t.drop(columns=["reliability"]))
    assert set(PAPER_METHODS) == {"naive", "ceiling", "filtering", "filtering_sampled", "reweighting",
                                  "reweighting_sampled"} <= set(METHODS)
    with pytest.raises(ValueError, match="mean_prob"):  # needs the weak model's probabilities
        build_training_set("filtering_prob", t)
    for bad in ("kept_000", "kept_1001", "kept_5"):
        with pytest.raises(KeyError):
            build_training_set(bad, t)


def with_probs(t):
    """The table of make_table with option probabilities: each variation puts 0.7 on its answer."""
    recs = t.to_dict("records")
    for r in recs:
        p = np.full(5, 0.3 / 4)
        p[r["weak_target"]] = 0.7
        r["probs"] = p.tolist()
    return question_table(pd.DataFrame(recs).drop(columns=["entropy", "reliability", "n_agree"]), temperature=0.2)


def test_combined_method_is_filtering_rows_weighted_by_reliability():
    t = make_table(PATTERNS)
    comb = build_training_set("filtering_reweighting", t)
    filt = build_training_set("filtering", t)
    assert comb[["qid", "variation", "target"]].equals(filt[["qid", "variation", "target"]])
    rel = t.set_index(["qid", "variation"])["reliability"]
    assert np.allclose(comb["weight"], rel.loc[list(zip(comb["qid"], comb["variation"]))].to_numpy())
    assert comb["weight"].sum() < filt["weight"].sum()


def test_probability_filter_keeps_rows_at_or_above_the_median_mean_probability():
    t = with_probs(make_table(PATTERNS))
    rows = build_training_set("filtering_prob", t)
    med = np.median(t["mean_prob"])
    kept = t[t["mean_prob"] >= med - 1e-12]
    assert len(rows) == len(kept) and (rows["weight"] == 1).all()
    # a unanimous question (all 0.7 on one answer) has the highest mean probability: kept
    assert {"q0", "q7"} <= set(rows["qid"])
    assert "q6" not in set(rows["qid"])  # five different answers: mean probability 0.7/5 + ... is lowest


def test_aux_confidence_trains_on_naive_rows_with_the_aux_loss():
    t = make_table(PATTERNS)
    assert build_training_set("aux_confidence", t).equals(build_training_set("naive", t))
    assert method_spec("aux_confidence").aux_loss and not method_spec("naive").aux_loss


def test_sweep_points_keep_the_most_reliable_fraction():
    t = with_probs(make_table(PATTERNS))
    assert sweep_name(0.3) == "kept_300" and sweep_name(1.0) == "kept_1000"
    full = build_training_set(sweep_name(1.0), t)
    assert len(full) == len(t)
    prev = None
    for f in (0.1, 0.3, 0.5, 0.8):
        rows = build_training_set(sweep_name(f), t)
        assert len(rows) == round(f * len(t))
        h = t.set_index(["qid", "variation"])["entropy"].loc[list(zip(rows["qid"], rows["variation"]))]
        rest = t["entropy"].drop(t.index[t.set_index(["qid", "variation"]).index.isin(h.index)])
        assert h.max() <= rest.min() + 1e-12  # nothing left out is more reliable than what is kept
        if prev is not None:
            assert set(zip(prev["qid"], prev["variation"])) <= set(zip(rows["qid"], rows["variation"]))
        prev = rows
    with pytest.raises(ValueError):
        kept_top(t, 0.0)


def test_kept_by_score_matches_the_entropy_filter_and_flips_for_higher_is_reliable():
    t = with_probs(make_table(PATTERNS))
    tau = entropy_threshold(t["entropy"])
    assert kept_by_score(t, "entropy").equals(kept_by_entropy(t, tau))
    kept = kept_by_score(t, "reliability", 50)
    assert (t.loc[kept, "reliability"].min() >= t.loc[~kept, "reliability"].max() - 1e-12)


def test_filter_keeps_every_row_whose_entropy_equals_the_median():
    # 40 rows: 10 at H = 0, 20 at the H of a 4-1 split (the median), 10 higher
    t = make_table([(5,)] * 2 + [(4, 1)] * 4 + [(2, 2, 1)] * 2)
    tau = entropy_threshold(t["entropy"])
    assert (t["entropy"] == tau).sum() == 20
    assert kept_by_entropy(t, tau).sum() == 30
    rows = build_training_set("filtering", t)
    assert len(rows) == 30 and set(rows["qid"]) == {f"q{i}" for i in range(6)}
