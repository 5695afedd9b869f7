"""The command line as a terminal user meets it: help, mistakes, progress, .env, the banner."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import pytest
from typer.testing import CliRunner

# Imported up front so that the timed checks below measure the checks, not first imports.
import churnops.pipeline.train  # noqa: F401
from churnops.cli import app
from churnops.cli.serve import listening_line
from churnops.data.sample import generate_customers

SRC = Path(__file__).resolve().parents[2] / "src"
runner = CliRunner()


def run(*args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, list(args), env=env)


def flat(text: str) -> str:
    return " ".join(text.split())


# --- help -------------------------------------------------------------------------------------


def test_help_keeps_bracketed_text_and_shows_flags_as_flags():
    train = flat(run("train", "--help", env={"COLUMNS": "200"}).output)
    assert "Search seconds [default: 60 unless --max-iter]." in train
    assert "MLflow tracking URI [env MLFLOW_TRACKING_URI; default sqlite in .churnops/]." in train
    assert "Artifact directory [default: .churnops/models/NAME]." in train
    assert "[default: churn]" in train
    assert "[default: 42]" in train
    assert "--refit / --no-refit" in train
    assert "<bool>" not in train
    assert re.search(r"--force\s+Replace", train)  # a flag takes no value
    serve = flat(run("serve", "--help", env={"COLUMNS": "200"}).output)
    assert "Model artifact directory [env CHURN_MODEL]." in serve
    assert "Interface [default 0.0.0.0; 127.0.0.1 with --no-auth]." in serve
    assert "Port [env CHURN_PORT or PORT, else 8080]." in serve
    assert "<bool>" not in serve
    assert run("-h").output == run("--help").output


def test_commands_are_listed_in_workflow_order():
    output = run("--help").output
    listed = re.findall(r"^  (\w+)\s{2,}", output.split("Commands:")[1], flags=re.M)
    workflow = ["data", "train", "models", "predict", "serve", "monitor", "retrain"]
    assert [name for name in listed if name in workflow] == workflow


def test_version_names_churnops_and_its_key_libraries():
    result = run("--version")
    assert result.exit_code == 0
    assert result.output.startswith(f"churnops {version('churnops')} (Python ")
    for library in ("flaml", "lightgbm", "scikit-learn", "mlflow", "fastapi"):
        assert f"{library} {version(library)}" in result.output


def test_shell_completion_script_and_completions():
    assert "--install-completion" in run("--help").output
    # What --show-completion prints for bash, asked for without detecting the shell.
    script = runner.invoke(app, [], env={"_CHURNOPS_COMPLETE": "source_bash"}, prog_name="churnops")
    assert script.exit_code == 0
    assert "complete -o default -F _churnops_completion churnops" in script.output
    words = {"_CHURNOPS_COMPLETE": "complete_bash", "COMP_WORDS": "churnops train --ta"}
    completed = runner.invoke(app, [], env={**words, "COMP_CWORD": "2"}, prog_name="churnops")
    assert completed.output.split() == ["--target"]


# --- mistakes: one line, non-zero, nothing trained ---------------------------------------------


@pytest.fixture
def table(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "customers.csv"
    generate_customers(200, seed=5).to_csv(path, index=False)
    return path


MISTAKES = [
    (["--metric", "accuracyy"], "unknown metric 'accuracyy' (did you mean 'accuracy'?)"),
    (["--estimators", "lgbm,rff"], "got ['rff'] (did you mean 'rf'?)"),
    (["--target", "churn"], "target column 'churn' not found (did you mean 'Churn'?)"),
    (["--id-columns", "customerid"],
     "ID column 'customerid' not found (did you mean 'customerID'?)"),
    (["--drop-columns", "gendr"], "column to drop 'gendr' not found (did you mean 'gender'?)"),
    (["--positive-label", "yes"],
     "positive label 'yes' never occurs in 'Churn' (did you mean 'Yes'?)"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "message"), MISTAKES)
def test_a_mistake_is_one_line_before_any_training(args, message, table, tmp_path):
    out = tmp_path / "model"
    started = time.monotonic()
    result = run("train", "--data", str(table), "--out", str(out), "--no-tracking", *args)
    seconds = time.monotonic() - started
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert message in lines[0]
    assert "Traceback" not in result.output
    assert seconds < 3, f"the check took {seconds:.1f} s: it ran after some training"
    assert not out.exists()
    assert not (tmp_path / ".churnops").exists()


def test_a_missing_column_lists_every_column_of_a_short_table(table):
    result = run("train", "--data", str(table), "--target", "churn", "--no-tracking")
    header = table.read_text().splitlines()[0].split(",")
    assert len(header) == 21
    assert all(repr(name) in result.stderr for name in header)


def test_an_existing_model_is_not_overwritten_without_force(table, tmp_path):
    out = tmp_path / "model"
    out.mkdir()
    (out / "manifest.json").write_text("the model that was here")
    started = time.monotonic()
    result = run("train", "--data", str(table), "--out", str(out), "--no-tracking")
    assert time.monotonic() - started < 3
    assert result.exit_code == 1
    assert "already exists; pass --force to replace it" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert [p.name for p in out.iterdir()] == ["manifest.json"]
    assert (out / "manifest.json").read_text() == "the model that was here"


def test_export_refuses_a_directory_that_appeared_while_training(synthetic_model, tmp_path):
    from churnops.errors import ArtifactExistsError
    from churnops.pipeline.train import export_model

    result, _ = synthetic_model
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "other.txt").write_text("someone else's")
    with pytest.raises(ArtifactExistsError, match="not replacing it"):
        export_model(result, taken, overwrite=False)
    assert [p.name for p in taken.iterdir()] == ["other.txt"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".taken.")]  # no leftovers
    empty = tmp_path / "empty"
    empty.mkdir()
    assert export_model(result, empty, overwrite=False).path == empty
    assert export_model(result, empty, overwrite=True).path == empty  # --force


BLOCKER = """
import sys

