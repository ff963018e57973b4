"""The study's steps for one run: what the numbered notebooks call.

:func:`open_run` gives a :class:`Run`: the params, the run directory (:class:`~relalign.rundir.RunDir`,
which owns every file name), the task (:mod:`relalign.task`: multiple choice or free text) and the
models (:class:`~relalign.pool.ModelPool`). Each step below is a function of the run. A step computes
its result once per run object and returns it; the steps that produce a run's results write them
to the run directory (named in the table); a step that needs an earlier step's result calls that
step, or -- :func:`metrics` -- reads what the earlier notebooks wrote, and names the step when it is
missing.

=====================  =====================================  =========================  ========
step                   function                               writes                     notebook
=====================  =====================================  =========================  ========
weak supervisor        :func:`weak_supervisor`                weak_supervisor.json       01
weak labels            :func:`weak_labels`                    weak_labels.parquet        02
reliability            :func:`reliability_table`,             reliability.json           03
                       :func:`reliability_summary`
training sets          :func:`training_rows`                                             04-05
strong model           :func:`train_strong`                   methods/<method>.json      04-06
threshold sweep        :func:`threshold_sweep`                sweep.json                 04
metrics.json           :func:`metrics`                        metrics.json               06
=====================  =====================================  =========================  ========
"""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np
import pandas as pd

from . import reliability as rel
from .answering import Job, answers, learner_for, fingerprint_of, generator, trained, zero_shot_accuracy
from .cache import Cache, fingerprint
from .context import Run, memo, open_run, run_of
from .evaluation import error_auroc, method_table, score_report as _score_report
from .provenance import provenance
from .selection import SUPERVISOR, SelectionSettings, build_training_set, entropy_threshold, kept_by_entropy, sweep_name
from .training import TrainingData

__all__ = ["Run", "open_run", "run_of", "job", "training_data", "weak_supervisor", "zero_shot_accuracy", "weak_labels",
           "reliability_table", "reliability_summary", "score_report", "training_rows", "training_sets", "train_strong",
           "train_methods", "threshold_sweep", "metrics", "WEAK_LABELS_VERSION"]

WEAK_LABELS_VERSION = 2  # bump when the weak-answer table of a choice task changes


# ---------------------------------------------------------------------- what each model trains on


def training_data(run: Run, role: str, name: str) -> TrainingData:
    """What ``role`` trains ``name`` on: the weak supervisor on A's canonical prompts with the ground
    truth, the strong model on a method's rows (:func:`training_rows`)."""
    if role == "weak":
        if name != SUPERVISOR:
            raise ValueError(f"the weak model trains only the supervisor, not {name!r}")
        prompts = run.task.canonical_prompts("A")
        return TrainingData(prompts, run.task.supervisor_targets(prompts), np.ones(len(prompts)))
    rows = training_rows(run, name)
    prompts = run.task.row_prompts(rows)
    return TrainingData(prompts, run.task.row_targets(prompts, rows), rows["weight"].to_numpy(float))


def job(run: Run, role: str, name: str) -> Job:
    """What training ``role``'s ``name`` means (:class:`relalign.answering.Job`): its training set, and
    for the strong model naive's."""
    naive = training_data(run, "strong", "naive") if role == "strong" else None
    return Job(role, name, training_data(run, role, name), naive)


# ---------------------------------------------------------------------- step 1: the weak supervisor


def weak_supervisor(run: Run) -> dict:
    """Train W on split A with the ground truth; its accuracy on C. Written to weak_supervisor.json."""
    def compute() -> dict:
        pred = answers(run, "weak", job(run, "weak", SUPERVISOR))
        out = {"accuracy": run.task.accuracy(pred), "zero_shot_accuracy": zero_shot_accuracy(run, "weak"),
               "n_train": len(run.task.splits["A"]), "correct": run.task.correct_string(pred), "predictions": pred}
        run.rundir.write("weak_supervisor", out)
        return out

    return memo(run, "weak_supervisor", compute)


# ---------------------------------------------------------------------- step 2: weak labels


def weak_labels(run: Run) -> pd.DataFrame:
    """W's answer to each of the K variations of every question of B (:meth:`Task.weak_label_rows`).
    Written to weak_labels.parquet; a choice task's table is also cached across runs under the weak
    supervisor's fingerprint and the prompts."""
    return memo(run, "weak_labels", lambda: _write_weak_labels(run, _weak_label_table(run)))


def _write_weak_labels(run: Run, table: pd.DataFrame) -> pd.DataFrame:
    run.rundir.write_weak_labels(table)
    return table


