"""The life of a consult request: offer, expire, decline, accept, cancel, end, and the queue.

Decisions come from `matching` (pure policy); the record and its timeline from `consults`
(the database, where each status change is a compare-and-set on `version`); live offers and
the queue from `offers` (Redis). Whoever wins a compare-and-set does the follow-up work, so
each step happens once however many instances run.

The actions send nothing: each puts the events it causes, in the order they are to go out, in
the list `out` its caller gives it, and the caller hands them to the outbox (`outbox.sending`,
which sends them even when the action fails half-way). A step may chain into others (an accept
frees the other emergency specialists, who are offered the next waiting request ...): the same
list is handed down the chain, so the order is the order they happened in (the specialists'
offer before the requester's update).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from server import outbox
from server.contract import views
from server.contract.errors import AppError
from server.live import caps, keys, presence
from server.live.offers import Offer, now
from server.outbox import Event, To
from server.policy import consent as consent_policy
from server.policy import lifecycle, matching
from server.policy.matching import Candidate, Urgency
from server.records import consents, consults
from server.records.models import Consult, utcnow
from server.records.users import Account
from server.runtime.services import Services

log = logging.getLogger("telerounds.dispatch")

SLOT_MARGIN_S = 5.0  # a slot outlives its offer a little, so an expiry in flight still finds it


def offer_timeout(services: Services, urgency: str) -> float:
    settings = services.settings
    return {
        "routine": settings.offer_timeout_routine_s,
        "urgent": settings.offer_timeout_urgent_s,
        "emergency": settings.offer_timeout_emergency_s,
    }[urgency]


def waiting_key(consult: Consult) -> str:
    """The queue a waiting consult sits in: its specialist's when named, else its specialty's."""
    if consult.named_specialist_id:
        return keys.named_queue(consult.named_specialist_id)
    return keys.queue(consult.specialty)


async def describe(services: Services, consult: Consult) -> views.ConsultView:
    """The consult as clients see it: with its queue position when waiting, its declines and
    lapsed offers, and while it waits for a specialist how many of its specialty are online."""
    # A consult never offered (version 1) has no answers to read.
    found = (await consults.answers(services.db, [consult.id])).get(consult.id, []) if consult.version > 1 else []
    named = (
        consult.requester_id,
        consult.specialist_id,
        consult.named_specialist_id,
        consult.ended_by_id,
        consult.result_by_id,
        views.consent_recorder(consult),
    )
    who = await consults.people(services.db, (*named, *consults.answer_people(found)))
    position = None
    if consult.status == "queued" and consult.named_answer is None:
        position = await services.live.position(waiting_key(consult), consult.id)
    online = None
    if consult.kind == "consult" and consult.status in ("queued", "offered"):
        online = await online_specialists(services, consult.specialty)
    return views.consult_view(consult, who, position, answers=found, online_specialists=online)


async def online_specialists(services: Services, specialty: str) -> int:
    """How many specialists the matcher may ask for this specialty have a device connected now."""
    live = await presence.many(services.redis, await consults.practitioners(services.db, specialty))
    return sum(1 for status in live.values() if status["online"])


async def specialists_online_changed(services: Services, out: list[Event], specialist_id: str) -> None:
    """A specialist came online or went offline: the requests of their specialties that wait
    show the new count of specialists online to their requesters."""
    specialties = await consults.specialties_of(services.db, specialist_id)
    for consult in await consults.waiting_for(services.db, specialties):
        await updated(services, out, consult)


async def updated(
    services: Services,
    out: list[Event],
    consult: Consult,
    also: Iterable[str] = (),
    view: views.ConsultView | None = None,
) -> views.ConsultView:
    """`consult:updated` to everyone whose screens show the consult (`view`: its description, if made already)."""
    services.board_changed()
    view = view if view is not None else await describe(services, consult)
    out.append(Event("consult:updated", {"consult": view}, To.parties(consult, also)))
    return view


async def announce(
    services: Services, consult: Consult, also: set[str] | None = None, view: views.ConsultView | None = None
) -> views.ConsultView:
    """`consult:updated`, sent now: for `actions/rounds`, which sends its own events still."""
    async with outbox.sending(services) as out:
        return await updated(services, out, consult, also or (), view)


async def queue_updated(services: Services, out: list[Event], key: str) -> None:
    """Tell every requester waiting in a queue their (new) position."""
    waiting = await services.live.waiting(key)
    for consult in await consults.many(services.db, [consult_id for consult_id, _ in waiting]):
        if consult.status == "queued":
            await updated(services, out, consult)


async def presence_changed(services: Services, out: list[Event], user_id: str, reason: str | None = None) -> None:
    """`presence:changed` to the user's screens, after the server set their status; `reason`
    says why when the screen should ask about it (`offer_missed`: an offer lapsed unanswered)."""
    services.board_changed()
    changed = await presence.of(services.redis, user_id)
    payload: dict[str, Any] = {"presence": changed}
    if reason is not None:
        payload["reason"] = reason
    out.append(Event("presence:changed", payload, To.user(user_id)))


# Matching.


async def candidates(services: Services, consult: Consult) -> tuple[list[Candidate], set[str]]:
    """The specialists who might take this request as they are now, and its hospital's sisters."""
    roster, sisters = await consults.roster(services.db, consult.specialty, consult.hospital_id)
    ids = [entry.user_id for entry in roster]
    # Independent reads: wait for them together, not one round trip after another.
    live, holders, in_consult, in_round = await asyncio.gather(
        presence.many(services.redis, ids),
        services.live.slot_holders(ids),
        services.live.in_consult(),
        services.live.in_round(),
    )
    return [
        Candidate(
            user_id=entry.user_id,
            hospital_id=entry.hospital_id,
            specialties=entry.specialties,
            status=live[entry.user_id]["status"],
            online=live[entry.user_id]["online"],
            holds_offer=entry.user_id in holders,
            in_consult=entry.user_id in in_consult,
            consults_today=entry.consults_today,
            idle_since=entry.idle_since,
            in_round=entry.user_id in in_round,
        )
        for entry in roster
    ], sisters


