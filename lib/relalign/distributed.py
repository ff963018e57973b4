"""Several processes (``accelerate launch``): who this process is, and a clean end.

HF Trainer runs data-parallel LoRA training under ``accelerate launch``
(``training.lora.num_processes`` > 1); the study evaluates in the process that launched it.
"""

from __future__ import annotations

import os


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
