"""Before any work: open what a run will use. ``relalign check`` prints it; ``relalign run`` and
``relalign batch`` run it before they write anything, so bad data, a split larger than its pool,
K larger than the answer orders, a missing or damaged model file or a cache with no room to convert
one stop with one line (exit 2) instead of minutes later inside a notebook."""

from __future__ import annotations

from pathlib import Path

from .checks import ParamsError
from .data import drop_long, load_pools, make_splits
from .models import ModelSpec, conversion_check

__all__ = ["preflight", "model_check"]


def model_check(spec: ModelSpec, cache_dir: Path) -> str:
    """What was checked of a model's files, or ModelFileError: a registry model must be installed
    with its pinned sha256, a local GGUF file must match its pin, and either's converted copy must be
    in the cache or have room there. A hub model is not fetched here."""
    if spec.source == "hub":
        return "hub: not fetched before the run"
    if spec.source == "local" and not spec.gguf_file:
        return "folder present"
    return conversion_check(spec, cache_dir)


def preflight(params, file: str) -> dict:
    """Load the data, draw the splits, make every B question's K variations and check both models'
    files; returns what ``relalign check`` prints. Raises DataError, ModelFileError or ParamsError
    (one line each) on the first problem."""
    adapter = params.adapter()
    specs = params.split_specs()
    pools = load_pools(adapter, params.data.source, sorted({s.pool for s in specs.values()}), params.data_path())
    splits = make_splits(drop_long(pools, params.data.max_chars), specs, params.seed)
    for q in splits.get("B", []):
        try:
            adapter.variations(q, params.reliability.k, params.seed)
        except ValueError as e:
            raise ParamsError(f"{file}: 'reliability.k': {e} (question {q.qid})") from None
    models = {role: model_check(params.model_spec(role), params.resolved_cache_dir()) for role in ("weak", "strong")}
    return {"pools": {name: len(qs) for name, qs in pools.items()}, "splits": {k: len(v) for k, v in splits.items()},
            "models": models}

