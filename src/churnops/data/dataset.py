"""A churn table made ready for training: features, labels, kinds and where it came from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

from churnops.data.cleaning import clean_frame, describe_feature, infer_kind, looks_like_id
from churnops.data.io import file_sha256, frame_sha256, read_table
from churnops.errors import DataError, suggestion
from churnops.schema import Kind, Schema, as_category


@dataclass(frozen=True)
class DataSpec:
    """Which column is the target, which label means churn, which columns to leave out.

    ``target`` names the target column and ``positive_label`` the value that means the
    customer churned. ``id_columns`` are identifiers, dropped inside the model (callers may
    still send them): configured ones that the table lacks are skipped, and text columns unique
    per row are added; with ``require_id_columns`` each configured one must exist (as when a
    user names them). ``drop_columns`` are further columns to ignore; each must exist.
    """

    target: str = "Churn"
    positive_label: str = "Yes"
    id_columns: tuple[str, ...] = ("customerID",)
    drop_columns: tuple[str, ...] = ()
    require_id_columns: bool = False


@dataclass(frozen=True)
class Dataset:
    """Cleaned features and text labels of a churn table, with its provenance.

    Attributes
    ----------
    X
        Feature columns (cleaned: numeric as float64, categorical as text or NaN) plus the ID
        columns, which the pipeline drops itself.
    y
        Labels as text.
    kinds
        Kind of each feature column.
    spec
        The spec actually applied (ID columns resolved against the table).
    classes
        Both labels, sorted.
    source
        Where the rows came from, for people.
    sha256
        Fingerprint of the source data.
    synthetic
        Whether the rows are generated rather than real customers.
    notes
        Things the user should know about how the table was read.
    """

    X: pd.DataFrame
    y: pd.Series
    kinds: dict[str, Kind]
    spec: DataSpec
    classes: tuple[str, str]
    source: str
    sha256: str
    synthetic: bool = False
    notes: tuple[str, ...] = field(default=())

    @property
    def rows(self) -> int:
        """Number of rows."""
        return len(self.X)

    @property
    def feature_names(self) -> list[str]:
        """Feature columns in table order (ID and ignored columns excluded)."""
        return list(self.kinds)

    def subset(self, index: pd.Index) -> Dataset:
        """Return the rows at ``index`` (labels), keeping the provenance."""
        return replace(self, X=self.X.loc[index], y=self.y.loc[index])

    def schema(self) -> Schema:
        """Learn the feature contract (categories, ranges, missing rates) from these rows."""
        negative, positive = self.classes
        return Schema(
            target=self.spec.target,
            positive_label=self.spec.positive_label,
            classes=(negative, positive),
            features=tuple(
                describe_feature(name, kind, self.X[name]) for name, kind in self.kinds.items()
            ),
            id_columns=self.spec.id_columns,
            ignored_columns=self.spec.drop_columns,
        )


def load_dataset(path: str | Path, spec: DataSpec) -> Dataset:
    """Read a CSV or Parquet churn table and prepare it for training.

    Raises
    ------
    DataError
        One line naming the problem: unreadable file, absent target, empty table, a single
        class, a positive label that never occurs, an unknown column to drop.
    """
    path = Path(path)
    dataset = dataset_from_frame(read_table(path), spec, source=str(path), sha256=file_sha256(path))
    # The table as read is gone: hand Arrow's freed buffers back to the system (its allocator
    # keeps them otherwise; measured on 500k rows: 180 MB that training would never use).
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    return dataset


def synthetic_dataset(rows: int, seed: int, spec: DataSpec | None = None) -> Dataset:
    """Generate the embedded default: synthetic customers with the Telco schema."""
    from churnops.data.sample import generate_customers

    frame = generate_customers(rows, seed=seed)
    return dataset_from_frame(
        frame,
        spec or DataSpec(),
        source=f"synthetic Telco-like customers (rows={rows}, seed={seed})",
        sha256=frame_sha256(frame),
        synthetic=True,
    )


def dataset_from_frame(
    frame: pd.DataFrame, spec: DataSpec, *, source: str, sha256: str, synthetic: bool = False
) -> Dataset:
    """Validate a raw table against ``spec`` and clean it (see :func:`load_dataset`)."""
    notes: list[str] = []
    if frame.empty:
        raise DataError(f"{source}: the table has no rows")
    columns = [str(c) for c in frame.columns]
    frame = frame.set_axis(columns, axis=1)
    if len(set(columns)) != len(columns):
        twice = sorted({c for c in columns if columns.count(c) > 1})
        raise DataError(f"{source}: duplicate column names: {', '.join(twice)}")
    _require_columns(source, "target column", [spec.target], columns)
    _require_columns(source, "column to drop", spec.drop_columns, columns)
    if spec.require_id_columns:
        _require_columns(source, "ID column", spec.id_columns, columns)

    # Object labels sharing one string per class (a string of its own per row costs ~60 bytes).
    labels = pd.Series(
        pd.Categorical(
            [as_category(v.item() if hasattr(v, "item") else v) for v in frame[spec.target]]
        ).astype(object),
        index=frame.index,
        dtype=object,
    )
    unlabelled = labels.isna()
    if unlabelled.all():
        raise DataError(f"{source}: target column {spec.target!r} is empty")
    if unlabelled.any():
        notes.append(f"{int(unlabelled.sum())} rows without a {spec.target} value were left out")
        frame, labels = frame.loc[~unlabelled], labels.loc[~unlabelled]
    classes = sorted(labels.unique())
    if len(classes) == 1:
        raise DataError(
            f"{source}: target {spec.target!r} has a single class ({classes[0]!r}); "
            "a churn model needs customers who churned and customers who stayed"
        )
    if spec.positive_label not in classes:
        raise DataError(
            f"{source}: positive label {spec.positive_label!r} never occurs in {spec.target!r}"
            f"{suggestion(spec.positive_label, classes)} (labels: {_listing(classes)}); "
            "set --positive-label"
        )
    if len(classes) > 2:
        raise DataError(
            f"{source}: target {spec.target!r} has {len(classes)} classes ({_listing(classes)}); "
            "churnops predicts a two-class churn target"
        )

    ids = [c for c in spec.id_columns if c in frame.columns and c != spec.target]
    for missing_id in (c for c in spec.id_columns if c not in frame.columns):
        notes.append(f"ID column {missing_id!r} is not in the table")
    excluded = {spec.target, *ids, *spec.drop_columns}
    for name in columns:
        if name not in excluded and looks_like_id(frame[name]):
            ids.append(name)
            excluded.add(name)
            notes.append(f"column {name!r} has a distinct value on every row: treated as an ID")
    features = [c for c in columns if c not in excluded]
    if not features:
        raise DataError(f"{source}: no feature columns left besides target and IDs")

    kinds = {name: infer_kind(frame[name]) for name in features}
    cleaned = clean_frame(frame[features], kinds)
    # ID columns as read (Arrow text from a file: a few bytes a row, not a Python string each).
    X = pd.concat([frame[ids], cleaned], axis=1) if ids else cleaned
    resolved = replace(spec, id_columns=tuple(ids))
    return Dataset(
        X=X,
        y=labels,
        kinds=kinds,
        spec=resolved,
        classes=(classes[0], classes[1]),
        source=source,
        sha256=sha256,
        synthetic=synthetic,
        notes=tuple(notes),
    )


def split_dataset(dataset: Dataset, test_size: float, seed: int) -> tuple[Dataset, Dataset]:
    """Stratified split into (train, test); raise DataError when a class is too rare."""
    try:
        train_index, test_index = train_test_split(
            dataset.X.index, test_size=test_size, random_state=seed, stratify=dataset.y
        )
    except ValueError as exc:
        raise DataError(f"{dataset.source}: cannot split into train and test: {exc}") from exc
    return dataset.subset(train_index), dataset.subset(test_index)


def _require_columns(source: str, what: str, wanted: Sequence[str], columns: list[str]) -> None:
    """Raise one line naming the first of ``wanted`` not in ``columns``, the closest one and
    the table's columns."""
    for name in wanted:
        if name not in columns:
            raise DataError(
                f"{source}: {what} {name!r} not found{suggestion(name, columns)}; "
                f"columns: {_listing(columns)}"
            )


def _listing(names: Sequence[str], limit: int = 40) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f", … ({len(names)} in all)" if len(names) > limit else "")
