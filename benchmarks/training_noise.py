"""How much of a LoRA study's seed-to-seed spread its strong trainings alone make (a report, not a test).

    python benchmarks/training_noise.py params/sciq-lora.yaml --seeds 0 1 2 --replicates 2 \\
        --methods naive reweighting [--set key=value ...]

For each seed, the strong model is trained again ``--replicates`` times for each of ``--methods`` on
the seed's own splits, weak supervisor and weak labels, with ``training.strong_seed`` = seed + 1000 r
(r = 1, 2, ...); the committed run of the seed (``results/<dataset>/<name>[-seed<N>]``) is replicate
0. The weak labels are checked against the committed run's before anything trains (a replicate on
other labels would measure something else). Every replicate is one process's stage calls
(``relalign.stages``) in a scratch folder; only accuracy and per-question correctness are kept.

Point ``RELALIGN_CACHE`` at the score cache the committed seed ran with and its weak labels and the
frozen layers' states are reused (minutes instead of the seed's whole time); with any other cache
they are computed again (the same numbers, given the same ``compute.threads``).

The report, results/benchmarks/training_noise.json (one entry per params file, merged as replicates
finish, so an interrupted measurement resumes), holds every replicate and, per method and for each
method's difference from naive, the variance between replicates of one seed against the seed-to-seed
variance of the committed runs (``relalign.power.replicate_variance``); and what the study would
detect if each seed averaged T trainings of every method (``relalign.power.with_trainings``).
``--reproduce`` trains a seed's methods again with the seed's own draw and records whether every
answer on C is the committed run's (the check that a replicate differs by its draw alone).

The SciQ measurement (docs/lora.md, "Where naive's spread comes from"): for each seed N of 0-9, with
``RELALIGN_CACHE`` at the cache seed N's committed run made and two torch threads, as those runs had,

    python benchmarks/training_noise.py params/sciq-lora.yaml --seeds N --replicates 1 --set compute.threads=null

(``compute.threads=null``: the committed seeds predate the pin, so their cache keys hold no count.)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.stats import chi2

from relalign.params import load_params
from relalign.power import (TARGET_MDE, minimum_detectable_difference, replicate_variance, seeds_needed,
                            variance_components, with_trainings)
from relalign.provenance import provenance
from relalign.rundir import default_run_dir
from relalign.stats import parse_correct

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "benchmarks" / "training_noise.json"
DOC = REPO / "docs" / "lora.md"
STEP = 1000  # replicate r of seed s trains with strong_seed s + STEP * r
TRAININGS = (1, 2, 3, 5, 10)  # trainings per method and seed, for the design table


def committed(params_file: str, seed: int, overrides: list[str]) -> dict:
    """The committed run of ``seed``: its metrics.json."""
    p = load_params(params_file, [*overrides, f"seed={seed}"])
    path = default_run_dir(p.data.dataset, p.name, seed, REPO / "results") / "metrics.json"
    if not path.is_file():
        sys.exit(f"{path.relative_to(REPO)}: no committed run of seed {seed} (replicate 0)")
    return json.loads(path.read_text())


def replicate(params_file: str, seed: int, r: int, methods: list[str], overrides: list[str], base: dict) -> dict:
    """Replicate ``r`` of ``seed``: the strong trainings of ``methods`` drawn again; accuracy on C."""
    from relalign import stages
    from relalign.context import open_run

    t0 = time.time()
    with tempfile.TemporaryDirectory() as scratch:
        run = open_run(params_file, scratch, [*overrides, f"seed={seed}", f"training.strong_seed={seed + STEP * r}"])
        labels = stages.reliability_summary(run)["weak_label_accuracy"]
        if labels != base["weak_label_accuracy"]:
            sys.exit(f"seed {seed}: weak labels {labels:.4f} right, the committed run's {base['weak_label_accuracy']:.4f}: "
                     "not the same labels (another cache, thread count or code?)")
        out = {m: stages.train_strong(run, m) for m in methods}
        run.pool.release()
    return {"seed": seed, "replicate": r, "strong_seed": seed + STEP * r, "seconds": round(time.time() - t0),
            "methods": {m: {"accuracy": o["accuracy"], "correct": o["correct"]} for m, o in out.items()}}


def analysis(entry: dict, bases: dict[int, dict]) -> dict:
    """Per method and per difference from naive: the variance between replicates of a seed (with its
    95% interval) against the committed seeds' spread; for the differences, the detectable difference
    at the study's seeds if each seed averaged T trainings, and the seeds that would detect 4 points."""
    seeds = sorted(bases)
    methods, n_compared = entry["methods"], len([m for m in bases[seeds[0]]["methods"]
                                                 if m not in ("weak", "naive", "ceiling")])

    def values(seed: int, method: str) -> list[float]:
        acc = [bases[seed]["methods"][method]["accuracy"]]
        return acc + [x["methods"][method]["accuracy"] for x in entry["replicates"] if x["seed"] == seed]

    out = {}
    for method in methods:
        for name, get in ((method, lambda s: values(s, method)),
                          (f"{method} - naive", lambda s: list(np.subtract(values(s, method), values(s, "naive"))))):
            if name == "naive - naive" or name in out:
                continue
            per_seed = [get(s) for s in seeds]
            var, df = replicate_variance(per_seed)
            lo, hi = df * var / chi2.ppf(0.975, df), df * var / chi2.ppf(0.025, df)
            spread = float(np.std([v[0] for v in per_seed], ddof=1))  # the committed runs: one training each
            row = {"training_sd": 100 * var ** 0.5, "training_sd_ci": [100 * lo ** 0.5, 100 * hi ** 0.5], "df": df,
                   "committed_sd": 100 * spread, "training_share": min(1.0, var / spread ** 2) if spread else None,
                   "per_seed": {str(s): v for s, v in zip(seeds, per_seed)}}
            if method != "naive" and name.endswith("naive"):
                v = variance_components([parse_correct(bases[s]["test_correct"][method]) for s in seeds],
                                        [parse_correct(bases[s]["test_correct"]["naive"]) for s in seeds])
                averaged = {t: with_trainings(v, var, t) for t in TRAININGS}
                row["design"] = [{"trainings": t, "seed_sd": 100 * w.seed_var ** 0.5,
                                  "mde": 100 * minimum_detectable_difference(w, n_compared),
                                  "seeds_for_4": seeds_needed(w, n_compared, TARGET_MDE / 100)}
                                 for t, w in averaged.items()]
            out[name] = row
    return out


