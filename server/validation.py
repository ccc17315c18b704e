"""The one validation layer: pydantic models for HTTP bodies and event payloads."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from server.errors import AppError


class Payload(BaseModel):
    """Base for every incoming body or event payload: unknown fields are refused, nothing is coerced."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


P = TypeVar("P", bound=Payload)


def describe(error: ValidationError) -> str:
    """A short message naming the first fields that were wrong, without echoing their values."""
    parts = []
    for item in error.errors()[:3]:
        where = ".".join(str(p) for p in item["loc"]) or "payload"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def parse(model: type[P], data: Any) -> P:
    """Validate `data` against `model`, raising `AppError("invalid")` with a clear message."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise AppError("invalid", f"payload must be a JSON object, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise AppError("invalid", describe(error)) from None
