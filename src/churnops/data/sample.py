"""Synthetic customers with the IBM Telco churn schema: the embedded default data.

This is NOT real data. It imitates the columns, category spellings and rough dependencies of the
IBM Telco customer-churn table (contract length drives tenure; internet service and add-ons drive
monthly charges; ``TotalCharges`` is about tenure × ``MonthlyCharges`` and blank for customers in
their first month; month-to-month contracts, short tenure, fiber optic, electronic checks, no tech
support or online security, senior citizens and paperless billing raise churn, long contracts
lower it), so that ``make run`` and the tests work on a machine without data. Marginals are
roughly calibrated to the real table; the effect sizes are invented. Every value is text, as the
CSV reader returns it, so synthetic and real tables take the same code path.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnops.errors import DataError

COLUMNS = (
    "customerID", "gender", "SeniorCitizen", "Partner", "Dependents", "tenure", "PhoneService",
    "MultipleLines", "InternetService", "OnlineSecurity", "OnlineBackup", "DeviceProtection",
    "TechSupport", "StreamingTV", "StreamingMovies", "Contract", "PaperlessBilling",
    "PaymentMethod", "MonthlyCharges", "TotalCharges", "Churn",
)  # fmt: skip
ADD_ONS = ("OnlineSecurity", "OnlineBackup", "DeviceProtection", "TechSupport")
STREAMING = ("StreamingTV", "StreamingMovies")
CONTRACTS = np.array(["Month-to-month", "One year", "Two year"])
INTERNET = np.array(["DSL", "Fiber optic", "No"])
PAYMENTS = np.array(
    ["Electronic check", "Mailed check", "Bank transfer (automatic)", "Credit card (automatic)"]
)
_LETTERS = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))


def generate_customers(rows: int, seed: int = 0) -> pd.DataFrame:
    """Return ``rows`` synthetic customers (all values text), the same for the same seed."""
    if rows < 1:
        raise DataError(f"cannot generate {rows} customers: rows must be at least 1")
    rng = np.random.default_rng(seed)
    n = rows

    def yes(p: np.ndarray | float) -> np.ndarray:
        return rng.random(n) < p

    senior = yes(0.166)
    partner = yes(0.48)
    dependents = yes(np.where(partner, 0.45, 0.15))
    contract = rng.choice(3, size=n, p=[0.55, 0.21, 0.24])
    # Tenure in months, longer for longer contracts; a few brand-new customers (tenure 0).
    mean_tenure = np.array([18.0, 42.0, 57.0])[contract]
    tenure = np.clip(np.rint(rng.normal(mean_tenure, 17.5)), 1, 72).astype(int)
    tenure[rng.random(n) < 0.0015] = 0

    internet = rng.choice(3, size=n, p=[0.34, 0.44, 0.22])
    has_internet = internet != 2
    phone = yes(np.where(internet == 2, 1.0, 0.88))
    multiple = phone & yes(0.47)
    add_on_rate = np.where(internet == 0, 0.45, 0.38) + 0.15 * (contract > 0)
    add_ons = {name: has_internet & yes(add_on_rate) for name in ADD_ONS}
    streaming = {
        name: has_internet & yes(np.where(internet == 1, 0.55, 0.35)) for name in STREAMING
    }

    base = np.array([36.0, 66.0, 19.5])[internet]
    monthly = (
        base
        + 5.0 * sum(add_ons.values())
        + 9.5 * sum(streaming.values())
        + np.where(phone & has_internet, 5.0, 0.0)
        + 5.0 * multiple
        + rng.normal(0.0, np.where(has_internet, 2.5, 1.0))
    )
    monthly = np.round(np.clip(monthly, 18.25, 118.75), 2)
    paperless = yes(np.where(internet == 1, 0.72, 0.52))
    payment = _vector_choice(rng, _payment_probabilities(contract))

    # Churn: a logistic model with the directions seen in the real table.
    logit = (
        -0.05
        + np.array([0.0, -1.6, -2.9])[contract]
        - 0.035 * tenure
        + np.array([0.0, 0.9, -0.8])[internet]
        + 0.55 * (payment == 0)
        - 0.45 * add_ons["TechSupport"]
        - 0.45 * add_ons["OnlineSecurity"]
        + 0.35 * senior
        + 0.3 * paperless
        - 0.15 * partner
        + 0.01 * (monthly - 65.0)
    )
    churn = yes(1.0 / (1.0 + np.exp(-logit)))

    total = np.round(tenure * monthly * rng.normal(1.0, 0.03, size=n), 2)
    total_text = np.where(tenure == 0, " ", np.char.mod("%.2f", total))
    total_text = np.char.rstrip(np.char.rstrip(total_text.astype(str), "0"), ".")

    frame = pd.DataFrame(
        {
            "customerID": _customer_ids(rng, n),
            "gender": np.where(yes(0.5), "Male", "Female"),
            "SeniorCitizen": np.where(senior, "1", "0"),
            "Partner": _yes_no(partner),
            "Dependents": _yes_no(dependents),
            "tenure": tenure.astype(str),
            "PhoneService": _yes_no(phone),
            "MultipleLines": np.where(phone, _yes_no(multiple), "No phone service"),
            "InternetService": INTERNET[internet],
            **{k: _service(v, has_internet) for k, v in {**add_ons, **streaming}.items()},
            "Contract": CONTRACTS[contract],
            "PaperlessBilling": _yes_no(paperless),
            "PaymentMethod": PAYMENTS[payment],
            "MonthlyCharges": np.char.mod("%g", monthly),
            "TotalCharges": total_text,
            "Churn": _yes_no(churn),
        },
        columns=list(COLUMNS),
    )
    return frame.astype(object)


def _payment_probabilities(contract: np.ndarray) -> np.ndarray:
    # Month-to-month customers pay by electronic check far more often than long-contract ones.
    table = np.array([[0.48, 0.23, 0.15, 0.14], [0.20, 0.22, 0.29, 0.29], [0.10, 0.22, 0.34, 0.34]])
    return table[contract]


def _vector_choice(rng: np.random.Generator, probabilities: np.ndarray) -> np.ndarray:
    cumulative = probabilities.cumsum(axis=1)
    draws = rng.random(len(probabilities))[:, None]
    return np.minimum((draws > cumulative).sum(axis=1), probabilities.shape[1] - 1)


def _customer_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    # Telco's format: four digits, a dash, five capital letters; unique.
    ids = np.empty(0, dtype=object)
    while len(ids) < n:
        need = n - len(ids)
        digits = np.char.zfill(rng.integers(0, 10_000, size=need).astype(str), 4)
        letters = _LETTERS[rng.integers(0, 26, size=(need, 5))]
        words = np.char.add(np.char.add(letters[:, 0], letters[:, 1]), letters[:, 2])
        words = np.char.add(np.char.add(words, letters[:, 3]), letters[:, 4])
        fresh = np.char.add(np.char.add(digits, "-"), words).astype(object)
        merged = np.concatenate([ids, fresh])
        _, first = np.unique(merged, return_index=True)
        ids = merged[np.sort(first)]  # drop repeats, keep order (and so determinism)
    return ids[:n]


def _yes_no(flags: np.ndarray) -> np.ndarray:
    return np.where(flags, "Yes", "No")


def _service(flags: np.ndarray, has_internet: np.ndarray) -> np.ndarray:
    return np.where(has_internet, _yes_no(flags), "No internet service")
