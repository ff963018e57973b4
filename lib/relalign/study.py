"""The study, step by step, for one params file: what the numbered notebooks call.

A :class:`Study` holds the params, the run directory (where each step leaves its outputs for the
next notebook) and the cache (model scores and weak answers, shared between runs). Every step
is deterministic given the params and reuses what an earlier run or notebook computed.

=====================  =====================================================  ==========
step                   method                                                 notebook
=====================  =====================================================  ==========
splits A / B / C       :attr:`Study.splits`                                   01
weak supervisor        :meth:`Study.weak_supervisor`                          01
weak labels            :meth:`Study.weak_labels`                              02
reliability            :meth:`Study.reliability_table`                        03
strong model           :meth:`Study.train_strong`                             04-06
metrics.json           :meth:`Study.metrics`                                  06
=====================  =====================================================  ==========
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import time
from functools import cached_property
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from . import reliability as rel
from .cache import Cache, digest
from .data import drop_long, load_pools, make_splits
from .evaluation import accuracy, error_auroc, label_quality, method_table, score_report
from .params import REPO_ROOT, Params, load_params
from .prompts import LETTERS, Prompt, Question
from .provenance import provenance
from .runner import STATUS
from .selection import (SelectionSettings, build_training_set, entropy_threshold, kept_by_entropy, method_spec,
                        sweep_name)

PROMPT_FORMAT = 1  # bump when prompts.render changes, so cached scores are not reused


def default_run_dir(params: Params, results: Path | None = None) -> Path:
    """``<results>/<dataset>/<name>`` (``results/`` of the repository by default), and
    ``<name>-seed<N>`` for another seed than 0: the runs of one params file over seeds lie side by side."""
    name = params.name if params.seed == 0 else f"{params.name}-seed{params.seed}"
    return (REPO_ROOT / "results" if results is None else Path(results)) / params.data.dataset / name


class Study:
    """The steps of the study. For an adapter of kind "open" (free-text answers, GSM8K) the
    object is an :class:`~relalign.study_open.OpenStudy`, which answers by generation."""

    def __new__(cls, params: Params, run_dir: str | Path):
        if cls is Study and params.adapter().kind == "open":
            from .study_open import OpenStudy

            return super().__new__(OpenStudy)
        return super().__new__(cls)

    def __init__(self, params: Params, run_dir: str | Path):
        self.params = params
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.cache = Cache(params.resolved_cache_dir())
        self.adapter = params.adapter()
        self._models: dict[str, tuple] = {}
        self._scorers: dict[str, object] = {}

    @classmethod
    def open(cls, params_file: str | Path, run_dir: str | Path | None = None, overrides: Sequence[str] = ()) -> "Study":
        """The study of ``params_file``. Without ``run_dir`` (a notebook opened by hand), outputs go to
        ``<cache>/notebooks/<dataset>/<name>`` so that interactive runs never touch ``results/``."""
        params = load_params(params_file, overrides)
        if run_dir is None:
            run_dir = params.resolved_cache_dir() / "notebooks" / params.data.dataset / params.name
        return cls(params, run_dir)

    # ------------------------------------------------------------------ data and prompts

    @cached_property
    def splits(self) -> dict[str, list[Question]]:
        specs = self.params.split_specs()
        pools = load_pools(self.adapter, self.params.data.source,
                           sorted({s.pool for s in specs.values()}), self.params.data_path())
        return make_splits(drop_long(pools, self.params.data.max_chars), specs, self.params.seed)

    @cached_property
    def questions(self) -> dict[str, Question]:
        return {q.qid: q for qs in self.splits.values() for q in qs}

    @property
    def n_options(self) -> int:
        return len(self.splits["A"][0].choices)

    @cached_property
    def option_names(self) -> list[str]:
        """How figures name option i: its text where every question has the same options (a
        binary task's two words; per-row templates joined, "acceptable/right"), else its letter."""
        qs = [q for split in self.splits.values() for q in split]
        if all(q.style == "words" for q in qs):
            return ["/".join(dict.fromkeys(q.choices[i] for q in qs)) for i in range(self.n_options)]
        return list(LETTERS[: self.n_options])

    def canonical_prompts(self, split: str) -> list[Prompt]:
        return [self.adapter.render(q) for q in self.splits[split]]

    def right_answer(self, question: Question) -> str:
        """The ground truth as a reader wants to see it: the right option's text, or the solution."""
        return question.solution if question.style == "open" else question.choices[question.answer]

    def describe_variation(self, qid: str, variation: int) -> str:
        """One line saying what variation ``variation`` of a question changes."""
        pr = self.prompt(qid, variation)
        return f"order {pr.order}:  " + " | ".join(pr.answer_text(j)[1:] for j in range(len(pr.listed)))

    @cached_property
    def variation_orders(self) -> dict[str, list[tuple[int, ...]]]:
        k, seed = self.params.reliability.k, self.params.seed
        return {q.qid: self.adapter.variations(q, k, seed) for q in self.splits["B"]}

    def prompt(self, qid: str, variation: int) -> Prompt:
        return self.adapter.render(self.questions[qid], self.variation_orders[qid][variation] if variation else None)

    # ------------------------------------------------------------------ models and learners

    def model_id(self, role: str) -> dict:
        """What a cached score, generation or trained adapter of ``role``'s model depends on: the
        model and the number format it is loaded in (bf16 and fp32 write different answers)."""
        from .models import resolve_dtype

        s = self.params.scoring
        return {**self.params.model_spec(role).describe(), "dtype": resolve_dtype(s.dtype, s.device)}

    def model(self, role: str):
        """(model, tokenizer) for ``weak`` or ``strong``, loaded on first use."""
        if role not in self._models:
            from .models import load_model

            self.release_models()  # one model in memory at a time
            s = self.params.scoring
            self._models[role] = load_model(self.params.model_spec(role), self.params.resolved_cache_dir(),
                                            dtype=s.dtype, device=s.device, device_map=s.device_map)
        return self._models[role]

    def release_models(self) -> None:
        self._models.clear()
        import gc

        gc.collect()

    def scorer(self, role: str):
        """Batched option scoring with ``role``'s frozen model, cached per prompt: a prompt is scored
        once, whatever set of prompts it is asked in."""
        if role in self._scorers:
            return self._scorers[role]
        from .cache import RowStore

        store = RowStore(self.cache.root / "scores" / digest({"model": self.model_id(role), "format": PROMPT_FORMAT})[:32])

        def score(prompts: Sequence[Prompt], desc: str):
            from .scoring import ScoredPrompts, score_prompts

            def compute(positions: list[int]) -> dict:
                model, tok = self.model(role)
                return score_prompts(model, tok, [prompts[i] for i in positions],
                                     max_tokens_per_batch=self.params.scoring.max_tokens_per_batch,
                                     shared_prefix=self.params.scoring.shared_prefix,
                                     progress=f"{role} model: {desc}").as_dict()

            keys = [digest([p.text, p.option_spans]) for p in prompts]
            return ScoredPrompts.from_dict(store.get(keys, compute))

        self._scorers[role] = score
        return score

    def learner(self, role: str, name: str | None = None):
        """The learner that trains ``role``'s ``name``: the params' settings, with the auxiliary
        confidence loss for a method that asks for it and, for LoRA with ``training.equal_steps``,
        naive's number of optimiser steps."""
        out = self.run_dir / "trained" / role
        t = self.params.training
        aux = role == "strong" and name is not None and method_spec(name).aux_loss
        if t.mode == "head":
            from .learners import HeadLearner

            settings = dataclasses.replace(self.params.head_settings(role), aux_coef=t.aux_coef if aux else 0.0)
            if role == "strong" and settings.l2 is None:
                settings = dataclasses.replace(settings, l2=self.strong_l2)
            return HeadLearner(self.scorer(role), settings, out)
        from .learners import LoraLearner, lora_steps

        lora = dataclasses.replace(t.lora, **(dict(aux_coef=t.aux_coef, aux_warmup=t.aux_warmup) if aux else {}))
        if role == "strong" and t.equal_steps and name is not None and lora.max_steps <= 0:
            lora = dataclasses.replace(lora, max_steps=lora_steps(len(self.training_rows("naive")), lora))
        return LoraLearner(lambda: self.model(role), lora, self.params.seed, out,
                           self.params.scoring.max_tokens_per_batch,
                           base_name=self.params.model_spec(role).reference())

    @cached_property
    def strong_l2(self) -> float:
        """One L2 strength for every strong-model method (head mode, ``strong.head.l2: null``),
        chosen by cross-validation on the naive training set -- B's weak labels, no ground truth --
        so that methods differ in their training rows only, never in their regularisation."""
        from .learners import HeadLearner

        prompts, targets, weights = self.training_data("strong", "naive")
        learner = HeadLearner(self.scorer("strong"), self.params.head_settings("strong"), self.run_dir)
        l2 = learner.choose_l2(prompts, targets, weights, "naive: features")
        self._write_json("trained/strong/l2.json", {"l2": l2, "chosen_on": "naive", "grid": list(learner.settings.l2_grid)})
        return l2

    def training_data(self, role: str, name: str):
        """(prompts, listing-position targets, weights) that ``role`` trains ``name`` on: the weak
        supervisor on A's canonical prompts with the ground truth, the strong model on a method's rows."""
        if role == "weak":
            if name != "supervisor":
                raise ValueError(f"the weak model trains only the supervisor, not {name!r}")
            prompts = self.canonical_prompts("A")
            targets = np.array([p.position_of(q.answer) for p, q in zip(prompts, self.splits["A"])])
            return prompts, targets, np.ones(len(prompts))
        rows = self.training_rows(name)
        views = self.params.training.views
        prompts = [self.prompt(q, v if views == "variations" else 0) for q, v in zip(rows["qid"], rows["variation"])]
        targets = np.array([p.position_of(int(t)) for p, t in zip(prompts, rows["target"])])
        return prompts, targets, rows["weight"].to_numpy(float)

    def fingerprint(self, role: str, name: str) -> str:
        """What a trained head or adapter depends on: model, learner settings, seed and training rows."""
        prompts, targets, weights = self.training_data(role, name)
        return digest({"model": self.model_id(role), "learner": self.learner(role, name).describe(), "seed": self.params.seed,
                       "texts": [p.text for p in prompts], "targets": targets.tolist(),
                       "weights": np.round(weights, 12).tolist()})

    def train(self, role: str, name: str):
        """Train (or reload) ``role``'s ``name`` in this process; returns its predictor."""
        prompts, targets, weights = self.training_data(role, name)
        return self.learner(role, name).fit(name, prompts, targets, weights, self.fingerprint(role, name))

    def _fit(self, role: str, name: str):
        """A predictor for ``role``'s ``name``, trained here or -- LoRA with
        ``training.lora.num_processes`` > 1 -- by ``accelerate launch`` in a subprocess, whose saved
        adapter is then loaded (the fingerprint tells that it is the one asked for)."""
        lora = self.params.training.lora
        if self.params.training.mode == "lora" and lora.num_processes > 1:
            from .learners import is_trained

            fp = self.fingerprint(role, name)
            folder = self.run_dir / "trained" / role / name
            if not is_trained(folder, fp):
                self.release_models()
                launch_training(self, role, name)
            if not is_trained(folder, fp):
                raise RuntimeError(f"accelerate launch finished without saving {folder}")
        return self.train(role, name)

    # ------------------------------------------------------------------ step 1: weak supervisor

    def test_predictions(self, role: str, name: str) -> tuple[float, list]:
        """(accuracy on C, predictions) of ``role``'s model trained as ``name``: the chosen option
        of each question of C."""
        predictor = self._fit(role, name)
        test = self.canonical_prompts("C")
        pred = self._choices(test, predictor.logprobs(test, "test split C"))
        predictor.close()
        return accuracy(pred, [q.answer for q in self.splits["C"]]), pred.tolist()

    def weak_supervisor(self) -> dict:
        """Train W on split A with ground truth; its accuracy on C. Saved to ``weak_supervisor.json``."""
        acc, pred = self.test_predictions("weak", "supervisor")
        out = {"accuracy": acc, "zero_shot_accuracy": self.zero_shot_accuracy("weak"),
               "n_train": len(self.splits["A"]), "correct": self.correct_string(pred), "predictions": pred}
        self._write_json("weak_supervisor.json", out)
        return out

    def zero_shot_accuracy(self, role: str) -> float:
        """Accuracy on C of ``role``'s untrained model: its head prior (head mode) or its letter
        log-probabilities (lora mode)."""
        from .head import zero_shot_logprobs

        test = self.canonical_prompts("C")
        prior = getattr(self.params, role).head.prior if self.params.training.mode == "head" else "letter"
        lp = zero_shot_logprobs(self.scorer(role)(test, "test split C"), prior)
        return accuracy(self._choices(test, lp), [q.answer for q in self.splits["C"]])

    @staticmethod
    def _choices(prompts: Sequence[Prompt], logprobs: np.ndarray) -> np.ndarray:
        """Predicted choice index (dataset order) from log-probabilities over listing positions."""
        pos = logprobs.argmax(1)
        return np.array([p.order[j] for p, j in zip(prompts, pos)])

    # ------------------------------------------------------------------ step 2: weak labels

    def weak_labels(self) -> pd.DataFrame:
        """W's answer to each of the K variations of every question of B, with its probabilities.

        One row per (question, variation): ``answer`` (the option's text: answers to different
        permutations are compared by text), ``weak_target`` / ``gold_target`` (choice indices in the
        dataset's order), ``correct``, ``confidence`` and ``probs`` (over choices, dataset order).
        Cached under a hash of the weak model, its training and the prompts; also saved to
        ``weak_labels.parquet`` in the run directory.
        """
        rows = [(q.qid, v) for q in self.splits["B"] for v in range(self.params.reliability.k)]
        prompts = [self.prompt(qid, v) for qid, v in rows]
        a_prompts = self.canonical_prompts("A")
        key = digest({"model": self.model_id("weak"), "mode": self.params.training.mode,
                      "head": self.params.head_settings("weak").__dict__, "lora": self.params.training.lora.__dict__,
                      "format": PROMPT_FORMAT, "train": [p.text for p in a_prompts], "seed": self.params.seed,
                      "texts": [p.text for p in prompts]})

        def compute() -> pd.DataFrame:
            predictor = self._fit("weak", "supervisor")
            lp = predictor.logprobs(prompts, f"weak labels, {len(prompts)} prompts")
            predictor.close()
            recs = []
            for (qid, v), p, row in zip(rows, prompts, lp):
                q = self.questions[qid]
                probs = np.zeros(len(q.choices))
                probs[list(p.order)] = np.exp(row)
                choice = int(p.order[int(row.argmax())])
                recs.append({"qid": qid, "variation": v, "order": list(p.order), "answer": q.choices[choice],
                             "weak_target": choice, "gold_target": q.answer, "correct": choice == q.answer,
                             "confidence": float(probs.max()), "probs": probs.tolist()})
            return pd.DataFrame.from_records(recs)

        table, _ = self.cache.frame("weak_labels", key, compute)
        table.to_parquet(self.run_dir / "weak_labels.parquet", index=False)
        return table

    # ------------------------------------------------------------------ step 3: reliability

    def reliability_table(self) -> pd.DataFrame:
        """Weak labels with per-row ``entropy``, ``reliability`` and ``n_agree``."""
        return rel.question_table(self.weak_labels(), self.params.reliability.temperature)

    def reliability_summary(self, table: pd.DataFrame | None = None) -> dict:
        t = self.reliability_table() if table is None else table
        tau = entropy_threshold(t["entropy"], self.params.reliability.percentile)
        kept = kept_by_entropy(t, tau)
        canonical = t[t["variation"] == 0]
        out = {
            "weak_label_accuracy": float(canonical["correct"].mean()),
            "entropy_auroc": error_auroc(t["correct"], t["entropy"], higher_means_reliable=False),
            "reliability_auroc": error_auroc(t["correct"], t["reliability"]),
            "threshold": tau,
            "kept_fraction": float(kept.mean()),
            "kept_accuracy": float(t.loc[kept, "correct"].mean()),
            "scores": self.score_report(t).to_dict(orient="index"),
        }
        self._write_json("reliability.json", out)
        return out

    def score_report(self, table: pd.DataFrame | None = None) -> pd.DataFrame:
        """AUROC, ECE and the median filter's precision and recall for every reliability score
        (:func:`evaluation.score_report`)."""
        t = self.reliability_table() if table is None else table
        return score_report(t, self.params.reliability.k, self.n_answer_options, self.params.reliability.percentile)

    @property
    def n_answer_options(self) -> int | None:
        """How many answers a question can get: its options (None for free-text answers)."""
        return self.n_options

    # ------------------------------------------------------------------ steps 4-6: strong model

    def training_rows(self, method: str) -> pd.DataFrame:
        settings = SelectionSettings(percentile=self.params.reliability.percentile, seed=self.params.seed)
        return build_training_set(method, self.reliability_table(), settings)

    def train_strong(self, method: str) -> dict:
        """Fine-tune S on ``method``'s training set, evaluate on C; saved to ``methods/<method>.json``.

        With ``training.views: canonical`` every row is shown with its question's canonical prompt
        (its label found by text), so the K rows of a question differ only in label and weight.
        """
        rows = self.training_rows(method)
        acc, pred = self.test_predictions("strong", method)
        quality = self.label_quality(rows)
        out = {"method": method, "accuracy": acc, "n_train": len(rows),
               "n_questions": quality["questions"], "sum_weights": quality["sum_weights"],
               "label_accuracy": quality["label_accuracy"],
               "weighted_label_accuracy": quality["weighted_label_accuracy"],
               "optimizer_steps": self.learner("strong", method).steps(len(rows)),
               "correct": self.correct_string(pred), "predictions": pred}
        self._write_json(f"methods/{method}.json", out)
        return out

    def correct_string(self, predictions: Sequence) -> str:
        """Whether each prediction on C is right, as a string of 0 and 1 (for bootstrap intervals)."""
        gold = [self.right_prediction(q) for q in self.splits["C"]]
        return "".join("1" if p == g else "0" for p, g in zip(predictions, gold))

    def right_prediction(self, question: Question):
        """What a right prediction on ``question`` equals (its answer index; the number for open tasks)."""
        return question.answer

    def threshold_sweep(self, fractions: Sequence[float] | None = None) -> pd.DataFrame:
        """Strong accuracy on C when trained on the most reliable fraction of B's rows (weight 1),
        one row per fraction of ``reliability.sweep``; the paper's median filter is the row
        ``paper`` (its own kept fraction; present when the params list ``filtering``). Saved to
        ``sweep.json``."""
        fractions = self.params.reliability.sweep if fractions is None else fractions
        recs = []
        for f in fractions:
            r = self.train_strong(sweep_name(f))
            recs.append({"fraction": f, "accuracy": r["accuracy"], "rows": r["n_train"],
                         "label_accuracy": r["label_accuracy"], "correct": r["correct"]})
        if "filtering" in self.params.methods:
            filt = self.train_strong("filtering")
            paper = self.reliability_summary()["kept_fraction"]
            recs.append({"fraction": paper, "accuracy": filt["accuracy"], "rows": filt["n_train"],
                         "label_accuracy": filt["label_accuracy"], "correct": filt["correct"], "paper": True})
        table = pd.DataFrame.from_records(recs, columns=["fraction", "accuracy", "rows", "label_accuracy", "correct", "paper"])
        table["paper"] = table["paper"].eq(True)  # the paper's own point; the sweep's points leave it empty
        self._write_json("sweep.json", {"points": table.to_dict(orient="records")})
        return table

    def label_quality(self, rows: pd.DataFrame) -> dict:
        """Size and label accuracy of a set of training rows of B (:func:`evaluation.label_quality`)."""
        return label_quality(rows, pd.Series({q.qid: q.answer for q in self.splits["B"]}))

    def training_sets(self, methods: Sequence[str]) -> pd.DataFrame:
        """Size and label quality of each method's training set (one row per method)."""
        return pd.DataFrame.from_dict({m: self.label_quality(self.training_rows(m)) for m in methods}, orient="index")

    def train_methods(self, methods: Sequence[str]) -> pd.DataFrame:
        """Train S for each of ``methods`` that the params list (``methods:``; a method the params
        leave out is skipped, so a run never pays for one it does not report), reusing what is
        already trained; accuracy on C and rows."""
        res = {m: self.train_strong(m) for m in methods if m in self.params.methods}
        return pd.DataFrame.from_dict({m: {"accuracy on C": r["accuracy"], "rows": r["n_train"]} for m, r in res.items()},
                                      orient="index")

    def method_results(self) -> dict[str, dict]:
        """Every method trained so far in this run directory, in the params' order."""
        out = {}
        for m in self.params.methods:
            f = self.run_dir / "methods" / f"{m}.json"
            if f.is_file():
                out[m] = json.loads(f.read_text())
        return out

    # ------------------------------------------------------------------ metrics.json

    def metrics(self, seconds: float | None = None) -> dict:
        """Assemble and write ``metrics.json``. ``seconds`` defaults to the time since ``relalign run``
        started this run directory (None for a notebook run by hand)."""
        strong_zero_shot = self.zero_shot_accuracy("strong")  # before the clock is read: by generation it takes minutes
        status = json.loads((self.run_dir / STATUS).read_text()) if (self.run_dir / STATUS).is_file() else {}
        if seconds is None and "started" in status:
            seconds = time.time() - status["started"]
        weak = json.loads((self.run_dir / "weak_supervisor.json").read_text())
        relsum = json.loads((self.run_dir / "reliability.json").read_text())
        methods = self.method_results()
        missing = [m for m in self.params.methods if m not in methods]
        if missing:
            raise RuntimeError(f"methods not trained yet in {self.run_dir}: {', '.join(missing)}")
        table = method_table(methods, weak["accuracy"], weak["n_train"])
        test_correct = {m: r["correct"] for m, r in methods.items()} | {"weak": weak["correct"]}
        self._add_intervals(table, test_correct)
        out = {
            "dataset": self.params.data.dataset,
            "weak_model": self.params.model_spec("weak").label(),
            "strong_model": self.params.model_spec("strong").label(),
            "seed": self.params.seed,
            "n": {s: len(qs) for s, qs in sorted(self.splits.items())},
            "weak_label_accuracy": relsum["weak_label_accuracy"],
            "zero_shot_accuracy": {"weak": weak["zero_shot_accuracy"], "strong": strong_zero_shot},
            "reliability": {k: relsum[k] for k in ("entropy_auroc", "reliability_auroc", "kept_fraction", "kept_accuracy",
                                                   "scores")},
            "methods": table,
            "test_correct": test_correct,
            "sweep": self._sweep_points(),
            "params": self.params.to_dict(),
            "provenance": provenance(seconds, at_start=status.get("code_at_start")),
        }
        self._write_json("metrics.json", out)
        return out

    def _add_intervals(self, table: dict[str, dict], test_correct: dict[str, str]) -> None:
        """95% bootstrap intervals over C's questions (this run's one seed) for each method's
        accuracy and PGR (:func:`relalign.stats.bootstrap_methods`), added to ``table``'s entries."""
        from .stats import bootstrap_methods, parse_correct

        iv = bootstrap_methods({m: [parse_correct(c)] for m, c in test_correct.items()}, seed=self.params.seed)
        for m, entry in table.items():
            for col in ("acc_lo", "acc_hi", "pgr_lo", "pgr_hi"):
                if col in iv.columns:
                    entry[col] = float(iv.loc[m, col])

    def _sweep_points(self) -> list[dict]:
        f = self.run_dir / "sweep.json"
        if not f.is_file():
            return []
        return [{k: v for k, v in pt.items() if k != "correct"} for pt in json.loads(f.read_text())["points"]]

    def shown_path(self, path: Path) -> str:
        """``path`` relative to the repository when inside it (for printing in notebooks)."""
        try:
            return str(Path(path).resolve().relative_to(REPO_ROOT))
        except ValueError:
            return str(path)

    def _write_json(self, rel_path: str, obj: dict) -> None:
        path = self.run_dir / rel_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(obj, indent=2, allow_nan=True) + "\n")


def launch_command(study: Study, role: str, name: str) -> list[str]:
    """``accelerate launch`` of ``relalign train`` for one LoRA training run on several processes."""
    import sys

    lora = study.params.training.lora
    params_file = study.run_dir / "params.yaml"
    if not params_file.is_file():
        import yaml

        params_file.write_text(yaml.safe_dump(study.params.to_dict(), sort_keys=False))
    return [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(lora.num_processes),
            *lora.launch_args, "-m", "relalign.cli", "train", str(params_file), "--run-dir", str(study.run_dir),
            "--role", role, "--name", name]


def launch_training(study: Study, role: str, name: str) -> None:
    """Run :func:`launch_command` and wait; its output streams through (a notebook shows it)."""
    cmd = launch_command(study, role, name)
    print("launching:", " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, text=True)
    if proc.returncode:
        raise RuntimeError(f"accelerate launch exited with status {proc.returncode}: {' '.join(cmd)}")
