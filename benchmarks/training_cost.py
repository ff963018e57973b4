"""Wall time and peak memory of one strong-model training run, per training mode (a report, not a test).

    python benchmarks/training_cost.py [--params params/default.yaml] [--lora-steps 2]

* head: the strong model's features for the naive training set (one scoring pass, the part that
  costs) and the head's training, from an empty score cache;
* lora: LoRA fine-tuning of the same model on the same rows with the params' LoRA settings
  (effective batch 24), timed over ``--lora-steps`` optimiser steps and extrapolated to the whole
  run (3 epochs).

Writes results/benchmarks/training_cost.json and prints it. Peak memory is the process's maximum
resident set size, so each mode runs in a fresh process.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "benchmarks" / "training_cost.json"


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kB on Linux


def run_mode(params: str, mode: str, lora_steps: int) -> dict:
    import numpy as np

    from relalign import stages
    from relalign.learners import HeadLearner
    from relalign.pool import cached_scorer

    with tempfile.TemporaryDirectory() as tmp:
        # the weak labels come from the shared cache; the strong model's scores start empty
        run = stages.open_run(params, Path(tmp) / "run")
        data = stages.training_data(run, "strong", "naive")
        prompts, targets, weights = data.prompts, data.targets, data.weights
        if mode == "head":
            scorer = cached_scorer(run.pool, Path(tmp) / "cache", "strong")  # the strong model scores from nothing
            t0 = time.time()
            settings = run.params.head_settings("strong")
            l2 = HeadLearner(scorer, settings, Path(tmp) / "head").choose_l2(prompts, targets, weights, "naive: features")
            t_cv = time.time()  # choosing the L2 strength by CV scored the rows
            learner = HeadLearner(scorer, dataclasses.replace(settings, l2=l2), Path(tmp) / "head")
            learner.fit("naive", prompts, targets, weights, "bench").close()
            return {"mode": "head", "rows": len(prompts), "seconds": round(time.time() - t0, 1),
                    "of_which_scoring_and_l2_choice": round(t_cv - t0, 1), "peak_rss_gib": round(_peak_gib(), 2)}
        from relalign.learners import LoraLearner

        lora = run.params.training.lora
        learner = LoraLearner(lambda: run.pool.model("strong"), lora, run.params.seed, Path(tmp) / "lora",
                              max_steps=lora_steps, save_strategy="no", logging_steps=1)
        t0 = time.time()
        run.pool.model("strong")
        t_load = time.time() - t0
        t1 = time.time()
        learner.fit("naive", prompts, targets, weights, "bench").close()
        per_step = (time.time() - t1) / lora_steps
        steps_per_epoch = int(np.ceil(len(prompts) / lora.batch_size))
        total_steps = int(np.ceil(steps_per_epoch * lora.epochs))
        return {"mode": "lora", "rows": len(prompts), "effective_batch": lora.batch_size,
                "micro_batch": lora.micro_batch_size, "measured_steps": lora_steps,
                "seconds_per_step": round(per_step, 1), "steps_for_the_run": total_steps,
                "estimated_run_seconds": round(per_step * total_steps), "model_load_seconds": round(t_load, 1),
                "peak_rss_gib": round(_peak_gib(), 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--params", default=str(REPO / "params" / "default.yaml"))
    ap.add_argument("--lora-steps", type=int, default=2)
    ap.add_argument("--mode", choices=["head", "lora"], help=argparse.SUPPRESS)  # one mode per process
    args = ap.parse_args()
    if args.mode:
        print(json.dumps(run_mode(args.params, args.mode, args.lora_steps)))
        return
    report = {"machine": {"cpus": __import__("os").cpu_count(), "platform": platform.platform(),
                          "python": platform.python_version()},
              "params": str(Path(args.params).resolve().relative_to(REPO)), "runs": []}
    for mode in ("head", "lora"):
        r = subprocess.run([sys.executable, __file__, "--params", args.params, "--lora-steps", str(args.lora_steps),
                            "--mode", mode], capture_output=True, text=True, check=True)
        report["runs"].append(json.loads(r.stdout.strip().splitlines()[-1]))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
