"""Weak-labelling throughput: the batched scorer against a reference-style generation loop (a report, not a test).

    .venv/bin/python benchmarks/weak_labelling.py [--params params/hellaswag-offline.yaml] [--questions 32]
        [--loop-questions 4] [--threads 2] [--role weak] [--max-tokens-per-batch N] [--repeats 2]

Both methods answer the same prompts with the same model: the first ``--questions`` questions of
split B, each in its K variations (the params' ``reliability.k`` option orders, K = 5 by default),
so a *question* here is one question answered in all K of its variations (K prompts). Questions per
second = prompts per second / K.

* loop: the reference code's way, one prompt at a time: ``model.generate`` (batch 1, greedy, up to 50
  new tokens, KV cache on as ``generate`` has it by default), then the first generated token, stripped,
  is parsed as the letter. It is slow, so only the first ``--loop-questions`` questions are timed
  and the rate is extrapolated from them (the JSON says so); for the agreement check the first
  generated token of the other prompts comes from ``generate(max_new_tokens=1)`` (greedy: the same
  first token), untimed.
* scorer: :func:`relalign.scoring.score_prompts` on all the prompts, letter-only path
  (``keep_hidden=False``, ``shared_prefix=True``, ``option_logprobs=False``: logits at the last
  position only); the letter is the ``letter_logprob`` argmax. Timed ``--repeats`` times after a
  warm-up; the best run is reported (all runs are listed). The same call with the option tokens'
  log-probabilities too (``option_logprobs=True``, what the study's feature scoring computes) is
  timed once as well (``scorer_with_option_logprobs``; ``--no-options-run`` skips it).
* matmul: ``torch.matmul`` of two float32 n x n matrices (n = 1024, 2048, 4096, best of several)
  with the same thread count; the scorer's useful FLOP rate is
  ``2 * n_params_non_embedding * tokens`` (real tokens, no padding; a shared prefix counted once)
  ``+ 2 * d_model * vocab * logit positions read`` over the scorer's time: the last positions on
  the letter-only path, the last positions and every option token with ``option_logprobs=True``.

Writes results/benchmarks/weak_labelling.json and prints it. Whole run: about 3-5 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "benchmarks" / "weak_labelling.json"


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def matmul_gflops(threads: int, sizes=(1024, 2048, 4096), seconds: float = 2.0) -> dict:
    """Best float32 matmul rate over a few square sizes, GFLOP/s."""
    import torch

    rates = {}
    for n in sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        torch.matmul(a, b)  # warm-up
        best, t_end = 0.0, time.perf_counter() + seconds
        while time.perf_counter() < t_end:
            t0 = time.perf_counter()
            torch.matmul(a, b)
            best = max(best, 2 * n**3 / (time.perf_counter() - t0) / 1e9)
        rates[str(n)] = round(best, 1)
    return {"gflops": max(rates.values()), "by_size": rates, "threads": threads, "dtype": "float32"}


def parse_letter(text: str, letters) -> str | None:
    """The reference's parse: the first generated token, stripped, read as a letter."""
    s = text.strip()
    return s[0] if s and s[0] in letters else None


def run_loop(model, tok, prompts, max_new_tokens: int = 50) -> tuple[list[str | None], list[int], float]:
    """One ``generate`` per prompt, greedy, KV cache on (generate's default); the first new token parsed."""
    import torch

    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    letters, new_tokens = [], []
    t0 = time.perf_counter()
    with torch.inference_mode():
        for p in prompts:
            enc = tok(p.text, return_tensors="pt")
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, temperature=None,
                                 top_p=None, top_k=None, pad_token_id=pad_id)
            gen = out[0, enc["input_ids"].shape[1]:]
            new_tokens.append(int(gen.shape[0]))
            letters.append(parse_letter(tok.decode(gen[:1]), p.letters))
    return letters, new_tokens, time.perf_counter() - t0


