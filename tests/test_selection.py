import numpy as np
import pandas as pd
import pytest

from relalign.reliability import question_table
from relalign.selection import (
    METHODS,
    SelectionSettings,
    build_training_set,
    entropy_threshold,
    kept_by_entropy,
    sample_rows,
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
    assert set(METHODS) == {"naive", "ceiling", "filtering", "filtering_sampled", "reweighting", "reweighting_sampled"}
