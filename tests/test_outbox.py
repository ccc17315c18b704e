"""The outbox: each event reaches exactly its audience, on whichever instance its sockets are,
and nothing in server/ or signaling/ sends events but the outbox.

Real instances on one Redis, real Socket.IO clients. To see that a socket did NOT get an event,
each check ends with a marker event sent to everyone after it through the same shared channel:
once a socket has the marker, whatever was sent to it before has arrived.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from server import outbox
from server.outbox import Call, Event, To
from server.policy.scope import hospital_scope
from server.records.models import Consult, User
from server.records.users import load_account
from tests.conftest import Client, Instance

ROOT = Path(__file__).resolve().parent.parent
OpenClient = Callable[..., Awaitable[Client]]


async def user_id(instance: Instance, username: str) -> str:
    async with instance.services.db.session() as session:
        found = await session.scalar(select(User.id).where(User.username == username))
    assert found is not None, username
    return found


def sid_of(client: Client, namespace: str = "/") -> str:
    sid = client.sio.get_sid(namespace)
    assert sid is not None
    return sid


async def settle(instance: Instance, users: dict[str, list[Client]]) -> dict[Client, list[Any]]:
    """Send a marker to every user in `users`; once each of their sockets has it, return what
    each received of the probe events before it."""
    await outbox.send(instance.services, [Event("test:marker", {}, To.users(users))])
    got: dict[Client, list[Any]] = {}
    for sockets in users.values():
        for client in sockets:
            await client.next("test:marker")
            probes = client.queue("test:probe")
            got[client] = [probes.get_nowait() for _ in range(probes.qsize())]
    return got


async def test_a_user_gets_it_on_every_socket_on_either_instance_and_no_one_else(
    two_instances: tuple[Instance, Instance], clients: OpenClient
) -> None:
    one, two = two_instances
    surgeon_here = await clients(one, "xanhpon.surgeon")
    surgeon_there = await clients(two, "xanhpon.surgeon")
    clinician = await clients(two, "bavi.clinician")
    surgeon_id = await user_id(one, "xanhpon.surgeon")
    clinician_id = await user_id(one, "bavi.clinician")

    await outbox.send(one.services, [Event("test:probe", {"n": 1}, To.user(surgeon_id))])

    got = await settle(one, {surgeon_id: [surgeon_here, surgeon_there], clinician_id: [clinician]})
    assert got == {surgeon_here: [{"n": 1}], surgeon_there: [{"n": 1}], clinician: []}


async def test_a_call_gets_it_on_both_instances_but_the_skipped_socket(
    two_instances: tuple[Instance, Instance], clients: OpenClient
) -> None:
    one, two = two_instances
    surgeon = await clients(one, "xanhpon.surgeon")
    clinician = await clients(two, "bavi.clinician")
    nurse = await clients(two, "bavi.nurse")  # not in the call
    # Each instance puts its own sockets in the call's room, as joining a call does.
    assert one.services.sio is not None and two.services.sio is not None
    await one.services.sio.enter_room(sid_of(surgeon), "consult:c-outbox")
    await two.services.sio.enter_room(sid_of(clinician), "consult:c-outbox")
    ids = {name: await user_id(one, name) for name in ("xanhpon.surgeon", "bavi.clinician", "bavi.nurse")}

    # From one instance: the marker after them comes in order, through the same channel.
    await outbox.send(two.services, [Event("test:probe", {"to": "all"}, To.call("consult", "c-outbox"))])
    await outbox.send(
        two.services, [Event("test:probe", {"to": "others"}, To.call("consult", "c-outbox"), skip_sid=sid_of(surgeon))]
    )

    got = await settle(
        two, {ids["xanhpon.surgeon"]: [surgeon], ids["bavi.clinician"]: [clinician], ids["bavi.nurse"]: [nurse]}
    )
    assert got == {surgeon: [{"to": "all"}], clinician: [{"to": "all"}, {"to": "others"}], nurse: []}


async def test_a_consults_parties_are_those_involved_those_in_its_call_and_those_named(
    two_instances: tuple[Instance, Instance], clients: OpenClient
) -> None:
    one, two = two_instances
    names = ("bavi.clinician", "xanhpon.surgeon", "xanhpon.icu", "bavi.nurse", "tienyen.clinician")
    ids = {name: await user_id(one, name) for name in names}
    sockets = {name: await clients(one if i % 2 else two, name) for i, name in enumerate(names)}
    consult = Consult(id="c-parties", requester_id=ids["bavi.clinician"], specialist_id=ids["xanhpon.surgeon"])
    # An invited colleague in the call: a peer of the call in Redis, wherever their socket is.
    icu = {"id": ids["xanhpon.icu"], "name": "ICU", "role": "specialist"}
    await one.services.rooms.join("consult:c-parties", icu, "specialist", sid_of(sockets["xanhpon.icu"]))

    await outbox.send(two.services, [Event("test:probe", {"n": 1}, To.parties(consult, also=[ids["bavi.nurse"]]))])

    got = await settle(two, {ids[name]: [sockets[name]] for name in names})
    assert {name: got[sockets[name]] for name in names} == {
        "bavi.clinician": [{"n": 1}],
        "xanhpon.surgeon": [{"n": 1}],
        "xanhpon.icu": [{"n": 1}],
        "bavi.nurse": [{"n": 1}],
        "tienyen.clinician": [],
    }


async def test_one_socket_gets_it_wherever_it_is(two_instances: tuple[Instance, Instance], clients: OpenClient) -> None:
    one, two = two_instances
    there = await clients(two, "xanhpon.surgeon")
    other = await clients(two, "xanhpon.surgeon")
    surgeon_id = await user_id(one, "xanhpon.surgeon")

    await outbox.send(one.services, [Event("test:probe", {"n": 1}, To.socket(sid_of(there)))])  # through Redis
    await outbox.send(two.services, [Event("test:probe", {"n": 2}, To.socket(sid_of(there)))])  # directly

    assert await there.next("test:probe") in ({"n": 1}, {"n": 2})
    assert await there.next("test:probe") in ({"n": 1}, {"n": 2})
    got = await settle(one, {surgeon_id: [there, other]})
    assert got == {there: [], other: []}


async def test_a_board_reaches_the_supervisors_of_its_scope_only(
    two_instances: tuple[Instance, Instance], clients: OpenClient
) -> None:
    one, two = two_instances
    hanoi = await clients(one, "soyte.supervisor", "/monitor")
    quangninh = await clients(two, "quangninh.supervisor", "/monitor")
    hanoi_main = await clients(two, "soyte.supervisor")  # the same supervisor, not on a board
    scope = hospital_scope(await load_account(one.services, await user_id(one, "soyte.supervisor")))
    other = hospital_scope(await load_account(one.services, await user_id(one, "quangninh.supervisor")))
    assert scope != other

    await outbox.send(two.services, [Event("monitor:update", {"probe": scope.key}, To.board(scope))])

    update = await hanoi.next("monitor:update")
    while update != {"probe": scope.key}:  # the periodic board may come first
        update = await hanoi.next("monitor:update")
    await outbox.send(two.services, [Event("monitor:update", {"probe": "marker"}, To.board(other))])
    while (update := await quangninh.next("monitor:update")) != {"probe": "marker"}:
        assert update != {"probe": scope.key}
    await asyncio.sleep(0.1)
    assert hanoi_main.queue("monitor:update").empty()


async def test_what_an_action_did_before_it_failed_is_still_sent_in_order(
    two_instances: tuple[Instance, Instance], clients: OpenClient
) -> None:
    """A consult accepted, then the next step failing: the events made before the failure go out
    (`outbox.sending`), in the order they were made, and the error is not swallowed."""
    one, _ = two_instances
    surgeon = await clients(one, "xanhpon.surgeon")
    surgeon_id = await user_id(one, "xanhpon.surgeon")

    with pytest.raises(RuntimeError, match="the database went away"):
        async with outbox.sending(one.services) as events:
            events.append(Event("test:probe", {"n": 1}, To.user(surgeon_id)))
            events.append(Event("test:probe", {"n": 2}, To.user(surgeon_id)))
            raise RuntimeError("the database went away")

    got = await settle(one, {surgeon_id: [surgeon]})
    assert got == {surgeon: [{"n": 1}, {"n": 2}]}


def test_events_are_checked_when_made() -> None:
    with pytest.raises(ValueError, match="group:what"):
        Event("peer-joined", {}, To.user("u"))
    with pytest.raises(ValueError, match="one socket"):
        Event("rtc:signal", {}, To.socket("s"), skip_sid="s")
    with pytest.raises(ValueError, match="not a call"):
        Call.of("monitor:network")
    call = Call.of("round:r1")
    assert call.pick("consult:peer-left", "round:peer-left") == "round:peer-left"
    assert call.ref_field() == {"round_id": "r1"}


# The manager delivers what the outbox sends: its `emit` override calls the stock one.
ALLOWED = {"server/outbox.py": r"sio\.emit\(", "signaling/redis_manager.py": r"super\(\)\.emit\("}


def test_only_the_outbox_emits() -> None:
    found = []
    for path in sorted([*(ROOT / "server").rglob("*.py"), *(ROOT / "signaling").rglob("*.py")]):
        name = path.relative_to(ROOT).as_posix()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if ".emit(" not in line:
                continue
            allowed = ALLOWED.get(name)
            if allowed is None or not re.search(allowed, line):
                found.append(f"{name}:{number}: {line.strip()}")
    assert found == [], "events leave through server/outbox.py only:\n" + "\n".join(found)


def test_every_event_sent_is_named_in_full_and_documented() -> None:
    """Each `Event(...)` is made with its name written out (or chosen by `Call.pick` between two
    written out), so a grep finds its sender; each of those names is in docs/protocol.md."""
    protocol = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    names: set[str] = set()
    unnamed = []
    for path in sorted([*(ROOT / "server").rglob("*.py"), *(ROOT / "signaling").rglob("*.py")]):
        text = path.read_text(encoding="utf-8")
        names.update(re.findall(r'Event\(\s*"([a-z]+:[a-z-]+)"', text))
        for pair in re.findall(r'\.pick\(\s*"([a-z]+:[a-z-]+)",\s*"([a-z]+:[a-z-]+)"\)', text):
            names.update(pair)
        for made in re.finditer(r"\bEvent\(\s*(\w+)", text):
            # A name held in a variable: it must have been chosen by `pick` just before.
            before = text[max(0, made.start() - 400) : made.start()]
            if not re.search(rf"{made.group(1)} = \w+\.pick\(", before):
                unnamed.append(f"{path.relative_to(ROOT)}: Event({made.group(1)}, ...)")
    assert unnamed == []
    assert "consult:peer-joined" in names and "monitor:update" in names
    assert [name for name in sorted(names) if f"`{name}`" not in protocol] == []
