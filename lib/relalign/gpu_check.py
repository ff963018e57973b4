"""``relalign gpu-check``: the training and labelling code paths in bf16 on a GPU, in minutes.

Builds a small Llama-architecture model itself (no download, no large file), then

* scores multiple-choice prompts with :func:`relalign.scoring.score_prompts` (the weak-labelling
  and evaluation path) and reports prompts per second,
* generates greedy answers in left-padded batches with :func:`relalign.generation.generate` (the
  GSM8K labelling path) and reports new tokens per second,
* runs LoRA steps with :class:`relalign.lora.WeightedTrainer` (the training path, weighted loss,
  gradient accumulation), once plain and once with activation checkpointing, and reports tokens
  per second and peak memory of each,

and prints the card. Without CUDA it says so and exits 0. ``run(device="cpu", ...)`` takes the same
path on the CPU at a tiny size; the tests do that, so a GPU session does not find a broken script.
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


def run(hidden: int = 1024, layers: int = 8, n_prompts: int = 512, train_rows: int = 256, gen_prompts: int = 64,
        new_tokens: int = 64, device: str = "cuda") -> dict:
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        return {"cuda": False, "message": "no CUDA device: nothing to check on this machine"}
    cuda = device == "cuda"

    def sync():
        if cuda:
            torch.cuda.synchronize()

    def reset_peak():
        if cuda:
            torch.cuda.reset_peak_memory_stats()

    def peak_gib():
        return round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    from .generation import Decoding, generate
    from .lora import WeightedCollator, WeightedTrainer, answer_text, encode_rows, training_arguments
    from .params import LoraParams
    from .prompts import Question, render
    from .scoring import score_prompts

    rng = random.Random(0)
    words = [f"w{i}" for i in range(4000)] + list("ABCDEFGHIJ") + ["Answer", ":", ".", "?"]
    tok = _tiny_tokenizer(words)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=4 * hidden, num_hidden_layers=layers,
                      num_attention_heads=max(hidden // 64, 2), num_key_value_heads=max(hidden // 128, 1), max_position_embeddings=1024,
                      pad_token_id=0, bos_token_id=2, eos_token_id=3)
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg).to(device, dtype=torch.bfloat16).eval()
    qs = [Question(str(i), " ".join(rng.choices(words[:4000], k=rng.randint(20, 120))) + " ?",
                   tuple(" ".join(rng.choices(words[:4000], k=rng.randint(2, 12))) + f" {j}" for j in range(4)), 0)
          for i in range(n_prompts)]
    prompts = [render(q, rng.sample(range(4), 4)) for q in qs]
    out = {"cuda": cuda, "device": torch.cuda.get_device_name(0) if cuda else "cpu", "model": f"llama {layers}x{hidden}, "
           f"{sum(p.numel() for p in model.parameters()) / 1e6:.0f}M params, bf16", "torch": torch.__version__}

    reset_peak()
    score_prompts(model, tok, prompts[:32], progress=False, max_tokens_per_batch=16384)  # warm-up
    sync()
    t = time.time()
    sp = score_prompts(model, tok, prompts, progress=False, max_tokens_per_batch=16384)
    sync()
    out["scoring_prompts_per_s"] = round(n_prompts / (time.time() - t), 1)
    out["scoring_peak_gib"] = peak_gib()
    out["scoring_finite"] = bool(torch.isfinite(torch.as_tensor(sp.letter_logprob)).all())

    reset_peak()
    decoding = Decoding(max_new_tokens=new_tokens)
    batch = min(64, gen_prompts)
    gen_in = [p.text for p in prompts[:gen_prompts]]
    generate(model, tok, gen_in[:batch], Decoding(max_new_tokens=4), batch_size=batch, progress=False)  # warm-up
    sync()
    t = time.time()
    texts = generate(model, tok, gen_in, decoding, batch_size=batch, progress=False)
    sync()
    new = sum(len(tok(x, add_special_tokens=False)["input_ids"]) for x in texts)
    out["generation"] = f"greedy, {gen_prompts} prompts, batch {batch}, up to {new_tokens} new tokens"
    out["generation_new_tokens_per_s"] = round(new / (time.time() - t))
    out["generation_peak_gib"] = peak_gib()

    model.train()
    peft_model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05,
                                                  target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    peft_model.enable_input_require_grads()  # activation checkpointing needs a grad path into the blocks
    rows = encode_rows(tok, [p.text for p in prompts[:train_rows]],
                       [answer_text(p, 0) for p in prompts[:train_rows]],
                       [rng.random() for _ in range(train_rows)], 512)
    n_tokens = sum(len(r["input_ids"]) for r in rows)
    def trainer_for(lora, tmp, **extra):
        args = training_arguments(tmp, lora, seed=0, bf16=True, save_strategy="no", disable_tqdm=True, **extra)
        return WeightedTrainer(model=peft_model, args=args, train_dataset=Dataset.from_list(rows),
                               data_collator=WeightedCollator(tok.pad_token_id))

    with tempfile.TemporaryDirectory() as tmp:  # warm-up: kernels and allocator, so both timings are comparable
        trainer_for(LoraParams(micro_batch_size=8, batch_size=24, max_length=512), tmp, max_steps=2).train()
    for checkpointing in (False, True):
        lora = LoraParams(micro_batch_size=8, batch_size=24, epochs=1.0, max_length=512, lr=5e-5,
                          gradient_checkpointing=checkpointing)
        key = "training_checkpointed" if checkpointing else "training"
        reset_peak()
        with tempfile.TemporaryDirectory() as tmp:
            trainer = trainer_for(lora, tmp)
            sync()
            t = time.time()
            result = trainer.train()
            sync()
        out[f"{key}_tokens_per_s"] = round(n_tokens / (time.time() - t))
        out[f"{key}_steps"] = result.global_step
        out[f"{key}_loss"] = round(result.training_loss, 4)
        out[f"{key}_peak_gib"] = peak_gib()
    return out


def main(hidden: int = 1024, layers: int = 8, json_path: str | None = None) -> int:
    report = json.dumps(run(hidden=hidden, layers=layers), indent=2)
    print(report)
    if json_path:
        with open(json_path, "w") as f:
            f.write(report + "\n")
    return 0
