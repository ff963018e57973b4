"""The two training modes behind one interface.

A learner is given training rows -- prompts, the listing position of each row's label and a
weight per row -- and returns a :class:`Predictor` that gives, for any prompts, the
log-probabilities of their listed options ``[n, m]``. What it trained is saved under
``out_dir/<name>`` with a fingerprint of its training data and settings, so a re-run (or the
next notebook) reloads it instead of training again. The study never asks which mode it runs:

* :class:`HeadLearner` (``training.mode: head``): frozen model, features from one scoring pass
  (cached), an :class:`~relalign.head.OptionHead` trained on them;
* :class:`LoraLearner` (``training.mode: lora``): LoRA fine-tuning with
  :class:`~relalign.lora.WeightedTrainer`; answers are the fine-tuned model's letter
  log-probabilities. With ``training.lora.layers: N`` the adapters sit on the top N layers only and
  training and letter scoring run those layers alone on cached states of the layers below
  (:mod:`relalign.partial`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import sys
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np
import torch

from .distributed import is_main_process
from .head import HeadSettings, OptionHead, fit_head, head_logprobs, select_l2
from .prompts import Prompt
from .scoring import ScoredPrompts, score_prompts

Scorer = Callable[[Sequence[Prompt], str], ScoredPrompts]
FINGERPRINT = "fingerprint.txt"


def _log_softmax(x: np.ndarray) -> np.ndarray:
    return x - np.logaddexp.reduce(x, axis=1, keepdims=True)


class Predictor(Protocol):
    def logprobs(self, prompts: Sequence[Prompt], desc: str = "") -> np.ndarray: ...

    def close(self) -> None: ...


def is_trained(folder: Path, fingerprint: str) -> bool:
    """Whether ``folder`` holds what was trained for ``fingerprint`` (written last, after the model)."""
    f = folder / FINGERPRINT
    return f.is_file() and f.read_text().strip() == fingerprint


ADAPTER_SUMS = "adapter-sha256.json"  # beside a saved LoRA adapter: the sha256 of each of its files


def record_adapter(folder: Path) -> None:
    """Write the sha256 of each file of ``folder/adapter`` (before the fingerprint, which says done)."""
    from .conversion import sha256_file

    files = {f.name: sha256_file(f) for f in sorted((folder / "adapter").iterdir()) if f.is_file()}
    (folder / ADAPTER_SUMS).write_text(json.dumps(files))


def adapter_is_intact(folder: Path) -> bool:
    """Whether every file of the saved adapter still has its recorded checksum; a missing or damaged
    one is named on stderr (the caller trains the adapter again, never loads it)."""
    from .conversion import sha256_file

    sums = folder / ADAPTER_SUMS
    files = json.loads(sums.read_text()) if sums.is_file() else {}
    if not files:
        print(f"relalign: {folder / 'adapter'} has no recorded checksums; training it again", file=sys.stderr, flush=True)
        return False
    for name, want in files.items():
        path = folder / "adapter" / name
        if not path.is_file() or sha256_file(path) != want:
            print(f"relalign: {path} is missing or damaged (checksum differs); training the adapter again",
                  file=sys.stderr, flush=True)
            return False
    return True


class HeadPredictor:
    def __init__(self, head: OptionHead, scorer: Scorer):
        self.head, self.scorer = head, scorer

    def logprobs(self, prompts, desc="predict"):
        return head_logprobs(self.head, self.scorer(prompts, desc))

    def close(self):
        pass


class HeadLearner:
    """A trainable option head on a frozen model's cached features."""

    def __init__(self, scorer: Scorer, settings: HeadSettings, out_dir: Path):
        self.scorer = scorer
        self.settings = settings
        self.out_dir = Path(out_dir)

    def describe(self) -> dict:
        return {"mode": "head", "solver": "lbfgs-float64", **dataclasses.asdict(self.settings)}

    def steps(self, n_rows: int) -> None:
        """Optimiser steps of a fit: none to count -- every head is solved to its unique optimum."""
        return None

    @staticmethod
    def _merge(prompts, targets, weights):
        """Rows that share a prompt (the K rows of a question under views: canonical) merged into one
        prompt with summed target weights: the same loss, each prompt scored and used once."""
        index: dict[str, int] = {}
        unique: list[Prompt] = []
        for p in prompts:
            if p.text not in index:
                index[p.text] = len(unique)
                unique.append(p)
        t = np.zeros((len(unique), len(prompts[0].option_spans)))
        counts = np.zeros(len(unique))
        for p, y, w in zip(prompts, targets, weights):
            t[index[p.text], int(y)] += w
            counts[index[p.text]] += 1
        return unique, t, counts, np.array([p.qid for p in unique])

    def choose_l2(self, prompts, targets, weights, desc: str) -> float:
        """The L2 strength that cross-validation on these rows prefers (see :func:`select_l2`)."""
        unique, t, counts, groups = self._merge(prompts, targets, weights)
        return select_l2(self.scorer(unique, desc), t, counts, groups, self.settings)

    def fit(self, name, prompts, targets, weights, fingerprint: str) -> HeadPredictor:
        folder = self.out_dir / name
        if is_trained(folder, fingerprint):
            return self.load(name)
        unique, t, counts, groups = self._merge(prompts, targets, weights)
        features = self.scorer(unique, f"{name}: features")
        head = fit_head(features, t, settings=self.settings, counts=counts, groups=groups)
        folder.mkdir(parents=True, exist_ok=True)
        head.save(folder / "head.npz")
        (folder / "head.json").write_text(json.dumps({"l2": head.l2, "rows": len(prompts), "prompts": len(unique),
                                                      "iterations": head.iterations}))
        (folder / FINGERPRINT).write_text(fingerprint)
        return HeadPredictor(head, self.scorer)

    def load(self, name) -> HeadPredictor:
        return HeadPredictor(OptionHead.load(self.out_dir / name / "head.npz"), self.scorer)


