"""``relalign gpu-check``: the training and labelling code paths in bf16 on a GPU, in minutes.

Builds a small Llama-architecture model itself (no download, no large file), then

* scores multiple-choice prompts with :func:`relalign.scoring.score_prompts` (the weak-labelling
  and evaluation path) and reports prompts per second,
* runs LoRA steps with :class:`relalign.lora.WeightedTrainer` (the training path, weighted loss,
  gradient accumulation) and reports tokens per second,

and prints peak GPU memory and the card. Without CUDA it says so and exits 0.
"""

from __future__ import annotations

import json
import random
import tempfile
import time


def _tiny_tokenizer(words: list[str]):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(dict.fromkeys(["[PAD]", "[UNK]", "[BOS]", "[EOS]", *words]))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", bos_token="[BOS]",
                                   eos_token="[EOS]")


def run(hidden: int = 1024, layers: int = 8, n_prompts: int = 512, train_rows: int = 256) -> dict:
    import torch

    if not torch.cuda.is_available():
        return {"cuda": False, "message": "no CUDA device: nothing to check on this machine"}
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    from .lora import WeightedCollator, WeightedTrainer, answer_text, encode_rows, training_arguments
    from .params import LoraParams
    from .prompts import Question, render
    from .scoring import score_prompts

    rng = random.Random(0)
    words = [f"w{i}" for i in range(4000)] + list("ABCDEFGHIJ") + ["Answer", ":", ".", "?"]
    tok = _tiny_tokenizer(words)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=4 * hidden, num_hidden_layers=layers,
                      num_attention_heads=hidden // 64, num_key_value_heads=hidden // 128, max_position_embeddings=1024,
                      pad_token_id=0, bos_token_id=2, eos_token_id=3)
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg).to("cuda", dtype=torch.bfloat16).eval()
    qs = [Question(str(i), " ".join(rng.choices(words[:4000], k=rng.randint(20, 120))) + " ?",
                   tuple(" ".join(rng.choices(words[:4000], k=rng.randint(2, 12))) + f" {j}" for j in range(4)), 0)
          for i in range(n_prompts)]
    prompts = [render(q, rng.sample(range(4), 4)) for q in qs]
    out = {"cuda": True, "device": torch.cuda.get_device_name(0), "model": f"llama {layers}x{hidden}, "
           f"{sum(p.numel() for p in model.parameters()) / 1e6:.0f}M params, bf16", "torch": torch.__version__}

    torch.cuda.reset_peak_memory_stats()
    score_prompts(model, tok, prompts[:32], progress=False, max_tokens_per_batch=16384)  # warm-up
    torch.cuda.synchronize()
    t = time.time()
    sp = score_prompts(model, tok, prompts, progress=False, max_tokens_per_batch=16384)
    torch.cuda.synchronize()
    out["scoring_prompts_per_s"] = round(n_prompts / (time.time() - t), 1)
    out["scoring_peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    out["scoring_finite"] = bool(torch.isfinite(torch.as_tensor(sp.letter_logprob)).all())

    model.train()
    lora = LoraParams(micro_batch_size=8, batch_size=24, epochs=1.0, max_length=512, lr=5e-5)
    peft_model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05,
                                                  target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    rows = encode_rows(tok, [p.text for p in prompts[:train_rows]],
                       [answer_text(p, 0) for p in prompts[:train_rows]],
                       [rng.random() for _ in range(train_rows)], lora.max_length)
    n_tokens = sum(len(r["input_ids"]) for r in rows)
    torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory() as tmp:
        args = training_arguments(tmp, lora, seed=0, bf16=True, save_strategy="no", disable_tqdm=True)
        trainer = WeightedTrainer(model=peft_model, args=args, train_dataset=Dataset.from_list(rows),
                                  data_collator=WeightedCollator(tok.pad_token_id))
        torch.cuda.synchronize()
        t = time.time()
        result = trainer.train()
        torch.cuda.synchronize()
    out["training_tokens_per_s"] = round(n_tokens / (time.time() - t))
    out["training_steps"] = result.global_step
    out["training_loss"] = round(result.training_loss, 4)
    out["training_peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return out


def main() -> int:
    print(json.dumps(run(), indent=2))
    return 0
