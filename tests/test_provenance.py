"""Provenance names the code that made a result: its commit, whether the tree was clean, a hash of the
code as run, the packages and the machine; and the committed results' provenance holds up."""

from __future__ import annotations

import ast
import json
import re
import subprocess
from importlib import metadata
from pathlib import Path

import pytest

from relalign.provenance import code_sha256, provenance

REPO = Path(__file__).resolve().parents[1]
RUNS = sorted(REPO.glob("results/*/*/metrics.json"))


def _git(root: Path, *args: str) -> str:
    """stdout of ``git args`` in ``root``; raises when git fails."""
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout


@pytest.fixture
def checkout(tmp_path, monkeypatch) -> Path:
    """A git repository with one commit: a library file, a params file and a committed result."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "no-gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    root = tmp_path / "repo"
    for rel, text in {"lib/relalign/core.py": "X = 1\n", "params/p.yaml": "seed: 0\n",
                      "results/d/run/metrics.json": "{}\n", ".gitignore": "*.log\n"}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    _git(root, "init", "-q")
    _git(root, "add", ".")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-q", "-m", "one")
    return root


def test_clean_checkout(checkout):
    p = provenance(root=checkout)
    assert p["git_commit"] == _git(checkout, "rev-parse", "HEAD").strip()
    assert p["git_clean"] is True and p["git_changes"] == []


def test_modified_or_staged_tracked_file_is_not_clean(checkout):
    (checkout / "lib/relalign/core.py").write_text("X = 2\n")
    assert provenance(root=checkout)["git_changes"] == ["lib/relalign/core.py"]
    _git(checkout, "add", "lib/relalign/core.py")
    p = provenance(root=checkout)
    assert p["git_clean"] is False and p["git_changes"] == ["lib/relalign/core.py"]


def test_a_change_during_the_run_is_recorded(checkout):
    from relalign.provenance import code_state

    start = code_state(checkout)
    assert provenance(root=checkout, at_start=start)["code_unchanged"] is True
    (checkout / "lib/relalign/core.py").write_text("X = 3\n")  # edited while the run went on
    p = provenance(root=checkout, at_start=start)
    assert p["code_unchanged"] is False and p["code_at_start"]["git_clean"] is True
    assert provenance(root=checkout)["code_unchanged"] is None  # a notebook run by hand: no start record


def test_untracked_file_in_a_watched_folder_is_not_clean(checkout):
    (checkout / "params" / "new.yaml").write_text("seed: 1\n")
    p = provenance(root=checkout)
    assert p["git_clean"] is False and p["git_changes"] == ["params/new.yaml"]


def test_outputs_ignored_and_unwatched_files_leave_it_clean(checkout):
    (checkout / "results/d/run/metrics.json").write_text('{"re-made": 1}\n')  # a run re-writes its results
    (checkout / "notes.txt").write_text("scratch\n")  # untracked outside lib/, notebooks/, params/
    (checkout / "lib" / "run.log").write_text("ignored\n")  # ignored by .gitignore
    assert provenance(root=checkout)["git_clean"] is True


def test_not_a_checkout(tmp_path, checkout):
    for folder in (tmp_path / "plain", checkout / "lib"):  # no repository; a folder inside one
        folder.mkdir(exist_ok=True)
        p = provenance(root=folder)
        assert p["git_commit"] == "unknown" and p["git_clean"] is None and p["git_changes"] is None


def test_without_git(checkout, monkeypatch):
    monkeypatch.setenv("PATH", "")
    p = provenance(root=checkout)
    assert p["git_commit"] == "unknown" and p["git_clean"] is None
    assert p["code_sha256"] is not None


def test_code_hash_follows_library_and_notebooks(tmp_path):
    (tmp_path / "lib/relalign/sub").mkdir(parents=True)
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "lib/relalign/sub/a.py").write_text("A = 1\n")
    (tmp_path / "notebooks/01.ipynb").write_text("{}\n")
    first = code_sha256(tmp_path)
    assert first is not None and code_sha256(tmp_path) == first
    (tmp_path / "README.md").write_text("not code\n")
    assert code_sha256(tmp_path) == first
    (tmp_path / "lib/relalign/sub/a.py").write_text("A = 2\n")
    second = code_sha256(tmp_path)
    assert second != first
    (tmp_path / "notebooks/01.ipynb").write_text('{"cells": []}\n')
    assert code_sha256(tmp_path) != second


def test_records_installed_versions_python_and_machine():
    p = provenance(seconds=3.0)
    versions = p["package_versions"]
    assert versions["torch"] == metadata.version("torch") and versions["numpy"] == metadata.version("numpy")
    assert list(versions) == sorted(versions, key=lambda n: re.sub(r"[-_.]+", "-", n).lower())
    assert len(versions) == len({d.metadata["Name"] for d in metadata.distributions()})
    assert re.fullmatch(r"3\.\d+\.\d+", p["python"]) and p["seconds"] == 3.0
    assert {"platform", "cpu_model", "cpu_count", "native_bf16", "torch_threads", "gpus"} <= set(p["machine"])
    assert isinstance(p["machine"]["native_bf16"], bool) and p["machine"]["torch_threads"] >= 1
    assert re.fullmatch(r"[0-9a-f]{64}", p["code_sha256"])
    json.dumps(p)


# ---------------------------------------------------------------------------- the committed results

def _provenance_of(run: Path) -> dict:
    """The "provenance" entry of a metrics.json."""
    return json.loads(run.read_text())["provenance"]


def _commit_in_history(commit: str) -> bool:
    """Whether this clone holds ``commit`` (a shallow clone may not)."""
    return subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=REPO,
                          capture_output=True).returncode == 0


def _methods_at(commit: str) -> set[str]:
    """The keys of ``METHODS`` in lib/relalign/selection.py at ``commit`` (parsed, whatever its values)."""
    tree = ast.parse(_git(REPO, "show", f"{commit}:lib/relalign/selection.py"))
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
        if isinstance(target, ast.Name) and target.id == "METHODS" and isinstance(node.value, ast.Dict):
            return {k.value for k in node.value.keys}
    raise AssertionError(f"no METHODS dict in selection.py at {commit}")


def _run_id(run: Path) -> str:
    """``<dataset>/<run>`` of a metrics.json, the test id."""
    return run.parent.relative_to(REPO / "results").as_posix()


@pytest.mark.parametrize("run", RUNS, ids=_run_id)
def test_committed_run_names_a_commit_that_has_its_methods(run):
    commit = _provenance_of(run)["git_commit"]
    assert re.fullmatch(r"[0-9a-f]{40}", commit), f"{_run_id(run)} names no commit: {commit!r}"
    if not _commit_in_history(commit):
        pytest.skip(f"{commit[:7]} is not in this clone's history")
    methods = set(json.loads(run.read_text())["methods"]) - {"weak"}
    missing = sorted(methods - _methods_at(commit))
    assert not missing, f"{_run_id(run)}: methods {missing} do not exist at {commit[:7]}"


@pytest.mark.parametrize("run", RUNS, ids=_run_id)
def test_committed_run_was_made_from_a_clean_tree_that_did_not_change(run):
    p = _provenance_of(run)
    assert isinstance(p.get("git_clean"), bool), f"{_run_id(run)} does not say whether its tree was clean"
    assert p["git_clean"], f"{_run_id(run)} was made with uncommitted changes: {p.get('git_changes')}"
    assert p.get("code_unchanged") is not False, f"{_run_id(run)}: the code changed while it ran"
