"""The fast encoders agree with the one set of encoding rules, value for value.

The rules are :func:`churnops.schema.parse_number` and :func:`churnops.schema.as_category`.
Their fast variants — ``FeatureLayout.encode_records`` (the API), ``FeatureLayout.encode_columns``
fed numpy, pandas or Arrow columns (batch scoring), and ``to_numeric`` / ``to_categories``
(training) — must give the same numbers, the same problems (record and field) and the same
warnings as the rules applied one value at a time (``_by_the_rules`` below).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from churnops.data.cleaning import to_categories, to_numeric
from churnops.errors import RecordError
from churnops.inference.layout import (
    MAX_PROBLEMS,
    CategoricalColumn,
    FeatureLayout,
    NumericColumn,
    unseen_category,
)
from churnops.schema import (
    BLANK_CHARS,
    MAX_NUMBER_CHARS,
    MAX_TEXT_CHARS,
    NotANumberError,
    as_category,
    parse_number,
)

LAYOUT = FeatureLayout(
    numeric=(NumericColumn("charges", True), NumericColumn("tenure", False)),
    categorical=(
        CategoricalColumn("contract", ("1", "1.5", "No", "True", "Yes"), True, True),
        CategoricalColumn("plan", ("0", "Basic", "False"), True, False),
        CategoricalColumn("gender", ("Female", "Male"), False, False),
    ),
)
NAMES = [c.name for c in LAYOUT.numeric] + [c.name for c in LAYOUT.categorical]
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

WHITE = BLANK_CHARS + "\u00a0\u2003\x1c\u3000"
TRICKY_TEXT = [
    "",
    " ",
    "\t",
    " \n\r\f\v",
    "\u00a0",
    "12",
    " 12 ",
    "\t70.35\n",
    "1.",
    ".5",
    "+1",
    "-0",
    "1e5",
    "1E-05",
    "9.9e99",
    "1e300",
    "1e309",
    "1_0",
    "٣",
    "１２",
    "0x10",
    "nan",
    "NaN",
    "inf",
    "-Infinity",
    "twelve",
    "1,5",
    "1.5.",
    "e5",
    ".",
    "-",
    "Yes",
    "No",
    "yes",
    " Yes",
    "True",
    "False",
    "1",
    "1.5",
    "0",
    "Basic",
    "Male",
    "Female",
    "Three year",
    "1" * MAX_NUMBER_CHARS,
    "1" * (MAX_NUMBER_CHARS + 1),
    " " * MAX_NUMBER_CHARS + "1",
    " " * (MAX_NUMBER_CHARS + 1),
    "0" * (MAX_NUMBER_CHARS - 1) + "7",
    "x" * MAX_TEXT_CHARS,
    "x" * (MAX_TEXT_CHARS + 1),
    " " * (MAX_TEXT_CHARS + 1),
]

texts = st.one_of(
    st.sampled_from(TRICKY_TEXT),
    st.text(alphabet=st.sampled_from("0123456789+-.eE_ ٣" + WHITE + "aY"), max_size=12),
    st.builds(
        lambda pad, number, pad2: pad + number + pad2,
        st.text(alphabet=st.sampled_from(WHITE), max_size=3),
        st.one_of(
            st.integers(-(10**25), 10**25).map(str),
            st.floats(allow_nan=True, allow_infinity=True).map(repr),
            st.floats(allow_nan=False, allow_infinity=False).map(lambda x: f"{x:.3e}"),
        ),
        st.text(alphabet=st.sampled_from(WHITE), max_size=3),
    ),
    st.text(max_size=8),
)
# JSON-ish values: what a parsed JSON body or a table cell can hold. Integers stay within
# float64's range: parse_number(10**400) raises OverflowError, a gap of the rule itself.
json_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, 1, 0.0, -0.0, 1.0, 1.5, math.nan, math.inf, -math.inf, 1e300]),
    st.floats(allow_nan=True, allow_infinity=True),
    texts,
)


def _by_the_rules(columns: dict[str, list[Any]], rows: int) -> tuple[np.ndarray, list, dict]:
    """The matrix, problems and warnings the rules give, one value at a time, record by record."""
    matrix = np.zeros((rows, LAYOUT.width))
    problems: list[dict[str, object]] = []
    warnings: dict[int, list[str]] = {}
    for i in range(rows):
        for j, numeric in enumerate(LAYOUT.numeric):
            try:
                number = parse_number(columns[numeric.name][i])
            except NotANumberError as exc:
                problems.append({"record": i, "field": numeric.name, "problem": str(exc)})
                continue
            if math.isnan(number) and not numeric.allows_missing:
                problems.append(
                    {"record": i, "field": numeric.name, "problem": "a value is required"}
                )
            matrix[i, j] = number
        offset = len(LAYOUT.numeric)
        for column in LAYOUT.categorical:
            try:
                category = as_category(columns[column.name][i])
            except TypeError as exc:
                problems.append({"record": i, "field": column.name, "problem": str(exc)})
                category = None
            else:
                if category is None and not column.allows_missing:
                    problems.append(
                        {"record": i, "field": column.name, "problem": "a value is required"}
                    )
            if category is None:
                if column.missing_is_category:
                    matrix[i, offset + len(column.categories)] = 1.0
            elif category in column.categories:
                matrix[i, offset + column.categories.index(category)] = 1.0
            else:
                warnings.setdefault(i, []).append(unseen_category(column, category))
            offset += column.width
    return matrix, problems[:MAX_PROBLEMS], warnings


def _outcome(encode: Any) -> tuple[np.ndarray | None, list, dict]:
    try:
        encoded = encode()
    except RecordError as exc:
        return None, exc.problems, {}
    return encoded.matrix, [], encoded.warnings


def _assert_agrees(encode: Any, columns: dict[str, list[Any]], rows: int) -> None:
    matrix, problems, warnings = _outcome(encode)
    expected_matrix, expected_problems, expected_warnings = _by_the_rules(columns, rows)
    assert problems == expected_problems
    if not expected_problems:
        assert matrix is not None
        np.testing.assert_array_equal(matrix, expected_matrix)
        assert warnings == expected_warnings


def _objects(values: list[Any]) -> np.ndarray:
    return np.fromiter(values, dtype=object, count=len(values))


def _table(values: st.SearchStrategy[Any], max_rows: int = 30) -> st.SearchStrategy[Any]:
    """(columns of equal length, row count): each column drawn from ``values``."""
    return st.integers(1, max_rows).flatmap(
        lambda n: st.tuples(
            st.fixed_dictionaries(
                {name: st.lists(values, min_size=n, max_size=n) for name in NAMES}
            ),
            st.just(n),
        )
    )


@SETTINGS
@given(_table(json_values))
@example(({"charges": [True, 1], "tenure": [1, 1], "contract": [True, 1], "plan": [0, False],
           "gender": ["Male", "Male"]}, 2))  # fmt: skip
def test_records_agree_with_the_rules(table):
    columns, rows = table
    records = [{name: columns[name][i] for name in NAMES} for i in range(rows)]
    _assert_agrees(lambda: LAYOUT.encode_records(records), columns, rows)


@SETTINGS
@given(_table(json_values))
@example(({"charges": [True, 1], "tenure": [1, 1], "contract": [True, 1], "plan": [0, False],
           "gender": ["Male", "Male"]}, 2))  # fmt: skip
@example(({"charges": ["1" * 101, " " * 101], "tenure": [1, 2], "contract": [None, math.nan],
           "plan": [None, None], "gender": [None, None]}, 2))  # fmt: skip
def test_object_columns_agree_with_the_rules(table):
    columns, rows = table
    as_numpy = {name: _objects(values) for name, values in columns.items()}
    _assert_agrees(lambda: LAYOUT.encode_columns(as_numpy, rows), columns, rows)
    as_pandas = {name: pd.Series(values, dtype=object) for name, values in columns.items()}
    _assert_agrees(lambda: LAYOUT.encode_columns(as_pandas, rows), columns, rows)


@SETTINGS
@given(_table(st.one_of(st.none(), texts)))
@example(({"charges": ["1" * 101, " " * 101], "tenure": ["1", "2"], "contract": [None, "x"],
           "plan": ["", " "], "gender": ["Male", "Male"]}, 2))  # fmt: skip
def test_text_columns_agree_with_the_rules(table):
    """Text as files give it: Arrow strings (pandas' default), numpy text, objects."""
    columns, rows = table
    for make in (
        lambda v: pd.Series(v, dtype="str"),
        lambda v: pd.Series(v, dtype=pd.ArrowDtype(pa.string())),
        lambda v: pa.chunked_array([pa.array(v[:1], pa.string()), pa.array(v[1:], pa.string())]),
        _objects,
    ):
        fed = {name: make(values) for name, values in columns.items()}
        _assert_agrees(lambda fed=fed: LAYOUT.encode_columns(fed, rows), columns, rows)
    if not any(v is None for values in columns.values() for v in values):
        as_unicode = {name: np.array(values, dtype=str) for name, values in columns.items()}
        python = {name: array.tolist() for name, array in as_unicode.items()}  # numpy's text
        _assert_agrees(lambda: LAYOUT.encode_columns(as_unicode, rows), python, rows)


PLAIN_NUMBERS = st.one_of(
    st.integers(-(10**15), 10**15).map(str),
    st.floats(-1e15, 1e15).map(lambda x: f"{x:.6f}"),
    st.sampled_from(["", " ", " 70.35\t", "+1", "-0", ".5", "-.5", "1.", "007"]),
)
# What Arrow's cast reads but the rule refuses, and what it cannot read.
ODD_NUMBERS = ["inf", "-Infinity", "nan", "NaN", "nan(1)", "1e100", "0e100", "1E5", "1e-05",
               "1_0", "٣", "0x10", "1,5", "1" * (MAX_NUMBER_CHARS + 1), "twelve"]  # fmt: skip


@SETTINGS
@given(st.data())
def test_text_columns_of_plain_numbers_agree_with_the_rules(data):
    """Columns of numbers as text, read by Arrow's cast alone, with at most one odd cell."""
    rows = data.draw(st.integers(1, 30))
    columns = {
        name: data.draw(st.lists(PLAIN_NUMBERS, min_size=rows, max_size=rows)) for name in NAMES
    }
    odd = data.draw(st.one_of(st.none(), st.sampled_from(ODD_NUMBERS), texts))
    if odd is not None:
        columns["charges"][data.draw(st.integers(0, rows - 1))] = odd
    fed = {name: pa.array(values, pa.string()) for name, values in columns.items()}
    _assert_agrees(lambda: LAYOUT.encode_columns(fed, rows), columns, rows)


@pytest.mark.parametrize("odd", ODD_NUMBERS)
def test_only_plain_number_text_skips_the_pattern(odd):
    from churnops.inference.layout import _parse_plain, _parse_text

    def plain(values):
        text = pa.array(values, pa.string())
        trimmed = pc.utf8_trim(text, characters=BLANK_CHARS)
        short = pc.less_equal(pc.utf8_length(text), MAX_NUMBER_CHARS)
        return _parse_plain(trimmed, pc.equal(trimmed, ""), short)

    values = ["12", " 70.35 ", "", None, "-.5", "1."]
    np.testing.assert_array_equal(plain(values), [12, 70.35, np.nan, np.nan, -0.5, 1.0])
    assert plain([*values, odd]) is None  # the pattern and the rule decide
    numbers, left = _parse_text(pa.array([*values, odd], pa.string()))
    np.testing.assert_array_equal(numbers[:6], [12, 70.35, np.nan, np.nan, -0.5, 1.0])
    assert left.tolist() == ([6] if odd not in ("1E5", "1e-05") else [])


@SETTINGS
@given(
    _table(
        st.one_of(
            st.integers(-(2**40), 2**40),
            st.floats(allow_nan=True, allow_infinity=True),
            st.sampled_from([0.0, 1.0, 1.5, math.nan]),
        ),
    ),
    st.sampled_from([np.float64, np.float32, np.int64, bool]),
)
def test_numpy_number_columns_agree_with_the_rules(table, dtype):
    columns, rows = table
    typed = {}
    for name, values in columns.items():
        with np.errstate(all="ignore"):
            array = np.array(values, dtype=np.float64)
            if dtype is not np.float64 and dtype is not np.float32:
                array = np.nan_to_num(array, nan=0.0, posinf=7.0, neginf=-7.0)
            typed[name] = array.astype(dtype)
    # What the rules read: each cell as a Python value.
    python = {name: array.tolist() for name, array in typed.items()}
    _assert_agrees(lambda: LAYOUT.encode_columns(typed, rows), python, rows)


def _rule_or_error(rule: Any, values: list[Any]) -> tuple[str, Any]:
    out = []
    for value in values:
        try:
            out.append(rule(value))
        except (TypeError, ValueError) as exc:
            return type(exc).__name__, str(exc)
    return "ok", out


@SETTINGS
@given(st.lists(json_values, max_size=20))
@example([math.nan, "1"])
@example([1.0, "a"])
@example([math.inf])
def test_training_cleaners_agree_with_the_rules(values):
    for fed in (values, _objects(values), pd.Series(values, dtype=object)):
        expected = _rule_or_error(parse_number, values)
        try:
            got: tuple[str, Any] = ("ok", to_numeric(fed).tolist())
        except (TypeError, ValueError) as exc:
            got = (type(exc).__name__, str(exc))
        assert _same(got, expected)
        expected = _rule_or_error(as_category, values)
        try:
            got = ("ok", [None if v is np.nan else v for v in to_categories(fed)])
        except (TypeError, ValueError) as exc:
            got = (type(exc).__name__, str(exc))
        assert got == expected


@pytest.mark.parametrize("dtype", [np.float64, np.int64, np.float32])
def test_training_cleaners_of_number_arrays(dtype):
    values = np.array([0, 1, 2.5, -3], dtype=dtype)
    assert to_numeric(values).tolist() == [parse_number(v) for v in values.tolist()]
    assert to_categories(values).tolist() == [as_category(v) for v in values.tolist()]
    with pytest.raises(NotANumberError, match="finite"):
        to_numeric(np.array([1.0, math.inf]))


def _same(got: tuple[str, Any], expected: tuple[str, Any]) -> bool:
    if got[0] != expected[0]:
        return False
    if got[0] != "ok":
        return bool(got[1] == expected[1])
    return bool(np.array_equal(np.array(got[1]), np.array(expected[1]), equal_nan=True))


def test_problems_are_listed_record_by_record_and_capped():
    rows = 30
    columns = {
        "charges": ["x"] * rows,
        "tenure": [None] * rows,
        "contract": ["Yes"] * rows,
        "plan": ["Basic"] * rows,
        "gender": [None] * rows,
    }
    for fed in (columns, {n: _objects(v) for n, v in columns.items()}):
        with pytest.raises(RecordError) as raised:
            LAYOUT.encode_columns(fed, rows)
        assert [(p["record"], p["field"]) for p in raised.value.problems] == [
            (i, field) for i in range(7) for field in ("charges", "tenure", "gender")
        ][:MAX_PROBLEMS]


# -- records read field by field (large API batches) agree with records read one by one ------

known_or_not = st.one_of(
    st.sampled_from(["1", "1.5", "No", "True", "Yes", "0", "Basic", "False", "Female", "Male"]),
    st.sampled_from(["", " ", "\t", "Maybe", "yes", " Yes", "x" * 50]),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([1.0, 1.5, 0.0, -0.0, math.nan]),
    st.none(),
)
number_like = st.one_of(
    st.integers(-(2**60), 2**60),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["12", " 70.35 ", "1e5", "-0", ".5", "1."]),
)
may_be_missing = st.one_of(number_like, st.sampled_from([None, "", " ", math.nan]))


