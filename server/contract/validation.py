"""The one validation layer: pydantic models for HTTP bodies and event payloads."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from server.contract.errors import AppError
from server.policy.recurrence import VIETNAM

# Every date the service is given lies in these years (Vietnam dates): a bound on the work a
# date can cause, and far from the ends of the calendar, where converting between time zones
# overflows. Records are kept for decades, not centuries.
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2100, 12, 31)
EARLIEST = datetime.combine(FIRST_DAY, datetime.min.time(), VIETNAM)
LATEST = datetime.combine(LAST_DAY + timedelta(days=1), datetime.min.time(), VIETNAM)  # a period's end
BOUNDS = f"between {FIRST_DAY.isoformat()} and {LAST_DAY.isoformat()}"
# The longest period a query may span (the statistics; ward rounds allow less).
LONGEST_PERIOD = timedelta(days=366)


class Payload(BaseModel):
    """Base for every incoming body or event payload: unknown fields are refused, nothing is coerced."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


P = TypeVar("P", bound=Payload)

# The identifiers a payload carries: a record's id, and a client's operation id (the key that
# makes a repeated request do nothing twice).
Id = Annotated[str, StringConstraints(min_length=1, max_length=64)]
OpId = Annotated[str, StringConstraints(min_length=1, max_length=100)]


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
    refuse_nul(data)
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise AppError("invalid", describe(error)) from None


def refuse_nul(data: Any, where: str = "payload") -> None:
    """`AppError("invalid")` when any text in `data` (keys included, at any depth) holds a NUL
    character. PostgreSQL cannot store one in text (SQLite can): refused here, on every database
    alike, rather than failing in the database on one of them. Walked without recursion: a
    payload may be nested as deep as the JSON parser allows."""
    stack: list[tuple[str, Any]] = [(where, data)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise AppError("invalid", f"{path[:120]}: text must not contain a NUL character")
        elif isinstance(item, dict):
            for key, value in item.items():
                if isinstance(key, str) and "\x00" in key:
                    raise AppError("invalid", f"{path[:120]}: a field name must not contain a NUL character")
                stack.append((f"{key}" if path == "payload" else f"{path}.{key}", value))
        elif isinstance(item, list | tuple):
            stack.extend((f"{path}.{index}", value) for index, value in enumerate(item))


def parse_instant(name: str, raw: str) -> datetime:
    """An ISO 8601 date-time in UTC (UTC when it has no offset), within `EARLIEST`..`LATEST`;
    `AppError("invalid")` otherwise. A bare date, YYYY-MM-DD, is that day's midnight in Vietnam,
    as everywhere in the service: `from=2026-12-08` takes in that morning's 06:30 round.

    The one parser of instants (dates: `parse_day`). Converted here: 0001-01-01T00:00+14:00 has
    no UTC time, and the database would fail on it."""
    try:
        date.fromisoformat(raw)
    except ValueError:
        pass  # not a bare date
    else:
        return datetime.combine(parse_day(name, raw), time(), VIETNAM).astimezone(UTC)
    try:
        value = datetime.fromisoformat(raw)
        value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    except ValueError:
        raise AppError("invalid", f"{name} must be an ISO 8601 date or time") from None
    except OverflowError:
        raise AppError("invalid", f"{name} must be {BOUNDS}") from None
    return check_instant(name, value)


def check_instant(name: str, value: datetime) -> datetime:
    if not EARLIEST <= value <= LATEST:
        raise AppError("invalid", f"{name} must be {BOUNDS}")
    return value


def parse_day(name: str, raw: str) -> date:
    """A date, YYYY-MM-DD, within `FIRST_DAY`..`LAST_DAY`; `AppError("invalid")` otherwise."""
    try:
        value = date.fromisoformat(raw)
    except ValueError:
        raise AppError("invalid", f"{name} must be a date, YYYY-MM-DD") from None
    if not FIRST_DAY <= value <= LAST_DAY:
        raise AppError("invalid", f"{name} must be {BOUNDS}")
    return value


def check_period(start: datetime, end: datetime, longest: timedelta = LONGEST_PERIOD) -> None:
    """`[start, end)` must be non-empty and at most `longest` long."""
    if start >= end:
        raise AppError("invalid", "from must be before to")
    if end - start > longest:
        raise AppError("invalid", f"from and to must be at most {longest.days} days apart")


def parse_limit(name: str, raw: str | None, default: int, most: int) -> int:
    """A page size from the query: a whole number from 1 to `most`; `default` when not given."""
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= most:
        raise AppError("invalid", f"{name} must be a whole number from 1 to {most}")
    return int(raw)


def parse_choices(name: str, raw: str | None, allowed: tuple[str, ...]) -> list[str]:
    """A comma-separated list of known words (`ended,cancelled`); empty when not given."""
    if raw is None or raw == "":
        return []
    found = [part.strip() for part in raw.split(",")]
    wrong = [part for part in found if part not in allowed]
    if wrong or len(found) > len(allowed):
        raise AppError("invalid", f"{name} must be one or more of {', '.join(allowed)}, separated by commas")
    return sorted(set(found))


def parse_text(name: str, raw: str | None, longest: int) -> str | None:
    """A short search text from the query, trimmed; None when not given."""
    if raw is None or raw.strip() == "":
        return None
    if len(raw) > longest:
        raise AppError("invalid", f"{name} must be at most {longest} characters")
    return raw.strip()
