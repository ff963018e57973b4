import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from relalign.cli import main
from relalign.params import ParamsError, load_params

REPO = Path(__file__).resolve().parents[1]


def test_every_params_file_in_the_repository_is_valid(data_root, monkeypatch):
    monkeypatch.setenv("RELALIGN_DATA", str(data_root))  # local-data params read a folder laid out like it
    files = sorted((REPO / "params").glob("*.yaml"))
    assert files
    for f in files:
        p = load_params(f)
        assert set(p.data.splits) == {"A", "B", "C"}


def test_tiny_params_load(write_params):
    p = load_params(write_params())
    assert p.data.splits["B"].n == 12 and p.training.mode == "head"
    assert p.model_spec("weak").source == "local"


@pytest.mark.parametrize(
    "changes,key",
    [
        ({"data": {"sise": 3}}, "data.sise"),
        ({"seed": "zero"}, "seed"),
        ({"data": {"dataset": "mnist"}}, "data.dataset"),
        ({"weak": {"model": {"source": "ftp"}}}, "weak.model.source"),
        ({"strong": {"model": {"source": "registry", "name": "gpt-9"}}}, "strong.model.name"),
        ({"weak": {"model": {"source": "local", "path": "/no/such/folder"}}}, "weak.model.path"),
        ({"data": {"path": "/no/such/data"}}, "data.path"),
        ({"training": {"lora": {"batch_size": 24, "micro_batch_size": 5}}}, "training.lora.batch_size"),
        ({"reliability": {"k": 1}}, "reliability.k"),
        ({"reliability": {"temperature": 0}}, "reliability.temperature"),
        ({"methods": ["naive", "filtering"]}, "methods"),
        ({"data": {"splits": {"A": {"pool": "validation", "n": 0}}}}, "data.splits.A.n"),
        ({"weak": {"head": {"prior": "vibes"}}}, "weak.head.prior"),
        ({"weak": {"head": {"l2": 0}}}, "weak.head.l2"),
        ({"strong": {"head": {"epochs": 300}}}, "strong.head.epochs"),  # the head is solved, not stepped
        ({"training": {"lora": {"loss_normalisation": "tokens"}}}, "training.lora.loss_normalisation"),
        ({"name": ""}, "name"),  # names are plain folder names: none that escapes results/<dataset>/
        ({"name": "."}, "name"),
        ({"name": ".."}, "name"),
        ({"name": "../../x"}, "name"),
        ({"name": "/tmp/x"}, "name"),
        # a params file places accelerate's processes; it never names what they run
        ({"training": {"lora": {"launch_args": ["--no_python", "sh", "-c", "touch /tmp/x"]}}}, "training.lora.launch_args"),
        ({"training": {"lora": {"launch_args": ["--multi_gpu", "--config_file", "x.yaml"]}}}, "training.lora.launch_args"),
        ({"training": {"lora": {"launch_args": ["--main_process_port"]}}}, "training.lora.launch_args"),
    ],
)
def test_bad_params_name_the_key_and_the_file(write_params, changes, key):
    path = write_params(changes)
    with pytest.raises(ParamsError) as e:
        load_params(path)
    msg = str(e.value)
    assert key in msg and str(path) in msg and "\n" not in msg


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ParamsError, match="no such params file"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed")
    with pytest.raises(ParamsError, match="not valid YAML at line 1, column"):
        load_params(bad)
    bad.write_text("seed: 0\nname: a\nseed: 1\n")  # YAML alone would take the last seed silently
    with pytest.raises(ParamsError, match="line 3, column 1: duplicate key 'seed'"):
        load_params(bad)
    bad.write_bytes("name: caf\u00e9\n".encode("latin-1"))
    with pytest.raises(ParamsError, match="not UTF-8"):
        load_params(bad)


def test_a_malformed_override_is_one_line(write_params):
    with pytest.raises(ParamsError, match=r"--set 'seed=\[1,': not valid YAML") as e:
        load_params(write_params(), ["seed=[1,"])
    assert "\n" not in str(e.value)


def test_known_launch_options_pass(write_params):
    p = load_params(write_params({"training": {"lora": {"launch_args": ["--multi_gpu", "--main_process_port", "29501",
                                                                         "--mixed_precision=bf16"]}}}))
    assert p.training.lora.launch_args == ["--multi_gpu", "--main_process_port", "29501", "--mixed_precision=bf16"]


def test_overrides(write_params):
    p = load_params(write_params(), ["data.splits.C.n=5", "training.lora.lr=1e-4", "name=other"])
    assert p.data.splits["C"].n == 5 and p.training.lora.lr == 1e-4 and p.name == "other"
    with pytest.raises(ParamsError, match="data.splits.C.m"):
        load_params(write_params(), ["data.splits.C.m=5"])


def test_check_prints_resolved_sizes_and_sources_as_json(write_params, capsys):
    assert main(["check", str(write_params())]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["splits"]["B"]["n"] == 12
    assert out["weak_model"]["source"] == "local"


def test_check_of_the_default_names_registry_checksums(capsys):
    assert main(["check", str(REPO / "params" / "default.yaml")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["strong_model"]["sha256"]) == 64
    assert out["dataset"] == "sciq"


def test_cli_bad_params_one_line_exit_2_no_traceback_nothing_written(write_params, tmp_path):
    path = write_params({"data": {"dataset": "mnist"}})
    out_dir = tmp_path / "results"
    for cmd in (["check", str(path)], ["run", str(path), "--out", str(out_dir)]):
        r = subprocess.run([sys.executable, "-m", "relalign.cli", *cmd], capture_output=True, text=True)
        assert r.returncode == 2
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "data.dataset" in lines[0] and str(path) in lines[0]
        assert "Traceback" not in r.stderr
    assert not out_dir.exists()


def test_params_round_trip_through_the_resolved_file(write_params, tmp_path):
    p = load_params(write_params())
    f = tmp_path / "resolved.yaml"
    f.write_text(yaml.safe_dump(p.to_dict()))
    assert load_params(f).to_dict() == p.to_dict()


def test_lora_may_show_a_choice_row_with_its_canonical_prompt(write_params):
    p = load_params(write_params({"training": {"mode": "lora", "views": "canonical"}}))
    assert p.training.mode == "lora" and p.training.views == "canonical"