def lora_steps(n_rows: int, lora) -> int:
    """Optimiser steps HF Trainer takes on ``n_rows`` rows: ``lora.max_steps`` where set, else
    ceil(epochs x batches per epoch), a batch being ``lora.batch_size`` rows (the last one shorter)."""
    if lora.max_steps > 0:
        return lora.max_steps
    return max(1, math.ceil(lora.epochs * math.ceil(n_rows / lora.batch_size)))


class LoraPredictor:
    """A fine-tuned model's answers: its letter log-probabilities, from the full model or -- with
    ``partial`` (:class:`~relalign.partial.PartialLora`) -- from the top layers on cached states.
    ``model`` is the whole peft model either way (generation uses it)."""

    def __init__(self, model, tokenizer, batch_tokens: int, partial=None):
        self.model, self.tokenizer, self.batch_tokens = model, tokenizer, batch_tokens
        self.partial = partial

    def logprobs(self, prompts, desc="predict"):
        if self.partial is not None:
            return _log_softmax(self.partial.letter_logprobs(self.model, self.tokenizer, prompts, desc))
        sp = score_prompts(self.model, self.tokenizer, prompts, keep_hidden=False, option_logprobs=False,
                           max_tokens_per_batch=self.batch_tokens, shared_prefix=True, progress=desc)
        return _log_softmax(sp.letter_logprob)

    def close(self):
        self.model.unload()  # give the base model back without this adapter's layers


