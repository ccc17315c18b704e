"""Revoked accounts are found among many users in a few round trips; what an open socket was
given at connect is checked again on every event and moved at once, on every instance, when the
user's access changes; a relayed signal is still admitted by one Redis command."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from server.actions import admin
from server.live import revocation
from server.records.users import load_account
from server.runtime.services import redis_client
from tests.conftest import Client, Instance, StartInstance, add_user, login, until
from tests.system.test_admin import gone, http, ok, user_id
from tests.system.test_rtc import active_consult, join


async def test_the_revoked_are_found_among_thousands(redis_url: str) -> None:
    redis = redis_client(redis_url, decode_responses=True)
    try:
        users = {f"rv-user-{i}" for i in range(2500)}
        await revocation.revoke(redis, "rv-user-3")
        await revocation.revoke(redis, "rv-user-2499")
        await revocation.revoke(redis, "someone-else")
        assert await revocation.revoked_among(redis, users) == {"rv-user-3", "rv-user-2499"}
        await revocation.restore(redis, "rv-user-3")
        assert await revocation.revoked_among(redis, users) == {"rv-user-2499"}
        assert await revocation.revoked_among(redis, set()) == set()
    finally:
        await redis.aclose()


# --- Authorization checked on every event, not remembered from connect --------------------------


async def _note(client: Client, consult_id: str, op_id: str) -> dict[str, Any]:
    ack = await client.call("note:add", {"consult_id": consult_id, "op_id": op_id, "section": "plan", "text": op_id})
    assert ack["ok"] is True, ack
    return dict(ack["note"])


async def _quiet(client: Client, event: str, within: float = 0.3) -> None:
    """Nothing of `event` reaches `client` within `within` seconds."""
    await asyncio.sleep(within)
    assert client.queue(event).empty(), client.queue(event).get_nowait()


async def _colleague_in_call(two_instances: tuple[Instance, Instance], clients: Any) -> tuple[Any, ...]:
    """A Ba Vì consult in its call: its requester (on A), the specialist (on B) and another clinician
    at Ba Vì (on B), who may join it as one of the requesting hospital's clinicians."""
    a, b = two_instances
    await add_user(a.services.settings.database_url, "bavi.colleague", "clinician", "bavi-dgh")
    clinician, surgeon, consult = await active_consult(clients, a, b)
    colleague = await clients(b, "bavi.colleague")
    await colleague.next("session:state")
    await join(clinician, consult["id"])
    await join(surgeon, consult["id"])
    mine = await join(colleague, consult["id"])
    # Before the move it gets the consult's notes, as one of the call.
    written = await _note(clinician, consult["id"], "before")
    await until(colleague, "note:added", lambda p: p["note"]["id"] == written["id"])
    return clinician, surgeon, colleague, consult["id"], mine["peer_id"]


async def test_a_clinician_moved_to_another_hospital_leaves_its_calls_and_notes_within_a_second(
    two_instances: tuple[Instance, Instance], clients: Any
) -> None:
    a, b = two_instances
    clinician, surgeon, colleague, consult_id, peer_id = await _colleague_in_call(two_instances, clients)
    token = await login(a.url, "admin")
    colleague_id = await user_id(a, token, "bavi.colleague")
    colleague_token = await login(b.url, "bavi.colleague")

    # Moved to Tiên Yên by an admin on the other instance than the one holding its socket.
    moved_at = asyncio.get_running_loop().time()
    await ok(a, "PATCH", f"/api/admin/users/{colleague_id}", token, {"hospital_id": "ttyt-tienyen"})
    for other in (clinician, surgeon):  # out of the call, as everyone in it is told
        await until(other, "consult:peer-left", lambda p: p["peer_id"] == peer_id, within=1.0)
    state = await until(colleague, "session:state", lambda s: s["user"]["hospital"]["id"] == "ttyt-tienyen", 1.0)
    assert state["consults"] == []
    assert asyncio.get_running_loop().time() - moved_at < 1.0

    # The consult's notes and signals no longer reach it; its socket stays open.
    written = await _note(clinician, consult_id, "after")
    await until(surgeon, "note:added", lambda p: p["note"]["id"] == written["id"])
    await _quiet(colleague, "note:added")
    signal = {"consult_id": consult_id, "to": peer_id, "data": {"type": "offer", "sdp": "v=0"}}
    assert (await surgeon.call("rtc:signal", signal))["error"]["code"] == "not_found"
    assert colleague.sio.connected
    # Its own events are refused as HTTP refuses them, and the rest of its work goes on.
    for event in ("note:list", "consult:join"):
        assert (await colleague.call(event, {"consult_id": consult_id}))["error"]["code"] == "forbidden", event
    status, _ = await http(b, "GET", f"/api/consults/{consult_id}", colleague_token)
    assert status == 403
    assert (await colleague.call("presence:set", {"status": "available"}))["ok"] is True
    # The others' call goes on.
    assert (await clinician.call("note:list", {"consult_id": consult_id}))["ok"] is True


