"""How a run trains a model and gets answers from it.

A :class:`Job` says what to train: ``role``'s model on a training set that a stage built
(:func:`relalign.stages.job`). :func:`trained` trains it once (:mod:`relalign.training`), and
:func:`answers` is what a trained -- or untrained -- model answers to a split's canonical prompts: the
chosen options, or the numbers its generated solutions end with. Nothing here knows how a training
set is chosen; that is the stages' part.
"""

from __future__ import annotations

from dataclasses import dataclass

from .context import Run, memo
from .params import Params
from .pool import cached_generator, cached_scorer
from .training import UNTRAINED, TrainingData, fit, learner

__all__ = ["Job", "learner_for", "strong_l2", "trained", "fingerprint_of", "decoding", "generator", "answers",
           "zero_shot_accuracy"]


@dataclass(frozen=True)
class Job:
    """``role``'s model trained as ``name`` on ``data``; for the strong model also naive's training set,
    which sets its one L2 strength (head mode) and, with ``training.equal_steps``, its steps (LoRA)."""

    role: str
    name: str
    data: TrainingData
    naive: TrainingData | None = None


def learner_for(run: Run, job: Job):
    """The learner of ``job`` (:func:`relalign.training.learner`)."""
    t, head_l2, naive_rows = run.params.training, None, None
    if job.role == "strong" and t.mode == "head" and run.params.strong.head.l2 is None:
        head_l2 = strong_l2(run, job.naive)
    if job.role == "strong" and t.mode == "lora" and t.equal_steps:
        naive_rows = len(job.naive.prompts)
    return learner(run.params, run.pool, run.where, job.role, job.name, strong_l2=head_l2, naive_rows=naive_rows)


def strong_l2(run: Run, naive: TrainingData) -> float:
    """One L2 strength for every strong-model method (head mode, ``strong.head.l2: null``), chosen by
    cross-validation on the naive training set -- B's weak labels, no ground truth -- so that methods
    differ in their training rows only, never in their regularisation. Written to trained/strong/l2.json."""
    def choose() -> float:
        from .learners import HeadLearner

        head = HeadLearner(cached_scorer(run.pool, run.where.cache_root, "strong"), run.params.head_settings("strong"),
                           run.rundir.trained("strong"))
        l2 = head.choose_l2(naive.prompts, naive.targets, naive.weights, "naive: features")
        run.rundir.write("strong_l2", {"l2": l2, "chosen_on": "naive", "grid": list(head.settings.l2_grid)})
        return l2

    return memo(run, "strong_l2", choose)


def trained(run: Run, job: Job, here: bool = False):
    """``job``'s model as a predictor (trained once; reloaded from the run directory when its
    fingerprint matches); ``here``: in this process, never through ``accelerate launch``
    (:func:`relalign.training.fit`)."""
    return fit(run.params, run.pool, run.rundir, job.role, job.name, learner_for(run, job), job.data, here=here)


def fingerprint_of(run: Run, job: Job) -> str:
    """What ``job``'s trained model depends on (:func:`relalign.training.trained_fingerprint`)."""
    from .training import trained_fingerprint

    return trained_fingerprint(run.params, run.pool, job.role, learner_for(run, job), job.data)


def decoding(params: Params, sample: int | None = None):
    """The pinned decoding of ``params.generation``: greedy, or sample number ``sample`` (seeded) for
    sampled variations."""
    from .generation import Decoding

    g = params.generation
    if sample is None:
        return Decoding(max_new_tokens=g.max_new_tokens, stop_after_final=g.stop_after_final)
    return Decoding(max_new_tokens=g.max_new_tokens, do_sample=True, temperature=g.temperature, top_p=g.top_p,
                    seed=params.seed * 1000 + sample, stop_after_final=g.stop_after_final)


def generator(run: Run, role: str, job: Job | None, sample: int | None = None):
    """Cached generation by ``role``'s base model (``job`` None) or by ``job``'s trained model, with
    :func:`decoding`."""
    def model_for():
        if job is None:
            model, tok = run.pool.model(role)
            return model, tok, lambda: None
        predictor = trained(run, job)
        return predictor.model, predictor.tokenizer, predictor.close

    return cached_generator(run.pool, run.where.cache_root, role, fingerprint_of(run, job) if job else None,
                            decoding(run.params, sample), model_for)


def answers(run: Run, role: str, job: Job | None, split: str = "C") -> list:
    """What ``role``'s model -- trained as ``job``, or untrained (None) -- answers to the canonical
    prompts of ``split``: the chosen options (their dataset order), or the numbers its solutions end with."""
    prompts = run.task.canonical_prompts(split)
    desc = f"test split {split}" + ("" if job else ", untrained")
    if run.task.kind == "open":
        return run.task.answers(generator(run, role, job)(prompts, desc))
    if job is None and run.params.training.mode == "lora" and run.params.training.lora.layers is not None:
        # partial LoRA: the untrained top layers on the bottom states the trained models reuse
        logprobs = learner(run.params, run.pool, run.where, role, UNTRAINED).untrained_logprobs(prompts, desc)
    elif job is None:  # the untrained model: its head prior (head mode) or its letter log-probabilities (LoRA)
        from .head import zero_shot_logprobs

        prior = getattr(run.params, role).head.prior if run.params.training.mode == "head" else "letter"
        logprobs = zero_shot_logprobs(cached_scorer(run.pool, run.where.cache_root, role)(prompts, desc), prior)
    else:
        predictor = trained(run, job)
        logprobs = predictor.logprobs(prompts, desc)
        predictor.close()
    return run.task.choices(prompts, logprobs).tolist()


def zero_shot_accuracy(run: Run, role: str) -> float:
    """Accuracy on C of ``role``'s model before any training."""
    return run.task.accuracy(answers(run, role, None))
