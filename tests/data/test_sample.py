"""The embedded synthetic customers look like the Telco table they stand in for."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churnops.data.dataset import synthetic_dataset
from churnops.data.io import read_table
from churnops.data.sample import COLUMNS, generate_customers
from churnops.errors import DataError

REAL_TELCO = (
    Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "telco-churn-train.csv"
)
EXPECTED_COLUMNS = [
    "customerID", "gender", "SeniorCitizen", "Partner", "Dependents", "tenure", "PhoneService",
    "MultipleLines", "InternetService", "OnlineSecurity", "OnlineBackup", "DeviceProtection",
    "TechSupport", "StreamingTV", "StreamingMovies", "Contract", "PaperlessBilling",
    "PaymentMethod", "MonthlyCharges", "TotalCharges", "Churn",
]  # fmt: skip
NUMERIC = ["SeniorCitizen", "tenure", "MonthlyCharges", "TotalCharges"]
CATEGORICAL = [c for c in EXPECTED_COLUMNS if c not in {"customerID", "Churn", *NUMERIC}]
INTERNET_ADD_ONS = [
    "OnlineSecurity", "OnlineBackup", "DeviceProtection", "TechSupport", "StreamingTV",
    "StreamingMovies",
]  # fmt: skip
# An amount as the Telco file writes it: no trailing zeros, at most two decimals.
AMOUNT = r"\d+(?:\.\d?[1-9])?"


@pytest.fixture(scope="module")
def customers() -> pd.DataFrame:
    return generate_customers(20_000, seed=11)


@pytest.fixture(scope="module")
def real() -> pd.DataFrame:
    if not REAL_TELCO.is_file():
        pytest.skip(f"real Telco data not found at {REAL_TELCO}")
    return read_table(REAL_TELCO)


def _churn_rate_by(frame: pd.DataFrame, column: str) -> pd.Series:
    return frame["Churn"].eq("Yes").groupby(frame[column]).mean()


def test_columns_are_telcos_in_order(customers):
    assert list(customers.columns) == EXPECTED_COLUMNS
    assert list(COLUMNS) == EXPECTED_COLUMNS


def test_columns_equal_the_real_header(customers, real):
    assert list(customers.columns) == list(real.columns)


def test_frame_is_what_the_csv_reader_returns(customers, tmp_path):
    assert (customers["tenure"] == "0").any(), "the sample should hold first-month customers"
    path = tmp_path / "customers.csv"
    customers.to_csv(path, index=False)
    pd.testing.assert_frame_equal(customers, read_table(path))
    for column in EXPECTED_COLUMNS:
        assert customers[column].map(type).eq(str).all(), column


def test_customer_ids_look_like_telcos_and_are_unique(customers):
    assert customers["customerID"].str.fullmatch(r"\d{4}-[A-Z]{5}").all()
    assert customers["customerID"].is_unique


def test_same_seed_same_data_other_seed_other_data():
    first = generate_customers(500, seed=3)
    pd.testing.assert_frame_equal(first, generate_customers(500, seed=3))
    other = generate_customers(500, seed=4)
    assert not first.equals(other)
    assert set(first["customerID"]).isdisjoint(other["customerID"])


def test_total_charges_blank_exactly_for_new_customers(customers):
    new = customers["tenure"] == "0"
    assert new.any()
    assert (customers["TotalCharges"] == "").eq(new).all()


def test_total_charges_about_tenure_times_monthly(customers):
    rest = customers.loc[customers["tenure"] != "0"]
    total = pd.to_numeric(rest["TotalCharges"])
    tenure = pd.to_numeric(rest["tenure"])
    monthly = pd.to_numeric(rest["MonthlyCharges"])
    ratio = total / (tenure * monthly)
    assert ratio.between(0.75, 1.3).all()
    assert abs(ratio.median() - 1) < 0.01
    assert ratio.std() > 0.02, "totals should not be an exact product"
    first_month = tenure == 1
    assert first_month.any()
    assert (total[first_month] == monthly[first_month]).all()


def test_amounts_are_written_like_the_telco_file(customers):
    assert customers["MonthlyCharges"].str.fullmatch(AMOUNT).all()
    total = customers.loc[customers["tenure"] != "0", "TotalCharges"]
    assert total.str.fullmatch(AMOUNT).all()
    assert total.str.contains(".", regex=False).any()


def test_amounts_have_the_real_files_format(real):
    assert real["MonthlyCharges"].str.fullmatch(AMOUNT).all()
    total = real["TotalCharges"].str.strip()
    assert total[total != ""].str.fullmatch(AMOUNT).all()


def test_monthly_charges_follow_internet_service(customers):
    monthly = pd.to_numeric(customers["MonthlyCharges"])
    mean = monthly.groupby(customers["InternetService"]).mean()
    assert 18 < mean["No"] < 25
    assert 45 < mean["DSL"] < 65
    assert 75 < mean["Fiber optic"] < 105
    assert monthly.between(18.25, 118.75).all()
    fiber = customers["InternetService"] == "Fiber optic"
    streams = customers["StreamingTV"].eq("Yes") & customers["StreamingMovies"].eq("Yes")
    assert monthly[fiber & streams].mean() > monthly[fiber & ~streams].mean() + 10


def test_contract_drives_tenure(customers):
    tenure = pd.to_numeric(customers["tenure"])
    median = tenure.groupby(customers["Contract"]).median()
    assert median["Month-to-month"] < 20 < median["One year"] < median["Two year"]
    assert median["Two year"] > 50
    assert tenure.between(0, 72).all()


def test_no_service_values_are_consistent(customers):
    no_internet = customers["InternetService"] == "No"
    for column in INTERNET_ADD_ONS:
        assert (customers[column] == "No internet service").eq(no_internet).all(), column
        assert set(customers.loc[~no_internet, column]) == {"Yes", "No"}, column
    no_phone = customers["PhoneService"] == "No"
    assert (customers["MultipleLines"] == "No phone service").eq(no_phone).all()
    assert set(customers.loc[~no_phone, "MultipleLines"]) == {"Yes", "No"}


def test_categories_are_the_real_files(customers, real):
    for column in [*CATEGORICAL, "SeniorCitizen", "Churn"]:
        assert set(customers[column].unique()) == set(real[column].unique()), column


def test_marginals_are_near_the_real_files(customers, real):
    for column in ["Contract", "InternetService", "PaymentMethod", "SeniorCitizen", "Churn"]:
        synthetic = customers[column].value_counts(normalize=True)
        observed = real[column].value_counts(normalize=True)
        gap = (synthetic - observed).abs().max()
        assert gap < 0.05, f"{column}: {synthetic.round(3).to_dict()} vs {observed.to_dict()}"


def test_churn_rate_is_plausible(customers):
    assert 0.15 < customers["Churn"].eq("Yes").mean() < 0.40


def test_churn_follows_the_expected_directions(customers):
    contract = _churn_rate_by(customers, "Contract")
    assert contract["Month-to-month"] > contract["One year"] > contract["Two year"]
    internet = _churn_rate_by(customers, "InternetService")
    assert internet["Fiber optic"] > internet["DSL"] > internet["No"]
    payment = _churn_rate_by(customers, "PaymentMethod")
    assert payment.idxmax() == "Electronic check"
    for column in ["TechSupport", "OnlineSecurity"]:
        rate = _churn_rate_by(customers, column)
        assert rate["No"] > rate["Yes"], column
    senior = _churn_rate_by(customers, "SeniorCitizen")
    assert senior["1"] > senior["0"]
    paperless = _churn_rate_by(customers, "PaperlessBilling")
    assert paperless["Yes"] > paperless["No"]
    tenure = pd.to_numeric(customers["tenure"])
    churned = customers["Churn"] == "Yes"
    assert tenure[churned].mean() < tenure[~churned].mean() - 10


def test_new_customers_have_not_churned(customers):
    assert (customers.loc[customers["tenure"] == "0", "Churn"] == "No").all()


def test_synthetic_dataset_infers_telcos_kinds():
    dataset = synthetic_dataset(2000, seed=1)
    assert dataset.synthetic
    assert dataset.rows == 2000
    assert dataset.spec.id_columns == ("customerID",)
    assert dataset.kinds == {
        name: ("numeric" if name in NUMERIC else "categorical")
        for name in EXPECTED_COLUMNS
        if name not in {"customerID", "Churn"}
    }
    schema = dataset.schema()
    assert sorted(f.name for f in schema.numeric) == sorted(NUMERIC)
    assert sorted(f.name for f in schema.categorical) == sorted(CATEGORICAL)
    assert schema.id_columns == ("customerID",)
    assert schema.classes == ("No", "Yes")
    assert dataset.X["TotalCharges"].dtype == np.float64


@pytest.mark.parametrize("rows", [0, -5])
def test_rows_must_be_positive(rows):
    with pytest.raises(DataError, match="at least 1"):
        generate_customers(rows)


def test_a_single_customer():
    frame = generate_customers(1, seed=8)
    assert frame.shape == (1, len(EXPECTED_COLUMNS))