def _valid_records(rows: int) -> st.SearchStrategy[list[dict[str, Any]]]:
    """Records every field of which the rules accept: numbers (plain or text), blanks where
    allowed, known and unseen categories, numbers and booleans as categories."""
    record = st.fixed_dictionaries(
        {
            "charges": may_be_missing,
            "tenure": number_like,
            "contract": known_or_not,
            "plan": known_or_not,
            "gender": st.sampled_from(["Female", "Male", "Other", 1, True]),
        },
        optional={"customerID": st.text(max_size=4)},
    )
    return st.lists(record, min_size=rows, max_size=rows)


@SETTINGS
@given(st.integers(1, 40).flatmap(_valid_records))
def test_field_by_field_gives_what_record_by_record_gives(records):
    fieldwise = LAYOUT._encode_fields(records)
    assert fieldwise is not None  # every value is accepted: the fast path must take the batch
    one_by_one = [LAYOUT.encode_records([r]) for r in records]
    expected = np.vstack([e.matrix for e in one_by_one])
    np.testing.assert_array_equal(fieldwise.matrix, expected)
    assert fieldwise.matrix.flags.c_contiguous
    assert fieldwise.warnings == {i: e.warnings[0] for i, e in enumerate(one_by_one) if e.warnings}
    columns = {name: [r[name] for r in records] for name in NAMES}
    _assert_agrees(lambda: LAYOUT._encode_fields(records), columns, len(records))


