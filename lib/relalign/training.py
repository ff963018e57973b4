"""Training one model of a run: which learner, with what fingerprint, trained once.

A training set is ``TrainingData`` -- prompts, targets (listing positions, or answer texts for an
open task) and a weight per row -- that a stage builds (:mod:`relalign.stages`). :func:`learner`
makes the params' learner for it (:mod:`relalign.learners`): a head on the frozen model's cached
features, or LoRA; :func:`trained_fingerprint` names what it depends on; :func:`fit` trains it, or
reloads what an earlier run of the same fingerprint saved, in this process or -- LoRA with
``training.lora.num_processes`` > 1 -- through ``accelerate launch`` of ``relalign train``.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .cache import fingerprint
from .pool import ModelPool, cached_scorer
from .prompts import Prompt
from .rundir import RunDir
from .selection import method_spec

__all__ = ["TrainingData", "learner", "training_seed", "trained_fingerprint", "fit", "launch_command", "TRAINED_VERSION",
           "UNTRAINED"]

TRAINED_VERSION = 2  # bump when a learner changes what it trains from the same data and settings
UNTRAINED = "untrained"  # the name of a learner that only answers zero-shot: no method, nothing trained


@dataclass(frozen=True)
class TrainingData:
    prompts: Sequence[Prompt]
    targets: np.ndarray
    weights: np.ndarray


@dataclass(frozen=True)
class Where:
    """Where a run keeps what it trains, and the cache it shares with other runs."""

    trained: Path  # <run dir>/trained
    cache_root: Path


def learner(params, pool: ModelPool, where: Where, role: str, name: str, *, strong_l2: float | None = None,
            naive_rows: int | None = None):
    """The learner that trains ``role``'s ``name``: the params' settings, with the auxiliary confidence
    loss for a method that asks for it, the strong model's one L2 (``strong_l2``, head mode, chosen on
    naive's rows) and, for LoRA with ``training.equal_steps``, naive's number of optimiser steps
    (``naive_rows``)."""
    t = params.training
    out = where.trained / role
    aux = role == "strong" and name != UNTRAINED and method_spec(name).aux_loss
    if t.mode == "head":
        from .learners import HeadLearner

        settings = dataclasses.replace(params.head_settings(role), aux_coef=t.aux_coef if aux else 0.0)
        if role == "strong" and settings.l2 is None:
            settings = dataclasses.replace(settings, l2=strong_l2)
        return HeadLearner(cached_scorer(pool, where.cache_root, role), settings, out)
    from .learners import LoraLearner, lora_steps

    lora = t.lora
    if name in lora.loss_normalisation_by_method:
        lora = lora.model_copy(update={"loss_normalisation": lora.loss_normalisation_by_method[name]})
    if role == "strong" and lora.strong_lr is not None:
        lora = lora.model_copy(update={"lr": lora.strong_lr})
    if role == "strong" and t.equal_steps and lora.max_steps <= 0 and naive_rows is not None:
        lora = lora.model_copy(update={"max_steps": lora_steps(naive_rows, lora)})
    return LoraLearner(lambda: pool.model(role), lora, training_seed(params, role), out,
                       params.compute.max_tokens_per_batch, aux_coef=t.aux_coef if aux else 0.0, aux_warmup=t.aux_warmup,
                       base_name=params.model_spec(role).reference(),
                       # partial LoRA's cached bottom states: one folder per model, shared by runs
                       states_dir=where.cache_root / "bottom_states" / fingerprint("bottom_states", 1,
                                                                                   model=pool.model_id(role))[:32])


def training_seed(params, role: str) -> int:
    """The seed of ``role``'s LoRA trainings (adapter initialisation, row order): the study's seed, or
    for the strong model ``training.strong_seed`` where set -- a replicate that draws the trainings
    again on the same splits, weak supervisor and weak labels."""
    strong = params.training.strong_seed
    return strong if role == "strong" and strong is not None else params.seed


def trained_fingerprint(params, pool: ModelPool, role: str, the_learner, data: TrainingData) -> str:
    """What a trained head or adapter depends on: model, learner settings, seed and training rows."""
    return fingerprint("trained", TRAINED_VERSION, model=pool.model_id(role), learner=the_learner.describe(),
                       seed=training_seed(params, role), texts=[p.text for p in data.prompts],
                       targets=np.asarray(data.targets).tolist(), weights=np.round(data.weights, 12).tolist())


def fit(params, pool: ModelPool, rundir: RunDir, role: str, name: str, the_learner, data: TrainingData,
        here: bool = False):
    """A predictor for ``role``'s ``name``: trained in this process (or with ``here``, which each
    process of ``accelerate launch`` asks for), or -- LoRA with ``training.lora.num_processes`` > 1 --
    by ``accelerate launch`` of ``relalign train`` on the run directory's params.yaml, whose saved
    adapter is then loaded; the fingerprint tells that it is the one asked for."""
    from .learners import adapter_is_intact, is_trained

    fp = trained_fingerprint(params, pool, role, the_learner, data)
    if not here and params.training.mode == "lora" and params.training.lora.num_processes > 1:
        folder = the_learner.out_dir / name
        if not (is_trained(folder, fp) and adapter_is_intact(folder)):
            pool.release()
            if not rundir.has_params():
                rundir.write_params(params.to_dict())
            _launch(launch_command(params, rundir.root, role, name))
        if not is_trained(folder, fp):
            raise RuntimeError(f"accelerate launch finished without saving {folder}")
    return the_learner.fit(name, data.prompts, data.targets, data.weights, fp)


def launch_command(params, run_dir: Path, role: str, name: str) -> list[str]:
    """``accelerate launch`` of ``relalign train`` for one LoRA training run on several processes (the
    run directory's params.yaml says what to train)."""
    lora = params.training.lora
    return [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(lora.num_processes),
            *lora.launch_args, "-m", "relalign.cli", "train", str(Path(run_dir) / "params.yaml"), "--run-dir",
            str(run_dir), "--role", role, "--name", name]


def _launch(cmd: list[str]) -> None:
    """Run ``cmd`` and wait; its output streams through (a notebook shows it)."""
    print("launching:", " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, text=True)
    if proc.returncode:
        raise RuntimeError(f"accelerate launch exited with status {proc.returncode}: {' '.join(cmd)}")
