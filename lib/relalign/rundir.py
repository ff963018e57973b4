"""A run directory: where each step of one run leaves its results, and the only module that knows
the files' names.

``results/<dataset>/<name>`` (``<name>-seed<N>`` for another seed than 0) holds, for one run of one
params file:

==========================  ==========================================================
``params.yaml``             the params as resolved, which the notebooks read
``run_status.json``         running / complete / failed, the notebook at work, timings
``INCOMPLETE``              present while the run is going and after one that failed
``weak_supervisor.json``    the weak supervisor's accuracy on C (step 1)
``weak_labels.parquet``     the K weak answers to every question of B (step 2)
``reliability.json``        the reliability scores' summary (step 3)
``methods/<method>.json``   one strong model's training set and accuracy on C (steps 4-6)
``sweep.json``              the threshold sweep (step 4)
``metrics.json``            everything the summary across runs reads (step 6)
``trained/<role>/<name>/``  trained heads and adapters, with their fingerprints
``figures/``                the notebooks' figures
==========================  ==========================================================

Every file is written whole or not at all (:func:`relalign.cache.atomic_write`). Reading a result
that a step has not written yet raises :class:`MissingResult`, naming the step that writes it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .cache import atomic_write

__all__ = ["RunDir", "MissingResult", "default_run_dir", "INCOMPLETE", "STATUS", "METRICS", "PARAMS"]

PARAMS = "params.yaml"
STATUS = "run_status.json"
INCOMPLETE = "INCOMPLETE"
METRICS = "metrics.json"
# result name -> (file, the step that writes it)
RESULTS = {
    "weak_supervisor": ("weak_supervisor.json", "the weak supervisor (notebook 01)"),
    "reliability": ("reliability.json", "the reliability summary (notebook 03)"),
    "sweep": ("sweep.json", "the threshold sweep (notebook 04)"),
    "metrics": (METRICS, "the evaluation (notebook 06)"),
    "strong_l2": ("trained/strong/l2.json", "the strong model's first head"),
}
WEAK_LABELS = "weak_labels.parquet"


class MissingResult(FileNotFoundError):
    """A step asked for a result that the step writing it has not produced in this run directory."""


def default_run_dir(dataset: str, name: str, seed: int, results: Path) -> Path:
    """``<results>/<dataset>/<name>``, and ``<name>-seed<N>`` for another seed than 0: the runs of one
    params file over seeds lie side by side."""
    return Path(results) / dataset / (name if seed == 0 else f"{name}-seed{seed}")


class RunDir:
    """The files of one run directory (see the module's docstring)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"RunDir({str(self.root)!r})"

    # ------------------------------------------------------------------ where things are

    def path(self, name: str) -> Path:
        """The file of a named result (:data:`RESULTS`)."""
        return self.root / RESULTS[name][0]

    def method_path(self, method: str) -> Path:
        return self.root / "methods" / f"{method}.json"

    def trained(self, role: str) -> Path:
        """Where ``role``'s trained heads or adapters live (one folder per training set)."""
        return self.root / "trained" / role

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    # ------------------------------------------------------------------ JSON results

    def write(self, name: str, obj: dict) -> None:
        _write_json(self.path(name), obj)

    def read(self, name: str) -> dict:
        return _read_json(self.path(name), f"not written yet; it comes from {RESULTS[name][1]}")

    def has(self, name: str) -> bool:
        return self.path(name).is_file()

    def write_method(self, method: str, obj: dict) -> None:
        _write_json(self.method_path(method), obj)

    def read_method(self, method: str) -> dict:
        return _read_json(self.method_path(method), f"{method} is not trained in this run yet")

    def has_method(self, method: str) -> bool:
        return self.method_path(method).is_file()

    # ------------------------------------------------------------------ the weak labels

    def write_weak_labels(self, table: pd.DataFrame) -> None:
        atomic_write(self.root / WEAK_LABELS, lambda p: table.to_parquet(p, index=False))

    # ------------------------------------------------------------------ the run's own state

    def write_params(self, params: dict, header: str = "") -> None:
        """``params.yaml``: the params as resolved (what the notebooks and ``relalign train`` read)."""
        import yaml

        atomic_write(self.root / PARAMS, lambda p: p.write_text(header + yaml.safe_dump(params, sort_keys=False)))

    def has_params(self) -> bool:
        return (self.root / PARAMS).is_file()

    def status(self) -> dict:
        path = self.root / STATUS
        return json.loads(path.read_text()) if path.is_file() else {}

    def update_status(self, **fields) -> None:
        _write_json(self.root / STATUS, {**self.status(), **fields})

    def mark_incomplete(self) -> None:
        (self.root / INCOMPLETE).write_text("This run has not finished (or it failed): see run_status.json.\n")

    def mark_complete(self) -> None:
        (self.root / INCOMPLETE).unlink(missing_ok=True)

    def finished(self) -> bool:
        """Whether the run wrote its metrics and is not marked incomplete."""
        return (self.root / METRICS).is_file() and not (self.root / INCOMPLETE).exists()


def _read_json(path: Path, missing: str) -> dict:
    """The JSON result at ``path``; :class:`MissingResult` saying ``missing`` where there is none."""
    if not path.is_file():
        raise MissingResult(f"{path}: {missing}")
    return json.loads(path.read_text())


def _write_json(path: Path, obj: dict) -> None:
    atomic_write(path, lambda p: p.write_text(json.dumps(obj, indent=2, allow_nan=True) + "\n"))
