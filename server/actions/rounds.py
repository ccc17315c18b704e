"""Ward rounds (đi buồng điện tử): the schedule, its patient list, the sessions held.

The model:

- A **round** is the schedule: a district hospital's ward, a first start, a duration, and a
  recurrence (none, daily or weekly, until an end date); a lead specialist and invited people.
- Its **patient list** is one ordered list per round, the ward's standing list: the district
  team adds, edits, reorders and removes patients before and during any occurrence.
- A **session** is one occurrence that is held, named by its Vietnam date. The first
  `round:join` of the day starts it; every listed patient then gets a consult of kind `round`
  (status `active`), which carries that day's notes and decision (`consult:end`). A patient
  added during the session gets one at once. The session has the focus: the current patient.
- When the session ends (`round:end`, or on its own well after its scheduled end with nobody
  left in the call) the consults still without a decision are closed `cancelled`.

Who does what (policy, pure functions in server/policy/rounds.py; the reads and writes are
server/records/rounds.py's):

- Create: an admin for any district hospital, a clinician for their own hospital, a specialist
  for a hospital their hospital is the sister (upper) hospital of.
- Take part (see the round, join its call, write notes): the clinicians of the round's hospital
  (the district team), the lead specialist, the invited participants, and whoever created it.
- Edit the patient list: the district team and the lead specialist.
- Move the focus and end the session: the lead specialist and the invited specialists.
- Edit or cancel the schedule: an admin, whoever created it, the lead, the district team.
- Read: besides those taking part, supervisors within their scope (server/policy/scope.py): the
  round's hospital or the lead specialist's hospital is in view (their hospital, or their
  Department of Health's province).

A lead specialist of another network (a hospital neither the round's nor linked to it as a
sister) is only asked: the round's `lead_status` is `pending` until they accept (`accepted`) or
decline (`declined`), and until then the round is not theirs: they do not take part, it is not in
their lists or their `session:state`, and it cannot start. Naming a stranger costs them nothing.

Caps (settings): ROUNDS_PER_HOSPITAL rounds neither cancelled nor over at one hospital,
ROUND_MAX_PATIENTS patients on one round's list; one more is `too_large`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from server import outbox
from server.actions import dispatch
from server.contract import views
from server.contract.errors import AppError
from server.contract.validation import Consent, identity_problem
from server.live import keys
from server.outbox import Event, To
from server.policy import consent as consent_policy
from server.policy import lifecycle, recurrence
from server.policy import rounds as policy
from server.records import consents, consults
from server.records import rounds as records
from server.records.models import Consult, Database, Round, RoundPatient, new_id, utcnow
from server.records.provinces import in_view
from server.records.users import Account
from server.runtime import loops
from server.runtime.services import Services
from server.runtime.settings import Settings

log = logging.getLogger("telerounds.rounds")


# Reading.


async def readable(db: Database, account: Account, round_id: str) -> Round:
    """The round if `account` takes part in it or supervises it; `forbidden` otherwise."""
    item = await records.get(db, round_id)
    if policy.takes_part(item, account):
        return item
    if account.role in ("supervisor", "admin") and policy.supervises(
        item, account, await records.lead_hospital(db, item), await in_view(db, account)
    ):
        return item
    raise AppError("forbidden", "you do not take part in this round")


async def view(db: Database, loaded: records.Loaded, now: datetime | None = None) -> views.RoundView:
    """The contract's `round`."""
    item = loaded.round
    recorders = [str(p.consent.get("recorded_by")) for p in loaded.patients if p.consent]
    who = await consults.people(
        db, [item.lead_specialist_id, item.created_by, *(item.participant_ids or []), *recorders]
    )
    hospital = await records.hospital(db, item.hospital_id)
    moment = now or utcnow()
    following = None
    if item.cancelled_at is None:
        # The occurrence under way counts as the next one until it is over.
        since = moment - timedelta(minutes=item.duration_min)
        following = recurrence.next_occurrence(item.starts_at, item.recurrence, item.until, item.skipped or [], since)
    where = views.hospital_ref(hospital.id, hospital.name, hospital.level) if hospital else None
    patients = [views.round_patient_view(p, loaded.consults.get(p.id), who) for p in loaded.patients]
    return views.round_view(item, where, who, following, patients, views.round_session_view(loaded.session))


async def describe(db: Database, round_id: str, now: datetime | None = None) -> views.RoundView:
    return await view(db, await records.load(db, round_id, now), now)


async def team_of(db: Database, item: Round) -> set[str]:
    """Everyone taking part: lead, invited, creator, and the active clinicians of the hospital."""
    return policy.team(item, await records.clinicians_of(db, item.hospital_id))


