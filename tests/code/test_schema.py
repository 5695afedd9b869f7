"""One definition of a number for training, validation and scoring."""

from __future__ import annotations

import math

import pytest

from churnops.schema import NotANumberError, parse_number


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1, 1.0), (29.85, 29.85), ("1637.3", 1637.3), (" 42 ", 42.0), ("-1e3", -1000.0), (".5", 0.5)],
)
def test_numbers(value, expected):
    assert parse_number(value) == expected


@pytest.mark.parametrize("value", [None, "", "   "])
def test_missing(value):
    assert math.isnan(parse_number(value))


@pytest.mark.parametrize("value", [True, "abc", "nan", "inf", "1,000", float("inf"), [1], {}])
def test_not_numbers(value):
    with pytest.raises(NotANumberError):
        parse_number(value)
