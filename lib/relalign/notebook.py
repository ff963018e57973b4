"""What every numbered notebook does first: open its run and say what it is about."""

from __future__ import annotations

from pathlib import Path

from .params import REPO_ROOT
from .stages import Run, open_run

__all__ = ["setup", "shown_path"]


def setup(params_file: str | Path, run_dir: str | Path | None) -> Run:
    """Open the run of ``params_file`` in ``run_dir`` (:func:`relalign.stages.open_run`) and show one
    line: the dataset, its split sizes, the two models, the training mode, K and the seed."""
    from IPython.display import Markdown, display

    run = open_run(params_file, run_dir)
    p = run.params
    sizes = " / ".join(f"{s} = {len(qs)}" for s, qs in run.task.splits.items())
    display(Markdown(f"**{p.data.dataset}** ({p.data.source}, {sizes}) &middot; weak `{p.model_spec('weak').label()}` "
                     f"&rarr; strong `{p.model_spec('strong').label()}` &middot; training mode `{p.training.mode}` "
                     f"&middot; K = {p.reliability.k} &middot; seed {p.seed}"))
    return run


def shown_path(path: str | Path) -> str:
    """``path`` relative to the repository when inside it (for printing in notebooks)."""
    try:
        return str(Path(path).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)
