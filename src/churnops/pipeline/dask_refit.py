"""Refit a searched LightGBM configuration on a table held by a Dask cluster (``lightgbm.dask``).

The search and the held-out evaluation run as always, in memory, on a sample of the table
(:func:`churnops.pipeline.train.train_model`). This module takes the chosen configuration and
fits it again on every row of the full table, partition by partition on the workers, with
``lightgbm.dask.DaskLGBMClassifier``. The result is an ordinary fitted Pipeline — the
``prepare`` step learned on the sample, the FLAML step carrying the distributed model — so the
export, its parity check, MLflow logging and serving are those of any other model.
"""

from __future__ import annotations

import copy
import time
import warnings
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from churnops.data.cleaning import clean_frame
from churnops.errors import ConfigError, DataError
from churnops.pipeline.build import build_pipeline
from churnops.pipeline.train import FullTable, TrainResult
from churnops.schema import as_category

LABEL = "__churnops_label__"


@dataclass(frozen=True)
class DistributedFit:
    """What the distributed refit did, for the manifest's ``fitting.final``."""

    rows: int
    workers: int
    seconds: float


def lightgbm_params(result: TrainResult) -> dict[str, Any]:
    """The parameters of the searched LightGBM model, ready for ``DaskLGBMClassifier``.

    Raises
    ------
    ConfigError
        The search chose something other than LightGBM (only LightGBM trains on Dask).
    """
    estimator = result.search.evaluated_pipeline.named_steps["automl"].model.estimator
    if type(estimator).__name__ != "LGBMClassifier":
        raise ConfigError(
            f"the search chose {type(estimator).__name__}; only LightGBM (lgbm) is refitted on Dask"
        )
    params = dict(estimator.get_params())
    # Each Dask worker sets its own thread count (lightgbm.dask: num_threads = worker threads).
    params.pop("n_jobs", None)
    return params


def encode_partition(
    part: pd.DataFrame,
    prepare: Any,
    kinds: dict[str, Any],
    ids: tuple[str, ...],
    target: str,
    classes: tuple[str, str],
) -> pd.DataFrame:
    """One partition of the raw table → the feature matrix the model sees, plus the label code.

    Cleaning is :func:`churnops.data.cleaning.clean_frame` (the in-memory path's), encoding is the
    ``prepare`` step fitted on the sample. Rows without a label are left out, as in training; the
    label code is the class's position among the sorted classes (FLAML's label encoding).
    """
    labels = np.array([as_category(_plain(v)) for v in part[target]], dtype=object)
    keep = np.array([label is not None for label in labels], dtype=bool)
    part, labels = part.loc[keep], labels[keep]
    unknown = sorted({str(label) for label in labels} - set(classes))
    if unknown:
        raise DataError(
            f"target {target!r} holds {', '.join(repr(u) for u in unknown[:3])}, a class the "
            f"sample did not have (classes: {', '.join(classes)})"
        )
    cleaned = clean_frame(part[list(kinds)], kinds)
    frame = pd.concat([part[list(ids)].astype(object), cleaned], axis=1) if ids else cleaned
    matrix = np.asarray(prepare.transform(frame), dtype=np.float64)
    # LightGBM's names for the columns of a matrix: the model file then equals a local fit's.
    out = pd.DataFrame(matrix, columns=[f"Column_{i}" for i in range(matrix.shape[1])])
    out[LABEL] = (labels == classes[1]).astype(np.int64)
    return out


def refit_on_dask(
    result: TrainResult, table: Any, full: FullTable, client: Any
) -> tuple[TrainResult, DistributedFit]:
    """Fit ``result``'s LightGBM configuration on every row of ``table`` (a Dask DataFrame).

    ``result`` is the in-memory search and evaluation on a sample (fitted without a refit);
    ``full`` describes the whole table. The returned result's pipeline is the distributed fit;
    its metrics stay the held-out ones of the sample's evaluated model.
    """
    from lightgbm.dask import DaskLGBMClassifier

    started = time.perf_counter()
    params = lightgbm_params(result)
    sample = result.rows.dataset
    schema = sample.schema()
    prepare = build_pipeline(schema).named_steps["prepare"]
    prepare.fit(sample.X, sample.y)
    width = len(prepare.get_feature_names_out())
    meta = pd.DataFrame(
        {
            **{f"Column_{i}": pd.Series(dtype=np.float64) for i in range(width)},
            LABEL: pd.Series(dtype=np.int64),
        }
    )
    encoded = table.map_partitions(
        encode_partition,
        prepare,
        dict(sample.kinds),
        sample.spec.id_columns,
        schema.target,
        sample.classes,
        meta=meta,
    )
    X, y = encoded.drop(columns=[LABEL]), encoded[LABEL]
    model = DaskLGBMClassifier(client=client, **params)
    with warnings.catch_warnings():
        # lightgbm.dask sets each worker's threads itself and says so for the n_jobs it is given.
        warnings.filterwarnings("ignore", message="Parameter n_jobs will be ignored")
        model.fit(X, y)
    local = model.to_local()
    # The pipeline hands the model the prepare step's matrix, without column names, as in a
    # local fit; the partitions' names ("Column_i", LightGBM's own) are kept in the model file.
    local._fitted_with_feature_names = False

    automl = copy.deepcopy(result.search.evaluated_pipeline.named_steps["automl"])
    automl.model._model = local  # the FLAML learner's fitted estimator: now the full-data fit
    pipeline = Pipeline([("prepare", prepare), ("automl", automl)])
    seconds = time.perf_counter() - started
    workers = len(client.scheduler_info(n_workers=-1)["workers"])
    fit = DistributedFit(rows=full.rows, workers=workers, seconds=seconds)
    fitting = copy.deepcopy(result.search.fitting)
    fitting["final"] = {
        "refit": True,
        "rows": full.rows,
        "refit_seconds": seconds,
        "engine": "dask",
        "library": "lightgbm.dask.DaskLGBMClassifier",
        "workers": workers,
        "encoding_fitted_on_rows": sample.rows,
        "what": (
            f"the chosen LightGBM configuration refitted on all {full.rows} rows of the table "
            f"on {workers} Dask workers; the search, the held-out evaluation and the one-hot "
            f"encoding (categories) used an in-memory sample of {sample.rows} rows"
        ),
    }
    final = replace(
        result,
        pipeline=pipeline,
        schema=schema,
        rows=replace(result.rows, fitted_on=sample),
        full_table=full,
        search=replace(result.search, fitting=fitting),
    )
    return final, fit


def _plain(value: object) -> object:
    return value.item() if isinstance(value, np.generic) else value
