"""Drift and data-quality checks: real Telco scenarios and the rules, case by case."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest

from churnops.monitoring.drift import DriftReport, DriftThresholds, check_drift, psi
from churnops.schema import Kind

from .support import profiled, resample, score, shifted

WINDOW = 1_000


# --- scenarios on the real Telco rows ----------------------------------------------------------


@pytest.mark.slow
def test_profile_holds_what_the_tests_need(telco_reference):
    profile = telco_reference.profile
    tenure = profile["features"]["tenure"]
    assert len(tenure["quantiles"]) == 101
    assert tenure["quantiles"][0] == tenure["minimum"]
    assert tenure["quantiles"][-1] == tenure["maximum"]
    assert tenure["count"] == profile["rows"]
    total = profile["features"]["TotalCharges"]
    assert total["count"] < profile["rows"]  # blanks of new customers are not counted
    assert profile["features"]["Contract"]["count"] == profile["rows"]
    # A 0/1 column gets a bin per value, not a single bin.
    assert profile["features"]["SeniorCitizen"]["bin_edges"] == [0.5]
    scores = profile["scores"]
    assert len(scores["quantiles"]) == 101
    assert 0 < scores["count"] < profile["rows"]  # held-out rows only


@pytest.mark.slow
def test_shifted_contracts_and_charges_are_flagged(telco_reference):
    ref = telco_reference
    window = shifted(ref.rows, WINDOW, seed=7)
    report = check_drift(ref.profile, window, score(ref.scorer, ref.schema, window), ref.schema)
    assert set(report.flagged) == {"Contract", "MonthlyCharges"}
    assert report.prediction is not None
    assert report.prediction.drifted
    assert report.any_alarm
    for name in report.flagged:
        feature = report.feature(name)
        assert feature.psi is not None
        assert feature.psi >= report.thresholds.psi_alarm
        assert feature.p_value is not None
        assert feature.p_value < report.alpha_per_test
    # Charges beyond the training maximum are a data-quality finding of their own.
    assert any(f.kind == "out_of_range" and f.feature == "MonthlyCharges" for f in report.findings)


@pytest.mark.slow
def test_windows_from_the_training_rows_flag_nothing(telco_reference):
    ref = telco_reference
    alarms = []
    for seed in range(20):
        window = resample(ref.rows, WINDOW, seed=100 + seed)
        report = check_drift(ref.profile, window, score(ref.scorer, ref.schema, window), ref.schema)
        assert report.prediction is not None
        assert report.prediction.p_value is not None
        assert all(f.p_value is not None for f in report.features)
        if report.flagged or report.prediction.drifted or report.any_alarm:
            alarms.append((seed, report.flagged, report.prediction.drifted))
    assert len(alarms) <= 1, alarms


# --- the rules, on a small table ------------------------------------------------------------------


def _reference(rows: int = 2_000, seed: int = 0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "amount": rng.normal(50, 10, rows).round(2),
            "plan": rng.choice(["basic", "plus", "pro"], rows, p=[0.5, 0.3, 0.2]),
            "flag": rng.integers(0, 2, rows),
        }
    )
    kinds: dict[str, Kind] = {"amount": "numeric", "plan": "categorical", "flag": "numeric"}
    schema, profile, scores = profiled(frame, kinds, rng)
    return frame.astype(str), schema, profile, scores


@pytest.fixture(scope="module")
def toy():
    return _reference()


def _draw(frame: pd.DataFrame, size: int, seed: int) -> pd.DataFrame:
    """``size`` rows drawn with replacement, values in an object frame as logged JSON gives."""
    rng = np.random.default_rng(seed)
    return frame.iloc[rng.integers(0, len(frame), size)].reset_index(drop=True).astype(object)


def test_same_distribution_is_quiet(toy):
    frame, schema, profile, scores = toy
    report = check_drift(profile, _draw(frame, 1_000, 1), scores[:1_000], schema)
    assert report.flagged == ()
    assert not report.any_alarm
    assert {f.test for f in report.features} == {"ks", "chi2"}
    assert report.alpha_per_test == pytest.approx(0.01 / 4)  # three features and the scores


def test_a_shifted_number_is_drift(toy):
    frame, schema, profile, _ = toy
    window = _draw(frame, 1_000, 2)
    window["amount"] = (window["amount"].astype(float) + 8).astype(str)
    report = check_drift(profile, window, None, schema)
    assert report.flagged == ("amount",)
    assert report.feature("amount").status == "drift"
    assert report.prediction is None
    assert report.alpha_per_test == pytest.approx(0.01 / 3)


def test_a_flipped_flag_is_drift(toy):
    frame, schema, profile, _ = toy
    window = _draw(frame, 1_000, 3)
    window["flag"] = np.where(np.arange(1_000) < 900, "1", "0")
    assert check_drift(profile, window, None, schema).flagged == ("flag",)


def test_a_big_window_does_not_flag_a_trivial_shift():
    frame, schema, profile, _ = _reference(rows=50_000, seed=4)
    window = _draw(frame, 200_000, 5)
    window["amount"] = (window["amount"].astype(float) + 1.0).astype(str)  # a tenth of an sd
    feature = check_drift(profile, window, None, schema).feature("amount")
    assert feature.p_value is not None
    assert feature.p_value < 1e-6  # the test alone would call it drift
    assert feature.psi is not None
    assert feature.psi < 0.1
    assert not feature.drifted


def test_a_small_window_does_not_flag_noise(toy):
    frame, schema, profile, _ = toy
    window = _draw(frame, 15, 6)
    report = check_drift(profile, window, None, schema)
    feature = report.feature("amount")
    assert feature.psi is not None
    assert feature.psi >= report.thresholds.psi_alarm  # PSI alone would call it drift
    assert feature.p_value is not None
    assert feature.p_value > report.alpha_per_test
    assert report.flagged == ()


def test_unseen_categories_are_reported(toy):
    frame, schema, profile, _ = toy
    window = _draw(frame, 1_000, 7)
    window.loc[:79, "plan"] = "enterprise"
    window.loc[80:89, "plan"] = "<b>trial</b>"
    window.loc[90, "plan"] = 7  # a number logged for a category: read as "7"
    report = check_drift(profile, window, None, schema)
    plan = report.feature("plan")
    assert plan.unseen_share == pytest.approx(91 / 1_000)
    assert plan.unseen_top == (("enterprise", 80), ("<b>trial</b>", 10), ("7", 1))
    assert plan.window_shares[-1] == pytest.approx(0.091)
    (finding,) = [f for f in report.findings if f.kind == "unseen"]
    assert finding.severity == "alarm"
    assert finding.feature == "plan"
    assert "enterprise" in finding.message


def test_a_few_unseen_values_only_warn(toy):
    frame, schema, profile, _ = toy
    window = _draw(frame, 1_000, 8)
    window.loc[:4, "plan"] = "enterprise"
    report = check_drift(profile, window, None, schema)
    (finding,) = [f for f in report.findings if f.kind == "unseen"]
    assert finding.severity == "warn"
    assert not report.any_alarm


def test_values_outside_the_training_range_are_reported(toy):
    frame, schema, profile, _ = toy
    window = _draw(frame, 1_000, 9)
    window.loc[:59, "amount"] = "1e6"
    window.loc[60:69, "amount"] = -5_000.0  # numbers logged as numbers
    report = check_drift(profile, window, None, schema)
    amount = report.feature("amount")
    assert (amount.below_range, amount.above_range) == (10, 60)
    assert amount.out_of_range_share == pytest.approx(0.07)
    assert any(
        f.kind == "out_of_range" and f.severity == "alarm" and f.feature == "amount"
        for f in report.findings
    )


def test_a_blank_only_column(toy):
    frame, schema, profile, _ = toy
    window = _draw(frame, 500, 10)
    window["amount"] = ["", " ", "\t", None] * 125
    report = check_drift(profile, window, None, schema)
    amount = report.feature("amount")
    assert amount.present == 0
    assert amount.missing_rate == 1.0
    assert amount.psi is None
    assert amount.p_value is None
    assert not amount.drifted
    assert amount.status == "quality"
    (finding,) = [f for f in report.findings if f.kind == "missing"]
    assert finding.feature == "amount"
    assert finding.severity == "alarm"
    assert report.feature("plan").status == "ok"


def test_an_absent_column_counts_as_missing(toy):
    frame, schema, profile, _ = toy
    window = _draw(frame, 200, 11).drop(columns=["plan"])
    plan = check_drift(profile, window, None, schema).feature("plan")
    assert plan.missing_rate == 1.0
    assert plan.status == "quality"
    assert any("absent" in note for note in plan.notes)


def test_values_the_rules_refuse_are_counted_not_fatal(toy):
    frame, schema, profile, _ = toy
    window = _draw(frame, 1_000, 12)
    window.loc[:99, "amount"] = "twelve"
    window.loc[100:101, "amount"] = "nan"  # not a number under the project's rules
    window.loc[102, "plan"] = "x" * 2_000  # longer than any category may be
    report = check_drift(profile, window, None, schema)
    assert report.feature("amount").invalid == 102
    assert report.feature("amount").present == 898
    assert report.feature("plan").invalid == 1
    assert any(f.kind == "invalid" and f.severity == "alarm" for f in report.findings)


def test_booleans_and_numbers_are_not_merged(toy):
    frame, schema, profile, _ = toy
    window = _draw(frame, 100, 13)
    window.loc[:9, "plan"] = True
    window.loc[10:19, "plan"] = 1
    window.loc[:4, "amount"] = True  # a boolean is not a number
    report = check_drift(profile, window, None, schema)
    assert dict(report.feature("plan").unseen_top) == {"True": 10, "1": 10}
    assert report.feature("amount").invalid == 5


def test_numbers_as_text_or_as_numbers_read_the_same(toy):
    frame, schema, profile, scores = toy
    as_text = _draw(frame, 1_000, 14)
    as_numbers = as_text.assign(
        amount=as_text["amount"].astype(float), flag=as_text["flag"].astype(int)
    )
    as_strings = as_text.astype("str")  # pandas' own text dtype
    reports = [
        check_drift(profile, window, scores[:1_000], schema).to_json()
        for window in (as_text, as_numbers, as_strings)
    ]
    assert reports[0] == reports[1] == reports[2]


def test_an_old_profile_without_quantiles_gets_psi_only(toy):
    frame, schema, profile, scores = toy
    profile = copy.deepcopy(profile)
    for entry in profile["features"].values():
        entry.pop("quantiles", None)
        entry.pop("count", None)
    profile["scores"] = {k: profile["scores"][k] for k in ("bin_edges", "bin_shares", "mean")}
    window = _draw(frame, 1_000, 15)
    window["amount"] = (window["amount"].astype(float) + 8).astype(str)
    report = check_drift(profile, window, scores[:1_000], schema)
    assert all(f.p_value is None for f in report.features)
    assert all(f.psi is not None for f in report.features)
    assert report.flagged == ("amount",)  # on PSI alone
    assert report.prediction is not None
    assert report.prediction.p_value is None
    assert report.prediction.psi is not None
    assert any("PSI alone" in note for note in report.notes)


def test_prediction_drift(toy):
    frame, schema, profile, scores = toy
    window = _draw(frame, 1_000, 16)
    quiet = check_drift(profile, window, scores[1_000:], schema)
    assert quiet.prediction is not None
    assert not quiet.prediction.drifted
    loud = check_drift(profile, window, np.clip(scores[:1_000] + 0.25, 0, 1), schema)
    assert loud.prediction is not None
    assert loud.prediction.drifted
    assert loud.any_alarm
    assert [f.kind for f in loud.findings if f.severity == "alarm"] == ["prediction"]


def test_an_empty_window(toy):
    _, schema, profile, _ = toy
    window = pd.DataFrame({"amount": [], "plan": [], "flag": []}, dtype=object)
    report = check_drift(profile, window, np.array([]), schema)
    assert report.rows == 0
    assert report.flagged == ()
    assert not report.any_alarm
    assert "the window has no rows" in report.notes


def test_the_report_round_trips_through_json(toy):
    frame, schema, profile, scores = toy
    window = _draw(frame, 1_000, 17)
    window.loc[:99, "plan"] = "enterprise"
    window.loc[100:149, "amount"] = ""
    report = check_drift(profile, window, scores[:1_000], schema, DriftThresholds(psi_warn=0.05))
    text = json.dumps(report.to_json(), allow_nan=False)
    again = DriftReport.from_json(json.loads(text))
    assert again == report
    assert json.loads(text)["flagged"] == list(report.flagged)
    assert json.loads(text)["any_alarm"] is True


def test_psi():
    assert psi(np.array([0.5, 0.5]), np.array([0.5, 0.5])) == 0.0
    expected = (0.9 - 0.5) * np.log(0.9 / 0.5) + (0.1 - 0.5) * np.log(0.1 / 0.5)
    assert psi(np.array([0.5, 0.5]), np.array([0.9, 0.1])) == pytest.approx(expected)
    assert np.isfinite(psi(np.array([1.0, 0.0]), np.array([0.0, 1.0])))
