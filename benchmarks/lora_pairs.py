"""Which offline models can be the weak supervisor and the strong model of a LoRA study, and what a
seed costs: each model LoRA-fine-tuned on the right answers of split A, scored on split C (a report,
not a test).

    RELALIGN_CACHE=.cache python benchmarks/lora_pairs.py --params params/sciq-lora.yaml \
        --models smollm2-135m-instruct qwen2.5-coder-0.5b-instruct [--layers 2 4] [--epochs 3] [--lr 1e-3]

For each registry model and LoRA depth (``training.lora.layers``), in a fresh process, in fp32 or
``--dtype bfloat16`` (worth it only where the CPU computes bf16 natively), with the params' LoRA
settings otherwise (``--epochs``, ``--lr`` override them; ``--train N`` / ``--test N`` keep the first N
questions of A / C, for rates only): the study's own learner
(:class:`relalign.learners.LoraLearner`) trains on A's canonical prompts with their right answers --
what the weak supervisor does, and what the ceiling does on B -- and answers C by its letter
log-probabilities. Reported per setting: accuracy on C before and after training, seconds for the
bottom states (per token), per optimiser step and per scored prompt, so that a study's seed can be
costed from its sizes. Each entry records its dtype and the machine it ran on; the load average before and after: on a shared CPU the timings
are only as steady as the load. Merges into results/benchmarks/lora_pairs.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from partial_lora_cost import _load, _step_timer, _timed

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "benchmarks" / "lora_pairs.json"
DOC = REPO / "docs" / "lora.md"
PAIR = ("qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b-instruct")  # the pair docs/lora.md costs


def measure(params: str, name: str, layers: int, epochs: float | None, lr: float | None, n_test: int | None,
            n_train: int | None = None, dtype: str = "float32") -> dict:
    """One model at one depth, in this process."""
    import numpy as np

    from relalign.learners import LoraLearner
    from relalign.lora import answer_text, encode_rows
    from relalign.stages import open_run

    with tempfile.TemporaryDirectory() as tmp:
        run = open_run(params, Path(tmp) / "run", overrides=[f"strong.model.name={name}", f"compute.dtype={dtype}"])
        seconds_load, (model, tok) = _timed(lambda: run.pool.model("strong"))
        update = {"layers": layers, **({"epochs": epochs} if epochs else {}), **({"lr": lr} if lr else {})}
        lora = run.params.training.lora.model_copy(update=update)
        batch_tokens = run.params.compute.max_tokens_per_batch
        train = run.task.canonical_prompts("A")[:n_train]
        targets = run.task.supervisor_targets(train)
        test = run.task.canonical_prompts("C")[:n_test]
        gold = np.array([p.position_of(q.answer) for p, q in zip(test, run.task.splits["C"])])
        timer = _step_timer()
        learner = LoraLearner(lambda: (model, tok), lora, run.params.seed, Path(tmp) / "lora", batch_tokens,
                              callbacks=[timer], states_dir=Path(tmp) / "states", save_strategy="no")
        out = {"model": name, "dtype": dtype, "decoder_layers": model.config.num_hidden_layers, "layers": layers,
               "lr": lora.lr, "epochs": lora.epochs, "batch_size": lora.batch_size, "r": lora.r,
               "n_train": len(train), "n_test": len(test), "load_before": _load(), "load_seconds": round(seconds_load, 1)}
        rows = encode_rows(tok, [p.text for p in train], [answer_text(p, int(t)) for p, t in zip(train, targets)],
                           np.ones(len(train)), lora.max_length)
        seconds, _ = _timed(lambda: learner.partial.states(model, tok, [r["input_ids"] for r in rows]))
        tokens = sum(len(r["input_ids"]) for r in rows)
        out["bottom_states_seconds_per_token_train"] = round(seconds / tokens, 5)
        ids = tok([p.text for p in test], add_special_tokens=True)["input_ids"]
        seconds, _ = _timed(lambda: learner.partial.states(model, tok, ids))
        out["bottom_states_seconds_per_token_test"] = round(seconds / sum(map(len, ids)), 5)
        out["test_tokens_per_prompt"] = round(sum(map(len, ids)) / len(ids), 1)
        zero = learner.partial.letter_logprobs(model, tok, test, "zero-shot")
        out["zero_shot_accuracy"] = float(np.mean(zero.argmax(1) == gold))
        seconds, predictor = _timed(lambda: learner.fit("a", train, targets, np.ones(len(train)), "bench"))
        out["train_seconds"] = round(seconds, 1)
        out["steps"] = len(timer.seconds)
        out["seconds_per_step"] = round(float(np.mean(timer.seconds)), 2)
        seconds, lp = _timed(lambda: predictor.logprobs(test, "trained"))
        out["scoring_seconds_per_prompt"] = round(seconds / len(test), 3)
        out["accuracy"] = float(np.mean(lp.argmax(1) == gold))
        predictor.close()
        out["load_after"] = _load()
        return out


def seed_minutes(weak: dict, strong: dict, a: int, b: int, c: int, k: int = 5, epochs: float = 2, batch: int = 8,
                 trainings: int = 12, strong_sequences_per_question: float = 2.0, answer_tokens: int = 9) -> dict:
    """A LoRA seed's minutes, costed from two measured settings (``weak``, ``strong``: entries of the
    report) and a study's sizes: A, B, C questions, K variations, ``trainings`` strong-model runs
    (methods and sweep points), each of naive's steps (``training.equal_steps``), and the distinct
    training sequences per B question the strong model needs states for (2 with ``views: canonical``
    -- the weak label and, for the ceiling, the right one -- about K + 1 with ``views: variations``)."""
    tokens = weak["test_tokens_per_prompt"]
    steps = lambda n: epochs * -(-n // batch)  # noqa: E731
    w = {"states": weak["bottom_states_seconds_per_token_test"] * (a * (tokens + answer_tokens) + (c + b * k) * tokens),
         "training": steps(a) * weak["seconds_per_step"],
         "scoring": (2 * c + b * k) * weak["scoring_seconds_per_prompt"]}
    s = {"states": strong["bottom_states_seconds_per_token_test"]
         * (b * strong_sequences_per_question * (tokens + answer_tokens) + c * tokens),
         "training": trainings * steps(b) * strong["seconds_per_step"],
         "scoring": (trainings + 1) * c * strong["scoring_seconds_per_prompt"]}
    out = {f"weak_{k_}": v / 60 for k_, v in w.items()} | {f"strong_{k_}": v / 60 for k_, v in s.items()}
    return {k_: round(v, 1) for k_, v in out.items()} | {"total": round(sum(out.values()), 1)}


SIZES = [  # (A, B, C, views) of the configurations costed by --estimate
    (200, 200, 500, "variations"), (200, 200, 500, "canonical"), (200, 200, 598, "canonical"),
    (100, 100, 300, "canonical"),
]


def estimates(report: dict, weak: str, strong: str, dtype: str = "float32", layers: int = 2) -> str:
    """A Markdown table: the minutes of one seed for each configuration of :data:`SIZES`, from the last
    full-size entries (all of A) of the two models in ``dtype`` at ``layers``."""
    last = {r["model"]: r for r in report["runs"]
            if r.get("dtype", "float32") == dtype and r["layers"] == layers and r["n_train"] >= 200}
    w, s = last[weak], last[strong]
    lines = [f"weak {weak}, strong {strong}, top {layers} layers, {dtype} on {cpu(s)}; 12 strong trainings of "
             "naive's steps (2 epochs, batch 8); minutes:", "",
             "| A | B | C | views | weak: states | training | scoring | strong: states | training | scoring | total |",
             "|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for a, b, c, views in SIZES:
        m = seed_minutes(w, s, a, b, c, strong_sequences_per_question=2.0 if views == "canonical" else 5.6)
        lines.append(f"| {a} | {b} | {c} | {views} | {m['weak_states']} | {m['weak_training']} | {m['weak_scoring']} | "
                     f"{m['strong_states']} | {m['strong_training']} | {m['strong_scoring']} | {m['total']} |")
    return "\n".join(lines)


def cpu(entry: dict) -> str:
    """The CPU an entry ran on, short: its maker and whether it computes bf16 natively."""
    m = entry.get("machine") or {}
    model = str(m.get("cpu_model") or "?")
    maker = "Intel" if "Intel" in model else "AMD" if "AMD" in model else model.split()[0] if model.split() else "?"
    return f"{maker}{', bf16' if m.get('native_bf16') else ''}"


def table(report: dict) -> str:
    lines = ["| model | CPU | dtype | layers | lr | epochs | A / C | steps | zero-shot | trained | s / step | "
             "states s / 1k tokens | scoring s / prompt |", "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in report["runs"]:
        lines.append(f"| {r['model']} | {cpu(r)} | {r.get('dtype', 'float32')} | {r['layers']} | {r['lr']:g} | "
                     f"{r['epochs']:g} | {r['n_train']} / {r['n_test']} | {r['steps']} | "
                     f"{r['zero_shot_accuracy']:.3f} | {r['accuracy']:.3f} | {r['seconds_per_step']} | "
                     f"{1000 * r['bottom_states_seconds_per_token_test']:.1f} | {r['scoring_seconds_per_prompt']} |")
    return "\n".join(lines)


def power_table(compared: int = 7, seed_sd: float = 0.01) -> str:
    """The minimum detectable difference (points; :func:`relalign.power.minimum_detectable_difference`,
    Holm over ``compared`` methods, 80% power) by discordance, C and seeds, at a seed-to-seed spread
    of ``seed_sd``."""
    from relalign.power import Variance, minimum_detectable_difference

    sizes = [(300, 3), (598, 3), (1000, 3), (598, 5)]
    lines = ["| discordance | " + " | ".join(f"C = {c}, {s} seeds" for c, s in sizes) + " |",
             "|---:|" + "---:|" * len(sizes)]
    for d in (0.05, 0.10, 0.15, 0.20, 0.25):
        mde = [100 * minimum_detectable_difference(Variance(n_test=c, n_seeds=s, within=d, seed_var=seed_sd ** 2,
                                                            discordance=d), compared) for c, s in sizes]
        lines.append(f"| {d:.2f} | " + " | ".join(f"{m:.1f}" for m in mde) + " |")
    return "\n".join(lines)


def doc_blocks(report: dict) -> dict[str, str]:
    """docs/lora.md's generated blocks: the measured table, the costed seeds of :data:`PAIR` and the
    power table."""
    return {"lora-pairs": table(report), "lora-estimate": estimates(report, *PAIR),
            "lora-estimate-bf16": estimates(report, *PAIR, dtype="bfloat16"), "lora-power": power_table()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--params", default=str(REPO / "params" / "sciq-lora.yaml"))
    ap.add_argument("--models", nargs="+", default=[], help="registry model names")
    ap.add_argument("--layers", nargs="+", type=int, default=[2])
    ap.add_argument("--epochs", type=float)
    ap.add_argument("--lr", type=float)
    ap.add_argument("--test", type=int, help="score only the first N prompts of C")
    ap.add_argument("--train", type=int, help="train on the first N questions of A only (for rates)")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--one", nargs=2, help=argparse.SUPPRESS)  # model, layers: one setting per process
    ap.add_argument("--estimate", nargs=2, metavar=("WEAK", "STRONG"),
                    help="no measuring: cost a seed from the report's last full-size settings of these two models")
    ap.add_argument("--estimate-dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--docs", action="store_true", help="no measuring: write the report's tables into docs/lora.md")
    args = ap.parse_args()
    if args.estimate:
        print(estimates(json.loads(OUT.read_text()), *args.estimate, dtype=args.estimate_dtype))
        return
    if args.docs:
        from relalign.docblocks import filled

        DOC.write_text(filled(DOC.read_text(), doc_blocks(json.loads(OUT.read_text()))))
        return
    if args.one:
        print(json.dumps(measure(args.params, args.one[0], int(args.one[1]), args.epochs, args.lr, args.test,
                                 args.train, args.dtype)))
        return
    from relalign.provenance import code_state, machine

    report = json.loads(OUT.read_text()) if OUT.is_file() else {"runs": []}
    for r in report["runs"]:  # entries from before each carried its own: the report's machine then, fp32
        r.setdefault("machine", report.get("machine"))
        r.setdefault("dtype", "float32")
    report["machine"] = machine()
    report["code"] = code_state()
    for name in args.models:
        for layers in args.layers:
            extra = [*(["--epochs", str(args.epochs)] if args.epochs else []), *(["--lr", str(args.lr)] if args.lr else []),
                     *(["--test", str(args.test)] if args.test else []),
                     *(["--train", str(args.train)] if args.train else []), "--dtype", args.dtype]
            r = subprocess.run([sys.executable, __file__, "--params", args.params, *extra, "--one", name, str(layers)],
                               stdout=subprocess.PIPE, text=True)
            if r.returncode:
                sys.exit(f"{name}: the benchmark process failed (status {r.returncode})")
            result = json.loads(r.stdout.strip().splitlines()[-1])
            result["params"] = str(Path(args.params).resolve().relative_to(REPO))
            result["machine"] = report["machine"]
            report["runs"].append(result)
            print(json.dumps(result), flush=True)
            OUT.write_text(json.dumps(report, indent=2) + "\n")
    print(table(report))


if __name__ == "__main__":
    main()
