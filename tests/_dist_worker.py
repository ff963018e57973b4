"""Run under ``accelerate launch --cpu --num_processes 2`` by tests/test_distributed.py.

    _dist_worker.py train MODEL_DIR OUT   one LoRA step, global batch 8 (2 processes x 2 x accumulation 2)
"""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))


def train(model_dir: str, out: str) -> None:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainingArguments

    from relalign.lora import WeightedCollator, WeightedTrainer
    from test_weighted_trainer import _lora_model, _rows

    base = AutoModelForCausalLM.from_pretrained(model_dir)
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = _lora_model(base)
    args = TrainingArguments(
        output_dir=str(Path(out).parent / "dist-train"), per_device_train_batch_size=2, gradient_accumulation_steps=2,
        max_steps=1, learning_rate=1.0, optim="sgd", lr_scheduler_type="constant", weight_decay=0.0,
        max_grad_norm=0.0, save_strategy="no", report_to=[], seed=0, data_seed=0, remove_unused_columns=False,
        dataloader_pin_memory=False, disable_tqdm=True, use_cpu=True,
    )
    trainer = WeightedTrainer(model=model, args=args, train_dataset=Dataset.from_list(_rows(tok)),
                              data_collator=WeightedCollator(tok.pad_token_id))
    assert trainer.args.world_size == 2, trainer.args.world_size
    trainer.train()
    if trainer.is_world_process_zero():
        torch.save({n: p.detach().cpu() for n, p in model.named_parameters() if p.requires_grad}, out)


if __name__ == "__main__":
    from relalign.distributed import shutdown

    train(*sys.argv[2:])
    shutdown()
