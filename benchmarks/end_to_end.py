"""End-to-end wall time and peak memory of ``relalign run`` per params file (a report, not a test).

    python benchmarks/end_to_end.py params/default.yaml params/ethics-offline.yaml ...

Each params file runs in a fresh ``relalign run`` process into a temporary results folder, with an
empty score cache (``RELALIGN_CACHE`` pointed at a temporary folder in which only the converted
models are linked from the repository's cache, so model conversion -- a one-time cost of a few
minutes -- is not counted). Wall time is the whole run (notebooks 01-06); peak memory is the
largest resident set of any of its processes (the notebook kernels), as ``relalign run`` records it
in run_status.json. Datasets on local files need RELALIGN_DATA, as for the runs themselves.

Results are merged into results/benchmarks/end_to_end.json (one entry per params file, and per
``--set`` variant of one with ``--from-runs``, so files can be measured one at a time) and printed.
Other work on the machine slows the runs: measure on an idle machine.

    python benchmarks/end_to_end.py --from-runs results/mmlu/offline ...

records instead what finished runs wrote in their run_status.json (wall time and the kernels' peak
memory), marked with the run it comes from; use it only for runs that started from an empty score
cache, and say so with ``--note`` (kept in the report as ``conditions``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from relalign.provenance import cpu_model
from relalign.rundir import STATUS
from relalign.summary import variant

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "benchmarks" / "end_to_end.json"


def _entry(m: dict, seconds: float, status: dict) -> dict:
    """What one run's report holds, from its metrics.json (``m``), wall time and run_status.json."""
    return {"dataset": m["dataset"], "n": m["n"], "weak_model": m["weak_model"], "strong_model": m["strong_model"],
            "training_mode": m["params"]["training"]["mode"], "methods_trained": len(m["methods"]) - 1,
            "sweep_points": len(m.get("sweep") or []), "seconds": round(seconds), "minutes": round(seconds / 60, 1),
            "peak_rss_gib": status.get("peak_rss_gib"), "accuracy_naive": m["methods"]["naive"]["accuracy"],
            "dtype": m["params"].get("compute", {}).get("dtype"),
            "machine": (m.get("provenance") or {}).get("machine")}  # the run's own (the report's is the last one's)


def measure(params: str, cache_root: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cache = tmp / "cache"
        cache.mkdir()
        for sub in ("models", "gguf"):  # converted models only: every score starts from nothing
            if (cache_root / sub).is_dir():
                (cache / sub).symlink_to((cache_root / sub).resolve())
        env = {**os.environ, "RELALIGN_CACHE": str(cache)}
        run_dir = tmp / "run"
        t0 = time.time()
        proc = subprocess.run([sys.executable, "-m", "relalign.cli", "run", params, "--out", str(run_dir)],
                              env=env, cwd=REPO, capture_output=True, text=True)
        seconds = time.time() - t0
        status = json.loads((run_dir / STATUS).read_text()) if (run_dir / STATUS).is_file() else {}
        if proc.returncode:
            return {"params": params, "ok": False, "seconds": round(seconds), "error": proc.stderr[-2000:]}
        m = json.loads((run_dir / "metrics.json").read_text())
        return {"params": params, "ok": True, **_entry(m, seconds, status)}


def from_run(run_dir: Path, note: str | None = None) -> dict:
    status = json.loads((run_dir / STATUS).read_text())
    if status.get("resumed"):
        sys.exit(f"{run_dir} was resumed (relalign run --resume): its seconds are its last attempt's only")
    m = json.loads((run_dir / "metrics.json").read_text())
    return {"params": status["params_file"], "ok": status["status"] == "complete", **_entry(m, status["seconds"], status),
            "source": f"{run_dir.relative_to(REPO)}/{STATUS}",
            "overrides": status.get("overrides", []), "seed": m["params"]["seed"],
            "measured": time.strftime("%Y-%m-%d", time.gmtime(status["started"])),
            **({"conditions": note} if note else {})}


def report_key(entry: dict) -> str:
    """An entry's key in the report: its params file, followed by its ``--set`` variant
    (:func:`relalign.summary.variant`, seeds left out) where it has one, so that timing a variant
    does not replace its params file's own time."""
    v = variant(entry.get("overrides") or [])
    return entry["params"] if not v else f"{entry['params']} [{v}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("params", nargs="*")
    ap.add_argument("--cache", default=str(REPO / ".cache"), help="the cache whose converted models are reused")
    ap.add_argument("--from-runs", nargs="+", default=[], metavar="RUN_DIR",
                    help="record finished runs' own run_status.json instead of running")
    ap.add_argument("--note", help="with --from-runs: how those runs were made (cache, other load), kept in the report")
    args = ap.parse_args()
    report = json.loads(OUT.read_text()) if OUT.is_file() else {"runs": {}}
    for r in report["runs"].values():  # entries from before each named its own machine: the report's then
        r.setdefault("machine", report.get("machine"))
    for run_dir in args.from_runs:
        r = from_run(Path(run_dir).resolve(), args.note)
        report["runs"][report_key(r)] = r
        print(json.dumps(r, indent=2), flush=True)
    for params in args.params:
        print(f"running {params} from an empty score cache ...", flush=True)
        r = measure(params, Path(args.cache))
        r["measured"] = time.strftime("%Y-%m-%d")
        report["runs"][params] = r
        print(json.dumps(r, indent=2), flush=True)
    report["machine"] = {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version()}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {OUT.relative_to(REPO)}")


if __name__ == "__main__":
    main()
