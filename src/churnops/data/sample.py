"""Synthetic customers with the IBM Telco churn schema: the embedded default data.

This is synthetic data, not real customers. It only imitates the schema (the 21 columns, their
order and category spellings) and the rough dependencies of the IBM Telco customer-churn table:
contract length drives tenure; internet service and add-ons drive monthly charges;
``TotalCharges`` is about tenure × ``MonthlyCharges`` and blank for customers in their first
month; month-to-month contracts, short tenure, fiber optic, electronic checks, no tech support or
online security, senior citizens and paperless billing raise the risk of churn, longer contracts
lower it. Marginal rates are roughly those of the real table (about 26% churn); effect sizes are
approximate and no real customer is reproduced. A fixed 0.15% of customers, at least one per
sample, are in their first month, so even a small sample shows a blank ``TotalCharges``.

Every value is text and the frame has the column types the CSV reader gives
(:func:`churnops.data.io.read_table`), so synthetic and real tables take the same code path.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from churnops.errors import DataError

COLUMNS = (
    "customerID", "gender", "SeniorCitizen", "Partner", "Dependents", "tenure", "PhoneService",
    "MultipleLines", "InternetService", "OnlineSecurity", "OnlineBackup", "DeviceProtection",
    "TechSupport", "StreamingTV", "StreamingMovies", "Contract", "PaperlessBilling",
    "PaymentMethod", "MonthlyCharges", "TotalCharges", "Churn",
)  # fmt: skip
"""The columns of the IBM Telco churn table, in its order and spelling."""

# Codes index these arrays; object arrays so indexing hands out existing str objects.
_INTERNET = np.array(["DSL", "Fiber optic", "No"], dtype=object)
_DSL, _FIBER, _NO_INTERNET = 0, 1, 2
_CONTRACTS = np.array(["Month-to-month", "One year", "Two year"], dtype=object)
_PAYMENTS = np.array(
    ["Electronic check", "Mailed check", "Bank transfer (automatic)", "Credit card (automatic)"],
    dtype=object,
)
_YES_NO = np.array(["No", "Yes"], dtype=object)
_NO_PHONE = "No phone service"
_NO_INTERNET_SERVICE = "No internet service"
MAX_TENURE = 72

# Share of customers with each internet add-on, among DSL and fiber customers.
_ADD_ON_RATES = {
    "OnlineSecurity": (0.49, 0.27),
    "OnlineBackup": (0.45, 0.43),
    "DeviceProtection": (0.44, 0.43),
    "TechSupport": (0.49, 0.28),
    "StreamingTV": (0.40, 0.56),
    "StreamingMovies": (0.42, 0.56),
}
_ADD_ONS = ("OnlineSecurity", "OnlineBackup", "DeviceProtection", "TechSupport")
_STREAMING = ("StreamingTV", "StreamingMovies")
# Longer contracts come with more add-ons (shift of the log-odds by contract).
_ADD_ON_CONTRACT_SHIFT = np.array([-0.45, 0.35, 0.65])
_ADD_ON_TASTE = 0.9

# Internet service by senior citizen (rows: not senior, senior).
_INTERNET_BY_SENIOR = np.array([[0.37, 0.38, 0.25], [0.22, 0.73, 0.05]])
# Contract by internet service (rows: DSL, fiber, none) before partner and senior shifts.
_CONTRACT_BY_INTERNET = np.array([[0.51, 0.23, 0.26], [0.69, 0.17, 0.14], [0.34, 0.24, 0.43]])
# Tenure / 72 is Beta(a, b) by contract: short and skewed for month-to-month, long for two-year.
_TENURE_BETA = np.array([[0.45, 1.35], [1.4, 1.0], [1.35, 0.4]])
# A fixed small share of customers, at least one, are in their first month (tenure 0, blank
# TotalCharges), mostly on long contracts: even a small sample shows that blank.
_NEW_CUSTOMER_SHARE = 0.0015
_NEW_CUSTOMER_WEIGHT = np.array([0.15, 1.0, 1.5])
# Payment method by contract, then tilted by paperless billing.
_PAYMENT_BY_CONTRACT = np.array(
    [[0.48, 0.23, 0.15, 0.14], [0.23, 0.23, 0.26, 0.28], [0.10, 0.22, 0.33, 0.35]]
)
_PAYMENT_PAPERLESS_TILT = np.array([[0.55, 1.45, 1.1, 1.0], [1.35, 0.7, 0.95, 1.0]])
# Monthly price list: base per service, per add-on and per streaming service.
_PRICE_INTERNET = np.array([25.0, 50.0, 0.0])
_PRICE_PHONE, _PRICE_EXTRA_LINE, _PRICE_ADD_ON, _PRICE_STREAMING = 20.0, 5.0, 5.0, 10.0
_MONTHLY_RANGE = (18.25, 118.75)

# Log-odds of churn. Directions and rough sizes follow the real table; the intercept puts the
# overall churn rate near 26%.
_CHURN_INTERCEPT = 0.43
_CHURN_CONTRACT = np.array([0.0, -0.7, -1.6])
_CHURN_LOG_TENURE = -0.62
_CHURN_INTERNET = np.array([0.0, 0.95, -1.1])
_CHURN_ELECTRONIC_CHECK = 0.45
_CHURN_TECH_SUPPORT = -0.4
_CHURN_ONLINE_SECURITY = -0.45
_CHURN_SENIOR = 0.3
_CHURN_PAPERLESS = 0.4
_CHURN_DEPENDENTS = -0.15

_LETTERS = 26**5
_DIGITS = np.frombuffer(b"0123456789", dtype=np.uint8)
_ALPHABET = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", dtype=np.uint8)
# "" or the shortest decimals of 0..99 cents: 5 → ".05", 50 → ".5", 0 → "".
_CENTS = tuple("" if c == 0 else f".{c:02d}".rstrip("0") for c in range(100))


def generate_customers(rows: int, seed: int = 0) -> pd.DataFrame:
    """Return ``rows`` synthetic Telco-like customers, every value as text.

    Parameters
    ----------
    rows
        Number of customers, at least 1.
    seed
        Seed of the random generator: the same ``(rows, seed)`` gives the same frame.

    Returns
    -------
    pandas.DataFrame
        The columns of :data:`COLUMNS`, typed as :func:`churnops.data.io.read_table` types a
        CSV file (text; a blank cell is ``""``).

    Raises
    ------
    DataError
        ``rows`` is less than 1.
    """
    if rows < 1:
        raise DataError(f"cannot generate {rows} customers: rows must be at least 1")
    rng = np.random.default_rng(seed)
    n = rows

    def draw(probability: np.ndarray | float) -> np.ndarray:
        return rng.random(n) < probability

    male = draw(0.5)
    senior = draw(0.166)
    partner = draw(0.48)
    dependents = draw(np.where(partner, 0.51, 0.10))
    internet = _choose(rng, _INTERNET_BY_SENIOR[senior.astype(np.intp)])
    has_internet = internet != _NO_INTERNET

    # Partners sign longer contracts and seniors shorter ones; centring the shifts keeps the
    # marginal rates near those of the table above.
    contract_logits = (
        np.log(_CONTRACT_BY_INTERNET[internet])
        + np.outer(partner - 0.48, [0.0, 0.5, 1.0])
        - np.outer(senior - 0.166, [0.0, 0.4, 0.8])
    )
    contract_weights = np.exp(contract_logits)
    contract = _choose(rng, contract_weights / contract_weights.sum(axis=1, keepdims=True))

    a, b = _TENURE_BETA[contract].T
    tenure = np.minimum(1 + np.floor(rng.beta(a, b) * MAX_TENURE), MAX_TENURE).astype(np.int64)
    # Weighted sampling without replacement: the smallest exponential keys scaled by weight.
    keys = rng.exponential(size=n) / _NEW_CUSTOMER_WEIGHT[contract]
    new_customers = math.ceil(n * _NEW_CUSTOMER_SHARE)
    tenure[np.argpartition(keys, new_customers - 1)[:new_customers]] = 0

    phone = (internet != _DSL) | draw(0.72)
    line_rate = np.array([0.39, 0.62, 0.23])[internet] + 0.004 * (tenure - 32)
    multiple = phone & draw(np.clip(line_rate, 0.02, 0.98))
    # Some customers buy many add-ons and some none: a shared taste spreads the monthly bills.
    taste = rng.normal(0.0, _ADD_ON_TASTE, n)
    services: dict[str, np.ndarray] = {}
    for name, (dsl_rate, fiber_rate) in _ADD_ON_RATES.items():
        base = np.where(internet == _FIBER, fiber_rate, dsl_rate)
        log_odds = np.log(base / (1.0 - base)) + _ADD_ON_CONTRACT_SHIFT[contract] + taste
        services[name] = has_internet & draw(1.0 / (1.0 + np.exp(-log_odds)))

    paperless = draw(np.array([0.55, 0.77, 0.29])[internet])
    payment_weights = (
        _PAYMENT_BY_CONTRACT[contract] * _PAYMENT_PAPERLESS_TILT[paperless.astype(np.intp)]
    )
    payment = _choose(rng, payment_weights / payment_weights.sum(axis=1, keepdims=True))

    add_ons = np.sum([services[name] for name in _ADD_ONS], axis=0)
    streaming = np.sum([services[name] for name in _STREAMING], axis=0)
    monthly = (
        _PRICE_INTERNET[internet]
        + _PRICE_PHONE * phone
        + _PRICE_EXTRA_LINE * multiple
        + _PRICE_ADD_ON * add_ons
        + _PRICE_STREAMING * streaming
        + rng.normal(0.0, np.where(has_internet, 1.1, 0.6))
    )
    # Amounts are whole multiples of 5 cents, as in the real table.
    nickels = np.rint(np.clip(monthly, *_MONTHLY_RANGE) * 20).astype(np.int64)
    monthly = nickels / 20

    # Prices change over a customer's life, so the total drifts from tenure × monthly price.
    drift = np.where(tenure > 1, np.clip(rng.normal(1.0, 0.05, n), 0.8, 1.25), 1.0)
    total_nickels = np.rint(tenure * monthly * drift * 20).astype(np.int64)

    log_odds = (
        _CHURN_INTERCEPT
        + _CHURN_CONTRACT[contract]
        + _CHURN_LOG_TENURE * np.log1p(tenure)
        + _CHURN_INTERNET[internet]
        + _CHURN_ELECTRONIC_CHECK * (payment == 0)
        + _CHURN_TECH_SUPPORT * services["TechSupport"]
        + _CHURN_ONLINE_SECURITY * services["OnlineSecurity"]
        + _CHURN_SENIOR * senior
        + _CHURN_PAPERLESS * paperless
        + _CHURN_DEPENDENTS * dependents
    )
    # A customer in the first month has not yet had a bill to leave over.
    churn = draw(1.0 / (1.0 + np.exp(-log_odds))) & (tenure > 0)

    columns = {
        "customerID": _customer_ids(rng, n),
        "gender": np.where(male, "Male", "Female").astype(object),
        "SeniorCitizen": np.where(senior, "1", "0").astype(object),
        "Partner": _YES_NO[partner.astype(np.intp)],
        "Dependents": _YES_NO[dependents.astype(np.intp)],
        "tenure": np.array([str(t) for t in range(MAX_TENURE + 1)], dtype=object)[tenure],
        "PhoneService": _YES_NO[phone.astype(np.intp)],
        "MultipleLines": np.where(phone, _YES_NO[multiple.astype(np.intp)], _NO_PHONE),
        "InternetService": _INTERNET[internet],
        **{
            name: np.where(has_internet, _YES_NO[flags.astype(np.intp)], _NO_INTERNET_SERVICE)
            for name, flags in services.items()
        },
        "Contract": _CONTRACTS[contract],
        "PaperlessBilling": _YES_NO[paperless.astype(np.intp)],
        "PaymentMethod": _PAYMENTS[payment],
        "MonthlyCharges": _money(nickels * 5),
        "TotalCharges": np.where(tenure > 0, _money(total_nickels * 5), ""),
        "Churn": _YES_NO[churn.astype(np.intp)],
    }
    # dtype=str is what read_csv(dtype=str) gives: pandas' text dtype, or object without it.
    return pd.DataFrame(columns, columns=list(COLUMNS), dtype=str)


def _choose(rng: np.random.Generator, probabilities: np.ndarray) -> np.ndarray:
    """Draw one category per row from a (rows, categories) matrix of probabilities."""
    cumulative = probabilities.cumsum(axis=1)
    draws = rng.random(len(probabilities))[:, None] * cumulative[:, -1:]
    chosen = np.minimum((draws >= cumulative).sum(axis=1), probabilities.shape[1] - 1)
    return np.asarray(chosen, dtype=np.int64)


def _customer_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    """Distinct IDs in Telco's format: four digits, a dash, five capital letters."""
    numbers = rng.choice(10_000 * _LETTERS, size=n, replace=False)
    digits, letters = np.divmod(numbers, _LETTERS)
    chars = np.empty((n, 10), dtype=np.uint8)
    for i in range(4):
        digits, chars[:, 3 - i] = np.divmod(digits, 10)
    chars[:, :4] = _DIGITS[chars[:, :4]]
    chars[:, 4] = ord("-")
    for i in range(5):
        letters, index = np.divmod(letters, 26)
        chars[:, 9 - i] = _ALPHABET[index]
    return chars.view("S10").ravel().astype("U10").astype(object)


def _money(cents: np.ndarray) -> np.ndarray:
    """Write amounts in cents as the table does: shortest decimals (``42.3``, ``84``)."""
    return np.array([f"{c // 100}{_CENTS[c % 100]}" for c in cents.tolist()], dtype=object)
