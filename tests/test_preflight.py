"""`relalign check` opens what a run will use, and `relalign run` does the same before it writes
anything: bad data, splits, K or model files stop with one line and exit 2."""

import json

import pytest

from relalign.cli import main
from relalign.models import REGISTRY, RegistryModel


def _fails_in_one_line(capsys, argv, *words):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("relalign: error: ") and "\n" not in err and "Traceback" not in err, err
    for w in words:
        assert w in err, err


@pytest.mark.parametrize("changes,words", [
    ({"data": {"splits": {"C": {"pool": "validation", "n": 100000}}}}, ["split C", "wants 100000"]),
    ({"data": {"splits": {"C": {"pool": "test", "n": 5}}}}, ["no data for pool 'test'"]),
    ({"reliability": {"k": 30}}, ["reliability.k", "cannot make 30 distinct orders"]),
])
def test_run_stops_before_writing_anything(write_params, tmp_path, capsys, changes, words):
    params = write_params(changes)
    _fails_in_one_line(capsys, ["check", str(params)], *words)
    _fails_in_one_line(capsys, ["run", str(params), "--out", str(tmp_path / "out")], *words)
    assert not (tmp_path / "out").exists()


def test_a_registry_model_that_is_not_installed_is_found_by_check(write_params, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(REGISTRY, "ghost", RegistryModel(
        name="ghost", hub_id="org/ghost", packages=("ghost-model==1.0",), modules=("ghost_model",),
        files=("data/ghost.gguf",), gguf_name="ghost.gguf", sha256="0" * 64, params_m=1, licence="none"))
    params = write_params({"strong": {"model": {"source": "registry", "name": "ghost", "path": None}}})
    _fails_in_one_line(capsys, ["check", str(params)], "ghost-model", "relalign assets install")
    _fails_in_one_line(capsys, ["run", str(params), "--out", str(tmp_path / "out")], "ghost-model")
    assert not (tmp_path / "out").exists()


def test_check_says_what_it_opened(write_params, capsys):
    assert main(["check", str(write_params())]) == 0
    opened = json.loads(capsys.readouterr().out)["opened"]
    assert opened["splits"] == {"A": 16, "B": 12, "C": 16}
    assert opened["models"] == {"weak": "folder present", "strong": "folder present"}
