"""``churnops predict`` in batches: the same rows and scores as scoring the whole file at once."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from churnops.cli import app
from churnops.data import batches
from churnops.data.io import read_table, write_table
from churnops.data.sample import generate_customers
from churnops.inference import load_scorer

runner = CliRunner()


def predict(model, data, out, *more: str):
    return runner.invoke(
        app, ["predict", "--model", str(model.path), "--data", str(data), "--out", str(out), *more]
    )


def whole_file(model, data, out) -> set[int]:
    """Scoring as ``churnops predict`` did it before batches: the whole table at once.

    Returns the rows with warnings."""
    frame = read_table(data)
    scores = load_scorer(model).score_columns({n: frame[n] for n in frame.columns}, len(frame))
    frame["churn_probability"] = scores.positive_probability
    frame["prediction"] = scores.labels
    write_table(frame, out)
    return set(scores.warnings)


@pytest.fixture(scope="module")
def customers() -> pd.DataFrame:
    frame = generate_customers(250, seed=5)
    frame["note"] = ["plain", 'say "hi", twice', "two\nlines", "", " padded "] * 50
    frame.loc[7, "PaymentMethod"] = "Crypto"  # unseen category: scored with a warning
    frame.loc[9, "tenure"] = "-3"  # outside the training range: scored with a warning
    frame["prediction"] = "stale"  # an input column of that name is replaced where it stands
    return frame


@pytest.mark.parametrize("batch_rows", ["7", "100000"])
@pytest.mark.parametrize("quoted", [True, False])  # cells with commas, quotes or line breaks
def test_csv_in_batches_is_byte_for_byte_the_whole_file_answer(
    synthetic_model, customers, tmp_path, batch_rows, quoted, monkeypatch
):
    model = synthetic_model[1]
    data = tmp_path / "customers.csv"
    if not quoted:  # written by Arrow: pandas is not asked
        monkeypatch.setattr(batches, "_pandas_csv", None)
        customers = customers.assign(note=customers["note"].str.replace(r'[,"\n]', "", regex=True))
    customers.to_csv(data, index=False)
    warned = whole_file(model, data, tmp_path / "expected.csv")
    assert {7, 9} <= warned
    result = predict(model, data, tmp_path / "scored.csv", "--batch-rows", batch_rows)
    assert result.exit_code == 0, result.output
    assert "250 rows" in result.output
    assert f"{len(warned)} rows had warnings" in result.output
    expected = (tmp_path / "expected.csv").read_bytes()
    assert (tmp_path / "scored.csv").read_bytes() == expected
    # "prediction" was an input column: replaced where it stood.
    columns = pd.read_csv(io.BytesIO(expected)).columns[-3:].tolist()
    assert columns == ["note", "prediction", "churn_probability"]


def test_parquet_in_batches_equals_the_whole_file_answer(synthetic_model, customers, tmp_path):
    model = synthetic_model[1]
    data = tmp_path / "customers.parquet"
    customers.to_parquet(data, index=True)  # a stored pandas index is not a column of data
    whole_file(model, data, tmp_path / "expected.parquet")
    result = predict(model, data, tmp_path / "scored.parquet", "--batch-rows", "16")
    assert result.exit_code == 0, result.output
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "scored.parquet"), pd.read_parquet(tmp_path / "expected.parquet")
    )


def test_json_lines_hold_the_same_rows(synthetic_model, customers, tmp_path):
    model = synthetic_model[1]
    data = tmp_path / "customers.parquet"
    customers.to_parquet(data, index=False)
    whole_file(model, data, tmp_path / "expected.parquet")
    assert predict(model, data, tmp_path / "scored.jsonl", "--batch-rows", "50").exit_code == 0
    rows = [json.loads(line) for line in (tmp_path / "scored.jsonl").read_text().splitlines()]
    expected = pd.read_parquet(tmp_path / "expected.parquet")
    assert len(rows) == len(expected)
    assert list(rows[0]) == expected.columns.tolist()
    assert [r["churn_probability"] for r in rows] == expected["churn_probability"].tolist()
    assert [r["prediction"] for r in rows] == expected["prediction"].tolist()
    assert [r["note"] for r in rows] == expected["note"].tolist()


@pytest.mark.parametrize("kind", ["csv", "jsonl", "parquet"])
def test_standard_output(synthetic_model, customers, tmp_path, kind):
    model = synthetic_model[1]
    data = tmp_path / "customers.csv"
    customers.head(20).to_csv(data, index=False)
    whole_file(model, data, tmp_path / "expected.csv")
    result = runner.invoke(
        app,
        ["predict", "--model", str(model.path), "--data", str(data), "--out", "-",
         "--format", kind],
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "wrote standard output" in result.stderr
    expected = read_table(tmp_path / "expected.csv")
    if kind == "csv":
        assert result.stdout_bytes == (tmp_path / "expected.csv").read_bytes()
    elif kind == "jsonl":
        rows = [json.loads(line) for line in result.stdout_bytes.splitlines()]
        assert [r["prediction"] for r in rows] == expected["prediction"].tolist()
    else:
        scored = pd.read_parquet(io.BytesIO(result.stdout_bytes))
        assert scored["prediction"].tolist() == expected["prediction"].tolist()


@pytest.mark.parametrize(
    ("out", "more", "message"),
    [
        ("scored.xlsx", [], "scored.xlsx: unknown output file type '.xlsx'; use .csv, .parquet"),
        ("scored", [], "unknown output file type '(none)'"),
        ("scored.csv", ["--format", "xml"], "unknown output format 'xml'; use one of csv"),
    ],
)
def test_unknown_output_types_are_one_line(synthetic_model, tmp_path, out, more, message):
    data = tmp_path / "customers.csv"
    generate_customers(5, seed=1).to_csv(data, index=False)
    result = predict(synthetic_model[1], data, tmp_path / out, *more)
    assert result.exit_code == 1
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_a_bad_row_in_a_later_batch_is_named_by_its_row_in_the_file(synthetic_model, tmp_path):
    data = tmp_path / "customers.csv"
    frame = generate_customers(40, seed=2).astype({"tenure": object})
    frame.loc[33, "tenure"] = "many"
    frame.to_csv(data, index=False)
    out = tmp_path / "scored.csv"
    out.write_text("an earlier result\n")
    result = predict(synthetic_model[1], data, out, "--batch-rows", "10")
    assert result.exit_code == 1
    assert "record 33, field 'tenure': expected a number, got 'many'" in result.output
    # The earlier file is untouched, and no partial file is left behind.
    assert out.read_text() == "an earlier result\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["customers.csv", "scored.csv"]


def test_a_failed_write_stops_the_run_and_leaves_no_file(synthetic_model, tmp_path, monkeypatch):
    """Batches are written on a thread while the next is scored: a write that fails (a full
    disk, say) still ends the run with one line, the earlier file untouched."""
    data = tmp_path / "customers.csv"
    generate_customers(40, seed=2).to_csv(data, index=False)
    out = tmp_path / "scored.csv"
    out.write_text("an earlier result\n")
    written = []
    real_write = batches.TableWriter.write

    def write(self, table):
        if written:
            raise batches.DataError(f"{self.shown}: cannot write (No space left on device)")
        written.append(table.num_rows)
        real_write(self, table)

    monkeypatch.setattr(batches.TableWriter, "write", write)
    result = predict(synthetic_model[1], data, out, "--batch-rows", "10")
    assert result.exit_code == 1
    assert "cannot write (No space left on device)" in result.output
    assert written == [10]
    assert out.read_text() == "an earlier result\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["customers.csv", "scored.csv"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "the file is empty"),
        ("customerID,tenure\n", "the table has a header but no rows"),
        ("a,a\n1,2\n", "duplicate column names: a"),
    ],
)
def test_unusable_inputs_are_one_line(synthetic_model, tmp_path, content, message):
    data = tmp_path / "customers.csv"
    data.write_text(content)
    result = predict(synthetic_model[1], data, tmp_path / "scored.csv")
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "scored.csv").exists()