# Writing the schedule.


def caps_of(settings: Settings) -> policy.Caps:
    return policy.Caps(rounds=settings.rounds_per_hospital, patients=settings.round_max_patients)


async def _lead_status(db: Database, hospital_id: str, lead_id: str, named_by: str) -> lifecycle.LeadStatus:
    return policy.lead_status_for(
        lead_id, await records.hospital_of(db, lead_id), named_by, await records.network_of(db, hospital_id)
    )


async def _check_people(db: Database, lead_id: str, participant_ids: list[str]) -> None:
    who = await consults.people(db, [lead_id, *participant_ids])
    policy.check_people({user_id: person["role"] for user_id, person in who.items()}, lead_id, participant_ids)


async def create(
    db: Database,
    account: Account,
    *,
    title: str,
    hospital_id: str,
    ward: str,
    starts_at: datetime,
    duration_min: int,
    rule: str | None,
    until: date | None,
    lead_specialist_id: str,
    participant_ids: list[str],
    patients: list[Listed],
    caps: policy.Caps,
) -> Round:
    if await records.hospital(db, hospital_id) is None:
        raise AppError("not_found", "no such hospital")
    if not policy.may_create(account, hospital_id, await consults.sister_hospitals(db, hospital_id)):
        raise AppError(
            "forbidden",
            "a round is scheduled by an admin, a clinician of the hospital or a specialist of its sister hospital",
        )
    policy.check_times(starts_at, rule, until, duration_min)
    await _check_people(db, lead_specialist_id, participant_ids)
    policy.check_new_round(caps, len(patients), await records.lasting_at(db, hospital_id, utcnow()))
    item = Round(
        title=title,
        hospital_id=hospital_id,
        ward=ward,
        starts_at=starts_at,
        duration_min=duration_min,
        recurrence=rule,
        until=until,
        skipped=[],
        lead_specialist_id=lead_specialist_id,
        participant_ids=list(dict.fromkeys(participant_ids)),
        lead_status=await _lead_status(db, hospital_id, lead_specialist_id, account.id),
        created_by=account.id,
        created_at=utcnow(),
        version=1,
    )
    listed = [
        {
            "bed": p.bed,
            "ref": p.ref,
            "summary": p.summary,
            "identity": p.identity,
            "consent": _kept_consent(account, hospital_id, account.id, p.consent),
        }
        for p in patients
    ]
    return await records.insert(db, item, listed, account.id)


async def reschedule(db: Database, account: Account, round_id: str, changes: dict[str, Any]) -> Round:
    """Change the schedule: any of title, ward, starts_at, duration_min, recurrence, until,
    lead_specialist_id, participant_ids (absent keys stay as they are)."""
    item = await records.get(db, round_id)
    if not policy.may_edit_schedule(item, account):
        raise AppError("forbidden", "you may not change this round's schedule")
    if item.cancelled_at is not None:
        raise AppError("conflict", "this round was cancelled")
    merged = {
        "starts_at": item.starts_at,
        "recurrence": item.recurrence,
        "until": item.until,
        "duration_min": item.duration_min,
        **changes,
    }
    policy.check_times(merged["starts_at"], merged["recurrence"], merged["until"], merged["duration_min"])
    if "lead_specialist_id" in changes or "participant_ids" in changes:
        await _check_people(
            db,
            changes.get("lead_specialist_id", item.lead_specialist_id),
            changes.get("participant_ids", item.participant_ids or []),
        )
    if "participant_ids" in changes:
        changes["participant_ids"] = list(dict.fromkeys(changes["participant_ids"]))
    if "lead_specialist_id" in changes and (
        changes["lead_specialist_id"] != item.lead_specialist_id or item.lead_status == "declined"
    ):
        # A new lead (or one who declined, named again) is asked afresh when of another network.
        changes["lead_status"] = await _lead_status(db, item.hospital_id, changes["lead_specialist_id"], account.id)
    await records.bump(db, round_id, **changes)
    return await records.get(db, round_id)


async def answer_lead(db: Database, account: Account, round_id: str, accept: bool) -> Round:
    """The named lead accepts or declines a round they were asked to lead. Accepting an accepted
    round again changes nothing; a lead who accepted steps down by being replaced, not here."""
    item = await records.get(db, round_id)
    if account.id != item.lead_specialist_id:
        raise AppError("forbidden", "only the specialist named as this round's lead answers for it")
    if item.cancelled_at is not None:
        raise AppError("conflict", "this round was cancelled")
    wanted: lifecycle.LeadStatus = "accepted" if accept else "declined"
    if item.lead_status == wanted:
        return item
    if item.lead_status != "pending":
        raise AppError("conflict", f"this round's lead is already {item.lead_status}; ask its planners to change it")
    if not await records.answer_lead(db, round_id, account.id, wanted):
        raise AppError("conflict", "this round changed meanwhile; look again")
    return await records.get(db, round_id)


