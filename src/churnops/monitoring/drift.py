"""Drift and data quality of a window of logged requests against a model's reference profile.

:func:`check_drift` reads the window with the project's encoding rules
(:func:`churnops.data.cleaning.to_numeric`, :func:`~churnops.data.cleaning.to_categories`),
applied once per distinct logged value, and compares every feature, and the model's
probabilities, with the profile stored in the artifact (:mod:`churnops.data.profile`).

Two kinds of findings are kept apart:

- **drift**: a feature is flagged only when the shift is both *large* (PSI ≥ ``psi_alarm``) and
  *significant* (p < ``alpha`` divided by the number of tests run, Bonferroni). PSI alone calls
  noise drift in a small window; a test alone calls a trivial shift drift in a large one.
- **data quality**: more missing values than in training, categories the model never saw,
  numbers outside the training range, values the encoding rules refuse.

The tests, and why these:

- numeric: two-sample Kolmogorov–Smirnov (:func:`scipy.stats.ks_2samp`) of the window against a
  reference sample rebuilt from the profile's 101 quantiles and its count (rounded to whole
  numbers for a whole-number column). The reference is itself a sample of ``count`` rows: a
  one-sample test against its CDF would treat it as the population and, for a large window,
  call the reference's own sampling noise, the interpolation between stored quantiles and the
  ties of whole-number columns significant. The two-sample test keeps the reference's size in
  the test (its effective size n·m/(n+m) never exceeds the reference count); the rebuilt
  sample's distribution is within one quantile step (1 %) of the original.
- categorical: χ² test of homogeneity (:func:`scipy.stats.chi2_contingency`) of the reference
  counts (shares × count) against the window counts, categories plus an "unseen" bucket. It is
  the two-sample form of the goodness-of-fit test against the reference shares, for the same
  reason, and it stays defined for the unseen bucket, whose reference share is 0.
- predictions: PSI of the window's probabilities over the reference score histogram and the
  same KS test against the held-out score quantiles.

A profile written before quantiles and counts were stored gets PSI only: a feature is then
flagged on PSI alone, and the report says so.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from itertools import pairwise
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from churnops.data.cleaning import to_categories, to_numeric
from churnops.schema import Feature, Kind, Schema

Severity = Literal["alarm", "warn"]
Status = Literal["drift", "quality", "warn", "ok", "no data"]

# Shares below this are raised to it before PSI's logarithm (an empty bin would give ∞).
PSI_EPSILON = 1e-4
UNSEEN = "(unseen)"
TOP_UNSEEN = 5
MAX_SHOWN_CHARS = 80
_GRID = np.linspace(0, 1, 101)


@dataclass(frozen=True)
class DriftThresholds:
    """When a difference becomes a finding.

    ``psi_warn``/``psi_alarm``: PSI of a feature for a warning / for drift (with a significant
    test). ``alpha``: significance level of the whole family of tests (Bonferroni).
    ``missing_increase``: rise of the missing rate over training (absolute). ``unseen_share``:
    share of present values in categories training never saw. ``out_of_range_share``: share of
    present numbers outside the training range. ``prediction_psi``: PSI of the probabilities
    for prediction drift (with a significant test).
    """

    psi_warn: float = 0.1
    psi_alarm: float = 0.2
    alpha: float = 0.01
    missing_increase: float = 0.1
    unseen_share: float = 0.05
    out_of_range_share: float = 0.05
    prediction_psi: float = 0.2


@dataclass(frozen=True)
class FeatureDrift:
    """One feature of the window against its reference.

    Shares are over present values, in the order of ``bins`` (numeric: the profile's bins;
    categorical: the training categories, then the unseen bucket). ``p_value`` is ``None`` when
    no test could be run (an old profile, no present values).
    """

    name: str
    kind: Kind
    rows: int
    present: int
    missing_rate: float
    reference_missing_rate: float
    invalid: int = 0
    psi: float | None = None
    test: str | None = None
    statistic: float | None = None
    p_value: float | None = None
    bins: tuple[str, ...] = ()
    reference_shares: tuple[float, ...] = ()
    window_shares: tuple[float, ...] = ()
    window_quantiles: tuple[float, ...] = ()
    unseen_share: float = 0.0
    unseen_top: tuple[tuple[str, int], ...] = ()
    below_range: int = 0
    above_range: int = 0
    out_of_range_share: float = 0.0
    drifted: bool = False
    status: Status = "ok"
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class PredictionDrift:
    """The window's probabilities against the held-out scores of the reference."""

    rows: int
    psi: float | None
    statistic: float | None = None
    p_value: float | None = None
    bins: tuple[str, ...] = ()
    reference_shares: tuple[float, ...] = ()
    window_shares: tuple[float, ...] = ()
    reference_mean: float | None = None
    window_mean: float | None = None
    window_quantiles: tuple[float, ...] = ()
    drifted: bool = False
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Finding:
    """Something to look at: ``kind`` is ``drift``, ``prediction``, ``missing``, ``unseen``,
    ``out_of_range`` or ``invalid``; ``feature`` is ``None`` for the predictions."""

    kind: str
    severity: Severity
    feature: str | None
    message: str
    value: float | None = None