def doc_blocks(report: dict, params: str = "params/sciq-lora.yaml") -> dict[str, str]:
    """docs/lora.md's generated blocks from ``params``'s entry: the spread of one training against
    the committed seeds' (``training-noise``) and the design that averages trainings (``training-design``)."""
    a = report[params]["analysis"]
    n_seeds = len(next(iter(a.values()))["per_seed"])
    lines = ["| accuracy on C | spread over the committed seeds, points | spread between two trainings of one seed, "
             "points [95% CI] | share of the seeds' variance |", "|---|---:|---:|---:|"]
    for name, r in a.items():
        share = "" if r["training_share"] is None else f"{r['training_share']:.0%}"
        lines.append(f"| {name.replace(' - ', ' − ')} | {r['committed_sd']:.1f} | {r['training_sd']:.1f} "
                     f"[{r['training_sd_ci'][0]:.1f}, {r['training_sd_ci'][1]:.1f}] | {share} |")
    design = ["| trainings of each method a seed | " + " | ".join(
        f"{name.replace(' - ', ' − ')}: seed spread / detectable at {n_seeds} seeds / seeds for 4 points"
        for name, r in a.items() if "design" in r) + " |", "|---:|" + "---:|" * sum("design" in r for r in a.values())]
    for i, t in enumerate(TRAININGS):
        cells = []
        for r in (r for r in a.values() if "design" in r):
            d = r["design"][i]
            need = "more than 100" if d["seeds_for_4"] is None else str(d["seeds_for_4"])
            cells.append(f"{d['seed_sd']:.1f} / {d['mde']:.1f} / {need}")
        design.append(f"| {t} | " + " | ".join(cells) + " |")
    return {"training-noise": "\n".join(lines), "training-design": "\n".join(design)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("params")
    ap.add_argument("--seeds", type=int, nargs="+", default=[])
    ap.add_argument("--replicates", type=int, default=2)
    ap.add_argument("--methods", nargs="+", default=["naive", "reweighting"])
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--analyse", action="store_true", help="only recompute the analysis of the stored replicates")
    ap.add_argument("--docs", action="store_true", help="no measuring: write the report's tables into docs/lora.md")
    ap.add_argument("--reproduce", action="store_true",
                    help="instead of replicates: train each seed's methods again with its own draw (strong_seed = seed) "
                         "and record whether every answer on C is the committed run's")
    args = ap.parse_args()
    if args.docs:
        from relalign.docblocks import filled

        DOC.write_text(filled(DOC.read_text(), doc_blocks(json.loads(OUT.read_text()), args.params)))
        return
    if "naive" not in args.methods:
        sys.exit("--methods must include naive (the differences are from it)")
    report = json.loads(OUT.read_text()) if OUT.is_file() else {}
    entry = report.setdefault(args.params, {"overrides": args.overrides, "methods": args.methods, "replicates": []})
    if (entry["overrides"], entry["methods"]) != (args.overrides, args.methods):
        sys.exit(f"{args.params} was measured with --set {entry['overrides']} and methods {entry['methods']}: "
                 "use the same, or remove its entry")
    if not args.seeds and not args.analyse:
        sys.exit("name the seeds to measure (--seeds), or --analyse the stored replicates")
    bases = {s: committed(args.params, s, args.overrides) for s in (args.seeds if not args.analyse else [])}
    if args.reproduce:
        for seed in args.seeds:
            again = replicate(args.params, seed, 0, args.methods, args.overrides, bases[seed])["methods"]
            same = {m: again[m]["correct"] == bases[seed]["test_correct"][m] for m in args.methods}
            entry.setdefault("reproduced", {})[str(seed)] = {"same_answers": same, "provenance": provenance()}
            OUT.write_text(json.dumps(report, indent=1) + "\n")
            print(f"seed {seed}, its own draw again: " + ", ".join(f"{m} {'the same' if ok else 'DIFFERENT'} answers"
                                                              for m, ok in same.items()), flush=True)
        return
    done = {(x["seed"], x["replicate"]) for x in entry["replicates"]}
    for seed in args.seeds if not args.analyse else []:
        for r in range(1, args.replicates + 1):
            if (seed, r) in done:
                continue
            print(f"seed {seed}, replicate {r} ...", flush=True)
            entry["replicates"].append(replicate(args.params, seed, r, args.methods, args.overrides, bases[seed]))
            entry["provenance"] = provenance()
            OUT.parent.mkdir(parents=True, exist_ok=True)
            OUT.write_text(json.dumps(report, indent=1) + "\n")
            x = entry["replicates"][-1]
            print(f"  {x['seconds']} s: " + ", ".join(f"{m} {v['accuracy']:.3f}" for m, v in x["methods"].items()),
                  flush=True)
    seeds = sorted({x["seed"] for x in entry["replicates"]})
    entry["analysis"] = analysis(entry, {s: bases.get(s) or committed(args.params, s, args.overrides) for s in seeds})
    OUT.write_text(json.dumps(report, indent=1) + "\n")
    for name, row in entry["analysis"].items():
        print(f"{name}: training sd {row['training_sd']:.1f} [{row['training_sd_ci'][0]:.1f}, "
              f"{row['training_sd_ci'][1]:.1f}] points (df {row['df']}), committed seeds' sd {row['committed_sd']:.1f}")
        for d in row.get("design", []):
            print(f"   {d['trainings']:>2} trainings a seed: seed sd {d['seed_sd']:.1f}, detectable {d['mde']:.1f} "
                  f"at {len(seeds)} seeds, seeds for 4 points {d['seeds_for_4']}")


if __name__ == "__main__":
    main()
