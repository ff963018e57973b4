"""Prompt rendering and the K prompt variations of a question.

A question is shown to a model as an instruction, the question text and its options listed
under letters, ending in "Answer:". A *variation* is an order of the options (and, for
datasets whose adapter asks for it, another template): the reference asks the weak model the
same question K times with the options permuted, and identifies each answer by the option's
text, so answers to different permutations are comparable.

Variation 0 is always the canonical prompt (the dataset's own option order): the naive
baseline's weak label is the weak model's answer to it.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from typing import Sequence

LETTERS = "ABCDEFGHIJ"
STYLES = ("letters", "words", "open")


class DuplicateChoices(ValueError):
    """Two options of a question have the same text, so answers cannot be told apart by text."""


@dataclass(frozen=True)
class Question:
    """One example of a dataset, whatever its source.

    ``choices`` are the answer options in the dataset's own order and ``answer`` the index of
    the right one. ``instruction`` is the line the adapter puts above the question.
    """

    qid: str
    text: str
    choices: tuple[str, ...]
    answer: int  # index of the right choice (-1 for an open question)
    instruction: str = ""
    # How the options are shown: "letters" lists them under A., B., ... and the answer is a
    # letter; "words" names them inside the ``ask`` line (a format string with one ``{}`` per
    # option, e.g. "Is this {} or {}?") and the answer is the option's own word.
    style: str = "letters"
    ask: str = ""
    # style "open" (free-text answers, GSM8K): no options; the worked solution and its final answer
    solution: str = ""
    final: str = ""

    def __post_init__(self):
        if self.style == "open":
            if self.choices or self.answer != -1 or not self.solution or not self.final:
                raise ValueError(f"question {self.qid}: an open question has no choices, and needs a solution and a final answer")
            return
        if len(self.choices) < 2:
            raise ValueError(f"question {self.qid}: needs at least two choices")
        if not 0 <= self.answer < len(self.choices):
            raise ValueError(f"question {self.qid}: answer index {self.answer} out of range")
        if self.style not in STYLES:
            raise ValueError(f"question {self.qid}: unknown style {self.style!r} (known: {', '.join(STYLES)})")
        if self.style == "words" and self.ask.count("{}") != len(self.choices):
            raise ValueError(f"question {self.qid}: the ask line needs one '{{}}' per option, got {self.ask!r}")
        if len(set(self.choices)) != len(self.choices):
            raise DuplicateChoices(f"question {self.qid}: choices are not distinct, so answers cannot be identified by text")


@dataclass(frozen=True)
class Prompt:
    """A rendered prompt: text, where each listed option stands in it, and which choice it is."""

    text: str
    order: tuple[int, ...]  # order[j] = index (in question.choices) of the option listed j-th
    option_spans: tuple[tuple[int, int], ...]  # character span of the j-th listed option's text
    letters: tuple[str, ...]
    listed: tuple[str, ...]  # option texts in listing order
    qid: str = ""  # the question it was rendered from

    def answer_text(self, position: int) -> str:
        """What a model writes to give the option listed at ``position``: " B. <text>" for a
        lettered listing, " <word>" for named options."""
        if self.letters[position] == self.listed[position]:
            return f" {self.listed[position]}"
        return f" {self.letters[position]}. {self.listed[position]}"

    def position_of(self, choice: int) -> int:
        """Where choice ``choice`` (an index into question.choices) stands in this listing."""
        return self.order.index(choice)


def render_open(question: Question, template: str) -> Prompt:
    """An open question in ``template`` (a format string with ``{question}``); no options."""
    text = template.format(question=question.text.strip())
    if question.instruction:
        text = question.instruction + "\n" + text
    return Prompt(text=text, order=(), option_spans=(), letters=(), listed=(), qid=question.qid)


def render(question: Question, order: Sequence[int] | None = None) -> Prompt:
    """Render ``question`` with its choices listed in ``order`` (default: the dataset's order)."""
    if question.style == "open":
        raise ValueError(f"question {question.qid}: an open question is rendered with a template (render_open)")
    order = tuple(range(len(question.choices))) if order is None else tuple(order)
    if sorted(order) != list(range(len(question.choices))):
        raise ValueError(f"question {question.qid}: {order} is not a permutation of its choices")
    text = (question.instruction + "\n") if question.instruction else ""
    text += question.text.strip() + "\n"
    listed = tuple(question.choices[c] for c in order)
    spans = []
    if question.style == "words":
        # The options are named inside the ask line, in the variation's order; the answer is the word.
        pieces = question.ask.split("{}")
        for j, word in enumerate(listed):
            text += pieces[j]
            spans.append((len(text), len(text) + len(word)))
            text += word
        text += pieces[-1] + "\n"
        letters = listed
    else:
        letters = tuple(LETTERS[j] for j in range(len(order)))
        for j, option in enumerate(listed):
            text += f"{letters[j]}. "
            spans.append((len(text), len(text) + len(option)))
            text += option + "\n"
    text += "Answer:"
    return Prompt(
        text=text,
        order=order,
        option_spans=tuple(spans),
        letters=tuple(letters),
        listed=listed,
        qid=question.qid,
    )


def permutation_variations(n_choices: int, k: int, rng: random.Random) -> list[tuple[int, ...]]:
    """``k`` distinct orders of ``n_choices`` options; the first is the canonical order."""
    identity = tuple(range(n_choices))
    total = 1
    for i in range(2, n_choices + 1):
        total *= i
    if k > total:
        raise ValueError(f"cannot make {k} distinct orders of {n_choices} options (only {total} exist)")
    if total <= 5040:
        others = [p for p in itertools.permutations(identity) if p != identity]
        return [identity] + rng.sample(others, k - 1)
    seen = {identity}
    out = [identity]
    while len(out) < k:
        p = list(identity)
        rng.shuffle(p)
        if tuple(p) not in seen:
            seen.add(tuple(p))
            out.append(tuple(p))
    return out