def _weak_label_table(run: Run) -> pd.DataFrame:
    rows = [(q.qid, v) for q in run.task.splits["B"] for v in range(run.params.reliability.k)]
    prompts = [run.task.prompt(qid, v) for qid, v in rows]
    if run.task.kind == "open":
        return run.task.weak_label_rows(rows, _weak_solutions(run, rows, prompts))

    def compute() -> pd.DataFrame:
        predictor = trained(run, job(run, "weak", SUPERVISOR))
        logprobs = predictor.logprobs(prompts, f"weak labels, {len(prompts)} prompts")
        predictor.close()
        return run.task.weak_label_rows(rows, prompts, logprobs)

    key = fingerprint("weak_labels", WEAK_LABELS_VERSION, supervisor=fingerprint_of(run, job(run, "weak", SUPERVISOR)),
                      texts=[p.text for p in prompts])
    return Cache(run.where.cache_root).frame("weak_labels", key, compute)[0]


def _weak_solutions(run: Run, rows: list[tuple[str, int]], prompts: list) -> list[str]:
    """The weak supervisor's solutions to the rows' prompts, one generation call per decoding: every
    greedy prompt together (the K templates, or the canonical prompt), then each sampled variation."""
    by_decoding: dict[int | None, list[int]] = {}
    for i, (_, v) in enumerate(rows):
        by_decoding.setdefault(v if run.task.sampling and v > 0 else None, []).append(i)
    texts = [""] * len(rows)
    for sample, idx in by_decoding.items():
        desc = "weak labels" if sample is None else f"weak labels, sample {sample}"
        for i, text in zip(idx, generator(run, "weak", job(run, "weak", SUPERVISOR), sample)([prompts[i] for i in idx], desc)):
            texts[i] = text
    return texts


# ---------------------------------------------------------------------- step 3: reliability


def reliability_table(run: Run) -> pd.DataFrame:
    """The weak labels with per-row ``entropy``, ``reliability`` and ``n_agree`` (and the probability
    scores, for a choice task): :func:`relalign.reliability.question_table`."""
    return memo(run, "reliability_table",
                 lambda: rel.question_table(weak_labels(run), run.params.reliability.temperature))


def score_report(run: Run) -> pd.DataFrame:
    """AUROC, ECE and the median filter's precision and recall for every reliability score."""
    r = run.params.reliability
    return _score_report(reliability_table(run), r.k, run.task.n_answer_options, r.percentile)


def reliability_summary(run: Run) -> dict:
    """Weak-label accuracy, how well the paper's two scores find wrong labels, the filter's threshold
    and what it keeps, and every score's report. Written to reliability.json."""
    def compute() -> dict:
        t = reliability_table(run)
        tau = entropy_threshold(t["entropy"], run.params.reliability.percentile)
        kept = kept_by_entropy(t, tau)
        canonical = t[t["variation"] == 0]
        out = {
            "weak_label_accuracy": float(canonical["correct"].mean()),
            "entropy_auroc": error_auroc(t["correct"], t["entropy"], higher_means_reliable=False),
            "reliability_auroc": error_auroc(t["correct"], t["reliability"]),
            "threshold": tau,
            "kept_fraction": float(kept.mean()),
            "kept_accuracy": float(t.loc[kept, "correct"].mean()),
            "scores": score_report(run).to_dict(orient="index"),
        }
        run.rundir.write("reliability", out)
        return out

    return memo(run, "reliability_summary", compute)


# ---------------------------------------------------------------------- steps 4-6: the strong model


def training_rows(run: Run, method: str) -> pd.DataFrame:
    """``method``'s training rows of B (:func:`relalign.selection.build_training_set`)."""
    settings = SelectionSettings(percentile=run.params.reliability.percentile, seed=run.params.seed)
    return memo(run, ("rows", method), lambda: build_training_set(method, reliability_table(run), settings))


def training_sets(run: Run, methods: Sequence[str]) -> pd.DataFrame:
    """Size and label quality of each method's training set (one row per method)."""
    return pd.DataFrame.from_dict({m: run.task.label_quality(training_rows(run, m)) for m in methods}, orient="index")


def train_strong(run: Run, method: str) -> dict:
    """Fine-tune S on ``method``'s training set and evaluate it on C. Written to methods/<method>.json."""
    def compute() -> dict:
        rows = training_rows(run, method)
        strong = job(run, "strong", method)
        pred = answers(run, "strong", strong)
        quality = run.task.label_quality(rows)
        out = {"method": method, "accuracy": run.task.accuracy(pred), "n_train": len(rows),
               "n_questions": quality["questions"], "sum_weights": quality["sum_weights"],
               "label_accuracy": quality["label_accuracy"], "weighted_label_accuracy": quality["weighted_label_accuracy"],
               "optimizer_steps": learner_for(run, strong).steps(len(rows)),
               "correct": run.task.correct_string(pred), "predictions": pred}
        run.rundir.write_method(method, out)
        return out

    return memo(run, ("strong", method), compute)


