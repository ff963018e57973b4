"""Numeric answer parsing on a table of hard cases (GSM8K-style solutions)."""

import pytest

from relalign.answers import normalise_number, parse_number


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Natalia sold 48+24 = 72 clips.\n#### 72", "72"),
        ("#### 1,234", "1234"),
        ("so she paid $1,234.50 in total.\n#### $1,234.50", "1234.5"),
        ("The answer is 18.", "18"),
        ("The answer is: $42", "42"),
        ("Answer: 7.00", "7"),
        ("the answer is **15**", "15"),
        ("He has 3 apples and buys 4 more, so 7 apples.", "7"),
        ("The temperature drops to -5 degrees.", "-5"),
        ("#### -12", "-12"),
        ("It costs .5 dollars", "0.5"),
        ("The answer is 3, not 4.", "3"),
        ("First 10, then 20.\n#### 30\nThe answer is 99", "30"),  # "####" wins
        ("2 + 2 = 4. The answer is 4.\n\nQuestion: 5 + 5?", "4"),  # the stated answer, not the last number
        ("1000000", "1000000"),
        ("I do not know.", None),
        ("", None),
    ],
)
def test_parse_number(text, expected):
    assert parse_number(text) == expected


@pytest.mark.parametrize("raw,expected", [("$ 3", "3"), ("3.", "3"), ("0.250", "0.25"), ("1,000.0", "1000"), ("abc", None)])
def test_normalise_number(raw, expected):
    assert normalise_number(raw) == expected
