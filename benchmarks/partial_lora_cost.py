"""What partial LoRA (``training.lora.layers: N``) saves: a LoRA step, the bottom states it needs once,
and letter scoring, against full LoRA (a report, not a test).

    RELALIGN_CACHE=.cache python benchmarks/partial_lora_cost.py [--params params/default.yaml] \
        [--models qwen2.5-coder-0.5b-instruct ...] [--layers 1 2 4 8] [--steps 2] [--test-prompts 32]

For each registry model (the params' strong model by default), in a fresh process, fp32, on real
prompts of the params' splits (canonical prompts of B with their right answers as training rows, of C
for scoring; no weak labels needed):

* full LoRA and LoRA on the top N layers: seconds per optimiser step of 8 rows (micro-batches of the
  params' ``micro_batch_size``), each step timed by a Trainer callback, ``--steps`` steps a setting;
* partial: the one-off cost of the bottom states per training sequence (prompt and answer) and per
  evaluation prompt, from an empty store;
* letter scoring per prompt of C: from cached states (the top N layers alone) and by the whole
  fine-tuned model (the study's full-model path, shared prefix), with the largest difference between
  the two (they compute the same thing).

The load average is recorded before and after every setting: on a shared CPU the timings are only
as steady as the load. Writes results/benchmarks/partial_lora_cost.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "benchmarks" / "partial_lora_cost.json"
ROWS_PER_STEP = 8


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _timed(fn):
    """(seconds, result) of ``fn()``."""
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _step_timer():
    """A Trainer callback that records the wall time of every optimiser step."""
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.seconds: list[float] = []

        def on_step_begin(self, args, state, control, **kw):
            self._t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            self.seconds.append(time.perf_counter() - self._t0)

    return StepTimer()


def _training_rows(run, n: int):
    """(prompts, listing positions, weights): the first ``n`` canonical prompts of B, right answers."""
    import numpy as np

    prompts = run.task.canonical_prompts("B")[:n]
    targets = [p.position_of(q.answer) for p, q in zip(prompts, run.task.splits["B"])]
    return prompts, targets, np.ones(len(prompts))


def _full_scoring(predictor, test, batch_tokens: int):
    """Letter log-probabilities of ``test`` by the whole fine-tuned model (the full-LoRA predictor's path)."""
    from relalign.learners import LoraPredictor

    return LoraPredictor(predictor.model, predictor.tokenizer, batch_tokens).logprobs(test, "full model")


def time_setting(run, layers: int | None, steps: int, n_test: int, tmp: Path) -> dict:
    """One setting (``layers`` None: full LoRA): step times and scoring costs."""
    import numpy as np

    from relalign.learners import LoraLearner
    from relalign.lora import answer_text, encode_rows

    load_before = _load()
    model, tok = run.pool.model("strong")
    batch_tokens = run.params.compute.max_tokens_per_batch
    lora = run.params.training.lora.model_copy(update=dict(batch_size=ROWS_PER_STEP, max_steps=steps, layers=layers))
    prompts, targets, weights = _training_rows(run, ROWS_PER_STEP * steps)
    test = run.task.canonical_prompts("C")[:n_test]
    timer = _step_timer()
    learner = LoraLearner(lambda: (model, tok), lora, run.params.seed, tmp / f"lora-{layers}", batch_tokens,
                          callbacks=[timer], states_dir=tmp / "states", save_strategy="no", logging_steps=1)
    out: dict = {"layers": layers or "all", "load_before": load_before}
    if learner.partial is not None:
        rows = encode_rows(tok, [p.text for p in prompts], [answer_text(p, t) for p, t in zip(prompts, targets)],
                           weights, lora.max_length)
        seconds, _ = _timed(lambda: learner.partial.states(model, tok, [r["input_ids"] for r in rows]))
        out["bottom_states_seconds_per_training_sequence"] = round(seconds / len(rows), 3)
        out["training_tokens_per_sequence"] = round(float(np.mean([len(r["input_ids"]) for r in rows])), 1)
    predictor = learner.fit("bench", prompts, targets, weights, "bench")
    out["step_seconds"] = [round(s, 2) for s in timer.seconds]
    out["seconds_per_step"] = round(float(np.mean(timer.seconds)), 2)
    if learner.partial is not None:
        ids = tok([p.text for p in test], add_special_tokens=True)["input_ids"]
        seconds, _ = _timed(lambda: learner.partial.states(model, tok, ids))
        out["bottom_states_seconds_per_test_prompt"] = round(seconds / len(test), 3)
        seconds, cached = _timed(lambda: predictor.logprobs(test, "from cached states"))
        out["scoring_seconds_per_prompt_cached"] = round(seconds / len(test), 3)
    seconds, full = _timed(lambda: _full_scoring(predictor, test, batch_tokens))
    out["scoring_seconds_per_prompt_full_model"] = round(seconds / len(test), 3)
    if learner.partial is not None:
        out["max_abs_diff_cached_vs_full"] = float(np.abs(cached - full).max())
    predictor.close()
    out["load_after"] = _load()
    return out


def run_model(params: str, name: str, layer_list: list[int], steps: int, n_test: int) -> dict:
    """Every setting for one registry model, in this process."""
    from relalign.stages import open_run

    with tempfile.TemporaryDirectory() as tmp:
        run = open_run(params, Path(tmp) / "run", overrides=["strong.model.source=registry", f"strong.model.name={name}",
                                                             "compute.dtype=float32"])
        seconds, (model, _) = _timed(lambda: run.pool.model("strong"))
        config = model.config
        report = {"model": name, "decoder_layers": config.num_hidden_layers, "hidden_size": config.hidden_size,
                  "load_seconds": round(seconds, 1), "test_prompts": n_test, "settings": []}
        for layers in [None, *layer_list]:
            report["settings"].append(time_setting(run, layers, steps, n_test, Path(tmp)))
            print(json.dumps(report["settings"][-1]), file=sys.stderr, flush=True)
        report["peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
        return report


def table(report: dict) -> str:
    """The report as a markdown table, one row per model and setting."""
    lines = ["| model | layers | s / step (8 rows) | vs full | bottom states s / train seq | s / test prompt "
             "(states) | letter scoring s / prompt, cached | full model | max abs diff |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for run in report["runs"]:
        full = run["settings"][0]["seconds_per_step"]
        for s in run["settings"]:
            lines.append(f"| {run['model']} | {s['layers']} | {s['seconds_per_step']} | "
                         f"{full / s['seconds_per_step']:.1f}x | {s.get('bottom_states_seconds_per_training_sequence', '')} | "
                         f"{s.get('bottom_states_seconds_per_test_prompt', '')} | {s.get('scoring_seconds_per_prompt_cached', '')} | "
                         f"{s['scoring_seconds_per_prompt_full_model']} | {s.get('max_abs_diff_cached_vs_full', '')} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--params", default=str(REPO / "params" / "default.yaml"))
    ap.add_argument("--models", nargs="+", default=None, help="registry model names (default: the params' strong model)")
    ap.add_argument("--layers", nargs="+", type=int, default=[1, 2, 4, 8])
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--test-prompts", type=int, default=32)
    ap.add_argument("--one", help=argparse.SUPPRESS)  # one model per process
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_model(args.params, args.one, args.layers, args.steps, args.test_prompts)))
        return
    from relalign.params import load_params
    from relalign.provenance import cpu_model

    import torch

    models = args.models or [load_params(args.params).strong.model.name]
    report = {"machine": {"cpu": cpu_model(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                          "platform": platform.platform(), "python": platform.python_version(),
                          "load_at_start": _load()},
              "params": str(Path(args.params).resolve().relative_to(REPO)), "dtype": "float32",
              "rows_per_step": ROWS_PER_STEP, "steps": args.steps, "runs": []}
    for name in models:
        r = subprocess.run([sys.executable, __file__, "--params", args.params, "--layers", *map(str, args.layers),
                            "--steps", str(args.steps), "--test-prompts", str(args.test_prompts), "--one", name],
                           stdout=subprocess.PIPE, text=True)
        if r.returncode:
            sys.exit(f"{name}: the benchmark process failed (status {r.returncode})")
        report["runs"].append(json.loads(r.stdout.strip().splitlines()[-1]))
    report["machine"]["load_at_end"] = _load()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    print(table(report))


if __name__ == "__main__":
    main()
