"""Bad input, as a careless or hurried user gives it: every case must end with exit status 2 and
one line naming the problem, no traceback, nothing written and nothing deleted."""

import pytest

from relalign.cli import main

PARAMS_CHANGES = {
    "seed negative": {"seed": -1},
    "seed huge": {"seed": 10**20},
    "seed text": {"seed": "zero"},
    "name empty": {"name": ""},
    "name dot": {"name": "."},
    "name escapes": {"name": "../../x"},
    "name absolute": {"name": "/tmp/x"},
    "unknown top key": {"sede": 1},
    "unknown dataset": {"data": {"dataset": "mnist"}},
    "unknown source": {"data": {"source": "ftp"}},
    "missing data path": {"data": {"path": "/no/such/data"}},
    "split of zero": {"data": {"splits": {"C": {"pool": "validation", "n": 0}}}},
    "split larger than pool": {"data": {"splits": {"C": {"pool": "validation", "n": 100000}}}},
    "missing pool": {"data": {"splits": {"C": {"pool": "test", "n": 5}}}},
    "rows outside pool": {"data": {"splits": {"A": {"pool": "validation", "rows": [50, 500]}}}},
    "k of one": {"reliability": {"k": 1}},
    "k above the orders": {"reliability": {"k": 30}},
    "temperature zero": {"reliability": {"temperature": 0}},
    "percentile zero": {"reliability": {"percentile": 0}},
    "percentile above 100": {"reliability": {"percentile": 101}},
    "unknown model source": {"weak": {"model": {"source": "ftp"}}},
    "unknown registry model": {"strong": {"model": {"source": "registry", "name": "gpt-9", "path": None}}},
    "missing model folder": {"weak": {"model": {"path": "/no/such/model"}}},
    "unknown mode": {"training": {"mode": "full"}},
    "micro batch of zero": {"training": {"lora": {"micro_batch_size": 0}}},
    "batch not a multiple": {"training": {"lora": {"batch_size": 24, "micro_batch_size": 5}}},
    "negative learning rate": {"training": {"lora": {"lr": -1}}},
    "launch args run a command": {"training": {"lora": {"launch_args": ["--no_python", "sh", "-c", "touch x"]}}},
    "token budget of zero": {"compute": {"max_tokens_per_batch": 0}},
    "unknown device": {"compute": {"device": "tpu"}},
    "unknown dtype": {"compute": {"dtype": "float8"}},
    "unknown method": {"methods": ["bogus"]},
    "unknown head prior": {"weak": {"head": {"prior": "vibes"}}},
    "l2 of zero": {"weak": {"head": {"l2": 0}}},
    "head epochs": {"strong": {"head": {"epochs": 300}}},
    "unknown loss normalisation": {"training": {"lora": {"loss_normalisation": "tokens"}}},
    "normalisation of an unknown training": {"training": {"lora": {"loss_normalisation_by_method": {"reweigting": "all_positions"}}}},
    "unknown normalisation of a training": {"training": {"lora": {"loss_normalisation_by_method": {"naive": "tokens"}}}},
}

RAW_FILES = {
    "duplicate key": b"seed: 0\nname: a\nseed: 1\n",
    "yaml syntax": b"data: [unclosed\n",
    "not utf-8": "name: caf\u00e9\n".encode("latin-1"),
    "top level list": b"- seed\n- 0\n",
}

DATA_FILES = {  # a custom dataset from one file, read as the pool "all"
    "empty file": ("data.csv", b""),
    "header only": ("data.csv", b"text,label\n"),
    "malformed jsonl": ("data.jsonl", b'{"text": "a", "label": 0}\n{"text": "b", "label":\n'),
    "unknown label": ("data.csv", b"text,label\n" + b"".join(b"row %d,maybe\n" % i for i in range(40))),
    "missing column": ("data.csv", b"words,label\n" + b"".join(b"row %d,yes\n" % i for i in range(40))),
    "unsupported type": ("data.txt", b"text label\n"),
    "ragged csv": ("data.csv", b"text,label\n" + b"".join(b"row %d,yes\n" % i for i in range(20)) + b"x,yes,3\n"),
    "latin-1 csv": ("data.csv", b"text,label\n" + b"".join(b"row %d,yes\n" % i for i in range(20)) + b"caf\xe9,no\n"),
    "unclosed quote": ("data.csv", b"text,label\n" + b"".join(b"row %d,yes\n" % i for i in range(20)) + b'"a,no\n'),
    "latin-1 jsonl": ("data.jsonl", b'{"text": "caf\xe9", "label": 0}\n'),
    "one megabyte row": ("data.csv", b"text,label\n" + b"".join(b"row %d,yes\n" % i for i in range(20))
                         + b"x" * 2**20 + b",no\n"),
}