async def dispatch(services: Services, out: list[Event], consult: Consult) -> Consult:
    """Offer a queued consult to whoever may take it now, or leave it waiting in the queue."""
    if not lifecycle.allows("offer", consult.status) or consult.named_answer is not None:
        return consult
    urgency: Urgency = consult.urgency
    (pool, sisters), declined = await asyncio.gather(candidates(services, consult), services.live.declined(consult.id))
    ordered = matching.choose(
        pool,
        specialty=consult.specialty,
        urgency=urgency,
        sister_hospitals=sisters,
        named_specialist_id=consult.named_specialist_id,
        excluded=declined,
    )
    timeout = offer_timeout(services, consult.urgency)
    chosen: list[str] = []
    if matching.one_at_a_time(urgency):
        for specialist_id in ordered:
            if await services.live.claim_slot(specialist_id, consult.id, timeout + SLOT_MARGIN_S):
                chosen = [specialist_id]
                break
    else:
        chosen = ordered
    key = waiting_key(consult)
    if not chosen:
        await services.live.enqueue(key, consult.id, matching.queue_score(urgency, consult.created_at))
        await queue_updated(services, out, key)
        return consult
    target = lifecycle.check_transition("offer", consult.status)
    offered = await consults.transition(services.db, consult, "offered", None, {"to": chosen}, status=target)
    if offered is None:  # cancelled or taken meanwhile
        for specialist_id in chosen:
            await services.live.release_slot(specialist_id, consult.id)
        return await consults.get(services.db, consult.id) or consult
    expires_at = now() + timeout
    view, _ = await asyncio.gather(
        describe(services, offered), services.live.open(consult.id, offered.version, chosen, expires_at)
    )
    # The specialists' screens ring first; the queue's, the requester's and the board's updates follow.
    offer = views.offer_view(view, expires_at)
    out.append(Event("consult:offer", offer, To.users(chosen)))
    services.metrics.offers.labels(consult.urgency).inc()
    if await services.live.dequeue(key, consult.id):
        await queue_updated(services, out, key)
    await updated(services, out, offered, view=view)
    return offered