async def lead_requests(db: Database, account: Account) -> list[views.LeadRequestView]:
    """The rounds `account` is asked to lead and has not answered, newest first (at most
    `records.MAX_LEAD_REQUESTS`): the schedule and who asks, without the patients."""
    if account.role != "specialist":
        return []
    return await request_views(db, await records.pending_leads(db, account.id))


async def request_views(db: Database, found: list[Round]) -> list[views.LeadRequestView]:
    """`lead request`s: each round's schedule and who asks, without the patients."""
    hospitals = await records.hospital_names(db, {r.hospital_id for r in found})
    who = await consults.people(db, [r.created_by for r in found])
    return [
        views.lead_request_view(r, views.hospital_name(r.hospital_id, hospitals.get(r.hospital_id, "")), who)
        for r in found
    ]


async def cancel(db: Database, account: Account, round_id: str, day: date | None) -> Round:
    """Cancel the whole round, or (with `day`) only that day's occurrence."""
    item = await records.get(db, round_id)
    if not policy.may_edit_schedule(item, account):
        raise AppError("forbidden", "you may not cancel this round")
    if day is None:
        if item.cancelled_at is None:
            await records.bump(db, round_id, cancelled_at=utcnow())
        return await records.get(db, round_id)
    if recurrence.occurrence_on(item.starts_at, item.recurrence, item.until, [], day) is None:
        raise AppError("not_found", "this round has no occurrence on that day")
    if day.isoformat() not in (item.skipped or []):
        await records.bump(db, round_id, skipped=sorted([*(item.skipped or []), day.isoformat()]))
    return await records.get(db, round_id)


# Writing the patient list. Each change also reaches a session in progress.


async def _editable(db: Database, account: Account, round_id: str) -> Round:
    item = await records.get(db, round_id)
    if not policy.may_edit_patients(item, account):
        raise AppError("forbidden", "the patient list is edited by the district team and the lead specialist")
    if item.cancelled_at is not None:
        raise AppError("conflict", "this round was cancelled")
    return item


@dataclass(frozen=True)
class Listed:
    """A patient as the list is given them: bed, reference, case; identity and consent (the
    contract's, validated as a consult request's) when the district team has them."""

    bed: str
    ref: str
    summary: str = ""
    identity: dict[str, str] = field(default_factory=dict)
    consent: Consent | None = None


def _kept_consent(
    account: Account, hospital_id: str, requester_id: str, consent: Consent | None
) -> dict[str, Any] | None:
    """The consent as the list keeps it, recorded by `account`; only the requesting side (the
    patient's presenter, or a clinician of the round's hospital) records it, as on a consult."""
    if consent is None:
        return None
    if not consent_policy.requesting_side(account.role, account.id, account.hospital_id, requester_id, hospital_id):
        raise AppError("forbidden", "only the requesting side (its clinicians) records the patient's consent")
    return consents.kept(consents.given(consent), account.id)


async def add_patient(services: Services, account: Account, round_id: str, listed: Listed) -> None:
    item = await _editable(services.db, account, round_id)
    present = await records.listed(services.db, round_id)
    policy.check_room_for_patient(len(present), services.settings.round_max_patients)
    patient = RoundPatient(
        round_id=round_id,
        position=max((p.position for p in present), default=0) + 1,
        bed=listed.bed,
        ref=listed.ref,
        summary=listed.summary,
        identity=listed.identity or None,
        consent=_kept_consent(account, item.hospital_id, account.id, listed.consent),
        added_by=account.id,
        added_at=utcnow(),
    )
    await records.add_patient(services.db, patient)
    await records.bump(services.db, round_id)
    current = await records.current_session(services.db, round_id, recurrence.day_of(utcnow()))
    if current is not None and current.status == "active":
        await records.open_consult(services.db, item, current, patient)