def work_count(model, tok, prompts) -> dict:
    """Tokens and logit positions of one scorer pass, as score_prompts processes them (no padding)."""
    from relalign.scoring import _body, _option_token_index, _shared_prefix_groups

    enc = tok([p.text for p in prompts], return_offsets_mapping=True, add_special_tokens=True)
    ids = enc["input_ids"]
    groups = _shared_prefix_groups(ids, enc["offset_mapping"], prompts)
    tokens_all = sum(len(x) for x in ids)
    tokens_shared = sum(n + sum(len(ids[i]) - n for i in g) for g, n in groups)
    option_positions = sum(
        sum(1 for t in toks if t > 0)
        for off, p in zip(enc["offset_mapping"], prompts)
        for toks in _option_token_index(off, p.option_spans)
    )
    body = _body(model)
    emb = body.get_input_embeddings()
    n_body = sum(p.numel() for p in body.parameters()) - emb.weight.numel()
    head = model.get_output_embeddings()
    vocab, d = head.weight.shape
    return {"prompts": len(prompts), "groups": len(groups), "tokens_without_sharing": tokens_all,
            "tokens_processed": tokens_shared, "last_positions": len(prompts),
            "option_positions": option_positions, "n_params_non_embedding": n_body, "d_model": d, "vocab": vocab}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--params", default=str(REPO / "params" / "hellaswag-offline.yaml"))
    ap.add_argument("--role", default="weak", help="whose model: weak or strong (default weak)")
    ap.add_argument("--questions", type=int, default=32, help="questions of split B (each in K variations)")
    ap.add_argument("--loop-questions", type=int, default=6, help="questions the slow loop is timed on")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--max-tokens-per-batch", type=int, default=None,
                    help="scorer batch budget (default: the params' compute.max_tokens_per_batch)")
    ap.add_argument("--repeats", type=int, default=2, help="timed scorer runs (best one reported)")
    ap.add_argument("--no-options-run", action="store_true",
                    help="skip the timing of the scorer with option log-probabilities")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()

    import numpy as np
    import torch
    import transformers

    from relalign.params import load_params
    from relalign.provenance import cpu_model
    from relalign.scoring import score_prompts
    from relalign import stages

    torch.set_num_threads(args.threads)
    load_before = load_average()
    params = load_params(args.params)
    run = stages.run_of(params, Path(tempfile.mkdtemp(prefix="weak_labelling_")))
    k = params.reliability.k
    qids = [q.qid for q in run.task.splits["B"][: args.questions]]
    prompts = [run.task.prompt(q, v) for q in qids for v in range(k)]
    model, tok = run.pool.model(args.role)
    budget = args.max_tokens_per_batch or params.compute.max_tokens_per_batch
    print(f"{len(qids)} questions x K={k} = {len(prompts)} prompts; model {run.pool.model_id(args.role)}; "
          f"{args.threads} threads; load average {load_before}", file=sys.stderr)

    # matmul rate first, while nothing else of ours runs
    mm = matmul_gflops(args.threads)
    print(f"matmul: {mm}", file=sys.stderr)

    # scorer: warm-up on a few questions, then the timed runs over all the prompts
    def score(ps, options=False):
        return score_prompts(model, tok, ps, keep_hidden=False, max_tokens_per_batch=budget,
                             shared_prefix=True, option_logprobs=options, progress=False)

    score(prompts[: 2 * k])  # warm-up
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        sp = score(prompts)
        times.append(time.perf_counter() - t0)
        print(f"scorer: {times[-1]:.1f} s", file=sys.stderr)
    t_score = min(times)
    t_options = None
    if not args.no_options_run:
        t0 = time.perf_counter()
        sp_opt = score(prompts, options=True)
        t_options = time.perf_counter() - t0
        print(f"scorer with option log-probabilities: {t_options:.1f} s", file=sys.stderr)
        same_letters = float(np.mean(np.argmax(sp_opt.letter_logprob, 1) == np.argmax(sp.letter_logprob, 1)))
    scorer_letters = [p.letters[j] for p, j in zip(prompts, np.argmax(sp.letter_logprob, axis=1))]

    # loop: warm-up on one prompt, then the timed subset
    run_loop(model, tok, prompts[:1], max_new_tokens=2)
    n_loop = min(args.loop_questions, len(qids)) * k
    loop_letters, new_tokens, t_loop = run_loop(model, tok, prompts[:n_loop])
    print(f"loop: {t_loop:.1f} s for {n_loop} prompts", file=sys.stderr)
    # the first generated token of the other prompts, for the agreement check only (untimed)
    first_letters, _, _ = run_loop(model, tok, prompts[n_loop:], max_new_tokens=1)
    all_loop_letters = loop_letters + first_letters
    load_after = load_average()
    mm_after = matmul_gflops(args.threads)  # again: a change means the machine's load changed meanwhile
    print(f"matmul after: {mm_after}", file=sys.stderr)
    mm = {"gflops": max(mm["gflops"], mm_after["gflops"]), "before": mm, "after": mm_after,
          "note": "best float32 rate of n x n matmuls (n = 1024, 2048, 4096) measured before and after the "
                  "runs; the larger of the two is the denominator of the fractions"}

    agree = [a == b for a, b in zip(all_loop_letters, scorer_letters)]
    parsed = [a is not None for a in all_loop_letters]
    work = work_count(model, tok, prompts)
    body_flop = 2 * work["n_params_non_embedding"] * work["tokens_processed"]
    head_flop = 2 * work["d_model"] * work["vocab"]
    flop_options = body_flop + head_flop * (work["last_positions"] + work["option_positions"])
    flop_letters = body_flop + head_flop * work["last_positions"]
    n_questions = len(prompts) / k
    loop_qps = n_loop / k / t_loop
    scorer_qps = n_questions / t_score
    useful = flop_letters / t_score / 1e9
    result = {
        "what": "weak-labelling throughput: project scorer vs a reference-style generate loop",
        "question": f"one question answered in all its K={k} variations (K prompts); q/s = prompts/s / K",
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "params": str(Path(args.params).resolve().relative_to(REPO)) if Path(args.params).resolve().is_relative_to(REPO) else args.params,
        "dataset": params.data.dataset,
        "model": run.pool.model_id(args.role),
        "questions": len(qids),
        "k": k,
        "prompts": len(prompts),
        "loop": {
            "method": "per prompt: model.generate(batch 1, greedy, max_new_tokens=50, KV cache on); "
                      "first new token parsed as the letter",
            "timed_prompts": n_loop,
            "timed_questions": n_loop // k,
            "extrapolated": n_loop < len(prompts),
            "note": f"timed on the first {n_loop // k} questions; the rate is extrapolated to all {len(qids)}",
            "seconds": round(t_loop, 2),
            "seconds_per_prompt": round(t_loop / n_loop, 3),
            "questions_per_s": round(loop_qps, 4),
            "prompts_per_s": round(n_loop / t_loop, 3),
            "mean_new_tokens": round(float(np.mean(new_tokens)), 1),
        },
        "scorer": {
            "method": "relalign.scoring.score_prompts(keep_hidden=False, shared_prefix=True, "
                      "option_logprobs=False); letter = argmax of letter_logprob",
            "threads": torch.get_num_threads(),
            "max_tokens_per_batch": budget,
            "runs_seconds": [round(t, 2) for t in times],
            "seconds": round(t_score, 2),
            "seconds_median": round(statistics.median(times), 2),
            "questions_per_s": round(scorer_qps, 3),
            "prompts_per_s": round(len(prompts) / t_score, 2),
        },
        "scorer_with_option_logprobs": None if t_options is None else {
            "method": "the same call with option_logprobs=True (logits at every option token too), one run",
            "same_letters_as_letter_only": same_letters,
            "seconds": round(t_options, 2),
            "questions_per_s": round(n_questions / t_options, 3),
            "ratio_over_loop": round(n_questions / t_options / loop_qps, 2),
            "useful_gflops": round(flop_options / t_options / 1e9, 1),
            "fraction_of_matmul": round(flop_options / t_options / 1e9 / mm["gflops"], 3),
        },
        "ratio_scorer_over_loop": round(scorer_qps / loop_qps, 2),
        "ratio_bound": {
            "ratio": round(n_questions / (flop_letters / 1e9 / mm["gflops"]) / loop_qps, 2),
            "note": "the ratio if the scorer did its useful FLOPs at the full measured matmul rate (an upper bound "
                    "for this loop on this CPU)",
        },
        "agreement": {
            "fraction": round(float(np.mean(agree)), 4),
            "prompts": len(agree),
            "loop_first_token_is_a_letter": round(float(np.mean(parsed)), 4),
            "fraction_where_the_loop_gave_a_letter": round(float(np.mean([a for a, ok in zip(agree, parsed) if ok])), 4)
            if any(parsed) else None,
            "note": "scorer letter (argmax over the letters) vs the loop's first generated token; on prompts "
                    "beyond the timed subset the first token comes from generate(max_new_tokens=1), untimed",
        },
        "work": work,
        "matmul": mm,
        "useful_flop": {
            "formula": "2*n_params_non_embedding*tokens_processed + 2*d_model*vocab*logit_positions",
            "gflop": round(flop_letters / 1e9, 2),
            "of_which_body": round(body_flop / 1e9, 2),
            "gflop_with_option_logprobs": round(flop_options / 1e9, 2),
            "gflops": round(useful, 1),
            "fraction_of_matmul": round(useful / mm["gflops"], 3),
            "note": "letter-only path: logits at the last positions alone; tokens of a shared prefix counted once; "
                    "attention-score FLOPs and padding not counted",
        },
        "environment": {
            "torch_threads": torch.get_num_threads(),
            "cpu": cpu_model(),
            "cpu_count": os.cpu_count(),
            "load_average_before": load_before,
            "load_average_after": load_after,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "python": platform.python_version(),
            "attn_implementation": getattr(model.config, "_attn_implementation", None),
            "dtype": str(next(model.parameters()).dtype),
        },
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
