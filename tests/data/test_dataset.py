"""Expectations on input tables: schema inference and every data error."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from churnops.data.dataset import DataSpec, dataset_from_frame, load_dataset
from churnops.data.io import read_table
from churnops.errors import DataError

TELCO_NUMERIC = {"SeniorCitizen", "tenure", "MonthlyCharges", "TotalCharges"}


def test_real_telco_schema(telco_path):
    dataset = load_dataset(telco_path, DataSpec())
    assert dataset.rows == 5608
    assert dataset.classes == ("No", "Yes")
    schema = dataset.schema()
    assert {f.name for f in schema.numeric} == TELCO_NUMERIC
    assert schema.id_columns == ("customerID",)
    assert "customerID" not in schema.feature_names
    total = schema.feature("TotalCharges")
    assert total.missing_rate > 0  # the blank TotalCharges of new customers
    assert (
        dataset.X["TotalCharges"].isna().sum()
        == (read_table(telco_path)["TotalCharges"].str.strip() == "").sum()
    )
    contract = schema.feature("Contract")
    assert contract.kind == "categorical"
    assert set(contract.categories) == {"Month-to-month", "One year", "Two year"}
    assert schema.feature("tenure").minimum == 0


def test_the_real_data_expectations(telco_path):
    frame = read_table(telco_path)
    assert frame["customerID"].is_unique
    assert set(frame["Churn"]) == {"Yes", "No"}
    tenure = pd.to_numeric(frame["tenure"])
    assert tenure.between(0, 100).all()
    blank_total = frame["TotalCharges"].str.strip() == ""
    assert (tenure[blank_total] == 0).all()  # blank only for brand-new customers
    monthly = pd.to_numeric(frame["MonthlyCharges"])
    assert monthly.between(0, 200).all()


def _frame(**columns):
    return pd.DataFrame({k: pd.Series(v, dtype=object) for k, v in columns.items()})


def _load(frame, **spec):
    return dataset_from_frame(frame, DataSpec(**spec), source="t.csv", sha256="0" * 64)


def test_numeric_text_with_blanks_is_numeric():
    frame = _frame(
        a=["1.5", " ", "3", "4"], b=["x", "y", "x", "y"], Churn=["Yes", "No", "No", "Yes"]
    )
    dataset = _load(frame)
    assert dataset.kinds == {"a": "numeric", "b": "categorical"}
    assert math.isnan(dataset.X["a"].iloc[1])


@pytest.mark.parametrize(
    ("frame", "spec", "message"),
    [
        (_frame(a=[], Churn=[]), {}, "no rows"),
        (_frame(a=["1", "2"], y=["Yes", "No"]), {}, "target column 'Churn' not found"),
        (_frame(a=["1", "2"], Churn=["No", "No"]), {}, "single class ('No')"),
        (_frame(a=["1", "2"], Churn=["", ""]), {}, "is empty"),
        (_frame(a=["1", "2"], Churn=["0", "1"]), {}, "positive label 'Yes' never occurs"),
        (_frame(a=["1", "2", "3"], Churn=["Yes", "No", "Maybe"]), {}, "3 classes"),
        (
            _frame(a=["1", "2"], Churn=["Yes", "No"]),
            {"drop_columns": ("zz",)},
            "column to drop 'zz' not found",
        ),
        (_frame(Churn=["Yes", "No"]), {}, "no feature columns"),
    ],
)
def test_table_errors_name_the_problem(frame, spec, message):
    with pytest.raises(DataError, match=None) as info:
        _load(frame, **spec)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_file_errors(tmp_path):
    cases = {
        "missing.csv": (None, "data file not found"),
        "empty.csv": (b"", "file is empty"),
        "header.csv": (b"a,Churn\n", "header but no rows"),
        "binary.csv": (b"\xff\xfe\x00\x81garbage", "not UTF-8"),
        "bad.parquet": (b"not parquet", "cannot read PARQUET"),
        "table.xlsx": (b"", "unsupported file type"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        if content is not None:
            path.write_bytes(content)
        with pytest.raises(DataError) as info:
            load_dataset(path, DataSpec())
        assert message in str(info.value), name


def test_unlabelled_rows_are_left_out_with_a_note():
    dataset = _load(_frame(a=["1", "2", "3"], Churn=["Yes", "", "No"]))
    assert dataset.rows == 2
    assert any("without a Churn value" in note for note in dataset.notes)


def test_other_table_other_target_and_label():
    frame = _frame(
        account=["A1", "A2", "A3", "A4"],
        plan=["basic", "pro", "basic", "pro"],
        spend=["10", "20", "", "40"],
        left=["gone", "stayed", "stayed", "gone"],
    )
    dataset = _load(frame, target="left", positive_label="gone", id_columns=("account",))
    assert dataset.classes == ("gone", "stayed")
    assert dataset.kinds == {"plan": "categorical", "spend": "numeric"}


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.none(),
            st.sampled_from(["", " ", "\t", "Yes", "No", " Yes", "1", "1.0", "True"]),
            st.text(max_size=5),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_text_columns_become_the_categories_the_rule_gives(values):
    from churnops.data.cleaning import _categorical, to_categories

    column = pd.Series(values, dtype="str")
    fast = _categorical(column)
    by_rule = pd.Categorical(to_categories(column))
    assert list(fast.categories) == list(by_rule.categories)
    assert fast.codes.tolist() == by_rule.codes.tolist()