@pytest.fixture
def guarded(tmp_path):
    """A folder of the user's own that must survive every case, and a run directory that must not appear."""
    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "chapter1.tex").write_text("precious")
    yield thesis, tmp_path / "results" / "out"
    assert (thesis / "chapter1.tex").read_text() == "precious" and sorted(thesis.iterdir()) == [thesis / "chapter1.tex"]
    assert not (tmp_path / "results").exists()


def _one_line_exit_2(capsys, argv):
    code = main(argv)
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, (argv, code, err[-500:])
    assert len(lines) == 1 and lines[0].startswith("relalign: error: ") and "Traceback" not in err, (argv, err[-500:])


@pytest.mark.parametrize("case", sorted(PARAMS_CHANGES))
def test_bad_params(case, write_params, capsys, guarded):
    _, out = guarded
    params = str(write_params(PARAMS_CHANGES[case]))
    _one_line_exit_2(capsys, ["check", params])
    _one_line_exit_2(capsys, ["run", params, "--out", str(out)])


@pytest.mark.parametrize("case", sorted(RAW_FILES))
def test_bad_params_files(case, tmp_path, capsys, guarded):
    _, out = guarded
    path = tmp_path / "bad.yaml"
    path.write_bytes(RAW_FILES[case])
    _one_line_exit_2(capsys, ["check", str(path)])
    _one_line_exit_2(capsys, ["run", str(path), "--out", str(out)])


@pytest.mark.parametrize("case", sorted(DATA_FILES))
def test_bad_data_files(case, write_params, tmp_path, capsys, guarded):
    _, out = guarded
    name, content = DATA_FILES[case]
    (tmp_path / name).write_bytes(content)
    params = str(write_params({"data": {
        "dataset": "custom", "path": str(tmp_path / name),
        "custom": {"text": "text", "label": "label", "answers": ["no", "yes"]},
        "splits": {"A": {"pool": "all", "n": 4}, "B": {"pool": "all", "n": 4}, "C": {"pool": "all", "n": 4}}},
        "reliability": {"k": 2}}))
    _one_line_exit_2(capsys, ["run", params, "--out", str(out)])


def test_command_line_misuse(write_params, tmp_path, capsys, guarded):
    thesis, out = guarded
    params = str(write_params())
    a_file = tmp_path / "a-file.txt"
    a_file.write_text("notes")
    for argv in (
        ["run", params, "--set", "seed=[1,", "--out", str(out)],
        ["run", params, "--set", "seed", "--out", str(out)],
        ["run", params, "--set", "data.splits.C.m=5", "--out", str(out)],
        ["run", str(tmp_path / "missing.yaml"), "--out", str(out)],
        ["run", params, "--out", str(a_file)],
        ["run", params, "--out", str(thesis), "--replace"],  # a folder that is not a run is never deleted
        ["run", params, "--out", str(thesis)],
        ["run", params, "--seeds", "0", "1", "--out", str(out)],
        ["summary", str(tmp_path / "no-run")],
        ["summary", str(thesis)],
        ["report", "--results", str(tmp_path / "no-results")],
        ["report", "--markdown", "--results", str(thesis)],
        ["report", "--write", "--results", str(tmp_path / "no-results")],  # nothing to fill README from
        ["compare", str(thesis), str(tmp_path / "no-run")],
        ["train", params, "--run-dir", str(out), "--role", "strong", "--name", "bogus"],
        ["train", params, "--run-dir", str(out), "--role", "weak", "--name", "naive"],
    ):
        _one_line_exit_2(capsys, argv)
    assert a_file.read_text() == "notes"


def test_there_are_at_least_forty_cases():
    assert len(PARAMS_CHANGES) + len(RAW_FILES) + len(DATA_FILES) + 15 >= 40