class LoraLearner:
    """LoRA fine-tuning of a fresh adapter per training set on a shared base model.

    ``lora`` is ``training.lora`` of params. ``lora.layers`` = N (else None): adapters on the top N
    decoder layers only, trained and scored on bottom states cached under ``states_dir`` (one folder
    per model; by default ``out_dir/bottom_states``), see :mod:`relalign.partial`. ``aux_coef`` /
    ``aux_warmup``: the auxiliary confidence loss (method aux_confidence), 0: off."""

    def __init__(self, load_model: Callable[[], tuple], lora, seed: int, out_dir: Path, batch_tokens: int = 2048,
                 callbacks: list | None = None, base_name: str | None = None, states_dir: Path | None = None,
                 aux_coef: float = 0.0, aux_warmup: float = 0.2, **trainer_overrides):
        self.load_model = load_model
        self.aux_coef, self.aux_warmup = aux_coef, aux_warmup
        self.base_name = base_name  # the base model's name in saved adapter configs (ModelSpec.reference)
        self.lora = lora
        self.seed = seed
        self.out_dir = Path(out_dir)
        self.batch_tokens = batch_tokens
        self.callbacks = callbacks  # HF TrainerCallbacks (progress, early stopping, tests)
        self.trainer_overrides = trainer_overrides  # extra TrainingArguments, e.g. save_steps
        self.partial = None
        if lora.layers is not None:
            from .partial import PartialLora

            self.partial = PartialLora(lora.layers, Path(states_dir or self.out_dir / "bottom_states"), batch_tokens)

    def steps(self, n_rows: int) -> int:
        """Optimiser steps of a fit on ``n_rows`` rows (:func:`lora_steps`)."""
        return lora_steps(n_rows, self.lora)

    def describe(self) -> dict:
        """What is trained, for the fingerprint: how many processes share the work is not part of it,
        nor the other trainings' normalisations and learning rates (this one's are ``loss_normalisation``
        and ``lr``, resolved by :func:`relalign.training.learner`)."""
        settings = self.lora.model_dump(exclude={"num_processes", "launch_args", "loss_normalisation_by_method",
                                                 "strong_lr"})
        return {"mode": "lora", **settings, "aux_coef": self.aux_coef, "aux_warmup": self.aux_warmup}

    def _training_set(self, base, tok, rows: list[dict]) -> tuple:
        """(dataset, collator, what builds the trainer): token rows for the whole model, or -- partial
        LoRA -- the rows with their cached bottom states (computed here, on the base model, where missing)."""
        from datasets import Dataset

        from .lora import WeightedCollator, WeightedTrainer

        if self.partial is None:
            return Dataset.from_list(rows), WeightedCollator(tok.pad_token_id), WeightedTrainer
        return self.partial.dataset(base, tok, rows), self.partial.collator(base, tok), self.partial.trainer

    def fit(self, name, prompts, targets, weights, fingerprint: str) -> LoraPredictor:
        from peft import LoraConfig, get_peft_model

        from .lora import answer_text, encode_rows, target_modules_for, training_arguments
        from .progress import training_callback

        folder = self.out_dir / name
        if is_trained(folder, fingerprint):
            if adapter_is_intact(folder):
                return self.load(name)
            (folder / FINGERPRINT).unlink(missing_ok=True)  # no longer done: trained again below
        base, tok = self.load_model()
        if self.lora.gradient_checkpointing:
            base.enable_input_require_grads()  # checkpointed LoRA needs gradients flowing into the inputs
        # A target is a listing position (choice tasks) or the answer text itself (open tasks).
        answers = [" " + t.strip() if isinstance(t, str) else answer_text(p, int(t)) for p, t in zip(prompts, targets)]
        rows = encode_rows(tok, [p.text for p in prompts], answers, weights, self.lora.max_length)
        config = LoraConfig(
            r=self.lora.r,
            lora_alpha=self.lora.alpha,
            lora_dropout=self.lora.dropout,
            target_modules=target_modules_for(base, self.lora.target_modules),
            layers_to_transform=self.partial.layer_indices(base) if self.partial else None,
            task_type="CAUSAL_LM",
        )
        train_set, collator, make_trainer = self._training_set(base, tok, rows)
        torch.manual_seed(self.seed)
        model = get_peft_model(base, config)
        ckpt_dir = folder / "checkpoints"
        main = is_main_process()
        # Checkpoints of an interrupted run are only resumed when they belong to this training set.
        if main and not is_trained(ckpt_dir, fingerprint):
            shutil.rmtree(ckpt_dir, ignore_errors=True)
        args = training_arguments(ckpt_dir, self.lora, self.seed, bf16=next(base.parameters()).dtype == torch.bfloat16,
                                  **self.trainer_overrides)
        trainer = make_trainer(
            model=model,
            args=args,
            train_dataset=train_set,
            data_collator=collator,
            callbacks=[*(self.callbacks or []), training_callback(name)],
            aux_coef=self.aux_coef,
            aux_warmup=self.aux_warmup,
            normalisation=self.lora.loss_normalisation,
        )
        if main:
            ckpt_dir.mkdir(parents=True, exist_ok=True)
            (ckpt_dir / FINGERPRINT).write_text(fingerprint)
        trainer.accelerator.wait_for_everyone()
        ckpts = sorted(ckpt_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
        try:
            trainer.train(resume_from_checkpoint=str(ckpts[-1]) if ckpts else None)
        except BaseException:
            model.unload()  # leave the shared base model clean; the checkpoints stay for a resume
            raise
        if main:
            if self.base_name:  # else PEFT writes the loaded folder's path, a converted copy in this machine's cache
                model.peft_config["default"].base_model_name_or_path = self.base_name
            # The vocabulary is never resized, so no embedding layer is saved (PEFT's "auto" would
            # look the base name up on the hub to find out).
            model.save_pretrained(folder / "adapter", save_embedding_layers=False)
            record_adapter(folder)
            shutil.rmtree(ckpt_dir, ignore_errors=True)
            (folder / FINGERPRINT).write_text(fingerprint)
        trainer.accelerator.wait_for_everyone()
        model.eval()
        return LoraPredictor(model, tok, self.batch_tokens, self.partial)

    def untrained_logprobs(self, prompts: Sequence[Prompt], desc: str = "untrained") -> np.ndarray:
        """The base model's answers (letter log-probabilities, ``[n, m]``), by the path a trained model
        answers by: with ``lora.layers``, the top layers on the cached bottom states that training and
        evaluation share."""
        base, tok = self.load_model()
        return LoraPredictor(base, tok, self.batch_tokens, self.partial).logprobs(prompts, desc)

    def load(self, name) -> LoraPredictor:
        from peft import PeftModel

        base, tok = self.load_model()
        model = PeftModel.from_pretrained(base, self.out_dir / name / "adapter")
        model.eval()
        return LoraPredictor(model, tok, self.batch_tokens, self.partial)
