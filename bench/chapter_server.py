"""The usual way to serve a churn Pipeline, as a baseline for ``bench/serving.py``.

A FastAPI route with HTTP Basic auth that builds a pandas DataFrame from the posted records and
calls ``Pipeline.predict_proba`` — the serving path of the book chapter churnops grows from, with
two of its defects removed so it can be measured at all: values may be JSON numbers, and the
pipeline reads ``TotalCharges`` as a number, so new customers do not make the encoder raise.

Run by the benchmark as ``uvicorn chapter_server:create_app --factory`` with ``CHAPTER_MODEL``
(an artifact directory) and ``CHURN_USER`` / ``CHURN_PASSWORD`` in the environment.
"""

import os
import secrets
from typing import Annotated, Any

import pandas as pd
from fastapi import Depends, FastAPI, HTTPException, status
from fastapi.security import HTTPBasic, HTTPBasicCredentials

from churnops.artifact import load_artifact


def create_app() -> FastAPI:
    """Load the pipeline and return the baseline app."""
    artifact = load_artifact(os.environ["CHAPTER_MODEL"])
    pipeline = artifact.load_pipeline()
    classes = [str(c) for c in pipeline.classes_]
    user = os.environ["CHURN_USER"].encode()
    password = os.environ["CHURN_PASSWORD"].encode()
    security = HTTPBasic()
    app = FastAPI()

    def authenticate(credentials: Annotated[HTTPBasicCredentials, Depends(security)]) -> None:
        ok_user = secrets.compare_digest(credentials.username.encode(), user)
        ok_password = secrets.compare_digest(credentials.password.encode(), password)
        if not (ok_user and ok_password):
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, headers={"WWW-Authenticate": "Basic"})

    @app.post("/predict", dependencies=[Depends(authenticate)])
    def predict(data: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        frame = pd.DataFrame(data)
        probabilities = pipeline.predict_proba(frame)
        out = {}
        for i, row in enumerate(probabilities):
            best = int(row.argmax())
            out[str(i)] = {"prediction": classes[best], "probability": float(row[best])}
        return out

    return app
