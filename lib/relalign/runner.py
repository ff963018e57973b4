"""Run the numbered notebooks for one params file with papermill, into one results directory.

A run directory holds the resolved ``params.yaml``, the executed notebooks, ``figures/``,
``metrics.json`` and ``run_status.json``. While a run is going, and after one that failed, the
directory carries an ``INCOMPLETE`` file saying so. An existing directory is never overwritten
unless the caller asks for it, and even then its finished results are only set aside (under
``<results>/.replaced/``) until the new run is complete: a replacement that fails or is interrupted
leaves the old results where :func:`set_aside` put them.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Sequence

from .params import REPO_ROOT, load_params
from .preflight import preflight
from .provenance import code_state
from .rundir import PARAMS, STATUS, RunDir
from .rundir import default_run_dir as run_path

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
NOTEBOOKS = (
    "01_weak_supervisor",
    "02_weak_labeling",
    "03_reliability_analysis",
    "04_uncertainty_filtering",
    "05_reliability_reweighting",
    "06_evaluation",
)


class IPCKernelManager:
    """Built on first use (importing jupyter_client is slow): a kernel manager on IPC sockets,
    which keeps the kernels' "running over TCP without encryption" warnings out of the output."""

    _cls = None
    active = None  # the last kernel manager made: the running notebook's

    @classmethod
    def interrupt(cls) -> bool:
        """Send the running kernel SIGINT (its cell stops with KeyboardInterrupt); False if none runs."""
        provisioner = getattr(cls.active, "provisioner", None)
        pid = getattr(getattr(provisioner, "process", None), "pid", None)
        if pid is None:
            return False
        try:
            os.kill(pid, signal.SIGINT)
        except OSError:
            return False
        return True

    @classmethod
    def get(cls):
        if cls._cls is None:
            from jupyter_client.manager import KernelManager

            class _IPC(KernelManager):
                def __init__(self, **kw):
                    kw.setdefault("transport", "ipc")
                    # the sockets' path prefix: in the temporary folder, never the notebooks' folder
                    # (a killed kernel leaves them behind)
                    kw.setdefault("ip", tempfile.mkdtemp(prefix="relalign-kernel-") + "/ipc")
                    super().__init__(**kw)
                    cls.active = self  # the kernel a Ctrl-C or SIGTERM interrupts

            cls._cls = _IPC
        return cls._cls


class RunExists(RuntimeError):
    pass


class RunFailed(RuntimeError):
    pass


def default_run_dir(params, results: str | Path | None = None) -> Path:
    """Where ``relalign run`` puts a run of ``params``: ``<results>/<dataset>/<name>[-seed<N>]``
    (:func:`relalign.rundir.default_run_dir`), under the repository's ``results/`` by default."""
    return run_path(params.data.dataset, params.name, params.seed, Path(results) if results else REPO_ROOT / "results")


def run_dir_for(params_file: str | Path, overrides: Sequence[str] = (), out: str | Path | None = None) -> Path:
    return Path(out) if out else default_run_dir(load_params(params_file, overrides))


def _for_notebook(path: Path) -> str:
    """How a notebook (run from notebooks/) should name ``path``: relative inside the repository,
    so executed notebooks carry no machine paths."""
    try:
        path.relative_to(REPO_ROOT)
    except ValueError:
        return str(path)
    return os.path.relpath(path, NOTEBOOK_DIR)


def _relative_paths(nb_path: Path) -> None:
    """Papermill records the absolute input and output paths, and a warning printed by a library
    names the file it comes from: keep both repository-relative, so that a committed run names no
    path of the machine it ran on."""
    import nbformat

    nb = nbformat.read(nb_path, as_version=4)
    meta = nb.metadata.get("papermill", {})
    for key in ("input_path", "output_path"):
        if meta.get(key):
            meta[key] = _for_notebook(Path(meta[key]))
    root = str(REPO_ROOT) + os.sep
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and root in output.get("text", ""):
                output["text"] = output["text"].replace(root, "")
    nbformat.write(nb, nb_path)


def peak_child_rss_gib() -> float:
    """The largest peak resident memory of any finished child process of this process so far (the
    notebooks' kernels), in GiB: for ``relalign run`` of one params file, what the run needs of the
    machine's memory; in a batch, the largest of the runs so far."""
    return round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20, 2)  # Linux: KiB


def _elapsed(since: float) -> str:
    m, sec = divmod(int(time.time() - since), 60)
    return f"{m} min {sec:02d} s"