class BlockTrainingLibraries:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("pandas", "pyarrow", "sklearn", "flaml", "mlflow"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, BlockTrainingLibraries())
"""


@pytest.mark.parametrize(
    ("args", "module"),
    [
        (["data", "sample", "--out", "x.csv"], "pandas"),
        (["train", "--max-iter", "1", "--no-tracking"], "pandas"),
        (["predict", "--model", "m", "--data", "x.csv", "--out", "y.csv"], "pyarrow"),
        (["models", "list"], "mlflow"),
    ],
)
def test_a_missing_extra_names_the_extra_to_install(args, module, tmp_path):
    """A base install (no extras), simulated: importing the train extra's libraries fails."""
    (tmp_path / "sitecustomize.py").write_text(BLOCKER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(SRC)])}
    result = subprocess.run(
        [sys.executable, "-c", "from churnops.cli import main; main()", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: this command needs the 'train' extra (no module '{module}'): "
        "pip install 'churnops[train]'"
    ]


# --- progress and output in a log -------------------------------------------------------------


@pytest.mark.slow
def test_training_in_a_log_prints_status_lines_and_never_wraps(table, tmp_path):
    out = tmp_path / "a-model-directory-with-a-name-long-enough-to-pass-eighty-columns"
    result = run(
        "train", "--data", str(table), "--out", str(out), "--no-tracking", "--metric", "roc_auc",
        "--max-iter", "5", "--time-budget", "60", "--status-every", "0.2",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    status = [line for line in result.stderr.splitlines() if line.startswith("search")]
    assert status, result.stderr
    final = status[-1]
    found = re.fullmatch(
        r"search done: (\d) trials of 5, best roc_auc (0\.\d{4}) \((\w+)\), \d+ s elapsed, "
        r"\d+ s left",
        final,
    )
    assert found, final
    assert int(found[1]) >= 1
    assert 0.5 < float(found[2]) <= 1.0
    counts = [int(m[1]) for line in status if (m := re.search(r"(\d) trials? of 5", line))]
    assert counts == sorted(counts)
    # Not a terminal: nothing is wrapped at 80 columns; the artifact line holds the whole path.
    assert any(len(line) > 80 for line in result.output.splitlines())
    assert any(f"artifact: {out} (version" in line for line in result.stdout.splitlines())


# --- settings from .env -----------------------------------------------------------------------


def test_settings_come_from_a_dot_env_file_and_the_environment_wins(tmp_path, monkeypatch):
    from churnops.config import read_settings

    monkeypatch.chdir(tmp_path)
    for name in ("CHURN_PORT", "PORT", "CHURN_USER", "CHURN_LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / ".env").write_text(
        "CHURN_PORT=9123\nCHURN_USER=from-dot-env\nCHURN_LOG_LEVEL=debug\n"
    )
    settings = read_settings()
    assert (settings.port, settings.user, settings.log_level) == (9123, "from-dot-env", "debug")
    monkeypatch.setenv("CHURN_PORT", "9456")
    assert read_settings().port == 9456
    assert read_settings(port=9789).port == 9789  # a command-line option wins over both


def test_dot_env_is_kept_out_of_git():
    ignored = (Path(__file__).resolve().parents[2] / ".gitignore").read_text().splitlines()
    assert ".env" in ignored


# --- the serve banner -------------------------------------------------------------------------


def test_listening_line_states_the_bind_address_and_a_reachable_url():
    assert listening_line("0.0.0.0", 8080) == (
        "listening on 0.0.0.0:8080 (all interfaces); on this machine: "
        "API http://127.0.0.1:8080/predict   docs: http://127.0.0.1:8080/docs"
    )
    assert listening_line("127.0.0.1", 9000) == (
        "listening on 127.0.0.1:9000: API http://127.0.0.1:9000/predict   "
        "docs: http://127.0.0.1:9000/docs"
    )
    assert listening_line("::", 8080).startswith(
        "listening on [::]:8080 (all interfaces); on this machine: API http://[::1]:8080/predict"
    )


def test_serve_banner_names_the_real_address_and_keeps_the_password_whole(
    synthetic_model, tmp_path, monkeypatch
):
    import churnops.workflows.serving as serving

    started = []
    monkeypatch.setattr(serving, "run_service", lambda plan, warn: started.append(plan))
    monkeypatch.chdir(tmp_path)
    for name in ("CHURN_USER", "CHURN_PASSWORD", "CHURN_PORT", "PORT", "CHURN_HOST"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / ".env").write_text("CHURN_PORT=8123\n")
    model = str(synthetic_model[1].path)
    result = run("serve", "--model", model, "--generate-credentials", "--no-store")
    assert result.exit_code == 0, result.output
    assert started
    assert started[0].settings.host == "0.0.0.0"
    assert (
        "listening on 0.0.0.0:8123 (all interfaces); on this machine: "
        "API http://127.0.0.1:8123/predict" in result.stdout
    )
    password = started[0].settings.password.get_secret_value()
    assert any(
        line.endswith(f"password {password}") and "credentials" in line
        for line in result.stdout.splitlines()
    )


@pytest.mark.slow
def test_a_real_server_writes_one_json_log_after_its_banner(synthetic_model, tmp_path):
    from ..api.servers import _env, serving

    env = _env(CHURN_USER="analyst", CHURN_PASSWORD="a-long-test-password-1")
    with serving(["--model", str(synthetic_model[1].path)], env, tmp_path / "log") as server:
        port = server.base.rsplit(":", 1)[1]
    lines = server.output().splitlines()
    assert f"listening on 0.0.0.0:{port} (all interfaces)" in server.output()
    first_log = next(i for i, line in enumerate(lines) if line.startswith("{"))
    records = [json.loads(line) for line in lines[first_log:]]  # every line after: JSON
    loggers = {record["logger"] for record in records}
    assert {"uvicorn.error", "churnops.api", "churnops.access"} <= loggers
