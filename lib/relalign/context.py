"""One run of one params file: what every step of :mod:`relalign.stages` takes.

A :class:`Run` holds the params, the run directory (:class:`~relalign.rundir.RunDir`, which owns every
file name), the task (:mod:`relalign.task`: multiple choice or free text) and the models
(:class:`~relalign.pool.ModelPool`). :func:`open_run` makes one from a params file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from .data import drop_long, load_pools, make_splits
from .params import Params, load_params
from .pool import ModelPool
from .rundir import RunDir
from .task import Task, make_task
from .training import Where

__all__ = ["Run", "open_run", "run_of", "memo"]


@dataclass
class Run:
    """One run of one params file: what every step takes. ``memo`` keeps the results a step has
    computed in this process, so that each is computed once."""

    params: Params
    rundir: RunDir
    task: Task
    pool: ModelPool
    memo: dict = field(default_factory=dict)

    @property
    def where(self) -> Where:
        return Where(trained=self.rundir.root / "trained", cache_root=self.params.resolved_cache_dir())


def open_run(params_file: str | Path, run_dir: str | Path | None = None, overrides: Sequence[str] = ()) -> Run:
    """The run of ``params_file`` in ``run_dir``. Without ``run_dir`` (a notebook opened by hand),
    outputs go to ``<cache>/notebooks/<dataset>/<name>`` so that interactive runs never touch ``results/``."""
    params = load_params(params_file, overrides)
    if run_dir is None:
        run_dir = params.resolved_cache_dir() / "notebooks" / params.data.dataset / params.name
    return run_of(params, run_dir)


def run_of(params: Params, run_dir: str | Path) -> Run:
    """The run of loaded ``params`` in ``run_dir``: its splits drawn, nothing computed yet; torch's
    thread count set where ``compute.threads`` pins it."""
    if params.compute.threads is not None:
        import torch

        torch.set_num_threads(params.compute.threads)
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    adapter = params.adapter()
    specs = params.split_specs()
    pools = load_pools(adapter, params.data.source, sorted({s.pool for s in specs.values()}), params.data_path())
    splits = make_splits(drop_long(pools, params.data.max_chars), specs, params.seed)
    return Run(params, RunDir(run_dir), make_task(adapter, splits, params), ModelPool(params))


def memo(run: Run, key, compute: Callable):
    """``compute()`` the first time a step asks for ``key`` in this run, its result after that."""
    if key not in run.memo:
        run.memo[key] = compute()
    return run.memo[key]
