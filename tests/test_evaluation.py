import math

import numpy as np
import pandas as pd
import pytest

from relalign.evaluation import expected_calibration_error, score_report
from relalign.reliability import question_table


def test_ece_by_hand():
    # bin [0.9, 1.0]: 4 rows at 0.95, 3 right -> |0.75 - 0.95| = 0.2; bin [0.1, 0.2): 2 rows at 0.15, 0 right -> 0.15
    p = [0.95] * 4 + [0.15] * 2
    y = [1, 1, 1, 0, 0, 0]
    assert expected_calibration_error(p, y) == pytest.approx(4 / 6 * 0.2 + 2 / 6 * 0.15)
    assert expected_calibration_error([1.0, 0.0], [1, 0]) == 0.0  # perfectly calibrated, edges included
    with pytest.raises(ValueError):
        expected_calibration_error([1.2], [1])
    with pytest.raises(ValueError):
        expected_calibration_error([0.5, 0.5], [1])


def _table(seed=0, n=60, k=5):
    """Questions whose weak answers agree more often when the canonical answer is right."""
    rng = np.random.RandomState(seed)
    rows = []
    for i in range(n):
        right = i % 3 != 0
        for v in range(k):
            a = 0 if (right and rng.rand() < 0.9) else int(rng.randint(0, 4))
            p = np.full(4, 0.1)
            p[a] = 0.7
            rows.append({"qid": f"q{i}", "variation": v, "answer": str(a), "weak_target": a, "gold_target": 0,
                         "correct": a == 0, "confidence": 0.7, "probs": p.tolist()})
    return question_table(pd.DataFrame(rows), temperature=0.2)


def test_score_report_has_every_score_with_sane_values():
    t = _table()
    rep = score_report(t, k=5, n_options=4)
    assert set(rep.index) == {"entropy", "reliability", "mean_prob", "prob_entropy", "confidence"}
    assert rep.loc["entropy", "auroc"] > 0.7  # agreement marks right labels in this table
    assert rep.loc["confidence", "auroc"] == pytest.approx(0.5)  # a constant score tells nothing
    for name, r in rep.iterrows():
        assert 0 <= r["ece"] <= 1 and 0 < r["kept_fraction"] <= 1
        kept_rows = r["kept_fraction"] * len(t)
        assert r["recall"] == pytest.approx(r["precision"] * kept_rows / t["correct"].sum())
    # the entropy filter is the paper's: precision = accuracy of the rows with H <= median
    kept = t["entropy"] <= np.median(t["entropy"]) + 1e-12
    assert rep.loc["entropy", "precision"] == pytest.approx(t.loc[kept, "correct"].mean())


def test_score_report_skips_scores_the_table_lacks():
    t = _table().drop(columns=["mean_prob", "prob_entropy"]).assign(confidence=math.nan)
    assert set(score_report(t, k=5, n_options=None).index) == {"entropy", "reliability"}
