"""The views: what the clients receive for a hospital, a person, a consult, a note, an attachment.

One builder per view, so each object of docs/protocol.md is written in one place and a new field
reaches every screen that shows it. The builders read plain values or any object with the
right attributes (the database rows fit), so the contract imports no database library; the
dicts they return are the JSON the clients get, their keys in the order written here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, Protocol, TypedDict
from urllib.parse import quote


def iso(value: datetime | None) -> str | None:
    """An instant as the contract writes it: ISO 8601 in UTC; None stays None."""
    return value.astimezone(UTC).isoformat() if value is not None else None


# A hospital.


class HospitalRef(TypedDict):
    """`{id, name, level}`: the hospital a person, a consult or a round belongs to."""

    id: str
    name: str
    level: str


class HospitalName(TypedDict):
    """`{id, name}`: the hospital where a screen shows only its name (the board's people, a
    round's lead request)."""

    id: str
    name: str


def hospital_ref(id: str, name: str, level: str) -> HospitalRef:
    return {"id": id, "name": name, "level": level}


def hospital_name(id: str, name: str) -> HospitalName:
    return {"id": id, "name": name}


class HospitalDetail(HospitalRef):
    """A hospital as the admin screens see it: with the province a Department of Health oversees,
    and whether its consults are recorded by themselves."""

    province: str | None
    province_name: str | None
    record_consults: bool


class SisterLinkView(TypedDict):
    """An upper-level hospital paired with a lower-level one."""

    upper: HospitalRef
    lower: HospitalRef


def hospital_detail(
    id: str, name: str, level: str, province: str | None, province_name: str | None, record_consults: bool
) -> HospitalDetail:
    return {
        "id": id,
        "name": name,
        "level": level,
        "province": province,
        "province_name": province_name,
        "record_consults": record_consults,
    }


def sister_link(upper: HospitalRef, lower: HospitalRef) -> SisterLinkView:
    return {"upper": upper, "lower": lower}


# A person.


class Person(TypedDict):
    """`{id, name, role, hospital}`: who requested, answered, wrote or joined."""

    id: str
    name: str
    role: str
    hospital: HospitalRef


class AccountView(Person):
    """A signed-in account as its own screens see it: a person with their specialties."""

    specialties: list[str]


class BoardPerson(TypedDict):
    """A person on the supervisors' board: their hospital by name only."""

    id: str
    name: str
    role: str
    hospital: HospitalName


def person(id: str, name: str, role: str, hospital: HospitalRef) -> Person:
    return {"id": id, "name": name, "role": role, "hospital": hospital}


def account_view(id: str, name: str, role: str, hospital: HospitalRef, specialties: list[str]) -> AccountView:
    return {"id": id, "name": name, "role": role, "hospital": hospital, "specialties": specialties}


def board_person(id: str, name: str, role: str, hospital: HospitalName) -> BoardPerson:
    return {"id": id, "name": name, "role": role, "hospital": hospital}


class AdminUserView(TypedDict):
    """An account as the admin screens see it. Never a password hash."""

    id: str
    username: str
    name: str
    role: str
    hospital: HospitalRef
    specialties: list[str]
    active: bool
    created_at: str


def admin_user_view(
    id: str,
    username: str,
    name: str,
    role: str,
    hospital: HospitalRef,
    specialties: list[str],
    active: bool,
    created_at: datetime,
) -> AdminUserView:
    # `created_at` as stored (the database's UTC), not through `iso`: what the admin screens have read.
    return {
        "id": id,
        "username": username,
        "name": name,
        "role": role,
        "hospital": hospital,
        "specialties": specialties,
        "active": active,
        "created_at": created_at.isoformat(),
    }


class AuditActor(TypedDict):
    """Who did what the audit log records, as its viewer shows them."""

    id: str
    username: str
    name: str


class AuditEntryView(TypedDict):
    """One line of the audit log, for the admins' viewer."""

    id: str
    at: str
    actor: AuditActor | None
    actor_id: str | None
    action: str
    target_type: str
    target_id: str
    target_label: str | None
    address: str
    detail: str


class AuditEntryRow(Protocol):
    """What the audit view reads (a `records.models.AuditEntry` fits)."""

    @property
    def id(self) -> str: ...
    @property
    def at(self) -> datetime: ...
    @property
    def actor_id(self) -> str | None: ...
    @property
    def action(self) -> str: ...
    @property
    def target_type(self) -> str: ...
    @property
    def target_id(self) -> str: ...
    @property
    def address(self) -> str: ...
    @property
    def detail(self) -> str: ...


def audit_entry_view(entry: AuditEntryRow, actor: AuditActor | None, target_label: str | None = None) -> AuditEntryView:
    """`target_label`: what the target is called on screen (a consult's patient reference, a
    user's or a hospital's name, a round's title), None when it has none or no longer exists."""
    # `at` as stored (the database's UTC), not through `iso`: what the viewer has read.
    return {
        "id": entry.id,
        "at": entry.at.isoformat(),
        "actor": actor,
        "actor_id": entry.actor_id,
        "action": entry.action,
        "target_type": entry.target_type,
        "target_id": entry.target_id,
        "target_label": target_label,
        "address": entry.address,
        "detail": entry.detail,
    }


def audit_actor(id: str, username: str, name: str) -> AuditActor:
    return {"id": id, "username": username, "name": name}


class RosterEntry(TypedDict):
    """A specialist on the roster, with their presence (`{status, online, changed_at, in_consult}`)."""

    id: str
    name: str
    hospital: HospitalRef
    specialties: list[str]
    presence: dict[str, Any]


class AdminRosterEntry(TypedDict):
    """A specialist on the admins' roster: deactivated ones too, with the username."""

    id: str
    username: str
    name: str
    hospital: HospitalRef
    specialties: list[str]
    active: bool
    presence: dict[str, Any]


def roster_entry(
    id: str, name: str, hospital: HospitalRef, specialties: list[str], presence: dict[str, Any]
) -> RosterEntry:
    return {"id": id, "name": name, "hospital": hospital, "specialties": specialties, "presence": presence}


def admin_roster_entry(
    id: str,
    username: str,
    name: str,
    hospital: HospitalRef,
    specialties: list[str],
    active: bool,
    presence: dict[str, Any],
) -> AdminRosterEntry:
    return {
        "id": id,
        "username": username,
        "name": name,
        "hospital": hospital,
        "specialties": specialties,
        "active": active,
        "presence": presence,
    }


# A consult.


class ConsultRow(Protocol):
    """What the consult view reads (a `records.models.Consult` fits)."""

    @property
    def id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def specialty(self) -> str: ...
    @property
    def urgency(self) -> str: ...
    @property
    def patient(self) -> dict[str, Any]: ...
    @property
    def requester_id(self) -> str: ...
    @property
    def specialist_id(self) -> str | None: ...
    @property
    def named_specialist_id(self) -> str | None: ...
    @property
    def named_answer(self) -> str | None: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def started_at(self) -> datetime | None: ...
    @property
    def ended_at(self) -> datetime | None: ...
    @property
    def outcome(self) -> str | None: ...
    @property
    def summary(self) -> str | None: ...
    @property
    def ended_by_id(self) -> str | None: ...
    @property
    def result(self) -> str | None: ...
    @property
    def result_note(self) -> str | None: ...
    @property
    def result_by_id(self) -> str | None: ...
    @property
    def result_at(self) -> datetime | None: ...
    @property
    def version(self) -> int: ...
    @property
    def round_session_id(self) -> str | None: ...
    @property
    def round_patient_id(self) -> str | None: ...
    @property
    def consent(self) -> dict[str, Any] | None: ...
    @property
    def consent_waived_reason(self) -> str | None: ...


class ConsentView(TypedDict):
    """The contract's `consult.consent`: the patient's consent as it stands (`scopes` empty:
    withdrawn), who recorded it and when."""

    given_by: str
    relation: str | None
    method: str
    scopes: list[str]
    note: str | None
    recorded_by: Person | None
    recorded_at: str | None


def consent_view(consent: Mapping[str, Any] | None, who: Mapping[str, Person]) -> ConsentView | None:
    """`consent`: as the consult keeps it (`records.consents.current`); `who` names its recorder."""
    if not consent:
        return None
    return {
        "given_by": str(consent.get("given_by") or ""),
        "relation": consent.get("relation"),
        "method": str(consent.get("method") or ""),
        "scopes": list(consent.get("scopes") or []),
        "note": consent.get("note"),
        "recorded_by": who.get(str(consent.get("recorded_by") or "")),
        "recorded_at": consent.get("recorded_at"),
    }


def consent_recorder(consult: ConsultRow) -> str | None:
    """Whom the consult's consent names: for `records.consults.people`."""
    return str(consult.consent.get("recorded_by") or "") or None if consult.consent else None


class Decline(TypedDict):
    """A specialist who declined the request, why, and when."""

    by: Person | None
    reason: str
    at: str | None


class Unanswered(TypedDict):
    """A specialist whose offer of the request lapsed without an answer, and when."""

    by: Person | None
    at: str | None


class Answer(Protocol):
    """A timeline line the consult view reads: a decline or an offer that lapsed (a
    `records.consults.Answer` fits)."""

    @property
    def kind(self) -> str: ...
    @property
    def user_id(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def at(self) -> datetime: ...


MAX_ANSWERS = 10  # declines, and lapsed offers, a consult view lists: the newest


class ResultView(TypedDict):
    """What became of the patient, as the requesting side reported it back after the consult."""

    result: str  # recovered / improving / transferred / died / other
    note: str
    reported_by: Person | None
    reported_at: str | None


class ConsultView(TypedDict):
    """The contract's `consult`."""

    id: str
    kind: str
    status: str
    specialty: str
    urgency: str
    patient: dict[str, Any]
    requester: Person | None
    specialist: Person | None
    named_specialist: Person | None
    named_answer: str | None
    created_at: str | None
    started_at: str | None
    ended_at: str | None
    outcome: str | None
    summary: str | None
    queue_position: int | None
    version: int
    round_session_id: str | None
    round_patient_id: str | None
    ended_by: Person | None
    result: ResultView | None
    declines: list[Decline]
    unanswered: list[Unanswered]
    online_specialists: int | None
    consent: ConsentView | None
    consent_waived_reason: str | None


def consult_view(
    consult: ConsultRow,
    who: Mapping[str, Person],
    queue_position: int | None = None,
    *,
    answers: Sequence[Answer] = (),
    online_specialists: int | None = None,
) -> ConsultView:
    """`who` holds the people the consult names (`records.consults.people`), its consent's
    recorder (`consent_recorder`) and those of `answers` too; the queue position is shown only
    while the consult waits in the queue, and how many
    specialists of its specialty are online only while it waits for one (queued or offered).
    `answers`: its declines and lapsed offers, oldest first; the newest `MAX_ANSWERS` of each show."""
    waiting = consult.status in ("queued", "offered")
    declines: list[Decline] = [
        {"by": who.get(a.user_id), "reason": a.reason, "at": iso(a.at)} for a in answers if a.kind == "declined"
    ]
    unanswered: list[Unanswered] = [{"by": who.get(a.user_id), "at": iso(a.at)} for a in answers if a.kind == "expired"]
    return {
        "id": consult.id,
        "kind": consult.kind,
        "status": consult.status,
        "specialty": consult.specialty,
        "urgency": consult.urgency,
        "patient": consult.patient,
        "requester": who.get(consult.requester_id),
        "specialist": who.get(consult.specialist_id) if consult.specialist_id else None,
        "named_specialist": who.get(consult.named_specialist_id) if consult.named_specialist_id else None,
        "named_answer": consult.named_answer,
        "created_at": iso(consult.created_at),
        "started_at": iso(consult.started_at),
        "ended_at": iso(consult.ended_at),
        "outcome": consult.outcome,
        "summary": consult.summary,
        "queue_position": queue_position if consult.status == "queued" else None,
        "version": consult.version,
        "round_session_id": consult.round_session_id,
        "round_patient_id": consult.round_patient_id,
        "ended_by": who.get(consult.ended_by_id) if consult.ended_by_id else None,
        "result": result_view(consult, who),
        "declines": declines[-MAX_ANSWERS:],
        "unanswered": unanswered[-MAX_ANSWERS:],
        "online_specialists": online_specialists if waiting else None,
        "consent": consent_view(consult.consent, who),
        "consent_waived_reason": consult.consent_waived_reason,
    }


def result_view(consult: ConsultRow, who: Mapping[str, Person]) -> ResultView | None:
    """The consult's reported result (`who` holds its reporter), or None before one is reported."""
    if consult.result is None:
        return None
    return {
        "result": consult.result,
        "note": consult.result_note or "",
        "reported_by": who.get(consult.result_by_id) if consult.result_by_id else None,
        "reported_at": iso(consult.result_at),
    }


# A note.


class NoteRow(Protocol):
    """What the note view reads (a `records.models.Note` fits)."""

    @property
    def id(self) -> str: ...
    @property
    def seq(self) -> int: ...
    @property
    def consult_id(self) -> str: ...
    @property
    def section(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def author_id(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def amends(self) -> str | None: ...
    @property
    def addendum(self) -> bool | None: ...


class NoteView(TypedDict):
    """The contract's `note`."""

    id: str
    seq: int
    consult_id: str
    section: str
    text: str
    author: Person | None
    created_at: str | None
    amends: str | None
    addendum: bool  # written after the minutes were signed by the chair and the secretary


def note_view(note: NoteRow, who: Mapping[str, Person]) -> NoteView:
    """`who` holds the note's author (`records.consults.people`)."""
    return {
        "id": note.id,
        "seq": note.seq,
        "consult_id": note.consult_id,
        "section": note.section,
        "text": note.text,
        "author": who.get(note.author_id),
        "created_at": iso(note.created_at),
        "amends": note.amends,
        "addendum": bool(note.addendum),
    }


# An attachment.


class AttachmentRow(Protocol):
    """What the attachment view reads (a `records.models.Attachment` fits)."""

    @property
    def id(self) -> str: ...
    @property
    def consult_id(self) -> str: ...
    @property
    def filename(self) -> str: ...
    @property
    def content_type(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def sha256(self) -> str: ...
    @property
    def uploader_id(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...


class AttachmentView(TypedDict):
    """A file attached to a consult's record, with where to download it."""

    id: str
    filename: str
    content_type: str
    size: int
    sha256: str
    uploader_id: str
    uploader: Person | None
    created_at: str | None
    url: str


def attachment_view(item: AttachmentRow, uploader: Person | None = None) -> AttachmentView:
    """`uploader`: the person `uploader_id` names, so a list shows who added the file."""
    return {
        "id": item.id,
        "filename": item.filename,
        "content_type": item.content_type,
        "size": item.size,
        "sha256": item.sha256,
        "uploader_id": item.uploader_id,
        "uploader": uploader,
        "created_at": iso(item.created_at),
        "url": f"/api/consults/{item.consult_id}/attachments/{item.id}",
    }


# A ward round.


class RoundRow(Protocol):
    """What the round views read (a `records.models.Round` fits)."""

    @property
    def id(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def ward(self) -> str: ...
    @property
    def starts_at(self) -> datetime: ...
    @property
    def duration_min(self) -> int: ...
    @property
    def recurrence(self) -> str | None: ...
    @property
    def until(self) -> date | None: ...
    @property
    def skipped(self) -> list[str]: ...
    @property
    def lead_specialist_id(self) -> str: ...
    @property
    def lead_status(self) -> str: ...
    @property
    def participant_ids(self) -> list[str]: ...
    @property
    def created_by(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def cancelled_at(self) -> datetime | None: ...
    @property
    def version(self) -> int: ...


class RoundPatientRow(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def position(self) -> int: ...
    @property
    def bed(self) -> str: ...
    @property
    def ref(self) -> str: ...
    @property
    def summary(self) -> str: ...
    @property
    def identity(self) -> dict[str, Any] | None: ...
    @property
    def consent(self) -> dict[str, Any] | None: ...


class RoundSessionRow(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def day(self) -> date: ...
    @property
    def status(self) -> str: ...
    @property
    def started_at(self) -> datetime: ...
    @property
    def ended_at(self) -> datetime | None: ...
    @property
    def focus_patient_id(self) -> str | None: ...
    @property
    def version(self) -> int: ...


class RoundPatientView(TypedDict):
    """A patient on a round's list, with their consult's status once the round discussed them."""

    id: str
    position: int
    bed: str
    ref: str
    summary: str
    identity: dict[str, Any]
    consent: ConsentView | None
    consult_id: str | None
    status: str | None
    outcome: str | None


class RoundSessionView(TypedDict):
    """The day's session of a round: its call and whose patient is in focus."""

    id: str
    day: str
    status: str
    started_at: str | None
    ended_at: str | None
    focus_patient_id: str | None
    version: int


class RoundView(TypedDict):
    """The contract's `round`."""

    id: str
    title: str
    hospital: HospitalRef | None
    ward: str
    starts_at: str | None
    duration_min: int
    recurrence: str | None
    until: str | None
    skipped: list[str]
    lead_specialist: Person | None
    lead_status: str
    participants: list[Person]
    created_by: Person | None
    created_at: str | None
    cancelled_at: str | None
    next_starts_at: str | None
    version: int
    patients: list[RoundPatientView]
    session: RoundSessionView | None


class LeadRequestView(TypedDict):
    """The contract's `lead request`: a round's schedule and who asks, without its patients."""

    id: str
    title: str
    hospital: HospitalName
    ward: str
    starts_at: str | None
    duration_min: int
    recurrence: str | None
    until: str | None
    created_by: Person | None
    created_at: str | None


def round_patient_view(
    patient: RoundPatientRow, consult: ConsultRow | None, who: Mapping[str, Person]
) -> RoundPatientView:
    """`identity`: the identity fields the list holds (patient data, as a consult's `patient`
    carries it: for those taking part in the round or supervising it); `consent` as a consult's,
    `who` naming its recorder."""
    return {
        "id": patient.id,
        "position": patient.position,
        "bed": patient.bed,
        "ref": patient.ref,
        "summary": patient.summary,
        "identity": dict(patient.identity or {}),
        "consent": consent_view(patient.consent, who),
        "consult_id": consult.id if consult else None,
        "status": consult.status if consult else None,
        "outcome": consult.outcome if consult else None,
    }


def round_session_view(current: RoundSessionRow | None) -> RoundSessionView | None:
    if current is None:
        return None
    return {
        "id": current.id,
        "day": current.day.isoformat(),
        "status": current.status,
        "started_at": iso(current.started_at),
        "ended_at": iso(current.ended_at),
        "focus_patient_id": current.focus_patient_id,
        "version": current.version,
    }


def round_view(
    item: RoundRow,
    hospital: HospitalRef | None,
    who: Mapping[str, Person],
    next_starts_at: datetime | None,
    patients: list[RoundPatientView],
    session: RoundSessionView | None,
) -> RoundView:
    """`who` holds the round's lead, creator and participants (`records.consults.people`);
    `next_starts_at` is the occurrence under way or the next one (None once cancelled)."""
    return {
        "id": item.id,
        "title": item.title,
        "hospital": hospital,
        "ward": item.ward,
        "starts_at": iso(item.starts_at),
        "duration_min": item.duration_min,
        "recurrence": item.recurrence,
        "until": item.until.isoformat() if item.until else None,
        "skipped": sorted(item.skipped or []),
        "lead_specialist": who.get(item.lead_specialist_id),
        "lead_status": item.lead_status,
        "participants": [who[i] for i in item.participant_ids or [] if i in who],
        "created_by": who.get(item.created_by),
        "created_at": iso(item.created_at),
        "cancelled_at": iso(item.cancelled_at),
        "next_starts_at": iso(next_starts_at),
        "version": item.version,
        "patients": patients,
        "session": session,
    }


def lead_request_view(item: RoundRow, hospital: HospitalName, who: Mapping[str, Person]) -> LeadRequestView:
    """`who` holds the round's creator, who asks."""
    return {
        "id": item.id,
        "title": item.title,
        "hospital": hospital,
        "ward": item.ward,
        "starts_at": iso(item.starts_at),
        "duration_min": item.duration_min,
        "recurrence": item.recurrence,
        "until": item.until.isoformat() if item.until else None,
        "created_by": who.get(item.created_by),
        "created_at": iso(item.created_at),
    }


# What a specialist is offered, what starts today, and `session:state`.


class OfferView(TypedDict):
    """`{consult, expires_at}`: a request offered to a specialist, until when they may accept it."""

    consult: ConsultView
    expires_at: str


def offer_view(consult: ConsultView, expires_at: float) -> OfferView:
    """`expires_at` in seconds since the epoch, as the offer is kept in Redis."""
    return {"consult": consult, "expires_at": datetime.fromtimestamp(expires_at, UTC).isoformat()}


class RoundStart(TypedDict):
    """`{round, starts_at}`: a round with an occurrence today, and that occurrence's start (None
    when only a session carried over from earlier runs)."""

    round: RoundView
    starts_at: str | None


def round_start(round: RoundView, starts_at: datetime | None) -> RoundStart:
    return {"round": round, "starts_at": iso(starts_at)}


class SessionState(TypedDict):
    """`session:state`: everything a user's screen needs after a (re)connect."""

    user: AccountView
    presence: dict[str, Any]
    consults: list[ConsultView]
    offers: list[OfferView]
    rounds: list[RoundStart]
    server_time: str


class MinutesView(TypedDict):
    """`{number, year, hospital_id, chair_id, secretary_id}`: the minutes' number (`Số: N/BB-HCTX`,
    per issuing hospital and year) and who chairs and takes them (null: the default)."""

    number: int
    year: int
    hospital_id: str
    chair_id: str | None
    secretary_id: str | None


class MinutesRow(Protocol):
    number: int
    year: int
    hospital_id: str
    chair_id: str | None
    secretary_id: str | None


def minutes_view(row: MinutesRow) -> MinutesView:
    return {
        "number": row.number,
        "year": row.year,
        "hospital_id": row.hospital_id,
        "chair_id": row.chair_id,
        "secretary_id": row.secretary_id,
    }


# The minutes' digital signatures (server/actions/signatures.py).


class SignatureView(TypedDict):
    """`{signer: user, role, signed_at, intact, trusted, timestamped}`: one signature on a version
    of the minutes, as validated now. `role`: `chair`, `secretary` or `member`."""

    signer: Person | None
    role: str
    signed_at: str | None
    intact: bool
    trusted: bool
    timestamped: bool


def signature_view(
    signer: Person | None, role: str, signed_at: datetime, intact: bool, trusted: bool, timestamped: bool
) -> SignatureView:
    return {
        "signer": signer,
        "role": role,
        "signed_at": iso(signed_at),
        "intact": intact,
        "trusted": trusted,
        "timestamped": timestamped,
    }


class MinutesVersionView(TypedDict):
    """One version of the minutes: `frozen` once someone signed it (its PDF kept as signed),
    `locked` once the chair and the secretary both did; `signers`: the ids of who signed it."""

    version: int
    frozen: bool
    locked: bool
    signers: list[str]


def minutes_version_view(version: int, frozen: bool, locked: bool, signers: list[str]) -> MinutesVersionView:
    return {"version": version, "frozen": frozen, "locked": locked, "signers": signers}


class SignaturesView(TypedDict):
    """`GET …/minutes/signatures`: every signature of a version (the current one unless
    `?version=N`), `valid` when there is at least one and each is intact and trusted; the version
    shown, and every version (the last one is current)."""

    valid: bool
    version: int
    signatures: list[SignatureView]
    versions: list[MinutesVersionView]


def signatures_view(
    version: int, signatures: list[SignatureView], versions: list[MinutesVersionView]
) -> SignaturesView:
    valid = bool(signatures) and all(s["intact"] and s["trusted"] for s in signatures)
    return {"valid": valid, "version": version, "signatures": signatures, "versions": versions}


class CertificateView(TypedDict):
    """A user's signing certificate as the admin screen shows it (never the key)."""

    user_id: str
    subject: str
    issuer: str
    fingerprint: str
    not_after: str | None
    uploaded_at: str | None


class CertificateRow(Protocol):
    user_id: str
    subject: str
    issuer: str
    fingerprint: str
    not_after: datetime
    uploaded_at: datetime


def certificate_view(row: CertificateRow) -> CertificateView:
    return {
        "user_id": row.user_id,
        "subject": row.subject,
        "issuer": row.issuer,
        "fingerprint": row.fingerprint,
        "not_after": iso(row.not_after),
        "uploaded_at": iso(row.uploaded_at),
    }


class RecordingView(TypedDict):
    """A recording of a consult's or a round's call (one of `consult_id`, `round_id` is null):
    `state` recording / stopped / failed (cut short: what was written stays playable);
    `segment` 1, 2 ... when the call went on after its recorder's instance died."""

    id: str
    consult_id: str | None
    round_id: str | None
    segment: int
    state: str
    started_at: str | None
    stopped_at: str | None
    started_by: str
    duration_s: float | None
    bytes: int | None
    sha256: str | None
    retain_until: str | None


class RecordingRow(Protocol):
    id: str
    consult_id: str | None
    round_id: str | None
    segment: int
    state: str
    started_at: datetime
    stopped_at: datetime | None
    started_by: str
    duration_s: float | None
    bytes: int | None
    sha256: str | None
    retain_until: datetime


def recording_view(row: RecordingRow) -> RecordingView:
    return {
        "id": row.id,
        "consult_id": row.consult_id,
        "round_id": row.round_id,
        "segment": row.segment,
        "state": row.state,
        "started_at": iso(row.started_at),
        "stopped_at": iso(row.stopped_at),
        "started_by": row.started_by,
        "duration_s": None if row.duration_s is None else round(row.duration_s, 2),
        "bytes": row.bytes,
        "sha256": row.sha256,
        "retain_until": iso(row.retain_until),
    }


class PlaybackView(TypedDict):
    """A playback link for a `<video src>` (POST /api/recordings/{id}/playback): `url` plays the
    recording, with HTTP `Range`, until `expires_at`; then the player asks for a new one."""

    url: str
    expires_at: str


def playback_view(recording_id: str, ticket: str, expires: int) -> PlaybackView:
    return {
        "url": f"/api/recordings/{quote(recording_id, safe='')}/media?ticket={quote(ticket, safe='')}",
        "expires_at": datetime.fromtimestamp(expires, UTC).isoformat(),
    }