async def test_a_change_whose_announcement_is_lost_is_applied_at_the_next_event(
    two_instances: tuple[Instance, Instance], clients: Any
) -> None:
    a, _ = two_instances
    clinician, surgeon, colleague, consult_id, peer_id = await _colleague_in_call(two_instances, clients)
    token = await login(a.url, "admin")
    actor = await load_account(a.services, await user_id(a, token, "admin"))
    colleague_id = await user_id(a, token, "bavi.colleague")

    # The move as the HTTP handler makes it, but no instance is told: only the stamp changes.
    await admin.update_user(a.services.db, actor, colleague_id, admin.UserChange(hospital_id="ttyt-tienyen"), "")
    await revocation.bump(a.services.redis, [colleague_id])
    await asyncio.sleep(0.3)
    assert colleague.queue("consult:peer-left").empty()
    # Its next event re-reads the account: refused, and out of the call.
    assert (await colleague.call("note:list", {"consult_id": consult_id}))["error"]["code"] == "forbidden"
    for other in (clinician, surgeon):
        await until(other, "consult:peer-left", lambda p: p["peer_id"] == peer_id, within=1.0)
    written = await _note(clinician, consult_id, "after")
    await until(surgeon, "note:added", lambda p: p["note"]["id"] == written["id"])
    await _quiet(colleague, "note:added")


async def test_a_silent_socket_whose_announcement_was_lost_is_moved_by_the_heartbeat(
    start_instance: StartInstance, clients: Any
) -> None:
    # The heartbeat runs every PRESENCE_TTL_S / 3: here every second.
    a, b = await start_instance(PRESENCE_TTL_S="3"), await start_instance(PRESENCE_TTL_S="3")
    clinician, surgeon, colleague, consult_id, peer_id = await _colleague_in_call((a, b), clients)
    token = await login(a.url, "admin")
    actor = await load_account(a.services, await user_id(a, token, "admin"))
    colleague_id = await user_id(a, token, "bavi.colleague")
    await admin.update_user(a.services.db, actor, colleague_id, admin.UserChange(hospital_id="ttyt-tienyen"), "")
    await revocation.bump(a.services.redis, [colleague_id])
    await until(clinician, "consult:peer-left", lambda p: p["peer_id"] == peer_id, within=3.0)
    written = await _note(clinician, consult_id, "after")
    await until(surgeon, "note:added", lambda p: p["note"]["id"] == written["id"])
    await _quiet(colleague, "note:added")
    assert colleague.sio.connected