@dataclass(frozen=True)
class DriftReport:
    """The outcome of :func:`check_drift`; :meth:`to_json` gives a plain JSON-ready dict."""

    rows: int
    thresholds: DriftThresholds
    alpha_per_test: float
    features: tuple[FeatureDrift, ...]
    prediction: PredictionDrift | None
    findings: tuple[Finding, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def flagged(self) -> tuple[str, ...]:
        """Names of the features flagged as drifted, in schema order."""
        return tuple(f.name for f in self.features if f.drifted)

    @property
    def any_alarm(self) -> bool:
        """Whether any finding (drift, prediction drift or data quality) is an alarm."""
        return any(f.severity == "alarm" for f in self.findings)

    def feature(self, name: str) -> FeatureDrift:
        """The result for the feature called ``name``."""
        found = [f for f in self.features if f.name == name]
        if not found:
            raise KeyError(name)
        return found[0]

    def to_json(self) -> dict[str, Any]:
        """A dict of plain JSON types (no NaN: unknown numbers are ``None``)."""
        out = asdict(self)
        out["flagged"] = list(self.flagged)
        out["any_alarm"] = self.any_alarm
        return _plain(out)  # type: ignore[no-any-return]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DriftReport:
        """Rebuild a report from :meth:`to_json` output."""
        prediction = data.get("prediction")
        return cls(
            rows=int(data["rows"]),
            thresholds=DriftThresholds(**data["thresholds"]),
            alpha_per_test=float(data["alpha_per_test"]),
            features=tuple(_rebuild(FeatureDrift, f) for f in data["features"]),
            prediction=None if prediction is None else _rebuild(PredictionDrift, prediction),
            findings=tuple(Finding(**f) for f in data["findings"]),
            notes=tuple(data.get("notes", ())),
        )


def check_drift(
    profile: Mapping[str, Any],
    window: pd.DataFrame,
    probabilities: np.ndarray | None,
    schema: Schema,
    thresholds: DriftThresholds | None = None,
) -> DriftReport:
    """Compare a window of logged requests (and the probabilities returned) with the reference.

    Parameters
    ----------
    profile
        The artifact's ``reference_profile.json``, parsed.
    window
        One row per request, one column per feature, values as logged (text or numbers,
        blanks, ``None``); other columns are ignored, an absent feature counts as missing.
    probabilities
        The positive-class probabilities returned for the window, or ``None`` to skip
        prediction drift.
    schema
        The model's schema (``artifact.schema``): which features, of what kind.
    thresholds
        When differences become findings; the defaults when ``None``.
    """
    limits = thresholds or DriftThresholds()
    rows = len(window)
    notes: list[str] = []
    if rows == 0:
        notes.append("the window has no rows")
    reference = profile.get("features", {})
    measured = [
        _measure(feature, reference.get(feature.name), window, rows) for feature in schema.features
    ]
    prediction = (
        None
        if probabilities is None
        else _measure_prediction(profile.get("scores") or {}, probabilities)
    )
    tests = sum(m.p_value is not None for m in measured)
    if prediction is not None and prediction.p_value is not None:
        tests += 1
    alpha_per_test = limits.alpha / max(tests, 1)
    if any(m.p_value is None and m.psi is not None for m in measured):
        notes.append(
            "the reference profile has no quantiles or counts (written by an older version): "
            "features without a test are flagged on PSI alone; export the model again for "
            "sample-size-aware tests"
        )

    findings: list[Finding] = []
    features = tuple(_judge(m, limits, alpha_per_test, findings) for m in measured)
    if prediction is not None:
        prediction = _judge_prediction(prediction, limits, alpha_per_test, findings)
    return DriftReport(
        rows=rows,
        thresholds=limits,
        alpha_per_test=alpha_per_test,
        features=features,
        prediction=prediction,
        findings=tuple(findings),
        notes=tuple(notes),
    )


# --- reading the window with the encoding rules --------------------------------------------------


def _distinct(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Codes into the column's distinct values (-1 for NaN/None) and those values.

    Python holds ``True == 1``, so a column mixing booleans with numbers is not factorised:
    each value is then its own entry, since the rules read ``True`` and ``1`` differently.
    """
    array = column.to_numpy()
    if array.dtype == object and _mixes_booleans(array):
        return np.arange(len(array)), array
    codes, uniques = pd.factorize(array, use_na_sentinel=True)
    return np.asarray(codes, dtype=np.intp), np.asarray(uniques)


def _mixes_booleans(array: np.ndarray) -> bool:
    inferred = pd.api.types.infer_dtype(array, skipna=True)
    if inferred in ("string", "floating", "integer", "mixed-integer-float", "empty", "decimal"):
        return False
    return any(isinstance(v, bool | np.bool_) for v in array)


def _each(
    rule: Callable[[np.ndarray], np.ndarray], values: np.ndarray, dtype: type
) -> tuple[np.ndarray, np.ndarray]:
    """Apply ``rule`` to all values; if it refuses one, value by value: ``(out, refused)``."""
    refused = np.zeros(len(values), dtype=bool)
    try:
        return rule(values), refused
    except (ValueError, TypeError):
        pass
    out: np.ndarray = np.empty(len(values), dtype=dtype)
    for i in range(len(values)):
        try:
            out[i] = rule(values[i : i + 1])[0]
        except (ValueError, TypeError):
            out[i] = np.nan
            refused[i] = True
    return out, refused


def _read_numbers(column: pd.Series) -> tuple[np.ndarray, int]:
    """The column as float64 (NaN when missing or refused) and how many values were refused."""
    codes, uniques = _distinct(column)
    numbers, refused = _each(to_numeric, uniques, np.float64)
    invalid = int(np.bincount(codes + 1, minlength=len(uniques) + 1)[1:][refused].sum())
    numbers = np.append(numbers.astype(np.float64, copy=False), np.nan)  # code -1 reads NaN
    return numbers[codes], invalid


def _read_categories(column: pd.Series) -> tuple[dict[str, int], int, int]:
    """Count per category, rows missing and rows refused (text too long, not text)."""
    codes, uniques = _distinct(column)
    labels, refused = _each(to_categories, uniques, object)
    per_code = np.bincount(codes + 1, minlength=len(uniques) + 1)  # [0]: code -1, missing
    missing = int(per_code[0])
    invalid = 0
    counts: dict[str, int] = {}
    for label, bad, count in zip(labels, refused, per_code[1:], strict=True):
        if not count:
            continue
        if bad:
            invalid += int(count)
        elif isinstance(label, str):
            counts[label] = counts.get(label, 0) + int(count)
        else:
            missing += int(count)
    return counts, missing, invalid


# --- measuring ------------------------------------------------------------------------------------


def _measure(
    feature: Feature, reference: Mapping[str, Any] | None, window: pd.DataFrame, rows: int
) -> FeatureDrift:
    notes: list[str] = []
    if feature.name in window.columns:
        column = window[feature.name]
    else:
        notes.append("absent from the window: every value counts as missing")
        column = pd.Series([None] * rows, dtype=object)
    ref = dict(reference or {})
    if reference is None:
        notes.append("not in the reference profile: data quality only")
    base = {
        "name": feature.name,
        "kind": feature.kind,
        "rows": rows,
        "reference_missing_rate": float(ref.get("missing_rate", feature.missing_rate)),
        "notes": tuple(notes),
    }
    if feature.kind == "numeric":
        return _measure_numeric(feature, ref, column, base)
    return _measure_categorical(feature, ref, column, base)


def _measure_numeric(
    feature: Feature, ref: Mapping[str, Any], column: pd.Series, base: dict[str, Any]
) -> FeatureDrift:
    numbers, invalid = _read_numbers(column)
    present = numbers[~np.isnan(numbers)]
    rows = base["rows"]
    missing = rows - present.size - invalid
    out: dict[str, Any] = {
        **base,
        "present": int(present.size),
        "missing_rate": missing / rows if rows else 0.0,
        "invalid": invalid,
    }
    low = ref.get("minimum", feature.minimum)
    high = ref.get("maximum", feature.maximum)
    if present.size and low is not None and high is not None:
        below, above = int((present < low).sum()), int((present > high).sum())
        out.update(
            below_range=below, above_range=above, out_of_range_share=(below + above) / present.size
        )
    if present.size:
        out["window_quantiles"] = tuple(float(v) for v in np.quantile(present, _GRID))
    edges, shares = ref.get("bin_edges"), ref.get("bin_shares")
    if edges is None or shares is None:
        return FeatureDrift(**out)
    inner = np.asarray(edges, dtype=np.float64)
    out["bins"] = _bin_labels(inner)
    out["reference_shares"] = tuple(float(s) for s in shares)
    if not present.size:
        return FeatureDrift(**out)
    counts = np.bincount(np.searchsorted(inner, present, side="right"), minlength=len(inner) + 1)
    window_shares = counts / present.size
    out["window_shares"] = tuple(float(s) for s in window_shares)
    out["psi"] = psi(np.asarray(shares, dtype=np.float64), window_shares)
    sample = _reference_sample(ref.get("quantiles"), ref.get("count"), whole=feature.integer)
    if sample is not None:
        result = stats.ks_2samp(sample, present)
        out.update(test="ks", statistic=float(result.statistic), p_value=float(result.pvalue))
    return FeatureDrift(**out)


def _measure_categorical(
    feature: Feature, ref: Mapping[str, Any], column: pd.Series, base: dict[str, Any]
) -> FeatureDrift:
    counts, missing, invalid = _read_categories(column)
    rows = base["rows"]
    present = sum(counts.values())
    shares_by_category: Mapping[str, float] | None = ref.get("category_shares")
    known = list(shares_by_category) if shares_by_category else list(feature.categories)
    known_set = set(known)
    unseen = {c: n for c, n in counts.items() if c not in known_set}
    unseen_total = sum(unseen.values())
    top = sorted(unseen.items(), key=lambda item: (-item[1], item[0]))[:TOP_UNSEEN]
    window_counts = np.array([counts.get(c, 0) for c in known] + [unseen_total], dtype=np.float64)
    out: dict[str, Any] = {
        **base,
        "present": present,
        "missing_rate": missing / rows if rows else 0.0,
        "invalid": invalid,
        "bins": (*known, UNSEEN),
        "unseen_share": unseen_total / present if present else 0.0,
        "unseen_top": tuple((_shown(c), n) for c, n in top),
    }
    if present:
        out["window_shares"] = tuple(float(v) for v in window_counts / present)
    if not shares_by_category:
        return FeatureDrift(**out)
    reference_shares = np.array([*shares_by_category.values(), 0.0], dtype=np.float64)
    out["reference_shares"] = tuple(float(v) for v in reference_shares)
    if not present:
        return FeatureDrift(**out)
    out["psi"] = psi(reference_shares, window_counts / present)
    count = ref.get("count")
    if count:
        table = np.vstack([np.round(reference_shares * count), window_counts])
        table = table[:, table.sum(axis=0) > 0]
        if table.shape[1] < 2:
            out.update(test="chi2", statistic=0.0, p_value=1.0)
        else:
            result = stats.chi2_contingency(table, correction=False)
            out.update(test="chi2", statistic=float(result.statistic), p_value=float(result.pvalue))
    return FeatureDrift(**out)


def _measure_prediction(reference: Mapping[str, Any], probabilities: np.ndarray) -> PredictionDrift:
    values = np.asarray(probabilities, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    edges, shares = reference.get("bin_edges"), reference.get("bin_shares")
    notes: list[str] = []
    out: dict[str, Any] = {"rows": int(values.size), "psi": None}
    out["reference_mean"] = reference.get("mean")
    if values.size:
        out["window_mean"] = float(values.mean())
        out["window_quantiles"] = tuple(float(v) for v in np.quantile(values, _GRID))
    if edges is None or shares is None:
        notes.append("the reference profile has no score histogram")
        return PredictionDrift(**out, notes=tuple(notes))
    edge_array = np.asarray(edges, dtype=np.float64)
    out["bins"] = tuple(f"{a:.2f}–{b:.2f}" for a, b in pairwise(edge_array))
    out["reference_shares"] = tuple(float(s) for s in shares)
    if not values.size:
        notes.append("no probabilities in the window")
        return PredictionDrift(**out, notes=tuple(notes))
    counts, _ = np.histogram(np.clip(values, edge_array[0], edge_array[-1]), bins=edge_array)
    window_shares = counts / values.size
    out["window_shares"] = tuple(float(s) for s in window_shares)
    out["psi"] = psi(np.asarray(shares, dtype=np.float64), window_shares)
    sample = _reference_sample(reference.get("quantiles"), reference.get("count"), whole=False)
    if sample is None:
        notes.append("the reference profile has no score quantiles: PSI only")
    else:
        result = stats.ks_2samp(sample, values)
        out.update(statistic=float(result.statistic), p_value=float(result.pvalue))
    return PredictionDrift(**out, notes=tuple(notes))


def psi(reference: np.ndarray, window: np.ndarray) -> float:
    """Population stability index of two share vectors over the same bins.

    Each share is raised to at least :data:`PSI_EPSILON` first, so an empty bin on either side
    adds a large but finite term.
    """
    r = np.maximum(np.asarray(reference, dtype=np.float64), PSI_EPSILON)
    w = np.maximum(np.asarray(window, dtype=np.float64), PSI_EPSILON)
    return float(np.sum((w - r) * np.log(w / r)))


def _reference_sample(quantiles: Any, count: Any, *, whole: bool) -> np.ndarray | None:
    """``count`` values spread as the stored quantiles (``None`` for an older profile)."""
    if not quantiles or not count:
        return None
    points = np.asarray(quantiles, dtype=np.float64)
    grid = np.linspace(0, 1, len(points))
    sample = np.interp((np.arange(int(count)) + 0.5) / int(count), grid, points)
    return np.round(sample) if whole else sample


def _bin_labels(inner: np.ndarray) -> tuple[str, ...]:
    if not len(inner):
        return ("all",)
    labels = [f"< {inner[0]:g}"]
    labels += [f"{a:g} – {b:g}" for a, b in pairwise(inner)]
    labels.append(f"≥ {inner[-1]:g}")
    return tuple(labels)


def _shown(value: str) -> str:
    return value if len(value) <= MAX_SHOWN_CHARS else value[:MAX_SHOWN_CHARS] + "…"


# --- judging --------------------------------------------------------------------------------------


def _judge(
    m: FeatureDrift, limits: DriftThresholds, alpha_per_test: float, findings: list[Finding]
) -> FeatureDrift:
    own: list[Finding] = []
    significant = m.p_value is None or m.p_value < alpha_per_test
    drifted = m.psi is not None and m.psi >= limits.psi_alarm and significant
    if drifted:
        own.append(Finding("drift", "alarm", m.name, _drift_message(m), m.psi))
    elif m.psi is not None and m.psi >= limits.psi_warn:
        why = "not significant at this window size" if not significant else "below the alarm"
        own.append(Finding("drift", "warn", m.name, f"{_drift_message(m)}: {why}", m.psi))
    increase = m.missing_rate - m.reference_missing_rate
    if m.rows and increase >= limits.missing_increase:
        own.append(
            Finding(
                "missing",
                "alarm",
                m.name,
                f"missing in {m.missing_rate:.1%} of rows (training: "
                f"{m.reference_missing_rate:.1%})",
                m.missing_rate,
            )
        )
    if m.unseen_share > 0:
        shown = ", ".join(f"{value!r} ×{n}" for value, n in m.unseen_top)
        own.append(
            Finding(
                "unseen",
                "alarm" if m.unseen_share >= limits.unseen_share else "warn",
                m.name,
                f"{m.unseen_share:.1%} of values are categories unseen in training: {shown}",
                m.unseen_share,
            )
        )
    if m.out_of_range_share > 0:
        own.append(
            Finding(
                "out_of_range",
                "alarm" if m.out_of_range_share >= limits.out_of_range_share else "warn",
                m.name,
                f"{m.out_of_range_share:.1%} of values outside the training range "
                f"({m.below_range} below, {m.above_range} above)",
                m.out_of_range_share,
            )
        )
    if m.invalid:
        share = m.invalid / m.rows
        limit = limits.out_of_range_share if m.kind == "numeric" else limits.unseen_share
        own.append(
            Finding(
                "invalid",
                "alarm" if share >= limit else "warn",
                m.name,
                f"{m.invalid} values ({share:.1%}) refused by the encoding rules",
                share,
            )
        )
    findings.extend(own)
    status: Status
    if drifted:
        status = "drift"
    elif any(f.severity == "alarm" for f in own):
        status = "quality"
    elif own:
        status = "warn"
    elif m.psi is None and not m.present:
        status = "no data"
    else:
        status = "ok"
    return replace(m, drifted=drifted, status=status)


def _judge_prediction(
    p: PredictionDrift, limits: DriftThresholds, alpha_per_test: float, findings: list[Finding]
) -> PredictionDrift:
    significant = p.p_value is None or p.p_value < alpha_per_test
    drifted = p.psi is not None and p.psi >= limits.prediction_psi and significant
    if p.psi is not None and (drifted or p.psi >= limits.psi_warn):
        mean = "" if p.window_mean is None else f", mean {p.window_mean:.3f}"
        if p.reference_mean is not None:
            mean += f" (held-out: {p.reference_mean:.3f})"
        test = "" if p.p_value is None else f", KS p={p.p_value:.2g}"
        message = f"prediction PSI {p.psi:.3f}{test}{mean}"
        if drifted:
            findings.append(Finding("prediction", "alarm", None, message, p.psi))
        else:
            findings.append(Finding("prediction", "warn", None, message, p.psi))
    return replace(p, drifted=drifted)


def _drift_message(m: FeatureDrift) -> str:
    test = "" if m.p_value is None else f", {m.test} p={m.p_value:.2g}"
    return f"PSI {m.psi:.3f}{test} over {m.present} values"


# --- plumbing -------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _rebuild(cls: type[Any], data: Mapping[str, Any]) -> Any:
    values: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in data:
            continue
        value = data[f.name]
        if isinstance(value, list):
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        values[f.name] = value
    return cls(**values)
