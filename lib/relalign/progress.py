"""Progress of long steps (scoring, generation, bottom states, LoRA training), shown twice: as a tqdm
text bar in the notebook, and -- when ``relalign run`` sets ``RELALIGN_PROGRESS`` to a file -- as the
file's one line, which the runner reads and prints, so a run's terminal says what it is doing without
the notebooks' full output.

The file holds ``{"desc", "done", "total", "unit"}`` as JSON, replaced atomically at most once a second
(and at the end of a bar).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from tqdm import tqdm  # text bars: readable in stored notebook outputs and logs

ENV = "RELALIGN_PROGRESS"
_last_write = [0.0]


def report(desc: str, done: int, total: int | None, unit: str, force: bool = False) -> None:
    """Record where a step stands in the file ``RELALIGN_PROGRESS`` names (nothing when unset)."""
    path = os.environ.get(ENV)
    if not path or (not force and time.monotonic() - _last_write[0] < 1.0):
        return
    _last_write[0] = time.monotonic()
    tmp = Path(f"{path}.tmp")
    tmp.write_text(json.dumps({"desc": desc, "done": int(done), "total": total, "unit": unit}))
    os.replace(tmp, path)


def read(path: str | Path) -> dict | None:
    """The last progress written to ``path``, or None."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def describe(p: dict) -> str:
    """One line: ``scoring B: 120/1000 prompts``."""
    total = f"/{p['total']}" if p.get("total") else ""
    return f"{p['desc']}: {p['done']}{total} {p['unit']}"


class Bar(tqdm):
    """A tqdm bar that also reports to ``RELALIGN_PROGRESS``."""

    def update(self, n=1):
        out = super().update(n)
        if not self.disable:
            report(self.desc.rstrip(": "), self.n, self.total, self.unit, force=self.n == self.total)
        return out


def training_callback(name: str):
    """An HF ``TrainerCallback`` that reports ``training <name>: step/max_steps steps``."""
    from transformers import TrainerCallback

    class _Progress(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            report(f"training {name}", state.global_step, state.max_steps, "steps",
                   force=state.global_step == state.max_steps)

    return _Progress()