async def offer_waiting(services: Services, out: list[Event], specialist_id: str) -> None:
    """A specialist may take new work: offer them the most pressing request they can take."""
    specialties = await consults.specialties_of(services.db, specialist_id)
    for _ in range(10):  # each pass offers something, finds nothing, or lost a race and looks again
        if not await _free(services, specialist_id, specialties):
            return
        best: tuple[float, str, str] | None = None
        for key in [keys.named_queue(specialist_id), *(keys.queue(s) for s in specialties)]:
            for consult_id, score in await services.live.waiting(key, limit=20):
                if specialist_id in await services.live.declined(consult_id):
                    continue
                if best is None or score < best[0]:
                    best = (score, key, consult_id)
                break
        if best is None:
            return
        _, key, consult_id = best
        if not await services.live.dequeue(key, consult_id):
            continue  # another instance took it
        await queue_updated(services, out, key)
        consult = await consults.get(services.db, consult_id)
        if consult is not None and consult.status == "queued":
            await dispatch(services, out, consult)


async def _free(services: Services, specialist_id: str, specialties: list[str]) -> bool:
    """Whether this specialist could be offered a one-at-a-time request right now."""
    status = await presence.of(services.redis, specialist_id)
    me = Candidate(
        user_id=specialist_id,
        hospital_id="",
        specialties=tuple(specialties),
        status=status["status"],
        online=status["online"],
        holds_offer=bool(await services.live.slot_holders([specialist_id])),
        in_consult=specialist_id in await services.live.in_consult(),
        in_round=specialist_id in await services.live.in_round(),
    )
    return any(matching.can_take(me, s, one_at_a_time=True) for s in specialties)


# Client actions.


async def request(
    services: Services,
    out: list[Event],
    account: Account,
    *,
    op_id: str,
    specialty: str,
    urgency: str,
    patient: dict[str, Any],
    specialist_id: str | None,
    consent: consents.Given | None = None,
    consent_waived_reason: str | None = None,
) -> Consult:
    if account.role != "clinician":
        raise AppError("forbidden", "only clinicians of a hospital ask for consults")
    refused = consent_policy.request_refusal(
        urgency, consent.scopes if consent is not None else None, consent_waived_reason
    )
    if refused is not None:
        raise AppError("invalid", refused)
    if not await consults.practitioners(services.db, specialty):
        # Refused at once: waiting would only end when the clinician gives up.
        raise AppError("conflict", f"no specialist in your network practises {specialty}; ask for another specialty")
    if specialist_id is not None:
        named = await consults.people(services.db, [specialist_id])
        if specialist_id not in named or named[specialist_id]["role"] != "specialist":
            raise AppError("not_found", "no such specialist")
        if specialty not in await consults.specialties_of(services.db, specialist_id):
            raise AppError("invalid", "this specialist does not practise that specialty")
    # The count of the clinician's waiting requests and the new one's write, one device at a time.
    async with caps.one_at_a_time(services.redis, keys.requesting(account.id)):
        consult, created = await consults.create(
            services.db,
            op_id=op_id,
            requester_id=account.id,
            hospital_id=account.hospital_id,
            specialty=specialty,
            urgency=urgency,
            patient=patient,
            named_specialist_id=specialist_id,
            cap=lambda waiting: caps.request_refusal(waiting, urgency, services.settings),
            consent=consent,
            consent_waived_reason=consent_waived_reason,
        )
    if not created:
        return consult
    return await dispatch(services, out, consult)


