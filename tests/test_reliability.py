import math

import pandas as pd
import pytest

from relalign.reliability import answer_entropy, frequency_reliability, question_table

# Every answer pattern for K = 5 and its entropy (shared/study/method.md), by hand:
# H = -sum (n/5) ln(n/5).
K5 = {
    (5,): 0.0,
    (4, 1): 0.500,
    (3, 2): 0.673,
    (3, 1, 1): 0.950,
    (2, 2, 1): 1.055,
    (2, 1, 1, 1): 1.332,
    (1, 1, 1, 1, 1): 1.609,
}


def answers_for(pattern):
    out = []
    for i, n in enumerate(pattern):
        out += [f"answer-{i}"] * n
    return out


@pytest.mark.parametrize("pattern,expected", K5.items())
def test_entropy_of_every_k5_pattern(pattern, expected):
    assert answer_entropy(answers_for(pattern)) == pytest.approx(expected, abs=5e-4)


def test_entropy_is_order_free_and_uses_natural_log():
    assert answer_entropy(["x", "y"]) == pytest.approx(math.log(2))
    assert answer_entropy(["b", "a", "b", "a", "b"]) == answer_entropy(["a", "a", "b", "b", "b"])
    assert answer_entropy(["a"]) == 0.0


def test_unparseable_answer_counts_as_its_own_answer():
    assert answer_entropy([None, None, "a", "a", "a"]) == pytest.approx(K5[(3, 2)], abs=5e-4)


def test_empty_answers_rejected():
    with pytest.raises(ValueError):
        answer_entropy([])


# r(a|x) = exp((n_a/K)/T) / sum_b exp((n_b/K)/T); with T = 0.2, K = 5: e^{n_a} / sum_b e^{n_b}.
@pytest.mark.parametrize("pattern", K5.keys())
def test_reliability_of_every_k5_pattern_at_t02(pattern):
    answers = answers_for(pattern)
    denom = sum(math.exp(n) for n in pattern)
    expected = [math.exp(pattern[int(a.split("-")[1])]) / denom for a in answers]
    assert frequency_reliability(answers, 0.2) == pytest.approx(expected, rel=1e-12)


def test_reliability_hand_values():
    # (3, 2) at T = 0.2: e^3 / (e^3 + e^2) = 0.7311, e^2 / (e^3 + e^2) = 0.2689
    r = frequency_reliability(["a", "a", "a", "b", "b"], 0.2)
    assert r == pytest.approx([0.7310586] * 3 + [0.2689414] * 2, abs=1e-7)
    # unanimous: every row weight 1
    assert frequency_reliability(["a"] * 5, 0.2) == [1.0] * 5


def test_reliability_ethics_reference_k2_t1():
    assert frequency_reliability(["acceptable", "acceptable"], 1.0) == [1.0, 1.0]
    assert frequency_reliability(["acceptable", "unacceptable"], 1.0) == [0.5, 0.5]


def test_reliability_keeps_order_and_distinct_weights_sum_to_one():
    answers = ["c", "a", "c", "b", "c"]
    r = frequency_reliability(answers, 0.7)
    distinct = {a: w for a, w in zip(answers, r)}
    assert sum(distinct.values()) == pytest.approx(1.0)
    assert r[0] == r[2] == r[4] > r[1] == r[3]


def test_reliability_rejects_bad_temperature():
    with pytest.raises(ValueError):
        frequency_reliability(["a", "b"], 0.0)


def test_question_table_adds_scores_per_row_in_place_order():
    weak = pd.DataFrame({
        "qid": ["q2"] * 2 + ["q1"] * 2,
        "variation": [1, 0, 0, 1],
        "answer": ["x", "x", "y", "z"],
    })
    t = question_table(weak, temperature=1.0)
    assert list(t.index) == list(weak.index)
    assert t["entropy"].tolist() == pytest.approx([0, 0, math.log(2), math.log(2)])
    assert t["reliability"].tolist() == pytest.approx([1, 1, 0.5, 0.5])
    assert t["n_agree"].tolist() == [2, 2, 1, 1]


def test_probability_scores_by_hand():
    import numpy as np

    from relalign.reliability import mean_probability, probability_entropy

    probs = np.array([[0.8, 0.2, 0.0], [0.6, 0.4, 0.0], [0.1, 0.3, 0.6]])
    # rows chose 0, 0, 2; mean distribution (0.5, 0.3, 0.2)
    assert mean_probability(probs, [0, 0, 2]).tolist() == pytest.approx([0.5, 0.5, 0.2])
    assert probability_entropy(probs) == pytest.approx(-(0.5 * math.log(0.5) + 0.3 * math.log(0.3) + 0.2 * math.log(0.2)))
    assert probability_entropy(np.array([[1.0, 0.0]])) == 0.0
    with pytest.raises(ValueError):
        mean_probability(probs, [0, 1])


def test_question_table_adds_probability_scores_only_where_probabilities_exist():
    rows = [{"qid": "q", "variation": v, "answer": a, "weak_target": t, "probs": p}
            for v, (a, t, p) in enumerate([("x", 0, [0.9, 0.1]), ("x", 0, [0.7, 0.3]), ("y", 1, [0.4, 0.6])])]
    t = question_table(pd.DataFrame(rows), temperature=1.0)
    assert t["mean_prob"].tolist() == pytest.approx([2 / 3, 2 / 3, 1 / 3])
    assert t["prob_entropy"].nunique() == 1
    plain = question_table(pd.DataFrame(rows).drop(columns=["probs"]), temperature=1.0)
    assert "mean_prob" not in plain.columns


def test_scores_as_probability_of_being_right():
    from relalign.reliability import SCORES

    t = pd.DataFrame({"entropy": [0.0, math.log(5)], "prob_entropy": [0.0, math.log(4)], "mean_prob": [0.9, 0.2]})
    assert SCORES["entropy"].as_probability(t, k=5, n_options=4).tolist() == pytest.approx([1.0, 0.0])  # H max ln 4
    assert SCORES["prob_entropy"].as_probability(t, k=5, n_options=4).tolist() == pytest.approx([1.0, 0.0])
    assert SCORES["mean_prob"].as_probability(t, k=5, n_options=4).tolist() == [0.9, 0.2]
    assert SCORES["entropy"].as_probability(t, k=5, n_options=None)[1] == pytest.approx(0.0)  # open task: ln K