def _exists_message(out: Path) -> str:
    status = RunDir(out).status().get("status")
    if status and status != "complete":
        return (f"{out} holds an unfinished run (status: {status}); pass --resume to finish it (what it "
                "trained is reused) or --replace to run it again (what it computed is in the cache and is reused)")
    return f"{out} exists; pass --replace to replace it, or --out for another directory"


@contextlib.contextmanager
def _interrupts():
    """While a run goes, Ctrl-C and SIGTERM (``kill``, a scheduler's time limit) end it at once: the
    running notebook's kernel is interrupted (its cell stops), and the run is marked interrupted. The
    previous handlers are restored after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        _interrupts.requested = True
        if not IPCKernelManager.interrupt():  # no kernel yet: stop here
            raise KeyboardInterrupt

    _interrupts.requested = False
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, h in previous.items():
            signal.signal(sig, h)


@contextlib.contextmanager
def _progress_lines(out: Path, every: float = 30.0):
    """While a notebook runs, print what its long step is doing (:mod:`relalign.progress`): a line
    when the step changes, and at most every ``every`` seconds while it goes."""
    from .progress import ENV, describe, read

    path = out / ".progress.json"
    os.environ[ENV] = str(path)  # the kernels inherit it
    stop = threading.Event()

    def watch():
        shown, when = None, 0.0
        while not stop.wait(2.0):
            p = read(path)
            if not p:
                continue
            line = describe(p)
            if line != shown and (p["desc"] != (shown or "").split(":")[0] or time.monotonic() - when >= every):
                print(f"        {line}", flush=True)
                shown, when = line, time.monotonic()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        os.environ.pop(ENV, None)
        path.unlink(missing_ok=True)


def replaced_path(out: Path) -> Path:
    return out.parent.parent / ".replaced" / out.parent.name / out.name


def set_aside(out: Path) -> Path | None:
    """Move the results in ``out`` out of the way of a new run: a finished run goes to
    ``<out.parent.parent>/.replaced/<dataset>/<name>`` (out of reach of the summary's
    ``<dataset>/<name>/metrics.json`` search), where it stays until the new run is complete;
    an unfinished one (a failed or interrupted run, no result) is removed. Returns where the
    finished results went, or None."""
    if not ((out / PARAMS).is_file() or (out / STATUS).is_file()):
        raise RunExists(f"{out} is not a run directory (no {PARAMS} or {STATUS}); refusing to replace it")
    if not RunDir(out).finished():
        shutil.rmtree(out)
        return None
    aside = replaced_path(out)
    if aside.exists():  # an older result, superseded by the finished one in ``out``
        shutil.rmtree(aside)
    aside.parent.mkdir(parents=True, exist_ok=True)
    out.rename(aside)
    return aside


def check_resumable(out: Path, params: dict) -> None:
    """RunExists unless ``out`` holds an unfinished run made from the same resolved ``params``."""
    import yaml

    rundir = RunDir(out)
    if not rundir.has_params():
        raise RunExists(f"{out} is not a run directory (no {PARAMS}): nothing to resume")
    if rundir.finished() or rundir.status().get("status") == "complete":
        raise RunExists(f"{out} holds a finished run: nothing to resume (--replace runs it again)")
    if yaml.safe_load((out / PARAMS).read_text()) != yaml.safe_load(yaml.safe_dump(params, sort_keys=False)):
        raise RunExists(f"{out} was started with other params: --resume needs the same ones (--replace starts afresh)")


def run(
    params_file: str | Path,
    out: str | Path | None = None,
    overrides: Sequence[str] = (),
    replace: bool = False,
    kernel_name: str = "python3",
    log_output: bool = False,
    resume: bool = False,
) -> Path:
    """Execute notebooks 01-06 for ``params_file``; returns the run directory.

    Raises ParamsError, DataError or ModelFileError (:func:`relalign.preflight.preflight`, before
    anything is written), RunExists, or RunFailed (the directory is
    left marked incomplete, with the failing notebook as far as it ran). With ``replace``, the
    finished results already in the directory are deleted only once the new run is complete. With
    ``resume``, an unfinished run of the same params in the directory is run again in place: the
    models it trained are reloaded (their fingerprints match), not trained again.
    """
    import papermill as pm

    params = load_params(params_file, overrides)  # validates before anything is written
    preflight(params, str(params_file))  # opens the data and the model files, before anything is written
    out = run_dir_for(params_file, overrides, out).resolve()
    if out.exists() and not out.is_dir():
        raise RunExists(f"{out} is a file, not a run directory")
    resuming = resume and out.is_dir() and any(out.iterdir())
    if resuming:
        check_resumable(out, params.to_dict())
        print(f"resuming the unfinished run in {out}: what it trained is reused", flush=True)
    elif out.exists() and any(out.iterdir()):
        if not replace:
            raise RunExists(_exists_message(out))
        previous = set_aside(out)
        if previous:
            print(f"the results that were in {out} are in {previous} until the new run is complete")
    out.mkdir(parents=True, exist_ok=True)
    rundir = RunDir(out)
    rundir.mark_incomplete()
    rundir.write_params(params.to_dict(), header=f"# resolved from {params_file}"
                        + (f" with --set {' '.join(overrides)}" if overrides else "") + "\n")
    started = time.time()
    rundir.update_status(status="running", params_file=str(params_file), overrides=list(overrides), started=started,
                         code_at_start=code_state(), resumed=resuming)
    with _interrupts(), (contextlib.nullcontext() if log_output else _progress_lines(out)):
        print(f"run {out}", flush=True)
        for i, name in enumerate(NOTEBOOKS, 1):
            print(f"  [{i}/{len(NOTEBOOKS)}] {name} ... (started {_elapsed(started)} in)", flush=True)
            rundir.update_status(notebook=name)
            try:
                pm.execute_notebook(
                    str(NOTEBOOK_DIR / f"{name}.ipynb"),
                    str(out / f"{name}.ipynb"),
                    parameters={"params_file": _for_notebook(out / "params.yaml"), "run_dir": _for_notebook(out)},
                    kernel_name=kernel_name,
                    cwd=str(NOTEBOOK_DIR),
                    progress_bar=False,
                    log_output=log_output,
                    kernel_manager_class=IPCKernelManager.get(),
                )
                _relative_paths(out / f"{name}.ipynb")
                rundir.update_status(peak_rss_gib=peak_child_rss_gib())
            except pm.PapermillExecutionError as e:
                if _interrupts.requested or e.ename == "KeyboardInterrupt":
                    rundir.update_status(status="interrupted", failed_notebook=name, seconds=time.time() - started)
                    raise KeyboardInterrupt from None
                rundir.update_status(status="failed", failed_notebook=name, error=f"{e.ename}: {e.evalue}",
                                     seconds=time.time() - started)
                raise RunFailed(f"{name} failed: {e.ename}: {e.evalue} (see {out / (name + '.ipynb')})") from None
            except KeyboardInterrupt:  # Ctrl-C or SIGTERM before a kernel runs (_interrupts)
                rundir.update_status(status="interrupted", failed_notebook=name, seconds=time.time() - started)
                raise
            except BaseException as e:  # the kernel died, ...
                rundir.update_status(status="failed", failed_notebook=name, error=repr(e), seconds=time.time() - started)
                raise
    rundir.mark_complete()
    rundir.update_status(status="complete", notebook=None, seconds=time.time() - started)
    print(f"  complete after {_elapsed(started)}", flush=True)
    previous = replaced_path(out)  # this run's, or one a failed replacement left
    if previous.exists():
        shutil.rmtree(previous)
        _remove_empty_parents(previous.parent, stop=previous.parent.parent.parent)
    return out


def _remove_empty_parents(folder: Path, stop: Path) -> None:
    while folder != stop and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


SUMMARY_NOTEBOOK = "07_summary"


def run_summary(results_root: str | Path | None = None, out: str | Path | None = None, kernel_name: str = "python3") -> Path:
    """Execute notebook 07 over the finished runs under ``results_root`` (default results/), into
    ``out`` (default ``<results_root>/summary``); returns the executed notebook's path."""
    import papermill as pm

    from .summary import find_runs

    root = Path(results_root or REPO_ROOT / "results").resolve()
    if not find_runs(root):  # FileNotFoundError when there is no such folder
        raise FileNotFoundError(f"{root}: no finished runs to summarise")
    out = Path(out or root / "summary").resolve()
    out.mkdir(parents=True, exist_ok=True)
    nb = out / f"{SUMMARY_NOTEBOOK}.ipynb"
    try:
        pm.execute_notebook(
            str(NOTEBOOK_DIR / f"{SUMMARY_NOTEBOOK}.ipynb"), str(nb),
            parameters={"results_root": _for_notebook(root), "out_dir": _for_notebook(out)},
            kernel_name=kernel_name, cwd=str(NOTEBOOK_DIR), progress_bar=False,
            kernel_manager_class=IPCKernelManager.get(),
        )
    except pm.PapermillExecutionError as e:
        raise RunFailed(f"{SUMMARY_NOTEBOOK} failed: {e.ename}: {e.evalue} (see {nb})") from None
    _relative_paths(nb)
    return nb