async def accept(services: Services, out: list[Event], account: Account, consult_id: str) -> Consult:
    consult = await _get(services, consult_id)
    if consult.status == "active" and consult.specialist_id == account.id:
        return consult  # a repeated accept
    if account.role != "specialist":
        raise AppError("forbidden", "only specialists accept consults")
    offer = await services.live.get(consult_id)
    target = lifecycle.check_transition("accept", consult.status)
    if offer is None or offer.version != consult.version or account.id not in offer.specialists:
        raise lifecycle.refusal("accept", consult.status)
    scopes = consult.consent.get("scopes") if consult.consent else None
    if (
        missing := consent_policy.acceptance_refusal(consult.urgency, scopes, consult.consent_waived_reason)
    ) is not None:
        raise AppError("conflict", missing)
    started = utcnow()
    accepted = await consults.transition(
        services.db,
        consult,
        "accepted",
        account.id,
        status=target,
        specialist_id=account.id,
        started_at=started,
        named_answer=None,
    )
    if accepted is None:
        raise lifecycle.refusal("accept", (await _get(services, consult_id)).status)
    others = await services.live.close(consult_id) - {account.id}
    await services.live.set_in_consult(account.id, True)
    await presence.set_status(services.redis, account.id, "busy", chosen=False)
    await presence_changed(services, out, account.id)
    services.metrics.wait_seconds.observe((started - consult.created_at).total_seconds())
    await updated(services, out, accepted, also=others)
    for specialist_id in others:  # the other emergency specialists are free for queued requests
        await offer_waiting(services, out, specialist_id)
    return accepted


async def decline(services: Services, out: list[Event], account: Account, consult_id: str, reason: str | None) -> None:
    consult = await _get(services, consult_id)
    offer = await services.live.get(consult_id)
    target = lifecycle.check_transition("decline", consult.status)
    if offer is None or account.id not in offer.specialists:
        raise lifecycle.refusal("decline", consult.status)
    remaining = await services.live.withdraw(consult_id, account.id)
    if remaining < 0:
        raise lifecycle.refusal("decline", consult.status)
    await services.live.add_declined(consult_id, account.id)
    detail = {"reason": reason or ""}
    if remaining > 0:  # an emergency others may still take
        await consults.add_event(services.db, consult_id, "declined", account.id, detail)
        await updated(services, out, consult, also={account.id})
    else:
        changes: dict[str, Any] = {"status": target}
        if consult.named_specialist_id:
            changes["named_answer"] = "declined"
        back = await consults.transition(services.db, consult, "declined", account.id, detail, **changes)
        if back is not None:
            await services.live.close(consult_id)
            await updated(services, out, back, also={account.id})
            await dispatch(services, out, back)
    await offer_waiting(services, out, account.id)


async def due(services: Services) -> list[str]:
    """The offers whose time is up that this instance claimed: each is claimed by one instance."""
    moment = now()
    return [
        consult_id
        for consult_id in await services.live.due(moment)
        if await services.live.claim_due(consult_id, moment)
    ]


async def expire(services: Services, out: list[Event], consult_id: str) -> None:
    """Move on an offer whose time is up (claimed through `due`)."""
    current = await _current_offer(services, consult_id, "expire")
    if current is None:
        await services.live.close(consult_id)  # left over from an offer that ended otherwise
        return
    offer, consult = current
    unanswered = sorted(offer.specialists)
    changes: dict[str, Any] = {"status": lifecycle.check_transition("expire", consult.status)}
    if consult.named_specialist_id:
        changes["named_answer"] = "expired"
    back = await consults.transition(services.db, consult, "expired", None, {"to": unanswered}, **changes)
    if back is None:
        return  # accepted or cancelled meanwhile; that step closed the offer
    await services.live.close(consult_id)
    services.metrics.offers_expired.labels(consult.urgency).inc()
    if matching.one_at_a_time(consult.urgency):
        # Whoever let an offer lapse is probably away from the screen: don't make the next
        # request wait on them too. They see it and switch back when they return.
        for specialist_id in unanswered:
            await presence.set_status(services.redis, specialist_id, "away")
            await presence_changed(services, out, specialist_id, reason="offer_missed")
    await updated(services, out, back, also=unanswered)
    await dispatch(services, out, back)


async def widen(services: Services, out: list[Event], account: Account, consult_id: str) -> Consult:
    """A named request that was declined or unanswered goes to the whole pool."""
    consult = await _get(services, consult_id)
    if consult.requester_id != account.id:
        raise AppError("forbidden", "only the clinician who asked can widen this request")
    if consult.named_specialist_id is None:
        return consult
    lifecycle.check_transition("widen", consult.status)  # stays queued: no status to set
    old_key = waiting_key(consult)
    widened = await consults.transition(
        services.db, consult, "widened", account.id, named_specialist_id=None, named_answer=None
    )
    if widened is None:
        raise AppError("conflict", "the consult changed meanwhile; try again")
    if await services.live.dequeue(old_key, consult_id):
        await queue_updated(services, out, old_key)
    return await dispatch(services, out, widened)


