"""The one validation layer: pydantic models for HTTP bodies and event payloads."""

from __future__ import annotations

from datetime import UTC, datetime
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


def parse_instant(name: str, raw: str) -> datetime:
    """An ISO 8601 date-time in UTC (UTC when it has no offset); `AppError("invalid")` otherwise.

    Converted here: 0001-01-01T00:00+14:00 has no UTC time, and the database would fail on it."""
    try:
        value = datetime.fromisoformat(raw)
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    except ValueError:
        raise AppError("invalid", f"{name} must be an ISO 8601 date or time") from None
    except OverflowError:
        raise AppError("invalid", f"{name} is out of range") from None
