"""Parsing free-text answers (GSM8K-style maths): the final number of a worked solution.

The reference parsed the first few generated tokens and scored answers with "$", "," or many
digits as wrong (method.md, defect 3). Here a number is normalised ("$1,234.50" -> "1234.5",
"12.0" -> "12", "-3" -> "-3") and taken, in order of preference, from "#### N", from "the answer
is N", or else from the last number in the text. No torch import.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

__all__ = ["final_line_complete", "normalise_number", "parse_number", "trim_after_final"]

# a number: optional sign and currency, digits with optional thousands separators, optional decimals
_NUMBER = r"-?\$?\s?-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|-?\$?\s?-?\.\d+"
_FINAL = re.compile(r"####\s*(" + _NUMBER + ")")
_ANSWER_IS = re.compile(r"answer\s*(?:is|:|=)\s*[:=]?\s*\**\s*(" + _NUMBER + ")", re.IGNORECASE)
_ANY = re.compile(_NUMBER)


def normalise_number(text: str) -> str | None:
    """A number's canonical text ("$1,234.50" -> "1234.5", "7.00" -> "7"), or None if it is not one."""
    t = text.strip().replace("$", "").replace(",", "").replace(" ", "")
    negative = t.count("-") % 2 == 1
    t = t.replace("-", "")
    if t.endswith("."):
        t = t[:-1]
    try:
        d = Decimal(t)
    except InvalidOperation:
        return None
    if not d.is_finite():
        return None
    if negative:
        d = -d
    if d == d.to_integral_value():
        return str(int(d))
    return format(d.normalize(), "f")


def parse_number(text: str) -> str | None:
    """The final answer of a worked solution as a canonical number string, or None if the text
    holds no number. "#### N" wins over "The answer is N", which wins over the last number."""
    if not text:
        return None
    for pattern in (_FINAL, _ANSWER_IS):
        m = pattern.search(text)
        if m:
            return normalise_number(m.group(1))
    numbers = _ANY.findall(text)
    return normalise_number(numbers[-1]) if numbers else None


def trim_after_final(text: str) -> str:
    """A generated solution cut after its "#### N" line (a model often goes on with another
    question); the text the strong model is trained to write."""
    m = _FINAL.search(text)
    if m:
        return text[: m.end()].strip()
    return text.strip()


def final_line_complete(text: str) -> bool:
    """Whether ``text`` holds a "#### N" whose line has ended: nothing written after that newline
    can change :func:`parse_number` or :func:`trim_after_final` of the text, so generation can stop
    there (a number cannot run on past a newline; "#### 1,2" with no newline yet might still
    become "#### 1,234")."""
    m = _FINAL.search(text)
    return bool(m) and "\n" in text[m.end():]
