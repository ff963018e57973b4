"""Several processes (``accelerate launch``): split work, gather results once.

HF Trainer already runs data-parallel training under ``accelerate launch``; what the study adds
is evaluation that splits the prompts across the processes and gathers the answers with
``gather_for_metrics``, which drops the duplicates that even batches pad the last batch with, so
every prompt is counted exactly once whatever the number of processes.
"""

from __future__ import annotations

import os
from typing import Callable, Sequence

import numpy as np
import torch


def world_size() -> int:
    """Processes of this run (1 outside ``accelerate launch`` / ``torchrun``)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def shutdown() -> None:
    """End this process's part in a multi-process run cleanly: wait for every process, then
    destroy the process group. Without it a process that finishes first can exit while gloo's
    threads still talk to the others, and the launcher sees an abort ("terminate called without
    an active exception") after the work itself succeeded. A no-op outside a process group."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def gather_rows(accelerator, fn: Callable[[list[int]], np.ndarray], n: int, batch_size: int) -> np.ndarray:
    """``fn(indices) -> [len(indices), ...]`` evaluated over ``range(n)`` split across processes;
    every process gets all ``n`` rows back, in order."""
    from torch.utils.data import DataLoader

    loader = accelerator.prepare(DataLoader(list(range(n)), batch_size=batch_size, shuffle=False))
    idx_parts, row_parts = [], []
    for batch in loader:
        idx = batch.to(accelerator.device)
        rows = torch.as_tensor(fn(batch.tolist()), device=accelerator.device)
        idx, rows = accelerator.gather_for_metrics((idx, rows))
        idx_parts.append(idx.cpu())
        row_parts.append(rows.cpu())
    idx = torch.cat(idx_parts)
    rows = torch.cat(row_parts)
    if sorted(idx.tolist()) != list(range(n)):
        raise RuntimeError(f"gathered {len(idx)} rows for {n} items: duplicates or gaps")
    out = torch.empty_like(rows)
    out[idx] = rows
    return out.numpy()


def split_logprobs(accelerator, logprobs: Callable[[Sequence], np.ndarray], items: Sequence, batch_size: int = 64) -> np.ndarray:
    """``logprobs`` of every item, computed on this process's share and gathered."""
    return gather_rows(accelerator, lambda ids: logprobs([items[i] for i in ids]), len(items), batch_size)
