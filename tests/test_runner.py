import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from relalign import runner
from relalign.params import load_params
from relalign.rundir import INCOMPLETE
from relalign.runner import RunExists, RunFailed, run


def _notebook(path, source):
    cell = new_code_cell("params_file = None\nrun_dir = None")
    cell.metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=[cell, new_code_cell(source)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture
def fake_notebooks(tmp_path, monkeypatch):
    folder = tmp_path / "nbs"
    folder.mkdir()
    _notebook(folder / "ok.ipynb", "from pathlib import Path\nPath(run_dir, 'touched').write_text(params_file)")
    _notebook(folder / "bad.ipynb", "raise RuntimeError('step failed')")
    monkeypatch.setattr(runner, "NOTEBOOK_DIR", folder)
    return folder


def test_successful_run_writes_params_and_status(write_params, tmp_path, monkeypatch, fake_notebooks):
    monkeypatch.setattr(runner, "NOTEBOOKS", ("ok",))
    out = run(write_params(), tmp_path / "out", overrides=["data.splits.C.n=8"])
    assert not (out / INCOMPLETE).exists()
    status = json.loads((out / "run_status.json").read_text())
    assert status["status"] == "complete" and status["seconds"] > 0
    assert status["peak_rss_gib"] > 0.01  # the kernels' peak memory
    resolved = load_params(out / "params.yaml")
    assert resolved.data.splits["C"].n == 8
    assert (out / "touched").read_text() == str(out / "params.yaml")  # outside the repository: absolute
    assert (out / "ok.ipynb").is_file()


def test_a_run_says_which_notebook_it_is_on(write_params, tmp_path, monkeypatch, fake_notebooks, capsys):
    monkeypatch.setattr(runner, "NOTEBOOKS", ("ok", "ok"))
    run(write_params(), tmp_path / "out")
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" ...")[0].strip() for line in lines if "..." in line] == ["[1/2] ok", "[2/2] ok"]
    assert lines[-1].strip().startswith("complete after")


def test_a_run_prints_what_a_long_step_is_doing(write_params, tmp_path, monkeypatch, fake_notebooks, capsys):
    _notebook(fake_notebooks / "long.ipynb", "import time\nfrom relalign.progress import Bar\n"
                                             "with Bar(total=4, desc='scoring B', unit='prompt') as bar:\n"
                                             "    for _ in range(4):\n        time.sleep(1.5)\n        bar.update(1)\n"
                                             "time.sleep(3)")
    monkeypatch.setattr(runner, "NOTEBOOKS", ("long",))
    out = run(write_params(), tmp_path / "out")
    lines = [line.strip() for line in capsys.readouterr().out.splitlines()]
    assert any(line.startswith("scoring B: ") and line.endswith("/4 prompt") for line in lines), lines
    assert not (out / ".progress.json").exists()


def test_existing_results_are_never_overwritten_silently(write_params, tmp_path, monkeypatch, fake_notebooks):
    monkeypatch.setattr(runner, "NOTEBOOKS", ("ok",))
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    with pytest.raises(RunExists, match="exists; pass --replace"):
        run(write_params(), out)
    with pytest.raises(RunExists, match="not a run directory"):  # --replace never deletes a folder that is not a run
        run(write_params(), out, replace=True)
    assert (out / "keep.txt").read_text() == "precious"
    (out / "params.yaml").write_text("seed: 0\n")  # an unfinished run: nothing to keep
    run(write_params(), out, replace=True)
    assert not (out / "keep.txt").exists()


def _finished_run(out, text):
    out.mkdir(parents=True)
    (out / "params.yaml").write_text("seed: 0\n")
    (out / "metrics.json").write_text(text)


def test_replacing_keeps_the_old_results_until_the_new_run_is_complete(write_params, tmp_path, monkeypatch,
                                                                       fake_notebooks):
    out = tmp_path / "results" / "sciq" / "default"
    aside = tmp_path / "results" / ".replaced" / "sciq" / "default"
    _finished_run(out, "old")
    monkeypatch.setattr(runner, "NOTEBOOKS", ("ok", "bad"))
    with pytest.raises(RunFailed):
        run(write_params(), out, replace=True)
    assert (aside / "metrics.json").read_text() == "old"  # the failed replacement did not cost the old results
    assert (out / INCOMPLETE).is_file()
    monkeypatch.setattr(runner, "NOTEBOOKS", ("ok",))
    run(write_params(), out, replace=True)  # replacing the failed run: the set-aside results stay until now
    assert (out / "touched").is_file() and not (out / INCOMPLETE).exists()
    assert not (tmp_path / "results" / ".replaced").exists()


