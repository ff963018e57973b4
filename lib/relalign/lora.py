"""``lora`` training mode: the paper's way, LoRA fine-tuning of the causal LM on answer tokens.

A training row is (prompt, answer, weight). The model reads ``prompt`` and is trained to
write `` B. <option text><eos>`` (the letter of the option where it stands in this prompt's
listing, then the option's text and the end of sequence); the loss is
:func:`relalign.losses.answer_token_loss` over those answer tokens only, each token's
cross-entropy multiplied by its row's weight, and the output layer runs only at the positions that
predict them. A trained model answers by its letter
log-probabilities after the prompt (:mod:`relalign.scoring`), the same scorer the weak
labelling and the evaluation use.

:class:`WeightedTrainer` is an ordinary HF ``Trainer``: batch size, gradient accumulation,
several processes (``accelerate launch``), bf16, gradient checkpointing and checkpoint
resumption all come from ``TrainingArguments``; only the loss is ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from transformers import Trainer, TrainingArguments

from .losses import IGNORE_INDEX, answer_positions, answer_token_loss, aux_coefficient, loss_denominator
from .prompts import Prompt

# LoRA targets per architecture family (``config.model_type``). The paper adapts q_proj and
# v_proj; every family below names its attention projections that way.
TARGET_MODULES = {
    "llama": ["q_proj", "v_proj"],
    "mistral": ["q_proj", "v_proj"],
    "qwen2": ["q_proj", "v_proj"],
    "qwen3": ["q_proj", "v_proj"],
    "gemma": ["q_proj", "v_proj"],
    "gemma2": ["q_proj", "v_proj"],
    "gemma3": ["q_proj", "v_proj"],
    "gemma3_text": ["q_proj", "v_proj"],
    "phi3": ["qkv_proj"],
    "gpt2": ["c_attn"],
}


def target_modules_for(model, override: Sequence[str] | None = None) -> list[str]:
    if override:
        return list(override)
    kind = model.config.model_type
    if kind not in TARGET_MODULES:
        raise ValueError(
            f"no default LoRA target modules for model type {kind!r}; set training.lora.target_modules in params"
        )
    return TARGET_MODULES[kind]


def answer_text(prompt: Prompt, position: int) -> str:
    """What the model is trained to write after the prompt (the letter and the option's text, or
    the option's word)."""
    return prompt.answer_text(position)


def encode_rows(tokenizer, prompts: Sequence[str], answers: Sequence[str], weights: Sequence[float], max_length: int) -> list[dict]:
    """Token ids with labels on the answer (and the final EOS) only; prompts are cut from the left
    if a row is longer than ``max_length``, never the answer."""
    rows = []
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    for p, a, w in zip(prompts, answers, weights):
        p_ids = tokenizer(p, add_special_tokens=True)["input_ids"]
        a_ids = tokenizer(a, add_special_tokens=False)["input_ids"] + eos
        keep = max_length - len(a_ids)
        if keep < 1:
            raise ValueError(f"answer of {len(a_ids)} tokens does not fit max_length {max_length}")
        p_ids = p_ids[-keep:]
        rows.append(
            {
                "input_ids": p_ids + a_ids,
                "labels": [IGNORE_INDEX] * len(p_ids) + a_ids,
                "weight": float(w),
            }
        )
    return rows


@dataclass
class WeightedCollator:
    """Right-pads a batch and carries the per-row ``weight`` to the loss."""

    pad_token_id: int

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        L = max(len(r["input_ids"]) for r in rows)
        ids = torch.full((len(rows), L), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(rows), L), IGNORE_INDEX, dtype=torch.long)
        att = torch.zeros((len(rows), L), dtype=torch.long)
        for i, r in enumerate(rows):
            n = len(r["input_ids"])
            ids[i, :n] = torch.tensor(r["input_ids"])
            labels[i, :n] = torch.tensor(r["labels"])
            att[i, :n] = 1
        weight = torch.tensor([r["weight"] for r in rows], dtype=torch.float32)
        return {"input_ids": ids, "attention_mask": att, "labels": labels, "weight": weight}


