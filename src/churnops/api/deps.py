"""Dependencies the routes declare: the served model and the app's own parts."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.exceptions import HTTPException

from churnops.api.serving import ModelHolder, ServedModel


def holder(request: Request) -> ModelHolder:
    """The app's model holder."""
    found: ModelHolder = request.app.state.holder
    return found


async def served_model(request: Request) -> ServedModel:
    """The model being served (503 until one is loaded)."""
    model = holder(request).model
    if model is None:
        raise HTTPException(503, "model not loaded")
    return model


Served = Annotated[ServedModel, Depends(served_model)]
Holder = Annotated[ModelHolder, Depends(holder)]