async def edit_patient(
    db: Database,
    account: Account,
    round_id: str,
    patient_id: str,
    changes: dict[str, str],
    identity: dict[str, str] | None = None,
    consent: Consent | None = None,
) -> None:
    """Change bed, ref or summary; a consult already opened keeps the patient as it was then.
    Identity and consent are the person's, not the day's: given here, they also reach the
    patient's consult of the session under way (the consent recorded there as on any consult)."""
    item = await _editable(db, account, round_id)
    listed = await records.patient(db, round_id, patient_id)
    values: dict[str, Any] = dict(changes)
    if identity:
        merged = {**(listed.identity or {}), **identity}
        if (problem := identity_problem(merged.get("national_id"), merged.get("birth_date"))) is not None:
            raise AppError("invalid", problem)
        values["identity"] = merged
    kept = _kept_consent(account, item.hospital_id, listed.added_by, consent)
    if kept is not None:
        values["consent"] = kept
    await records.edit_patient(db, patient_id, values)
    await records.bump(db, round_id)
    if not identity and consent is None:
        return
    current = await records.current_session(db, round_id, recurrence.day_of(utcnow()))
    opened = (await records.session_consults(db, current.id)).get(patient_id) if current is not None else None
    if current is None or current.status != "active" or opened is None:
        return
    if identity:
        await records.set_identity(db, opened.id, values["identity"])
    if consent is not None:
        await consents.record(db, opened.id, new_id(), consents.given(consent), account.id)


async def remove_patient(services: Services, account: Account, round_id: str, patient_id: str) -> None:
    """Off the list; a consult of the session in progress still without a decision is cancelled."""
    await _editable(services.db, account, round_id)
    await records.patient(services.db, round_id, patient_id)
    await records.remove_patient(services.db, round_id, patient_id)
    await records.bump(services.db, round_id)
    current = await records.current_session(services.db, round_id, recurrence.day_of(utcnow()))
    if current is not None and current.status == "active":
        consult = (await records.session_consults(services.db, current.id)).get(patient_id)
        if consult is not None:
            await _close_undecided(services, consult, account.id, "removed from the round")


async def reorder(db: Database, account: Account, round_id: str, patient_ids: list[str]) -> None:
    """The listed patients in a new order: every listed patient exactly once."""
    await _editable(db, account, round_id)
    present = {p.id for p in await records.listed(db, round_id)}
    if len(patient_ids) != len(set(patient_ids)) or set(patient_ids) != present:
        raise AppError("invalid", "patient_ids must name every listed patient exactly once")
    await records.reorder(db, patient_ids)
    await records.bump(db, round_id)


# Sessions.


async def start(db: Database, account: Account, round_id: str, now: datetime) -> records.Loaded:
    """Today's session: the one in progress, or a new one for today's occurrence. Every listed
    patient has its consult afterwards. `conflict` when the round has no occurrence today."""
    item = await records.get(db, round_id)
    if not policy.takes_part(item, account):
        raise AppError("forbidden", "you do not take part in this round")
    if item.lead_status != "accepted":
        raise AppError("conflict", f"the lead specialist has not accepted this round ({item.lead_status})")
    today = recurrence.day_of(now)
    current = await records.current_session(db, round_id, today)
    if current is None or current.status != "active":
        if item.cancelled_at is not None:
            raise AppError("conflict", "this round was cancelled")
        if current is not None:
            raise AppError("conflict", "today's session of this round has ended")
        occurrence = recurrence.occurrence_on(item.starts_at, item.recurrence, item.until, item.skipped or [], today)
        if occurrence is None:
            raise AppError("conflict", "this round has no session today")
        await records.open_session(db, round_id, today, now, account.id)
        current = await records.current_session(db, round_id, today)
        assert current is not None
        if current.status != "active":
            raise AppError("conflict", "today's session of this round has ended")
    patients = await records.listed(db, round_id)
    opened = await records.session_consults(db, current.id)
    for patient in patients:
        if patient.id not in opened:
            await records.open_consult(db, item, current, patient)
    return records.Loaded(item, patients, current, await records.session_consults(db, current.id))


async def focus(db: Database, account: Account, round_id: str, patient_id: str) -> None:
    item = await records.get(db, round_id)
    if not policy.may_lead(item, account):
        raise AppError("forbidden", "the focus is moved by the lead and the invited specialists")
    current = await records.current_session(db, round_id, recurrence.day_of(utcnow()))
    lifecycle.check_session("focus", current.status if current else None)
    assert current is not None
    await records.patient(db, round_id, patient_id)
    await records.set_focus(db, current.id, patient_id)