async def test_a_deactivated_users_open_socket_gets_unauthorized_even_if_redis_lost_the_revocation(
    two_instances: tuple[Instance, Instance], clients: Any
) -> None:
    a, b = two_instances
    device = await clients(a, "bavi.clinician")
    await device.next("session:state")
    token = await login(b.url, "admin")
    clinician = await user_id(b, token, "bavi.clinician")
    actor = await load_account(b.services, await user_id(b, token, "admin"))
    # Deactivated with the disconnect message lost, and `revoked:<id>` lost too (a Redis restart).
    await admin.deactivate(b.services, actor, clinician, "127.0.0.1", disconnect=False)
    await b.services.redis.delete(revocation.key(clinician))
    assert device.sio.connected
    # The database stays the truth: the stamp changed, the account is re-read, and it is inactive.
    ack = await device.call("presence:set", {"status": "available"})
    assert ack["ok"] is False and ack["error"]["code"] == "unauthorized", ack
    await gone(device)


async def test_a_signal_is_still_admitted_by_one_redis_command(
    start_instance: StartInstance, clients: Any, redis_url: str
) -> None:
    instance = await start_instance(PRESENCE_TTL_S="600")  # no presence heartbeat during the count
    clinician, surgeon, consult = await active_consult(clients, instance, instance)
    first = await join(clinician, consult["id"])
    await join(surgeon, consult["id"])
    signal = {"consult_id": consult["id"], "to": first["peer_id"], "data": {"type": "offer", "sdp": "v=0"}}
    assert await surgeon.call("rtc:signal", signal) == {"ok": True}  # the script is loaded, the stamp current
    await clinician.next("rtc:signal")

    # Every command Redis gets while one signal is relayed, from a connection of its own.
    monitor = redis_client(redis_url, decode_responses=True)
    seen: list[str] = []

    async def watch(ready: asyncio.Event) -> None:
        async with monitor.monitor() as feed:
            ready.set()
            async for command in feed.listen():
                if command.get("client_type") != "lua":  # not those a script runs inside Redis
                    seen.append(command["command"])

    ready = asyncio.Event()
    task = asyncio.create_task(watch(ready))
    try:
        await ready.wait()
        await asyncio.sleep(0.1)
        seen.clear()
        assert await surgeon.call("rtc:signal", signal) == {"ok": True}
        await clinician.next("rtc:signal")
        await asyncio.sleep(0.1)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await monitor.aclose()
    # The signal's: the commands naming its call (the others are heartbeats of the instance).
    ours = [c for c in seen if consult["id"] in c]
    assert len(ours) == 1 and ours[0].startswith("EVALSHA"), seen
    # That one script call also checked the revocation and the stamp, and took a rate-limit token.
    surgeon_id = consult["specialist"]["id"]
    for key in (revocation.key(surgeon_id), revocation.stamp_key(surgeon_id), f"events:{surgeon_id}"):
        assert key in ours[0], (key, ours[0])
    assert not [c for c in seen if surgeon_id in c and c not in ours], seen


async def test_a_supervisor_given_another_scope_has_their_board_closed_and_their_other_sockets_kept(
    two_instances: tuple[Instance, Instance], clients: Any
) -> None:
    a, b = two_instances
    await add_user(a.services.settings.database_url, "xanhpon.supervisor", "supervisor", "xanhpon")
    board = await clients(b, "xanhpon.supervisor", "/monitor")  # Xanh Pôn's board
    await board.next("monitor:snapshot")
    device = await clients(b, "xanhpon.supervisor")
    await device.next("session:state")
    token = await login(a.url, "admin")
    supervisor_id = await user_id(a, token, "xanhpon.supervisor")
    # Attached to the Department of Health: its board of one hospital is closed, to be opened
    # again on the new scope; its other socket stays and is told its new hospital.
    await ok(a, "PATCH", f"/api/admin/users/{supervisor_id}", token, {"hospital_id": "soyte-hanoi"})
    await gone(board, within=1.0)
    state = await until(device, "session:state", lambda s: s["user"]["hospital"]["id"] == "soyte-hanoi", 1.0)
    assert state["user"]["id"] == supervisor_id and device.sio.connected
    again = await clients(b, "xanhpon.supervisor", "/monitor")
    assert "sessions" in await again.next("monitor:snapshot")