@SETTINGS
@given(_table(json_values, max_rows=40))
def test_field_by_field_agrees_with_the_rules_or_leaves_the_batch_to_them(table):
    columns, rows = table
    records = [{name: columns[name][i] for name in NAMES} for i in range(rows)]
    fieldwise = LAYOUT._encode_fields(records)
    expected_matrix, expected_problems, expected_warnings = _by_the_rules(columns, rows)
    if fieldwise is None:  # only a batch with a problem goes back to the record loop
        assert expected_problems
    else:
        assert not expected_problems
        np.testing.assert_array_equal(fieldwise.matrix, expected_matrix)
        assert fieldwise.warnings == expected_warnings
    # Whichever path encode_records takes, the outcome is the rules' outcome.
    _assert_agrees(lambda: LAYOUT.encode_records(records), columns, rows)


def test_field_by_field_leaves_non_objects_and_missing_fields_to_the_record_loop():
    good = {"charges": 1, "tenure": 2, "contract": "Yes", "plan": "Basic", "gender": "Male"}
    assert LAYOUT._encode_fields([good] * 3) is not None
    assert LAYOUT._encode_fields([good, [1, 2], good]) is None
    assert LAYOUT._encode_fields([good, {k: v for k, v in good.items() if k != "plan"}]) is None
    assert LAYOUT._encode_fields([good, {**good, "plan": ["a"]}]) is None
    assert LAYOUT._encode_fields([good, {**good, "tenure": 10**400}]) is None
    with pytest.raises(RecordError) as raised:
        LAYOUT.encode_records([good] * 20 + [{**good, "tenure": True}])
    assert raised.value.problems == [
        {"record": 20, "field": "tenure", "problem": "expected a number, got a boolean"}
    ]