class WeightedTrainer(Trainer):
    """HF Trainer whose loss is :func:`relalign.losses.answer_token_loss`, normalised over the whole step.

    ``num_items_in_batch`` is the number of answer tokens in the optimisation step (all
    gradient-accumulation micro-batches and, with ``average_tokens_across_devices``, all
    processes), so batch 8 x accumulation 1 and batch 2 x accumulation 4 give the same
    gradient. Under data parallelism the gradients of the processes are averaged, so each
    process's loss is multiplied by the number of processes, as Trainer does for its own loss.

    ``aux_coef`` / ``aux_warmup``: the auxiliary confidence loss (Burns et al. 2023), its weight
    ramped by :func:`relalign.losses.aux_coefficient` over ``global_step / max_steps``; 0: off.

    ``normalisation``: ``answer_tokens`` (above) or ``all_positions``, the reference's mean over
    every position of each micro-batch, averaged over the step's micro-batches
    (:func:`relalign.losses.loss_denominator`); under data parallelism the processes' gradients are
    averaged, which is again the mean over all micro-batches.
    """

    loss_is_scaled_for_ga = True

    def __init__(self, *args, aux_coef: float = 0.0, aux_warmup: float = 0.2, normalisation: str = "answer_tokens",
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.aux_coef = float(aux_coef)
        self.aux_warmup = float(aux_warmup)
        loss_denominator(torch.zeros((1, 2), dtype=torch.long), normalisation, None)  # an unknown one fails here
        self.normalisation = normalisation

    def aux_coefficient(self) -> float:
        """The confidence loss's weight at the current step (0 outside training or when off)."""
        if not self.aux_coef:
            return 0.0
        max_steps = getattr(self.state, "max_steps", 0) or 0
        frac = self.state.global_step / max_steps if max_steps > 0 else 1.0
        return aux_coefficient(frac, self.aux_coef, self.aux_warmup)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        weight = inputs.pop("weight")
        labels = inputs.pop("labels")
        # The output layer runs only at the positions that predict an answer token: every other
        # position skips it and the vocabulary-wide softmax (for a 150k vocabulary, most of a step
        # when only the top layers train). The call goes through ``model`` itself, so a wrapper
        # (DistributedDataParallel) sees the forward; the logits come back packed, row by row.
        rows, cols = answer_positions(labels)
        keep = torch.zeros_like(labels, dtype=torch.bool)
        keep[rows, cols] = True
        logits = model(**inputs, logits_to_keep=keep).logits
        # Outside the training loop (evaluation, a direct call) this batch is the whole step.
        micro_batches = self.current_gradient_accumulation_steps if model.training and num_items_in_batch is not None else 1
        denominator = loss_denominator(labels, self.normalisation, num_items_in_batch, micro_batches)
        loss = answer_token_loss(logits, labels[rows, cols + 1], weight[rows], denominator, aux_coef=self.aux_coefficient())
        if (self.normalisation == "answer_tokens" and self.args.average_tokens_across_devices
                and self.args.world_size > 1 and model.training):
            loss = loss * self.accelerator.num_processes
        return (loss, {"logits": logits}) if return_outputs else loss


def training_arguments(output_dir: Path, lora, seed: int, world_size: int | None = None, bf16: bool = False,
                       **extra) -> TrainingArguments:
    """``TrainingArguments`` from ``training.lora`` params: the effective batch
    ``lora.batch_size`` is micro_batch_size x gradient accumulation x processes (``world_size``,
    by default the number of processes this run was launched with)."""
    from .distributed import world_size as launched

    per_step = lora.micro_batch_size * (world_size or launched())
    if lora.batch_size % per_step:
        raise ValueError(f"batch_size {lora.batch_size} is not a multiple of micro_batch_size x processes = {per_step}")
    settings = dict(
        output_dir=str(output_dir),
        per_device_train_batch_size=lora.micro_batch_size,
        gradient_accumulation_steps=lora.batch_size // per_step,
        learning_rate=lora.lr,
        num_train_epochs=lora.epochs,
        max_steps=lora.max_steps,
        lr_scheduler_type=lora.scheduler,
        warmup_steps=float(lora.warmup_ratio),  # a float in [0, 1) is a fraction of all steps
        weight_decay=0.0,
        bf16=bf16,
        activation_checkpointing=lora.gradient_checkpointing,
        dataloader_pin_memory=torch.cuda.is_available(),
        use_cpu=not torch.cuda.is_available(),  # also makes several CPU processes (gloo) data-parallel
        remove_unused_columns=False,  # keep the weight column
        save_strategy="steps",
        save_steps=50,
        save_total_limit=1,
        logging_steps=10,
        report_to=[],
        seed=seed,
        data_seed=seed,
        dataloader_num_workers=0,
    )
    settings.update(extra)
    return TrainingArguments(**settings)