async def cancel(services: Services, out: list[Event], account: Account, consult_id: str) -> Consult:
    for _ in range(5):  # an offer or expiry may change the consult between read and write
        consult = await _get(services, consult_id)
        if consult.requester_id != account.id:
            raise AppError("forbidden", "only the clinician who asked can cancel this request")
        if consult.status == "cancelled":
            return consult
        target = lifecycle.check_transition("cancel", consult.status)
        cancelled = await consults.transition(
            services.db, consult, "cancelled", account.id, status=target, ended_at=utcnow(), ended_by_id=account.id
        )
        if cancelled is None:
            continue
        offered = await services.live.close(consult_id)
        key = waiting_key(consult)
        if await services.live.dequeue(key, consult_id):
            await queue_updated(services, out, key)
        await updated(services, out, cancelled, also=offered)
        for specialist_id in offered:
            await offer_waiting(services, out, specialist_id)
        return cancelled
    raise AppError("unavailable", "the consult kept changing; try again")


async def end(
    services: Services,
    out: list[Event],
    account: Account,
    consult_id: str,
    outcome: str,
    summary: str | None,
    op_id: str | None = None,
) -> Consult:
    consult = await _get(services, consult_id)
    if account.id not in (consult.specialist_id, consult.requester_id):
        raise AppError("forbidden", "only the specialist or the clinician who asked can end this consult")
    return await close(services, out, account.id, consult, outcome, summary, release_specialist=True, op_id=op_id)


async def record_outcome(
    services: Services,
    actor_id: str,
    consult: Consult,
    outcome: str,
    summary: str | None,
    *,
    release_specialist: bool,
    op_id: str | None = None,
) -> Consult:
    """`close`, its events sent now: for `actions/rounds`, which sends its own events still."""
    async with outbox.sending(services) as out:
        return await close(
            services, out, actor_id, consult, outcome, summary, release_specialist=release_specialist, op_id=op_id
        )


async def close(
    services: Services,
    out: list[Event],
    actor_id: str,
    consult: Consult,
    outcome: str,
    summary: str | None,
    *,
    release_specialist: bool,
    op_id: str | None = None,
) -> Consult:
    """End an active consult with its outcome; the caller has checked that `actor_id` may.

    `release_specialist`: the specialist is free again and offered what waits. Not so for a
    round patient's decision: the lead stays in the round's call, with the next patient.
    `op_id`: kept with the ending (as a note or a request keeps its own), so that the same op
    again, after a lost answer, gets the same answer and changes nothing.
    """
    consult_id = consult.id
    if consult.status == "ended":
        return await ended_already(services, consult, op_id)
    target = lifecycle.check_transition("end", consult.status)
    ended = await consults.transition(
        services.db,
        consult,
        "ended",
        actor_id,
        {"outcome": outcome} | ({"op_id": op_id} if op_id is not None else {}),
        status=target,
        ended_at=utcnow(),
        outcome=outcome,
        summary=summary,
        ended_by_id=actor_id,
    )
    if ended is None:
        latest = await _get(services, consult_id)
        if latest.status == "ended":
            return await ended_already(services, latest, op_id)
        raise AppError("conflict", "the consult changed meanwhile; try again")
    specialist_id = consult.specialist_id if release_specialist else None
    if specialist_id:
        await services.live.set_in_consult(specialist_id, False)
        if specialist_id in await services.live.in_round():  # an emergency taken from a round: back to it
            await presence.set_status(services.redis, specialist_id, "busy", chosen=False)
        else:
            await presence.restore_chosen(services.redis, specialist_id)
        await presence_changed(services, out, specialist_id)
    # The update goes out after the call's room is closed, so whoever was in the call is named
    # here: `To.parties` would no longer find them in the room.
    in_call = await services.rooms.close(keys.consult_room(consult_id))
    await updated(services, out, ended, also={peer.user["id"] for peer in in_call})
    if specialist_id:
        await offer_waiting(services, out, specialist_id)
    return ended


