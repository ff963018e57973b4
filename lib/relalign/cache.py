"""A content-addressed on-disk cache for expensive results (model scores, weak answers).

A key is the sha256 of a JSON description of everything the result depends on (model
identity and checksum, prompt texts, settings). Writes are atomic (temporary file, then
rename), so an interrupted run never leaves a half-written entry that a later run would trust.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

__all__ = ["atomic_write", "digest", "fingerprint", "Cache", "RowStore"]


def atomic_write(target: Path, write: Callable[[Path], None]) -> None:
    """Write ``target`` through ``write(temporary path)`` and a rename in the same folder: a reader
    sees the old file or the whole new one, never half of it (an interrupted run leaves none)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp" + target.suffix, dir=target.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def digest(obj: Any) -> str:
    """sha256 of a JSON-serialisable description (keys sorted, so dict order never matters)."""
    blob = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()


def fingerprint(kind: str, version: int, **parts: Any) -> str:
    """The key of a cached or trained result: what made it (``kind``, and the ``version`` its
    producer declares beside its code, bumped when the code changes what it computes) and everything
    it was computed from (``parts``)."""
    return digest({"kind": kind, "version": version, **parts})


class Cache:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, kind: str, key: str, ext: str) -> Path:
        return self.root / kind / f"{key[:32]}{ext}"

    def frame(self, kind: str, key: str, compute: Callable[[], pd.DataFrame]) -> tuple[pd.DataFrame, bool]:
        """(table, hit): load ``kind/key.parquet`` or compute and store it."""
        target = self.path(kind, key, ".parquet")
        if target.is_file():
            return pd.read_parquet(target), True
        value = compute()
        atomic_write(target, lambda p: value.to_parquet(p, index=False))
        return pd.read_parquet(target), False  # the same types a later hit will see


class RowStore:
    """Per-item arrays (e.g. one model's scores of single prompts) in append-only shards.

    Each item has a key (a digest of what it was computed from); ``get`` returns the rows of
    the asked keys, computing only the missing ones, which are written as one new shard. So
    overlapping requests (split A, then B's variations, then B's canonical prompts) never score a
    prompt twice, and an interrupted run keeps every shard it finished.
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self._index: dict[str, tuple[Path, int]] | None = None
        self._loaded: dict[Path, dict[str, np.ndarray]] = {}

    def _shard(self, path: Path) -> dict[str, np.ndarray]:
        if path not in self._loaded:
            with np.load(path) as z:
                self._loaded[path] = {k: z[k] for k in z.files}
        return self._loaded[path]

    def index(self) -> dict[str, tuple[Path, int]]:
        if self._index is None:
            self._index = {}
            for path in sorted(self.folder.glob("shard-*.npz")):
                try:
                    keys = self._shard(path)["_keys"]
                except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
                    # never read a damaged shard: say which, drop it, and its rows are computed again
                    print(f"relalign: {path} is damaged ({type(e).__name__}); its rows will be computed again",
                          file=sys.stderr, flush=True)
                    self._loaded.pop(path, None)
                    path.unlink()
                    continue
                for i, k in enumerate(keys):
                    self._index[str(k)] = (path, i)
        return self._index

    def get(self, keys: list[str], compute: Callable[[list[int]], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """Arrays stacked in the order of ``keys``. ``compute(positions)`` returns the arrays for
        the items at those positions of ``keys`` (only the first occurrence of a repeated key)."""
        index = self.index()
        first: dict[str, int] = {}
        for i, k in enumerate(keys):
            first.setdefault(k, i)
        missing = [i for k, i in first.items() if k not in index]
        if missing:
            new = compute(missing)
            new["_keys"] = np.array([keys[i] for i in missing])
            target = self.folder / f"shard-{digest(list(new['_keys']))[:24]}.npz"
            atomic_write(target, lambda p: np.savez(p, **new))
            self._loaded[target] = new
            for j, k in enumerate(new["_keys"]):
                index[str(k)] = (target, j)
        names = [n for n in self._shard(index[keys[0]][0]) if n != "_keys"]
        out = {}
        for n in names:
            out[n] = np.stack([self._shard(index[k][0])[n][index[k][1]] for k in keys])
        return out