async def decide(
    services: Services, account: Account, consult: Consult, outcome: str, summary: str | None, op_id: str | None = None
) -> Consult:
    """A round patient's decision (`consult:end` on their consult): by the lead or an invited
    specialist, who stays in the round's call for the next patient."""
    held = await records.session_of(services.db, consult.round_session_id)
    if held is None:
        raise AppError("not_found", "no such round session")
    if not policy.may_lead(await records.get(services.db, held.round_id), account):
        raise AppError("forbidden", "a round patient's decision is made by the lead or an invited specialist")
    return await dispatch.record_outcome(
        services, account.id, consult, outcome, summary, release_specialist=False, op_id=op_id
    )


async def _close_undecided(services: Services, consult: Consult, actor_id: str | None, reason: str) -> None:
    if not lifecycle.allows("close", consult.status):
        return  # decided already
    target = lifecycle.check_transition("close", consult.status)
    closed = await consults.transition(
        services.db,
        consult,
        "cancelled",
        actor_id,
        {"reason": reason},
        status=target,
        ended_at=utcnow(),
        ended_by_id=actor_id,
    )
    if closed is not None:
        await dispatch.announce(services, closed)


async def end(services: Services, account: Account | None, round_id: str) -> bool:
    """End the session in progress; `account` None when it ends on its own. False if none was."""
    item = await records.get(services.db, round_id)
    if account is not None and not policy.may_lead(item, account):
        raise AppError("forbidden", "the session is ended by the lead and the invited specialists")
    current = await records.active_session(services.db, round_id)
    if current is None or not lifecycle.session_allows("end", current.status):
        return False
    if not await records.end_session(services.db, current.id):
        return False  # ended by someone else at the same moment
    actor = account.id if account else None
    for consult in (await records.session_consults(services.db, current.id)).values():
        await _close_undecided(services, consult, actor, "no decision in this session")
    return True


async def end_overdue(services: Services, now: datetime) -> list[str]:
    """End sessions with nobody in the call, `policy.OVERRUN` after their scheduled end. Their round ids."""
    ended = []
    for round_id, started_at, duration_min in await records.active_sessions(services.db):
        if not policy.overdue(started_at, duration_min, now):
            continue
        if await services.rooms.peers(keys.round_room(round_id)):
            continue
        if await end(services, None, round_id):
            ended.append(round_id)
    return ended


async def announce_starting(services: Services, now: datetime) -> list[str]:
    """`round:starting` to the people of each occurrence that started in
    `(now - policy.STARTING_WINDOW, now]`, once across all instances (a Redis key per occurrence).
    Returns the round ids announced."""
    announced = []
    for item in await records.not_cancelled(services.db):
        for moment in policy.occurrences_of(item, now - policy.STARTING_WINDOW, now + timedelta(microseconds=1)):
            key = keys.round_starting(item.id, recurrence.day_of(moment).isoformat())
            if not await services.redis.set(key, "1", nx=True, ex=2 * 24 * 3600):
                continue
            people = await team_of(services.db, item)
            payload = views.round_start(await describe(services.db, item.id, now), moment)
            await outbox.send(services, [Event("round:starting", payload, To.users(people))])
            announced.append(item.id)
    return announced


async def today_for(db: Database, account: Account, now: datetime) -> list[views.RoundStart]:
    """For `session:state`: the user's rounds with an occurrence today (Vietnam), each with its start."""
    if account.role not in ("specialist", "clinician"):
        return []
    today = recurrence.day_of(now)
    found = []
    for item in await records.visible(db, account):
        if item.cancelled_at is not None:
            continue
        moment = recurrence.occurrence_on(item.starts_at, item.recurrence, item.until, item.skipped or [], today)
        current = await records.current_session(db, item.id, today)
        if moment is None and current is None:
            continue
        found.append(views.round_start(await describe(db, item.id, now), moment))
    return found


async def updated(db: Database, round_id: str, skip_sid: str | None = None) -> tuple[views.RoundView, list[Event]]:
    """The round after a change, and its `round:updated {round}` for every screen that lists it:
    its team, on every device (whoever is in its call is of its team), but `skip_sid`. The caller
    hands the events to `outbox.send`."""
    described = await describe(db, round_id)
    item = await records.get(db, round_id)
    # Everyone in its call is of its team (`round:join` admits its members only).
    audience = To.users(sorted(await team_of(db, item)))
    return described, [Event("round:updated", {"round": described}, audience, skip_sid=skip_sid)]


async def clock(services: Services, interval_s: float = 15.0) -> None:
    """Runs on every instance: `round:starting` notices, and sessions left open long after their end."""

    async def tick() -> None:
        now = utcnow()
        await announce_starting(services, now)
        for round_id in await end_overdue(services, now):
            _, events = await updated(services.db, round_id)
            await outbox.send(services, events)

    await loops.every(interval_s, tick, "round notices")
