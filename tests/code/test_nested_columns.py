"""A Parquet file with a list, struct or map column is refused with one line naming it."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from churnops.cli import app
from churnops.data.io import read_table
from churnops.data.sample import generate_customers
from churnops.errors import DataError

runner = CliRunner()

NESTED = {
    "lists": (pa.list_(pa.int64()), [1, 2]),
    "large lists": (pa.large_list(pa.string()), ["a"]),
    "fixed-size lists": (pa.list_(pa.float64(), 2), [1.0, 2.0]),
    "structs": (pa.struct([("a", pa.int64()), ("b", pa.string())]), {"a": 1, "b": "x"}),
    "maps": (pa.map_(pa.string(), pa.int64()), [("k", 1)]),
}
EXPECTED = {"large lists": "lists", "fixed-size lists": "lists"}


def _write(path, column: str, arrow_type: pa.DataType, value: object, rows: int = 12) -> None:
    frame = generate_customers(rows, seed=1)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    array = pa.array([value] * rows, type=arrow_type)
    index = table.schema.get_field_index(column)
    if index >= 0:
        table = table.set_column(index, column, array)
    else:
        table = table.append_column(column, array)
    pq.write_table(table, path)


@pytest.mark.parametrize("kind", list(NESTED))
@pytest.mark.parametrize("column", ["tenure", "Contract", "extra"])
def test_read_table_refuses_a_nested_column_naming_it(tmp_path, kind, column):
    path = tmp_path / "customers.parquet"
    _write(path, column, *NESTED[kind])
    with pytest.raises(DataError) as raised:
        read_table(path)
    message = str(raised.value)
    assert "\n" not in message
    assert f"column {column!r} holds {EXPECTED.get(kind, kind)}" in message
    assert str(path) in message


def test_scalar_parquet_columns_still_read(tmp_path):
    path = tmp_path / "customers.parquet"
    _write(path, "extra", pa.timestamp("s"), 0)
    frame = read_table(path)
    assert "extra" in frame.columns
    assert len(frame) == 12


@pytest.mark.parametrize("kind", ["lists", "structs", "maps"])
def test_predict_on_a_nested_column_fails_with_one_line(synthetic_model, tmp_path, kind):
    data = tmp_path / "customers.parquet"
    _write(data, "tenure", *NESTED[kind])
    out = tmp_path / "scored.parquet"
    result = runner.invoke(
        app,
        ["predict", "--model", str(synthetic_model[1].path), "--data", str(data),
         "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 1
    assert f"column 'tenure' holds {kind}" in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert not out.exists()
