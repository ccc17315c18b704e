"""An open socket after its user's access changed: it re-reads the account, leaves what it may no
longer be in, or closes.

A socket's account is read at connect, with the user's authorization stamp
(`server.live.revocation`). When the stamp changes the socket re-reads the account from the database:

- at its next event, within the event (`refresh`, from `signaling.router.admit_current`);
- at once, on every instance, when the change is announced (`users_here`, from
  `RedisManager.reauthorize`), so a socket that sends nothing stops receiving too;
- at the presence heartbeat (`stale_here`), should that announcement be lost.

Then each room the socket is in is checked by the rule that let it in:

- its own id and `user:<its user>`: always kept;
- `consult:<id>`, a consult's call: `consults.may_join` (the requester, the accepted specialist,
  the requesting hospital's clinicians, the invited);
- `round:<id>`, a round's call, and `user:round-session:<id>`, the audience of a round session
  that gets its patients' notes: `server.policy.rounds.takes_part`;
- in `/monitor`, the board of the account's scope (`outbox.board_room`);
- any other room: left. A room without a rule here is not kept on an old authorization.

Leaving a call is leaving it as `consult:leave` / `round:leave` do: the others are told the peer
left. A socket that left something, or whose user's name, role or hospital changed, gets a fresh
`session:state`. A socket is closed instead when its account is no longer active or its password
changed (connecting again is refused with `unauthorized`), when its role may no longer connect to
its namespace, and a `/monitor` socket whose scope changed (connecting again shows its new board).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Literal

import socketio

from server import outbox
from server.actions import access
from server.actions.snapshot import session_state
from server.contract.errors import AppError
from server.live import keys, revocation
from server.outbox import Event, To, board_room
from server.policy import permissions
from server.policy import rounds as round_policy
from server.policy.scope import hospital_scope
from server.records import consults
from server.records import rounds as round_records
from server.records.users import Account, load_account
from server.runtime.services import Services
from signaling import monitor, rtc
from signaling.router import Caller, Revoked

log = logging.getLogger("telerounds.signaling")

Verdict = Literal["kept", "closed"]


async def refresh(sio: socketio.AsyncServer, caller: Caller) -> Caller:
    """The caller with their account as it is now, their socket moved out of the rooms it may no
    longer be in; `Revoked` (an error ack, then the socket closes) when it may not stay at all."""
    services, old = caller.services, caller.account
    stamp = await revocation.stamp_of(services.redis, old.id)  # before the account: see server/live/revocation.py
    try:
        account = replace(await load_account(services, old.id, old.token_generation), stamp=stamp)
    except AppError as error:  # deactivated, or the password changed
        raise Revoked(error.code, error.message) from None
    if await _apply(sio, services, caller.sid, caller.namespace, old, account) == "closed":
        raise Revoked("forbidden", f"your role no longer has access to {caller.namespace}; connect again")
    return replace(caller, account=account)


async def users_here(services: Services, user_ids: list[str]) -> None:
    """Every open socket of these users on this instance, re-read and re-checked."""
    for user_id in user_ids:
        try:
            await _user_here(services, user_id)
        except Exception:
            # One user's failure (the database down a moment) leaves the others to be done; the
            # socket re-reads on its next event and at the next heartbeat.
            log.exception("re-reading a user's access failed", extra={"user_id": user_id})


async def stale_here(services: Services, stamps: dict[str, str]) -> None:
    """The users (given with their current stamps) of whom a socket here holds another stamp:
    `users_here` for them. What the presence heartbeat does, should an announcement be lost."""
    assert services.sio is not None
    # Their sockets in "/" tell (every user with a socket here has one there, the heartbeat's
    # own); `users_here` then re-checks the other namespaces too.
    stale = [
        user_id
        for user_id, stamp in stamps.items()
        if any(account.stamp != stamp for _, _, account in await _sockets_of(services.sio, user_id, ("/",)))
    ]
    if stale:
        await users_here(services, stale)


async def _user_here(services: Services, user_id: str) -> None:
    sio = services.sio
    assert sio is not None
    sockets = await _sockets_of(sio, user_id)
    if not sockets:
        return
    stamp = await revocation.stamp_of(services.redis, user_id)
    try:
        fresh: Account | None = replace(await load_account(services, user_id), stamp=stamp)
    except AppError:  # no longer active
        fresh = None
    for sid, namespace, old in sockets:
        if fresh is None or fresh.token_generation != old.token_generation:
            verdict: Verdict = "closed"
        else:
            verdict = await _apply(sio, services, sid, namespace, old, fresh)
        if verdict == "closed":
            await sio.disconnect(sid, namespace=namespace, ignore_queue=True)


async def _sockets_of(
    sio: socketio.AsyncServer, user_id: str, namespaces: tuple[str, ...] | None = None
) -> list[tuple[str, str, Account]]:
    """This instance's sockets of one user (in `namespaces`, else in all): (sid, namespace, the
    account its session holds)."""
    manager = sio.manager
    found = []
    for namespace in namespaces or list(manager.get_namespaces()):
        # In "/" every socket is in its user's room; other namespaces (few sockets) are searched.
        room = keys.user_room(user_id) if namespace == "/" else None
        for sid, _eio_sid in list(manager.get_participants(namespace, room)):
            if not manager.is_connected(sid, namespace):
                continue
            try:
                session = await sio.get_session(sid, namespace=namespace)
            except KeyError:  # its engine.io socket closed meanwhile
                continue
            account = session.get("account")
            if isinstance(account, Account) and account.id == user_id:
                found.append((sid, namespace, account))
    return found


async def _apply(
    sio: socketio.AsyncServer, services: Services, sid: str, namespace: str, old: Account, account: Account
) -> Verdict:
    """Keep `account` in the socket's session and leave the rooms it may no longer be in; or
    "closed" when the socket may not stay (the caller closes it)."""
    session = await sio.get_session(sid, namespace=namespace)
    await sio.save_session(sid, {**session, "account": account}, namespace=namespace)
    try:
        permissions.check_role(permissions.event_rule(namespace, "connect"), account.role, f"namespace {namespace}")
    except AppError:
        return "closed"
    left = []
    for room in list(sio.manager.get_rooms(sid, namespace)):
        if room in (sid, keys.user_room(account.id)) or await _may_stay(services, namespace, room, account):
            continue
        if namespace != "/":  # a board of another scope: connecting again shows the right one
            return "closed"
        await _leave(services, sio, sid, room)
        left.append(room)
    if left:
        log.info("socket left rooms after a change of access", extra={"sid": sid, "rooms": left})
    if namespace == "/" and (left or account.public() != old.public()):
        state = await session_state(services, account)
        await outbox.send(services, [Event("session:state", state, To.socket(sid))])
    return "kept"


async def _may_stay(services: Services, namespace: str, room: str, account: Account) -> bool:
    try:
        return await _rule(services, namespace, room, account)
    except AppError:  # what the room is about is gone (`not_found`): nothing to stay for
        return False


async def _rule(services: Services, namespace: str, room: str, account: Account) -> bool:
    if namespace == monitor.NAMESPACE:
        return room == board_room(hospital_scope(account))
    if namespace != "/":
        return False
    if (session_id := keys.round_audience_of(room)) is not None:
        return await access._in_round(services, account, session_id)
    kind, ref = keys.call_of(room) or ("", "")
    if kind == "consult":
        consult = await consults.get(services.db, ref)
        invited = await services.rooms.invited(room, account.id)
        return consult is not None and consults.may_join(
            consult, account.id, account.role, account.hospital_id, invited
        )
    if kind == "round":
        return round_policy.takes_part(await round_records.get(services.db, ref), account)
    log.warning("a room without a rule for a change of access is left", extra={"room": room})
    return False


async def _leave(services: Services, sio: socketio.AsyncServer, sid: str, room: str) -> None:
    """Out of a call as `consult:leave` / `round:leave` (the others are told), else out of the room."""
    if keys.call_of(room) is not None:
        peer = await services.rooms.peer_of_sid(room, sid)
        if peer is not None:
            await rtc.leave_room(services, room, peer)
            return
    await sio.leave_room(sid, room)
