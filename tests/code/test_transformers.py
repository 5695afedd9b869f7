"""The custom transformer keeps scikit-learn's contract."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from churnops.pipeline.transformers import NumericCoercer, as_text


@parametrize_with_checks([NumericCoercer()])
def test_sklearn_contract(estimator, check):
    check(estimator)


def test_numeric_text_becomes_numbers_and_blanks_missing():
    X = np.array([["29.85", "1"], [" ", "2"], ["1889.5", ""]], dtype=object)
    out = NumericCoercer().fit(X).transform(X)
    assert out.dtype == np.float64
    assert out[0].tolist() == [29.85, 1.0]
    assert np.isnan(out[1, 0])
    assert np.isnan(out[2, 1])


def test_non_number_names_the_column():
    import pandas as pd

    frame = pd.DataFrame({"TotalCharges": ["10", "abc"]}, dtype=object)
    coercer = NumericCoercer().fit(frame)
    with pytest.raises(ValueError, match=r"TotalCharges.*abc"):
        coercer.transform(frame)


def test_as_text_gives_one_type_per_column():
    out = as_text(np.array([[1], ["1"], [None]], dtype=object))
    assert out[:2, 0].tolist() == ["1", "1"]
    assert out[2, 0] is None or out[2, 0] != out[2, 0]  # missing stays missing