def test_batch_continues_past_failures_and_prints_a_summary(write_params, tmp_path, monkeypatch, fake_notebooks, capsys):
    from relalign.cli import main

    monkeypatch.setattr(runner, "NOTEBOOKS", ("ok",))
    good = write_params({"name": "good"}, name="good.yaml")
    invalid = write_params({"seed": "zero"}, name="invalid.yaml")
    missing = tmp_path / "missing.yaml"
    results = tmp_path / "results"
    code = main(["batch", str(invalid), str(good), str(missing), "--results", str(results), "--no-report"])
    assert code == 1
    assert (results / "sciq" / "good" / "ok.ipynb").is_file()
    out = capsys.readouterr().out
    summary = out[out.index("batch summary"):]
    assert "failed  " + str(invalid) in summary and "ok      " + str(good) in summary and "failed  " + str(missing) in summary


def test_seeds_give_one_run_directory_each(write_params, tmp_path, monkeypatch, fake_notebooks, capsys):
    from relalign.cli import main

    monkeypatch.setattr(runner, "NOTEBOOKS", ("ok",))
    params = write_params({"name": "good"}, name="good.yaml")
    results = tmp_path / "results"
    assert main(["batch", str(params), "--seeds", "0", "2", "--results", str(results), "--no-report"]) == 0
    assert sorted(p.name for p in (results / "sciq").iterdir()) == ["good", "good-seed2"]
    assert load_params(results / "sciq" / "good-seed2" / "params.yaml").seed == 2
    assert main(["run", str(params), "--seeds", "0", "1", "--out", str(tmp_path / "one")]) == 2  # one dir, two seeds
    assert "one seed at a time" in capsys.readouterr().err


def test_failed_run_is_marked_incomplete(write_params, tmp_path, monkeypatch, fake_notebooks):
    monkeypatch.setattr(runner, "NOTEBOOKS", ("ok", "bad", "ok"))
    with pytest.raises(RunFailed, match="bad failed: RuntimeError: step failed"):
        run(write_params(), tmp_path / "out")
    out = tmp_path / "out"
    assert (out / INCOMPLETE).is_file()
    status = json.loads((out / "run_status.json").read_text())
    assert status["status"] == "failed" and status["failed_notebook"] == "bad"