def train_methods(run: Run, methods: Sequence[str]) -> pd.DataFrame:
    """Train S for each of ``methods`` that the params list (a method the params leave out is
    skipped, so a run never pays for one it does not report); accuracy on C and rows."""
    res = {m: train_strong(run, m) for m in methods if m in run.params.method_names()}
    return pd.DataFrame.from_dict({m: {"accuracy on C": r["accuracy"], "rows": r["n_train"]} for m, r in res.items()},
                                  orient="index")


def threshold_sweep(run: Run, fractions: Sequence[float] | None = None) -> pd.DataFrame:
    """Strong accuracy on C when trained on the most reliable fraction of B's rows (weight 1), one row
    per fraction of ``reliability.sweep``; the paper's median filter is the row ``paper`` (its own
    kept fraction; present when the params list ``filtering``). Written to sweep.json."""
    fractions = run.params.reliability.sweep if fractions is None else fractions
    recs = []
    for f in fractions:
        r = train_strong(run, sweep_name(f))
        recs.append({"fraction": f, "accuracy": r["accuracy"], "rows": r["n_train"],
                     "label_accuracy": r["label_accuracy"], "correct": r["correct"]})
    if "filtering" in run.params.method_names():
        filt = train_strong(run, "filtering")
        recs.append({"fraction": reliability_summary(run)["kept_fraction"], "accuracy": filt["accuracy"],
                     "rows": filt["n_train"], "label_accuracy": filt["label_accuracy"], "correct": filt["correct"],
                     "paper": True})
    table = pd.DataFrame.from_records(recs, columns=["fraction", "accuracy", "rows", "label_accuracy", "correct", "paper"])
    table["paper"] = table["paper"].eq(True)  # the paper's own point; the sweep's points leave it empty
    run.rundir.write("sweep", {"points": table.to_dict(orient="records")})
    return table


# ---------------------------------------------------------------------- metrics.json


def metrics(run: Run, seconds: float | None = None) -> dict:
    """Assemble and write metrics.json from what notebooks 01-05 wrote to the run directory (the
    weak supervisor, the reliability summary, every method of the params, the sweep if run).
    ``seconds`` defaults to the time since ``relalign run`` started the run (None by hand)."""
    strong_zero_shot = zero_shot_accuracy(run, "strong")  # before the clock is read: by generation it takes minutes
    status = run.rundir.status()
    if seconds is None and "started" in status:
        seconds = time.time() - status["started"]
    weak = run.rundir.read("weak_supervisor")
    relsum = run.rundir.read("reliability")
    methods = {m: run.rundir.read_method(m) for m in run.params.method_names()}
    table = method_table(methods, weak["accuracy"], weak["n_train"])
    test_correct = {m: r["correct"] for m, r in methods.items()} | {"weak": weak["correct"]}
    _add_intervals(table, test_correct, run.params.seed)
    sweep = run.rundir.read("sweep")["points"] if run.rundir.has("sweep") else []
    p = run.params
    out = {
        "dataset": p.data.dataset,
        "weak_model": p.model_spec("weak").label(),
        "strong_model": p.model_spec("strong").label(),
        "seed": p.seed,
        "n": {s: len(qs) for s, qs in sorted(run.task.splits.items())},
        "weak_label_accuracy": relsum["weak_label_accuracy"],
        "zero_shot_accuracy": {"weak": weak["zero_shot_accuracy"], "strong": strong_zero_shot},
        "reliability": {k: relsum[k] for k in ("entropy_auroc", "reliability_auroc", "kept_fraction", "kept_accuracy",
                                               "scores")},
        "methods": table,
        "test_correct": test_correct,
        "sweep": [{k: v for k, v in pt.items() if k != "correct"} for pt in sweep],
        "params": p.to_dict(),
        "provenance": provenance(seconds, at_start=status.get("code_at_start")),
    }
    run.rundir.write("metrics", out)
    return out


def _add_intervals(table: dict[str, dict], test_correct: dict[str, str], seed: int) -> None:
    """95% bootstrap intervals over C's questions (this run's one seed) for each method's accuracy and
    PGR (:func:`relalign.stats.bootstrap_methods`), added to ``table``'s entries."""
    from .stats import bootstrap_methods, parse_correct

    iv = bootstrap_methods({m: [parse_correct(c)] for m, c in test_correct.items()}, seed=seed)
    for m, entry in table.items():
        for col in ("acc_lo", "acc_hi", "pgr_lo", "pgr_hi"):
            if col in iv.columns:
                entry[col] = float(iv.loc[m, col])
