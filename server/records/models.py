"""Records that must last: hospitals, sister links, users, audit. SQLAlchemy 2 async.

SQLite (aiosqlite) by default, PostgreSQL (asyncpg) by URL. The schema is owned by the
Alembic migrations in `server/records/migrations`; these classes mirror it.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    event,
    false,
)
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from server.policy.lifecycle import ConsultStatus, LeadStatus, SessionStatus
from server.policy.matching import Urgency


def new_id() -> str:
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime: use timezone-aware UTC times")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    pass


class Hospital(Base):
    __tablename__ = "hospitals"
    # An insert does not read the database's defaults back (`record_consults`): the demo's insert
    # then runs on a database at an earlier revision too (tests/system/test_audit_chain.py), and
    # whoever creates a hospital and shows it names the value (actions/admin.create_hospital).
    __mapper_args__ = {"eager_defaults": False}  # noqa: RUF012 (SQLAlchemy reads it from the class)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[str] = mapped_column(String(20))  # central / city / provincial / district / commune / authority
    # A short lowercase code (`hanoi`, `quangninh`): what a Department of Health's scope matches
    # (server/policy/scope.py). None: no Department of Health sees the hospital. Its name is for people.
    province: Mapped[str | None] = mapped_column(String(32), nullable=True)
    province_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # The hospital records its consults by itself: the recording starts once both sides are in the
    # call and the patient consents to it (server/policy/recording.py). Set by an admin.
    record_consults: Mapped[bool] = mapped_column(Boolean, server_default=false())


class SisterLink(Base):
    """An upper-level hospital paired with a lower-level one."""

    __tablename__ = "sister_links"

    upper_id: Mapped[str] = mapped_column(ForeignKey("hospitals.id"), primary_key=True)
    lower_id: Mapped[str] = mapped_column(ForeignKey("hospitals.id"), primary_key=True)


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))  # specialist / clinician / supervisor / admin
    hospital_id: Mapped[str] = mapped_column(ForeignKey("hospitals.id"))
    specialties: Mapped[list[str]] = mapped_column(JSON, default=list)
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Tokens carry the generation they were issued in; a new password starts the next one and
    # so ends every earlier sign-in (a count, not a time: instances' clocks may differ).
    token_generation: Mapped[int] = mapped_column(default=0, server_default="0")


class RevokedToken(Base):
    """A token ended by signing out before it expired: refused until then (`server.actions.sessions`),
    and removed once it would have expired anyway."""

    __tablename__ = "revoked_tokens"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the token's `jti`
    user_id: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class AuditEntry(Base):
    """Who did or read what, when, from where. Never the clinical text itself."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_target", "target_type", "target_id"), Index("ux_audit_seq", "seq", unique=True))

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    actor_id: Mapped[str | None] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(100))
    target_type: Mapped[str] = mapped_column(String(50), default="")
    target_id: Mapped[str] = mapped_column(String(64), default="")
    address: Mapped[str] = mapped_column(String(100), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    # The tamper-evident chain (server/records/chain.py): the entry's place in it, the hash of
    # the entry before and its own hash over both. Filled in as the entry is written.
    seq: Mapped[int] = mapped_column(Integer)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class ChainHead(Base):
    """The audit chain's last entry: one row, updated in the transaction that appends, so
    writers on every instance take turns on it and the chain never forks."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # always 1
    seq: Mapped[int] = mapped_column(Integer)  # 0 before the first entry
    hash: Mapped[str] = mapped_column(String(64))


SQLITE_POOL_SIZE = 5
# aiosqlite logs every statement with its values at DEBUG: patient data, whatever the service's
# log level. Its logger stops at INFO (SQLAlchemy's own lines hide values: `hide_parameters`).
logging.getLogger("aiosqlite").setLevel(logging.INFO)


class Database:
    """The async engine and session factory for one database URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any]
        if self.is_sqlite:
            # SQLite writes one transaction at a time whatever the pool holds, and each pooled
            # connection is a thread with its own page cache: ten more connections in a burst of
            # sign-ins held ~3 MB and connected no faster (docs/benchmarks.md).
            kwargs = {"pool_size": SQLITE_POOL_SIZE, "max_overflow": 0}
        else:
            kwargs = {"pool_size": 10, "max_overflow": 10, "pool_pre_ping": True}
        # hide_parameters: a database error's message (logged with its traceback) names the
        # statement, never the values bound to it, which may be patient data.
        self.engine: AsyncEngine = create_async_engine(url, hide_parameters=True, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.session = async_sessionmaker(self.engine, expire_on_commit=False)

    async def close(self) -> None:
        await self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets several instances read while one writes; FULL sync keeps acknowledged
    # writes through a crash; busy_timeout makes writers wait instead of failing.
    cursor = dbapi_connection.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "busy_timeout=10000", "foreign_keys=ON"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


class Consult(Base):
    """A consult request and what became of it. `version` increases with every status change,
    so a change is made by exactly one writer: `UPDATE ... WHERE version = <the one read>`."""

    __tablename__ = "consults"
    __table_args__ = (
        Index("ux_consult_op", "requester_id", "op_id", unique=True),
        Index("ix_consult_status", "status"),
        Index("ix_consult_specialist", "specialist_id"),
        Index("ix_consult_created", "created_at"),
        # One consult per patient per round session, however many instances start the session.
        Index("ux_consult_round_patient", "round_session_id", "round_patient_id", unique=True),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(20), default="consult")  # consult / round
    op_id: Mapped[str] = mapped_column(String(100))
    status: Mapped[ConsultStatus] = mapped_column(String(20))  # its moves: server/lifecycle.py
    specialty: Mapped[str] = mapped_column(String(50))
    urgency: Mapped[Urgency] = mapped_column(String(20))  # routine / urgent / emergency
    patient: Mapped[dict[str, Any]] = mapped_column(JSON)
    requester_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    hospital_id: Mapped[str] = mapped_column(ForeignKey("hospitals.id"))  # the requester's hospital
    named_specialist_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    named_answer: Mapped[str | None] = mapped_column(String(20))  # declined / expired: the requester decides
    specialist_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    outcome: Mapped[str | None] = mapped_column(String(30))
    summary: Mapped[str | None] = mapped_column(Text)
    ended_by_id: Mapped[str | None] = mapped_column(String(64))  # who ended or cancelled it
    # What became of the patient, reported back by the requesting side after the end
    # (`consult:result`): the latest report; every report is also a `result` timeline line.
    result: Mapped[str | None] = mapped_column(String(20))
    result_note: Mapped[str | None] = mapped_column(Text)
    result_by_id: Mapped[str | None] = mapped_column(String(64))
    result_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(default=1)
    note_seq: Mapped[int] = mapped_column(default=0)  # the last note's seq
    note_bytes: Mapped[int] = mapped_column(default=0)  # UTF-8 bytes of its notes' text, for the cap
    demo: Mapped[bool] = mapped_column(Boolean, default=False)  # generated demo history, never a real patient
    # A round patient's consult (kind `round`): the session (one occurrence of a round) and the
    # patient of the round's list it is about. Both None for an on-demand consult.
    round_session_id: Mapped[str | None] = mapped_column(String(64))
    round_patient_id: Mapped[str | None] = mapped_column(String(64))
    # The patient's consent as it stands (`views.consent_view`'s fields; None: never given), the
    # latest row of `consents`; and why an emergency went ahead without it.
    consent: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    consent_waived_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class ConsentRecord(Base):
    """A consent given (or withdrawn: no scopes) to a consult. Append-only; one per `op_id`."""

    __tablename__ = "consents"
    __table_args__ = (Index("ux_consent_op", "consult_id", "op_id", unique=True),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    consult_id: Mapped[str] = mapped_column(ForeignKey("consults.id"))
    op_id: Mapped[str] = mapped_column(String(100))
    given_by: Mapped[str] = mapped_column(String(20))  # patient / relative / guardian
    relation: Mapped[str | None] = mapped_column(String(100))
    method: Mapped[str] = mapped_column(String(20))  # verbal / written / electronic
    scopes: Mapped[list[str]] = mapped_column(JSON)
    note: Mapped[str | None] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ConsultEvent(Base):
    """One line of a consult's timeline: requested, offered, declined, expired, accepted, ..."""

    __tablename__ = "consult_events"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    consult_id: Mapped[str] = mapped_column(ForeignKey("consults.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    kind: Mapped[str] = mapped_column(String(30))
    actor_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Note(Base):
    """A note in a consult's record. Append-only: an amendment is a new note that `amends` the old."""

    __tablename__ = "notes"
    __table_args__ = (
        Index("ux_note_seq", "consult_id", "seq", unique=True),
        Index("ux_note_op", "consult_id", "op_id", unique=True),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    consult_id: Mapped[str] = mapped_column(ForeignKey("consults.id"))
    seq: Mapped[int] = mapped_column()
    op_id: Mapped[str] = mapped_column(String(100))
    section: Mapped[str] = mapped_column(String(30))
    text: Mapped[str] = mapped_column(Text)
    author_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    amends: Mapped[str | None] = mapped_column(String(64))
    # Written after the minutes were locked (signed by the chair and the secretary): an addendum.
    # No Python-side default: an insert that does not name it (older code, a migration's data)
    # gets the database's false.
    addendum: Mapped[bool] = mapped_column(Boolean, server_default=false())


class Attachment(Base):
    __tablename__ = "attachments"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    consult_id: Mapped[str] = mapped_column(ForeignKey("consults.id"), index=True)
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(50))
    size: Mapped[int] = mapped_column()
    sha256: Mapped[str] = mapped_column(String(64))
    uploader_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Round(Base):
    """A scheduled ward round: one occurrence, or a daily or weekly series until an end date.

    `starts_at` is the first occurrence; the others are at the same time of day (Vietnam has no
    daylight saving, so that is the same UTC time). `skipped` holds the Vietnam dates of single
    occurrences that were cancelled; `cancelled_at` cancels the whole series."""

    __tablename__ = "rounds"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    title: Mapped[str] = mapped_column(String(200))
    hospital_id: Mapped[str] = mapped_column(ForeignKey("hospitals.id"), index=True)  # the district hospital
    ward: Mapped[str] = mapped_column(String(100))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    duration_min: Mapped[int] = mapped_column()
    recurrence: Mapped[str | None] = mapped_column(String(10))  # None / daily / weekly
    until: Mapped[date | None] = mapped_column(Date())  # the last day of a series (Vietnam date), inclusive
    skipped: Mapped[list[str]] = mapped_column(JSON, default=list)
    lead_specialist_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    participant_ids: Mapped[list[str]] = mapped_column(JSON, default=list)  # invited specialists and clinicians
    # `accepted`, or `pending` / `declined` for a lead of another network, who must accept first.
    lead_status: Mapped[LeadStatus] = mapped_column(String(10), default="accepted")
    created_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(default=1)


class RoundPatient(Base):
    """One bed of a round's ordered patient list. Removed patients are kept (their consults point here)."""

    __tablename__ = "round_patients"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    round_id: Mapped[str] = mapped_column(ForeignKey("rounds.id"), index=True)
    position: Mapped[int] = mapped_column()
    bed: Mapped[str] = mapped_column(String(20))
    ref: Mapped[str] = mapped_column(String(64))
    summary: Mapped[str] = mapped_column(Text, default="")
    # The patient's identity (the contract's identity fields) and consent (as a consult keeps its
    # `consent`, `recorded_by` a user id): copied onto each consult a session opens for them.
    identity: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    consent: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    added_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RoundSession(Base):
    """One occurrence of a round that was held: started by the first `round:join` that day."""

    __tablename__ = "round_sessions"
    __table_args__ = (Index("ux_round_session_day", "round_id", "day", unique=True),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    round_id: Mapped[str] = mapped_column(ForeignKey("rounds.id"))
    day: Mapped[date] = mapped_column(Date())  # the occurrence's date in Vietnam
    status: Mapped[SessionStatus] = mapped_column(String(10))  # active / ended (server/lifecycle.py)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    started_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    focus_patient_id: Mapped[str | None] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(default=1)


class CalendarFeed(Base):
    """A user's secret calendar address: only the SHA-256 of the secret is kept."""

    __tablename__ = "calendar_feeds"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Minutes(Base):
    """The minutes (biên bản) of a consult: their number, given once per issuing hospital and year
    at the first generation and kept, and who chairs and who takes the minutes (None: the default,
    the accepted specialist and the requesting clinician). server/records/minutes.py"""

    __tablename__ = "minutes"
    __table_args__ = (Index("ux_minutes_number", "hospital_id", "year", "number", unique=True),)

    consult_id: Mapped[str] = mapped_column(ForeignKey("consults.id"), primary_key=True)
    hospital_id: Mapped[str] = mapped_column(ForeignKey("hospitals.id"))  # the issuing hospital: the requester's
    year: Mapped[int] = mapped_column()  # the year in Vietnam when the number was given
    number: Mapped[int] = mapped_column()
    chair_id: Mapped[str | None] = mapped_column(String(64))
    secretary_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SigningCertificate(Base):
    """A user's signing key and certificate: their PKCS#12, still protected by its PIN, sealed
    again with the server's key (AES-GCM) at rest. The PIN is never stored. Wrong PINs are
    counted here, so every instance sees them. server/records/signing_keys.py"""

    __tablename__ = "signing_certificates"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    subject: Mapped[str] = mapped_column(String(500))
    issuer: Mapped[str] = mapped_column(String(500))
    fingerprint: Mapped[str] = mapped_column(String(64))  # SHA-256 of the certificate (DER)
    not_after: Mapped[datetime] = mapped_column(UTCDateTime())
    uploaded_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    wrong_pins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class MinutesVersion(Base):
    """One version of a consult's minutes, frozen at its first signature: the PDF as generated
    (`base_sha256`) and as signed so far (`sha256`, the latest incremental update; the
    compare-and-set that serialises signers), the notes it holds (`notes_upto`), the audit
    chain's head when it was generated, and whether the chair and the secretary have both signed
    (`locked`). server/actions/signatures.py"""

    __tablename__ = "minutes_versions"

    consult_id: Mapped[str] = mapped_column(ForeignKey("consults.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    notes_upto: Mapped[int] = mapped_column(Integer)
    chain_seq: Mapped[int] = mapped_column(Integer)
    chain_hash: Mapped[str] = mapped_column(String(64))
    base_sha256: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class MinutesSignature(Base):
    """A signature given to a version of the minutes: who, in what role, when, the PDF it was
    applied to and the PDF it made (both in the blob store). A clinical record: chained."""

    __tablename__ = "minutes_signatures"
    __table_args__ = (Index("ux_minutes_signer", "consult_id", "version", "signer_id", unique=True),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    consult_id: Mapped[str] = mapped_column(ForeignKey("consults.id"))
    version: Mapped[int] = mapped_column(Integer)
    signer_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    role: Mapped[str] = mapped_column(String(20))
    field: Mapped[str] = mapped_column(String(100))  # the PDF signature field it fills
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    base_sha256: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64))


class Recording(Base):
    """One segment of a call recorded at the server (server/media/): a consult's or a round's.

    A call recorded without a break is one segment; after the recorder's instance dies, the
    call goes on as the next segment (`segment` 2, 3 ...), the one cut short marked `failed`.
    The file is in the blob store under `sha256` once the segment is over (while it is being
    written, `path` names the file in progress). `legal_hold` keeps it past `retain_until`."""

    __tablename__ = "recordings"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    consult_id: Mapped[str | None] = mapped_column(ForeignKey("consults.id"), index=True)
    round_id: Mapped[str | None] = mapped_column(ForeignKey("rounds.id"), index=True)
    segment: Mapped[int] = mapped_column(default=1)
    state: Mapped[str] = mapped_column(String(10))  # recording / stopped / failed
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    started_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    duration_s: Mapped[float | None] = mapped_column()
    bytes: Mapped[int | None] = mapped_column()
    sha256: Mapped[str | None] = mapped_column(String(64))
    path: Mapped[str | None] = mapped_column(String(300))  # the file in progress, under BLOB_DIR
    retain_until: Mapped[datetime] = mapped_column(UTCDateTime())
    legal_hold: Mapped[bool] = mapped_column(default=False)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


# Registers the hook that chains every new audit entry as it is flushed (needs the classes above).
from server.records import chain  # noqa: E402, F401