async def ended_already(services: Services, consult: Consult, op_id: str | None) -> Consult:
    """The answer to ending a consult that has ended. Without an `op_id`, the consult as it is (an
    end is harmless to repeat). With one: the same answer when this op ended it (its first
    answer was lost); else `conflict`, since this op's outcome was not recorded: another was."""
    if op_id is None or await consults.ending_op(services.db, consult.id) == op_id:
        return consult
    raise AppError("conflict", f"the consult was ended already, with the outcome {consult.outcome}")


async def entered_round(services: Services, out: list[Event], specialist_id: str, round_id: str) -> None:
    """A specialist joined a ward round's call: busy for one-at-a-time offers while in it (an
    emergency still reaches them). Only one who was available: a status they chose stays theirs."""
    status = await presence.of(services.redis, specialist_id)
    if status["status"] != "available" or specialist_id in await services.live.in_consult():
        return
    await services.live.enter_round(specialist_id, round_id)
    await presence.set_status(services.redis, specialist_id, "busy", chosen=False)
    await presence_changed(services, out, specialist_id)


async def left_round(services: Services, out: list[Event], specialist_id: str, round_id: str) -> None:
    """A specialist left a round's call (or it ended, or they did not come back in time): after
    their last round, back to the status they chose, and offered what waits."""
    if not await services.live.leave_round(specialist_id, round_id):
        return
    if specialist_id in await services.live.in_round() or specialist_id in await services.live.in_consult():
        return
    await presence.restore_chosen(services.redis, specialist_id)
    await presence_changed(services, out, specialist_id)
    await offer_waiting(services, out, specialist_id)


async def specialist_offline(services: Services, specialist_id: str) -> None:
    """A specialist's last device dropped: their one-at-a-time offers move on after the grace period."""
    deadline = now() + services.settings.reconnect_grace_s
    for consult_id in await services.live.offered_to(specialist_id):
        offer = await services.live.get(consult_id)
        if offer is not None and offer.specialists == {specialist_id}:
            await services.live.expire_sooner(consult_id, deadline)
    async with outbox.sending(services) as out:
        await specialists_online_changed(services, out, specialist_id)


async def specialist_back(services: Services, out: list[Event], specialist_id: str) -> None:
    """A specialist reconnected: their offers keep their original expiry; they may take queued work."""
    for consult_id in await services.live.offered_to(specialist_id):
        offer = await services.live.get(consult_id)
        if offer is not None:
            await services.live.expire_later(consult_id, offer.expires_at)
    await specialists_online_changed(services, out, specialist_id)
    await offer_waiting(services, out, specialist_id)


async def open_for(services: Services, account: Account) -> tuple[list[views.ConsultView], list[views.OfferView]]:
    """For `session:state`: the user's open consults, and the offers waiting for their answer."""
    mine = await consults.open_for(services.db, account.id)
    offers: list[views.OfferView] = []
    for consult_id in await services.live.offered_to(account.id):
        current = await _current_offer(services, consult_id, "accept")
        if current is None:
            continue  # an offer left over, or one the consult moved past
        offer, consult = current
        offers.append(views.offer_view(await describe(services, consult), offer.expires_at))
    described = [await describe(services, consult) for consult in mine]
    return described, offers


async def _current_offer(
    services: Services, consult_id: str, action: lifecycle.ConsultAction
) -> tuple[Offer, Consult] | None:
    """The consult's live offer with the consult, while `action` may still follow from it: None
    for an offer left over in Redis, or one whose consult has moved on (another version)."""
    offer = await services.live.get(consult_id)
    consult = await consults.get(services.db, consult_id)
    if offer is None or consult is None or not lifecycle.allows(action, consult.status):
        return None
    return (offer, consult) if offer.version == consult.version else None


async def _get(services: Services, consult_id: str) -> Consult:
    consult = await consults.get(services.db, consult_id)
    if consult is None:
        raise AppError("not_found", "no such consult")
    return consult
