"""The embedded synthetic customers look like the Telco table they stand in for."""

from __future__ import annotations

import pandas as pd
import pytest

from churnops.data.dataset import synthetic_dataset
from churnops.data.io import read_table
from churnops.data.sample import COLUMNS, generate_customers
from churnops.errors import DataError

EXPECTED_COLUMNS = [
    "customerID", "gender", "SeniorCitizen", "Partner", "Dependents", "tenure", "PhoneService",
    "MultipleLines", "InternetService", "OnlineSecurity", "OnlineBackup", "DeviceProtection",
    "TechSupport", "StreamingTV", "StreamingMovies", "Contract", "PaperlessBilling",
    "PaymentMethod", "MonthlyCharges", "TotalCharges", "Churn",
]  # fmt: skip
INTERNET_ADD_ONS = EXPECTED_COLUMNS[9:15]


@pytest.fixture(scope="module")
def customers() -> pd.DataFrame:
    return generate_customers(20_000, seed=11)


def test_columns_are_telcos(customers, telco_path):
    assert list(customers.columns) == EXPECTED_COLUMNS == list(COLUMNS)
    assert list(read_table(telco_path).columns) == EXPECTED_COLUMNS


def test_values_are_text_and_categories_are_telcos(customers, telco_path):
    real = read_table(telco_path)
    numeric = {"customerID", "tenure", "MonthlyCharges", "TotalCharges"}
    for column in EXPECTED_COLUMNS:
        assert all(isinstance(v, str) for v in customers[column].head(100)), column
        if column not in numeric:
            assert set(customers[column]) <= set(real[column]), column
    assert customers["customerID"].str.fullmatch(r"\d{4}-[A-Z]{5}").all()
    assert customers["customerID"].is_unique


def test_seeded_and_deterministic():
    pd.testing.assert_frame_equal(generate_customers(500, seed=3), generate_customers(500, seed=3))
    assert not generate_customers(500, seed=3).equals(generate_customers(500, seed=4))


def test_total_charges_follow_tenure_and_monthly_charges(customers):
    new = customers["tenure"] == "0"
    assert new.any()
    assert (customers.loc[new, "TotalCharges"].str.strip() == "").all()
    rest = customers.loc[~new]
    total = pd.to_numeric(rest["TotalCharges"])
    expected = pd.to_numeric(rest["tenure"]) * pd.to_numeric(rest["MonthlyCharges"])
    assert ((total / expected - 1).abs() < 0.15).all()


def test_service_columns_are_consistent(customers):
    no_internet = customers["InternetService"] == "No"
    for column in INTERNET_ADD_ONS:
        assert ((customers[column] == "No internet service") == no_internet).all(), column
    no_phone = customers["PhoneService"] == "No"
    assert ((customers["MultipleLines"] == "No phone service") == no_phone).all()


def test_churn_rate_and_directions(customers):
    churned = customers["Churn"] == "Yes"
    assert 0.15 < churned.mean() < 0.40
    by_contract = churned.groupby(customers["Contract"]).mean()
    assert by_contract["Month-to-month"] > by_contract["One year"] > by_contract["Two year"]
    by_internet = churned.groupby(customers["InternetService"]).mean()
    assert by_internet["Fiber optic"] > by_internet["DSL"]
    tenure = pd.to_numeric(customers["tenure"])
    assert tenure[churned].mean() < tenure[~churned].mean()


def test_inferred_schema_matches_telco():
    dataset = synthetic_dataset(2000, seed=1)
    assert dataset.synthetic
    schema = dataset.schema()
    assert {f.name for f in schema.numeric} == {
        "SeniorCitizen", "tenure", "MonthlyCharges", "TotalCharges",
    }  # fmt: skip
    assert schema.id_columns == ("customerID",)
    assert len(schema.categorical) == 15


def test_rows_must_be_positive():
    with pytest.raises(DataError, match="at least 1"):
        generate_customers(0)
