"""How far a head-mode run's accuracies move when its features round differently (a report, not a test).

    python benchmarks/fit_stability.py PARAMS [--set KEY=VALUE ...] [--noise 1e-5] [--draws 5] [--out FILE]

fp32 kernels round differently on different CPUs: the same run's weak-model confidences differed
by up to 5e-6 between two machines. This script takes a params file whose strong-model features
are in the score cache (run it after ``relalign run``; nothing is written to the run's folder),
and for each of ``--draws`` draws multiplies every strong-model feature -- of the training sets and
of C alike, as another CPU would -- by ``1 + noise * N(0, 1)``, chooses the strong model's L2 again
by cross-validation on naive's rows, re-fits every method's head and every threshold-sweep point,
and records the accuracy on C. A stable fit moves by a question at most; a fit on a knife edge by
many. Writes a JSON report (default: results/benchmarks/fit_stability.json) and prints a table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "benchmarks" / "fit_stability.json"


def perturbed(sp, rng: np.random.Generator, noise: float):
    """``sp`` with every float feature multiplied by 1 + noise * N(0, 1) (token counts unchanged)."""
    from relalign.scoring import ScoredPrompts

    def jitter(a):
        return None if a is None else (a * (1 + noise * rng.standard_normal(a.shape))).astype(a.dtype)

    return ScoredPrompts(jitter(sp.letter_logprob), jitter(sp.option_logprob), sp.option_ntokens,
                         jitter(sp.option_hidden), jitter(sp.last_hidden))


def accuracies(run, names: list[str], noise: float, rng: np.random.Generator | None) -> tuple[float, dict]:
    """(the strong L2 chosen by CV, {name: accuracy on C}) with features perturbed by ``rng`` (None: as cached)."""
    from relalign import answering, stages
    from relalign.head import fit_head, head_logprobs
    from relalign.pool import cached_scorer

    score = cached_scorer(run.pool, run.where.cache_root, "strong")
    jit = (lambda sp: sp) if rng is None else (lambda sp: perturbed(sp, rng, noise))
    test = run.task.canonical_prompts("C")
    test_features = jit(score(test, "test split C"))
    learner = answering.learner_for(run, stages.job(run, "strong", "naive"))
    base = dataclasses.replace(learner.settings, l2=None)
    merged = {}
    for name in ["naive", *names]:
        data = stages.training_data(run, "strong", name)
        merged[name] = learner._merge(data.prompts, data.targets, data.weights)
    features = {name: jit(score(unique, f"{name}: features")) for name, (unique, *_rest) in merged.items()}
    _, t, counts, groups = merged["naive"]
    l2 = fit_head(features["naive"], t, settings=base, counts=counts, groups=groups).l2
    out = {}
    for name in names:
        _, t, counts, groups = merged[name]
        settings = dataclasses.replace(answering.learner_for(run, stages.job(run, "strong", name)).settings, l2=l2)
        head = fit_head(features[name], t, settings=settings, counts=counts, groups=groups)
        out[name] = run.task.accuracy(run.task.choices(test, head_logprobs(head, test_features)).tolist())
    return float(l2), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("params")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--noise", type=float, default=1e-5)
    ap.add_argument("--draws", type=int, default=5)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()

    from relalign.params import load_params
    from relalign.provenance import code_state, cpu_model
    from relalign.selection import sweep_name
    from relalign.stages import run_of

    params = load_params(args.params, args.set)
    if params.training.mode != "head":
        raise SystemExit(f"{args.params}: training.mode is {params.training.mode!r}; this report is for head mode")
    with tempfile.TemporaryDirectory() as scratch:
        run = run_of(params, scratch)
        names = [m for m in params.method_names() if m != "naive"] + [sweep_name(f) for f in params.reliability.sweep]
        names = ["naive", *dict.fromkeys(names)]
        l2, cached = accuracies(run, names, args.noise, None)
        draws = [accuracies(run, names, args.noise, np.random.default_rng(d)) for d in range(args.draws)]
    report = {
        "params": args.params, "overrides": args.set, "seed": params.seed, "noise": args.noise, "draws": args.draws,
        "l2": {"cached": l2, "draws": [d[0] for d in draws]},
        "accuracy": {n: {"cached": cached[n], "draws": [d[1][n] for d in draws],
                         "largest_change": max(abs(d[1][n] - cached[n]) for d in draws)} for n in names},
        "n_test": len(run.task.splits["C"]),
        "code": code_state(), "cpu": cpu_model(), "platform": platform.platform(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'training set':<24}{'cached':>8}  draws (noise {args.noise:g})")
    for n in names:
        a = report["accuracy"][n]
        print(f"{n:<24}{a['cached']:>8.3f}  " + " ".join(f"{x:.3f}" for x in a["draws"])
              + f"   largest change {a['largest_change']:.3f}")
    print(f"strong L2: cached {l2}, draws {report['l2']['draws']}")


if __name__ == "__main__":
    main()
