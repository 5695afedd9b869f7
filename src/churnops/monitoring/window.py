"""A window of the prediction log: what was scored, what was answered, what turned out true."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import orjson
import pandas as pd
import sqlalchemy as sa

from churnops.monitoring.store import PredictionStore, labels, predictions


@dataclass(frozen=True)
class Window:
    """Logged predictions of one model in a time span, in the order they were logged.

    ``features`` holds the records as received (one column per key); ``actual`` the latest
    label attached to each record's key (missing until the truth is known).
    """

    features: pd.DataFrame
    probabilities: np.ndarray
    predicted: pd.Series
    actual: pd.Series
    logged_at: pd.Series
    versions: tuple[str, ...]

    @property
    def rows(self) -> int:
        """Logged predictions in the window."""
        return len(self.features)


def read_window(
    store: PredictionStore,
    model_name: str,
    version: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> Window:
    """Read the predictions ``model_name`` (``version``, else any) made in [since, until)."""
    p = predictions.c
    query = sa.select(p.logged_at, p.model_version, p.record_key, p.features, p.probability,
                      p.label).where(p.model_name == model_name)  # fmt: skip
    if version is not None:
        query = query.where(p.model_version == version)
    if since is not None:
        query = query.where(p.logged_at >= since)
    if until is not None:
        query = query.where(p.logged_at < until)
    with store.engine.connect() as connection:
        rows = connection.execute(query.order_by(p.id)).all()
        truth = dict(
            connection.execute(sa.select(labels.c.record_key, labels.c.label).order_by(labels.c.id))
            .tuples()
            .all()
        )  # the latest label of each key wins
    records = [orjson.loads(row[3]) for row in rows]
    keys = pd.Series([row[2] for row in rows], dtype=object)
    return Window(
        features=pd.DataFrame.from_records(records) if records else pd.DataFrame(),
        probabilities=np.fromiter((row[4] for row in rows), dtype=np.float64, count=len(rows)),
        predicted=pd.Series([row[5] for row in rows], dtype=object),
        actual=keys.map(truth),
        logged_at=pd.Series(pd.to_datetime([row[0] for row in rows], utc=True)),
        versions=tuple(sorted({row[1] for row in rows})),
    )
