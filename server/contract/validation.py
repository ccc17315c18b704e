"""The one validation layer: pydantic models for HTTP bodies and event payloads."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal, Self, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StringConstraints,
    ValidationError,
    model_validator,
)

from server.contract.errors import AppError
from server.policy import consent as consent_policy
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


# A patient's identity (contract v2, "Patient identity and consent"). Pure checks, each giving the
# problem in words (never the value: it is patient data) or None; the payload models use them.

# The 12-digit personal identification number (số định danh cá nhân, on the citizen ID card and
# in VNeID), Nghị định 137/2015/NĐ-CP Art. 13: digits 1-3 the province (or country) where the
# birth was registered, digit 4 the century of birth and sex, digits 5-6 the year of birth, then
# six random digits. The province codes of Thông tư 07/2016/TT-BCA (now 59/2021/TT-BCA) lie in
# 001..096; the check takes that range, not the list, which changes as provinces merge.
NATIONAL_ID_LENGTH = 12
PROVINCE_CODES = range(1, 97)
# The health insurance card number (mã thẻ BHYT): the card of 2 letters (the group insured) and
# 13 digits, or the 10-digit social insurance number (mã số BHXH) that newer cards carry alone.
INSURANCE_ID_LETTERS = 2
INSURANCE_ID_DIGITS = 13
SOCIAL_INSURANCE_DIGITS = 10
FIRST_BIRTH_DATE = date(1900, 1, 1)
ADDRESS_LENGTH = 300
NAME_LENGTH = 200
# HL7 v2 administrative sex codes, stored as the contract's words.
HL7_SEX = {"M": "male", "F": "female", "O": "other", "U": "unknown"}
SEXES = ("male", "female", "other", "unknown")


def _digits(value: str) -> bool:
    return value.isascii() and value.isdigit()


def national_id_problem(value: str) -> str | None:
    """Why `value` is not a citizen ID (12 digits, a province code 001-096 first), or None."""
    if len(value) != NATIONAL_ID_LENGTH or not _digits(value):
        return "national_id must be exactly 12 digits"
    if int(value[:3]) not in PROVINCE_CODES:
        return "national_id must begin with a province code from 001 to 096"
    return None


def national_id_birth_year(value: str) -> int:
    """The year of birth a valid citizen ID encodes: digit 4 gives the century (0-1: 1900s,
    2-3: 2000s, ...; even for men, odd for women), digits 5-6 the year within it."""
    return 1900 + 100 * (int(value[3]) // 2) + int(value[4:6])


def insurance_id_problem(value: str) -> str | None:
    """Why `value` is not a health insurance card number, or None: 2 letters and 13 digits
    (e.g. `DN4010123456789`), or the 10-digit social insurance number."""
    if len(value) == SOCIAL_INSURANCE_DIGITS and _digits(value):
        return None
    letters, digits = value[:INSURANCE_ID_LETTERS], value[INSURANCE_ID_LETTERS:]
    if (
        len(value) == INSURANCE_ID_LETTERS + INSURANCE_ID_DIGITS
        and letters.isascii()
        and letters.isalpha()
        and letters.isupper()
        and _digits(digits)
    ):
        return None
    return "insurance_id must be 2 capital letters and 13 digits, or the 10-digit social insurance number"


def birth_date_problem(value: str, today: date) -> str | None:
    """Why `value` is not a date of birth (YYYY-MM-DD, from 1900-01-01 to `today`), or None."""
    try:
        born = date.fromisoformat(value)
    except ValueError:
        return "birth_date must be a date, YYYY-MM-DD"
    if len(value) != len("YYYY-MM-DD"):
        return "birth_date must be a date, YYYY-MM-DD"
    if not FIRST_BIRTH_DATE <= born <= today:
        return f"birth_date must be between {FIRST_BIRTH_DATE.isoformat()} and today"
    return None


def identity_problem(national_id: str | None, birth_date: str | None) -> str | None:
    """Why a citizen ID and a date of birth given together disagree (the year of birth), or None."""
    if national_id is None or birth_date is None:
        return None
    if national_id_birth_year(national_id) != date.fromisoformat(birth_date).year:
        return "national_id does not match the year of birth_date"
    return None


def sex_word(value: str) -> str:
    """The contract's word for a sex given as a word or an HL7 v2 code (`M` → `male`)."""
    return HL7_SEX.get(value, value)


def today_in_vietnam() -> date:
    return datetime.now(VIETNAM).date()


def _refusing(problem: Callable[[str], str | None]) -> AfterValidator:
    def check(value: str) -> str:
        found = problem(value)
        if found is not None:
            raise ValueError(found)
        return value

    return AfterValidator(check)


NationalId = Annotated[str, _refusing(national_id_problem)]
InsuranceId = Annotated[str, _refusing(insurance_id_problem)]
BirthDate = Annotated[str, _refusing(lambda value: birth_date_problem(value, today_in_vietnam()))]
Sex = Annotated[
    Literal["male", "female", "other", "unknown"],
    BeforeValidator(lambda value: sex_word(value) if isinstance(value, str) else value),
]
PatientName = Annotated[str, StringConstraints(min_length=1, max_length=NAME_LENGTH)]
Address = Annotated[str, StringConstraints(min_length=1, max_length=ADDRESS_LENGTH)]
IDENTITY_FIELDS = ("name", "birth_date", "sex", "national_id", "insurance_id", "address")


class Identity(Payload):
    """A patient's identity, each field optional (patient data: never logged; shown only to those
    who may read the consult): a consult's `patient` and a ward round's listed patient carry it."""

    sex: Sex | None = None
    name: PatientName | None = None
    birth_date: BirthDate | None = None
    national_id: NationalId | None = None
    insurance_id: InsuranceId | None = None
    address: Address | None = None

    @model_validator(mode="after")
    def consistent(self) -> Self:
        problem = identity_problem(self.national_id, self.birth_date)
        if problem is not None:
            raise ValueError(problem)
        return self

    def identity(self) -> dict[str, str]:
        """The identity fields given (none of the payload's other fields)."""
        return {k: v for k, v in self.model_dump(include=set(IDENTITY_FIELDS)).items() if v is not None}


class Consent(Payload):
    """A consent as given (`consult:consent` without its ids, `consent` in `consult:request`, or a
    ward round's listed patient's `consent`); `scopes: []` withdraws it."""

    given_by: consent_policy.GivenBy
    relation: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    method: consent_policy.Method
    scopes: list[consent_policy.Scope]
    note: Annotated[str, StringConstraints(max_length=1000)] | None = None

    @model_validator(mode="after")
    def coherent(self) -> Self:
        if len(set(self.scopes)) != len(self.scopes):
            raise ValueError("scopes must not repeat a scope")
        if "recording" in self.scopes and "consult" not in self.scopes:
            raise ValueError("scopes: consent to recording comes with consent to the consult")
        if self.given_by != "patient" and self.relation is None:
            raise ValueError("relation is required when a relative or a guardian gives consent")
        return self


MAX_PIN_CHARS = 128


class MinutesSign(Payload):
    """`POST /api/consults/{id}/minutes/sign`: the PIN that opens the caller's signing key, used
    for this one signature and never kept or logged."""

    pin: Annotated[str, StringConstraints(min_length=1, max_length=MAX_PIN_CHARS)]
