"""What the models' number format costs on this machine: the strong model's generation on C and a
LoRA step, in fp32 and in bf16 (a report, not a test).

    python benchmarks/dtype_cost.py [--params params/gsm8k-offline.yaml] [--tokens 32] [--lora-steps 4]

For each dtype, in a fresh process with ``compute.dtype`` set to it:

* prefill: one forward pass over C's canonical prompts as one left-padded batch (the evaluation's
  ``generation.batch_size``), logits for the last column only, as ``generate`` asks for them;
* decoding: ``generate`` with ``--tokens`` new tokens less one with 1 new token (no early stop), per
  token of the whole batch;
* LoRA: ``--lora-steps`` optimiser steps on the ceiling's rows (B's true solutions; no weak labels
  needed) with the params' LoRA settings, per step, after the model is loaded.

Each timing follows one untimed warm-up call. Writes results/benchmarks/dtype_cost.json and prints
it (docs/benchmarks.md). On a CPU without bf16 instructions bf16 can be slower than fp32, which
this script shows; params/gsm8k-offline.yaml therefore loads its models in fp32, and bf16 is a
--set away where the CPU computes it natively.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "benchmarks" / "dtype_cost.json"
DTYPES = ("float32", "bfloat16")


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run_dtype(params: str, dtype: str, tokens: int, lora_steps: int) -> dict:
    import torch

    from relalign.generation import generate
    from relalign.learners import LoraLearner
    from relalign import stages

    with tempfile.TemporaryDirectory() as tmp:
        run = stages.open_run(params, Path(tmp) / "run", overrides=[f"compute.dtype={dtype}"])
        model, tok = run.pool.model("strong")
        texts = [p.text for p in run.task.canonical_prompts("C")][: run.params.generation.batch_size]
        tok.padding_side = "left"
        batch = tok(texts, return_tensors="pt", padding=True)

        def prefill():
            with torch.inference_mode():
                model(**batch, logits_to_keep=1)

        def decode(n: int):
            d = dataclasses.replace(stages.decoding(run.params), max_new_tokens=n, stop_after_final=False)
            return lambda: generate(model, tok, texts, d, batch_size=len(texts), progress=False)

        prefill()  # warm-up
        t_prefill = _timed(prefill)
        decode(1)()
        t_one, t_n = _timed(decode(1)), _timed(decode(tokens))

        data = stages.training_data(run, "strong", "ceiling")
        prompts, targets, weights = data.prompts, data.targets, data.weights
        learner = LoraLearner(lambda: run.pool.model("strong"), run.params.training.lora, run.params.seed,
                              Path(tmp) / "lora", max_steps=1, save_strategy="no", logging_steps=1)
        learner.fit("warm", prompts, targets, weights, "bench").close()
        learner.trainer_overrides["max_steps"] = lora_steps
        t_lora = _timed(lambda: learner.fit("timed", prompts, targets, weights, "bench").close())
        return {"dtype": dtype, "batch_rows": len(texts), "batch_columns": int(batch["input_ids"].shape[1]),
                "prefill_seconds": round(t_prefill, 2),
                "decode_seconds_per_token": round((t_n - t_one) / (tokens - 1), 3),
                "lora_rows": len(prompts), "lora_micro_batch": run.params.training.lora.micro_batch_size,
                "lora_seconds_per_step": round(t_lora / lora_steps, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--params", default=str(REPO / "params" / "gsm8k-offline.yaml"))
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--lora-steps", type=int, default=4)
    ap.add_argument("--dtype", choices=DTYPES, help=argparse.SUPPRESS)  # one dtype per process
    args = ap.parse_args()
    if args.tokens < 2:
        ap.error("--tokens must be at least 2 (decoding is timed as N tokens less 1)")
    if args.dtype:
        print(json.dumps(run_dtype(args.params, args.dtype, args.tokens, args.lora_steps)))
        return
    from relalign.models import cpu_has_native_bf16
    from relalign.provenance import cpu_model

    report = {"machine": {"cpu": cpu_model(), "cpus": os.cpu_count(), "platform": platform.platform(),
                          "python": platform.python_version(), "native_bf16": cpu_has_native_bf16()},
              "params": str(Path(args.params).resolve().relative_to(REPO)), "new_tokens": args.tokens,
              "lora_steps": args.lora_steps, "runs": []}
    for dtype in DTYPES:
        r = subprocess.run([sys.executable, __file__, "--params", args.params, "--tokens", str(args.tokens),
                            "--lora-steps", str(args.lora_steps), "--dtype", dtype], capture_output=True, text=True)
        if r.returncode:
            sys.exit(f"{dtype}: the benchmark process failed:\n{r.stderr[-3000:]}")
        report["runs"].append(json.loads(r.stdout.strip().splitlines()[-1]))
    fp32, bf16 = report["runs"]
    report["bf16_speedup"] = {k: round(fp32[k] / bf16[k], 2) for k in
                              ("prefill_seconds", "decode_seconds_per_token", "lora_seconds_per_step")}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
