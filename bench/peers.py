"""The peers of ``bench/serving.py``: MLServer serving the same booster, and the ceiling app.

MLServer (the server behind KServe) runs from its own virtual environment, created on first use
under ``~/.cache/churnops-bench/`` with pinned versions (its FastAPI and uvicorn pins differ from
churnops'). It serves the artifact's LightGBM text model with ``mlserver-lightgbm`` over the V2
inference protocol; the client sends features already encoded as the booster's input row (what
churnops does for the caller: a favour to MLServer), ``parallel_workers`` 0 so inference runs in
its one server process, like one uvicorn worker of churnops, and ``OMP_NUM_THREADS=1`` (LightGBM's
OpenMP threads spinning beside the server and the load generator cost it a hundredfold here).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

MLSERVER_VERSION = "1.7.1"
MLSERVER_VENV = Path.home() / ".cache" / "churnops-bench" / f"mlserver-{MLSERVER_VERSION}"
BENCH = Path(__file__).resolve().parent


def mlserver_python() -> Path:
    """The Python of MLServer's own environment (created and installed when missing)."""
    python = MLSERVER_VENV / "bin" / "python"
    if not (MLSERVER_VENV / ".installed").exists():
        print(f"installing MLServer {MLSERVER_VERSION} into {MLSERVER_VENV} …", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(MLSERVER_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", f"mlserver=={MLSERVER_VERSION}",
             f"mlserver-lightgbm=={MLSERVER_VERSION}"],
            check=True,
        )  # fmt: skip
        (MLSERVER_VENV / ".installed").touch()
    return python


def mlserver_versions() -> str:
    out = subprocess.run(
        [str(MLSERVER_VENV / "bin" / "python"), "-c",
         "import importlib.metadata as m; print(', '.join(f'{d} {m.version(d)}' for d in "
         "('mlserver', 'mlserver-lightgbm', 'lightgbm', 'uvicorn', 'fastapi')))"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return out.stdout.strip()


def mlserver_model(model: Path, folder: Path, port: int) -> tuple[list[str], Path] | None:
    """Write MLServer's settings for the artifact's LightGBM model; None when it has none."""
    spec = json.loads((model / "serving" / "serving.json").read_text())
    if spec.get("runtime") != "lightgbm-text":
        return None
    booster = model / spec["model_file"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "settings.json").write_text(json.dumps({
        "http_port": port, "grpc_port": port + 1, "metrics_port": port + 2,
        "parallel_workers": 0, "debug": False, "metrics_endpoint": None,
    }))  # fmt: skip
    (folder / "model-settings.json").write_text(json.dumps({
        "name": "churn", "implementation": "mlserver_lightgbm.LightGBMModel",
        "parameters": {"uri": str(booster.resolve())},
    }))  # fmt: skip
    command = [str(mlserver_python().parent / "mlserver"), "start", str(folder)]
    return command, folder


def v2_body(rows: list[list[float]]) -> bytes:
    """A V2 inference request for already-encoded rows."""
    flat = [float(v) for row in rows for v in row]
    return json.dumps({"inputs": [{"name": "input-0", "shape": [len(rows), len(rows[0])],
                                   "datatype": "FP64", "data": flat}]}).encode()  # fmt: skip


def ceiling_command(python: Path, port: int) -> list[str]:
    return [str(python), "-m", "uvicorn", "ceiling_app:app", "--host", "127.0.0.1",
            "--port", str(port), "--workers", "1", "--no-access-log",
            "--log-level", "warning"]  # fmt: skip