@pytest.mark.parametrize(
    ("layout", "values"),
    [
        (FeatureLayout((), (CategoricalColumn("plan", ("Basic", "Pro"), True, True),)),
         ["Basic", "Pro", None, " Pro", "Gold"]),
        (FeatureLayout((NumericColumn("tenure", True),), ()), [1, "2", None, 3.5, " 4 "]),
    ],
)  # fmt: skip
def test_field_by_field_with_a_single_field(layout, values):
    """One field: its values are read as values (not as sequences of characters)."""
    records = [{layout.fields[0]: values[i % len(values)]} for i in range(20)]
    fieldwise = layout._encode_fields(records)
    assert fieldwise is not None
    whole = [layout.encode_records([r]) for r in records]  # one record: the record loop
    assert np.array_equal(fieldwise.matrix, np.vstack([e.matrix for e in whole]), equal_nan=True)
    assert fieldwise.warnings == {i: e.warnings[0] for i, e in enumerate(whole) if e.warnings}


def test_columns_read_and_blocks_written_in_threads_give_what_one_thread_gives(monkeypatch):
    from churnops.inference import layout as layout_module

    rows = 3000
    rng = np.random.default_rng(5)
    pool = ["Yes", "No", "True", "1", "Maybe", None, "", 1, 1.5, True]
    columns = {
        "charges": pd.Series(rng.choice(["1.5", " 2 ", "", "x", "1e5"], rows), dtype="str"),
        "tenure": rng.integers(0, 70, rows).astype(np.float64),
        "contract": _objects([pool[k] for k in rng.integers(0, len(pool), rows)]),
        "plan": pd.Series(rng.choice(["Basic", "0", "Other", ""], rows), dtype="str"),
        "gender": pd.Series(rng.choice(["Male", "Female", "X"], rows), dtype="str"),
    }
    monkeypatch.setattr(layout_module, "_PARALLEL_ROWS", 10**9)
    one = _outcome(lambda: LAYOUT.encode_columns(columns, rows))
    monkeypatch.setattr(layout_module, "_PARALLEL_ROWS", 1)
    threads = _outcome(lambda: LAYOUT.encode_columns(columns, rows))
    assert one[1] == threads[1]
    assert one[1]
    good = {**columns, "charges": columns["charges"].where(columns["charges"] != "x", "2")}
    monkeypatch.setattr(layout_module, "_PARALLEL_ROWS", 10**9)
    one = _outcome(lambda: LAYOUT.encode_columns(good, rows))
    monkeypatch.setattr(layout_module, "_PARALLEL_ROWS", 1)
    monkeypatch.setattr(layout_module, "_BLOCK_ROWS", 257)  # 12 blocks, the last one short
    threads = _outcome(lambda: LAYOUT.encode_columns(good, rows))
    assert one[0] is not None
    assert threads[0] is not None
    np.testing.assert_array_equal(one[0], threads[0])
    assert list(one[2].items()) == list(threads[2].items())
    assert one[2]
