"""Transformers of the prepare step, following scikit-learn's estimator contract."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from churnops.data.cleaning import to_categories, to_numeric
from churnops.schema import NotANumberError


class NumericCoercer(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Read numeric columns that may arrive as text; blanks become NaN.

    Numbers are parsed by :func:`churnops.schema.parse_number`, the definition the serving path
    uses too, so a value means the same number in training, batch scoring and the API. A value
    that is not a number raises ``ValueError`` naming the column.
    """

    def fit(self, X: Any, y: Any = None) -> NumericCoercer:
        """Record the input columns; nothing is learned."""
        validate_data(self, X, dtype=None, ensure_all_finite="allow-nan", reset=True)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Return the columns as a float64 array."""
        check_is_fitted(self, "n_features_in_")
        array = validate_data(self, X, dtype=None, ensure_all_finite="allow-nan", reset=False)
        if array.dtype.kind in "iuf":
            return np.asarray(array, dtype=np.float64)
        out = np.empty(array.shape, dtype=np.float64)
        for j in range(array.shape[1]):
            try:
                out[:, j] = to_numeric(array[:, j])
            except NotANumberError as exc:
                raise ValueError(f"column {self._column_name(j)!r}: {exc}") from exc
        return out

    def _column_name(self, j: int) -> str:
        names = getattr(self, "feature_names_in_", None)
        return str(names[j]) if names is not None else f"x{j}"

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.string = True
        return tags


def as_text(X: Any) -> np.ndarray:
    """Return categorical columns as text with NaN for blanks (an object array).

    Used through ``FunctionTransformer``: numbers become their text (``1`` → ``"1"``) so a
    column's values have one type, which the one-hot encoder needs to sort categories.
    """
    array = np.asarray(X, dtype=object)
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    if array.shape[1] == 0:
        return array
    return np.column_stack([to_categories(array[:, j]) for j in range(array.shape[1])])