def test_an_interrupted_run_says_so_and_how_to_resume(write_params, tmp_path, fake_notebooks, capsys):
    import signal
    import subprocess
    import sys
    import time

    from relalign.cli import main

    started = tmp_path / "started"
    _notebook(fake_notebooks / "slow.ipynb", f"from pathlib import Path\nPath({str(started)!r}).touch()\n"
                                             "import time\ntime.sleep(600)")  # a signal stops the running cell
    out = tmp_path / "out"
    driver = (f"import sys\nfrom pathlib import Path\nfrom relalign import runner\n"
              f"runner.NOTEBOOK_DIR = Path({str(fake_notebooks)!r})\nrunner.NOTEBOOKS = ('ok', 'slow')\n"
              f"from relalign.cli import main\nsys.exit(main(['run', {str(write_params())!r}, '--out', {str(out)!r}]))")
    proc = subprocess.Popen([sys.executable, "-c", driver], stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not started.exists() and time.time() < deadline:
        time.sleep(0.5)
    time.sleep(1)
    proc.send_signal(signal.SIGTERM)  # what `kill` or a scheduler's time limit sends
    signalled = time.time()
    _, err = proc.communicate(timeout=120)
    assert time.time() - signalled < 60  # the cell was stopped, not waited for
    assert proc.returncode == 130 and "interrupted" in err
    status = json.loads((out / "run_status.json").read_text())
    assert status["status"] == "interrupted" and status["failed_notebook"] == "slow"
    assert main(["run", str(write_params()), "--out", str(out)]) == 2
    assert "holds an unfinished run (status: interrupted); pass --resume" in capsys.readouterr().err


def test_resuming_finishes_an_unfinished_run_in_place_and_only_with_its_own_params(write_params, tmp_path,
                                                                                 monkeypatch, fake_notebooks):
    from relalign.cli import main

    _notebook(fake_notebooks / "train.ipynb", "from pathlib import Path\nt = Path(run_dir, 'trained.txt')\n"
                                              "t.write_text(t.read_text() + 'x' if t.exists() else 'trained')")
    out = tmp_path / "out"
    monkeypatch.setattr(runner, "NOTEBOOKS", ("train", "bad"))
    with pytest.raises(RunFailed):
        run(write_params(), out)
    monkeypatch.setattr(runner, "NOTEBOOKS", ("train", "ok"))
    with pytest.raises(RunExists, match="started with other params"):
        run(write_params(), out, overrides=["seed=3"], resume=True)
    assert main(["run", str(write_params()), "--out", str(out), "--resume", "--replace"]) == 2
    run(write_params(), out, resume=True)
    assert (out / "trained.txt").read_text() == "trainedx"  # what the first attempt wrote is still there
    status = json.loads((out / "run_status.json").read_text())
    assert status["status"] == "complete" and status["resumed"] and not (out / INCOMPLETE).exists()
    from relalign.summary import run_seconds

    assert run_seconds(out, {}) != run_seconds(out, {})  # NaN: the first attempt's time is not in it
    with pytest.raises(RunExists, match="holds a finished run: nothing to resume"):
        run(write_params(), out, resume=True)
    fresh = run(write_params(), tmp_path / "fresh", resume=True)  # nothing there: an ordinary run
    assert json.loads((fresh / "run_status.json").read_text())["resumed"] is False


def test_the_real_notebooks_run_end_to_end_on_a_tiny_model(write_params, tmp_path, capsys):
    from relalign.cli import main

    out = tmp_path / "results" / "sciq" / "tiny"
    assert main(["run", str(write_params()), "--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert set(m) >= {"dataset", "weak_model", "strong_model", "seed", "n", "weak_label_accuracy", "reliability",
                      "methods", "params", "provenance"}
    from relalign.selection import METHODS

    assert set(m["methods"]) == {"weak", *METHODS}
    assert set(m["test_correct"]) == {"weak", *METHODS} and len(m["sweep"]) == 11  # 10 fractions + the paper's
    assert "mean_prob" in m["reliability"]["scores"]
    assert m["provenance"]["seconds"] > 0
    assert m["provenance"]["code_at_start"]["code_sha256"] == m["provenance"]["code_sha256"]
    for name in runner.NOTEBOOKS:
        assert (out / f"{name}.ipynb").is_file()
    assert {p.name for p in (out / "figures").glob("*.png")} >= {"accuracy_by_entropy.png", "methods.png", "scores.png",
                                                                "threshold_sweep.png"}
    printed = capsys.readouterr().out
    assert "ceiling" in printed and str(out) in printed
    # a second run of the same name refuses
    assert main(["run", str(write_params()), "--out", str(out)]) == 2
    # an interrupted run resumed in place reloads every model it trained (only the chosen L2 is re-written)
    trained = {p: p.stat().st_mtime_ns for p in (out / "trained").rglob("*") if p.is_file()}
    (out / "metrics.json").unlink()
    (out / INCOMPLETE).write_text("interrupted")
    runner.RunDir(out).update_status(status="interrupted")
    assert main(["run", str(write_params()), "--out", str(out), "--resume"]) == 0
    assert [p.name for p, t in trained.items() if p.stat().st_mtime_ns != t] == ["l2.json"]
    assert json.loads((out / "metrics.json").read_text())["methods"] == m["methods"]
    # notebook 07 summarises the runs that exist
    assert main(["report", "--results", str(tmp_path / "results")]) == 0
    summary = tmp_path / "results" / "summary"
    assert (summary / "07_summary.ipynb").is_file() and (summary / "figures" / "summary.png").is_file()
    import pandas as pd

    assert len(pd.read_csv(summary / "intervals.csv")) == 1 + len(METHODS)  # weak + every method, one seed
    runs = pd.read_csv(summary / "runs.csv")
    assert list(runs["dataset"]) == ["sciq"] and runs.loc[0, "naive"] == m["methods"]["naive"]["accuracy"]


def test_kernel_sockets_stay_out_of_the_source_tree():
    """A killed kernel leaves its IPC socket files behind: they must lie in a temporary folder."""
    km = runner.IPCKernelManager.get()()
    assert km.transport == "ipc"
    assert runner.REPO_ROOT not in Path(km.ip).resolve().parents


def test_executed_notebooks_name_no_path_of_the_machine(tmp_path):
    import nbformat

    from relalign.params import REPO_ROOT
    from relalign.runner import _relative_paths

    nb = nbformat.v4.new_notebook()
    nb.metadata["papermill"] = {"input_path": str(REPO_ROOT / "notebooks" / "01.ipynb"), "output_path": None}
    cell = nbformat.v4.new_code_cell("x = 1")
    cell.outputs = [nbformat.v4.new_output("stream", name="stderr",
                                           text=f"{REPO_ROOT}/.venv/lib/x.py:3: FutureWarning: old\n  warnings.warn(\n")]
    nb.cells.append(cell)
    path = tmp_path / "run.ipynb"
    nbformat.write(nb, path)
    _relative_paths(path)
    text = path.read_text()
    assert str(REPO_ROOT) not in text
    assert ".venv/lib/x.py:3: FutureWarning: old" in nbformat.read(path, as_version=4).cells[0].outputs[0]["text"]


def test_commands_on_missing_runs_or_files_say_so_in_one_line(write_params, tmp_path, capsys):
    from relalign.cli import main

    (tmp_path / "empty").mkdir()
    (tmp_path / "a-file").write_text("not a run")
    for argv in (["summary", str(tmp_path / "empty")], ["summary", str(tmp_path / "nowhere")],
                 ["report", "--results", str(tmp_path / "empty")], ["report", "--results", str(tmp_path / "nowhere")],
                 ["report", "--markdown", "--results", str(tmp_path / "empty")],
                 ["run", str(write_params()), "--out", str(tmp_path / "a-file")]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("relalign: error: ") and "\n" not in err and "Traceback" not in err, (argv, err)
    assert (tmp_path / "a-file").read_text() == "not a run" and not (tmp_path / "empty" / "summary").exists()
