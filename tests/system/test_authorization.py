"""The authorization matrix, generated from server/policy/permissions.py: every Socket.IO event and HTTP
route the service registers, tried as every role, on a consult of their own, of their hospital and
of another hospital, and as the supervisors of its province and of another province; what the
table allows must succeed (whatever the state says: not `forbidden`), what it refuses must be
`forbidden` (403). An event or route without a rule fails here.

One instance and one signed-in client per user serve the whole module (argon2 is slow on purpose);
each case that needs a consult gets a fresh one, so no case depends on another's order.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
import pytest_asyncio
import redis
import socketio
from aiohttp import web

from server.policy import permissions
from server.policy.permissions import ROLES, Rule
from server.records import consults
from server.records.models import Attachment, Consult, Recording, new_id, utcnow
from server.runtime.app import create_app
from server.runtime.redis_process import free_port
from server.runtime.services import connect
from server.runtime.settings import load_settings, normalize_database_url
from signaling import monitor
from signaling.server import ROUTERS
from tests.conftest import CONSENT, PASSWORD, SECRET, Client, Instance, add_user, login

pytestmark = pytest.mark.asyncio(loop_scope="module")

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


@dataclass(frozen=True)
class Situation:
    """A caller and what they are to the consult of the case."""

    role: str
    username: str
    label: str
    relations: frozenset[str]


# Per role, who calls: the consult of each case is asked by bavi.clinician (Ba Vì district
# general hospital) and accepted by xanhpon.surgeon; both are in its call.
SITUATIONS = [
    Situation(
        "clinician",
        "bavi.clinician",
        "requester",
        frozenset({"requester", "requesting_side", "party", "participant", "in_call"}),
    ),
    Situation("clinician", "bavi.colleague", "same-hospital", frozenset({"participant", "requesting_side"})),
    Situation("clinician", "bavi.nurse", "other-hospital", frozenset()),
    Situation("specialist", "xanhpon.surgeon", "accepted", frozenset({"party", "participant", "in_call", "chair"})),
    Situation("specialist", "xanhpon.icu", "other-specialist", frozenset()),
    # Ba Vì and Xanh Pôn are in Hà Nội: the Hà Nội Department of Health oversees the consult,
    # the Quảng Ninh one (a supervisor of another province) does not.
    Situation("supervisor", "soyte.supervisor", "same-province", frozenset({"in_scope"})),
    Situation("supervisor", "quangninh.supervisor", "other-province", frozenset()),
    Situation("admin", "admin", "admin", frozenset()),
]
USERNAMES = sorted({s.username for s in SITUATIONS} | {"xanhpon.obgyn", "victim"})
CONSULT_RELATIONS = {"participant", "party", "requester", "requesting_side", "in_call", "chair"}
# Round rules are checked here for their role gate only (a round that does not exist: allowed
# roles get `not_found`); who takes part in a round is tests/system/test_rounds.py's.
ROUND_RELATIONS = {"round_member", "round_lead", "round_team", "round_planner", "round_creator", "round_named_lead"}


def expected(rule: Rule, situation: Situation) -> bool:
    if rule.relation in ROUND_RELATIONS:
        return situation.role in rule.roles
    return permissions.permits(rule, situation.role, situation.relations)


def cases(table: dict[tuple[str, str], Rule], skip: set[str]) -> list[Any]:
    return [
        pytest.param(key, situation, id=f"{key[0]} {key[1]} as {situation.role} ({situation.label})")
        for key in table
        if key[1] not in skip
        for situation in SITUATIONS
    ]


@dataclass
class World:
    instance: Instance
    tokens: dict[str, str]
    ids: dict[str, str]
    clients: dict[str, Client] = field(default_factory=dict)

    @property
    def db(self) -> Any:
        return self.instance.services.db


async def launch(redis_url: str, database_url: str, var_dir: Path, **env: str) -> Instance:
    settings = load_settings(
        {
            "TELEROUNDS_VAR_DIR": str(var_dir),
            "REDIS_URL": redis_url,
            "DATABASE_URL": database_url,
            "SECRET_KEY": SECRET,
            "TELEROUNDS_DEMO_PASSWORD": PASSWORD,
            **env,
        }
    )
    services = connect(settings, redis_url)
    runner = web.AppRunner(create_app(services, redis_url), shutdown_timeout=2)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return Instance(services, runner, f"http://127.0.0.1:{port}")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(
    redis_server: str, seeded_sqlite: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    flush = redis.Redis.from_url(redis_server)
    flush.flushall()
    flush.close()
    folder = tmp_path_factory.mktemp("authorization")
    shutil.copy(seeded_sqlite, folder / "telerounds.db")
    database_url = normalize_database_url(f"sqlite:///{folder / 'telerounds.db'}")
    await add_user(database_url, "bavi.colleague", "clinician", "bavi-dgh")
    await add_user(database_url, "victim", "clinician", "tyt-batrai")  # what the admin cases act on
    # Rate limits are security.py's business; here every case must reach its handler.
    instance = await launch(redis_server, database_url, folder / "var", RATE_EVENTS_BURST="1000000")
    tokens = {username: await login(instance.url, username) for username in USERNAMES}
    ids = {u: str(jwt.decode(t, options={"verify_signature": False})["sub"]) for u, t in tokens.items()}
    world = World(instance, tokens, ids)
    for situation in SITUATIONS:
        client = Client()
        await client.connect(instance.url, tokens[situation.username])
        world.clients[situation.username] = client
    yield world
    for client in world.clients.values():
        await client.close()
    await instance.stop()


async def fresh_consult(world: World) -> Consult:
    """An active consult: asked by bavi.clinician, accepted by xanhpon.surgeon."""
    created, _ = await consults.create(
        world.db,
        op_id=uuid.uuid4().hex,
        requester_id=world.ids["bavi.clinician"],
        hospital_id="bavi-dgh",
        specialty="surgery",
        urgency="routine",
        patient={"ref": "AUTH-1", "summary": ""},
        named_specialist_id=None,
    )
    surgeon = world.ids["xanhpon.surgeon"]
    active = await consults.transition(
        world.db, created, "accepted", surgeon, status="active", specialist_id=surgeon, started_at=utcnow()
    )
    assert active is not None
    return active


async def in_call(world: World, consult: Consult) -> None:
    """The requester and the specialist join the consult's call."""
    for username in ("bavi.clinician", "xanhpon.surgeon"):
        ack = await world.clients[username].call("consult:join", {"consult_id": consult.id})
        assert ack["ok"], ack


def event_payload(event: str, consult_id: str, world: World) -> dict[str, Any]:
    ref = {"consult_id": consult_id}
    payloads: dict[str, dict[str, Any]] = {
        "presence:set": {"status": "away"},
        # Dialysis: nobody of that specialty is online, so the request waits and offers nobody.
        "consult:request": {
            "op_id": uuid.uuid4().hex,
            "specialty": "dialysis",
            "urgency": "routine",
            "patient": {"ref": "AUTH-2"},
            "consent": CONSENT,
        },
        "consult:consent": {**ref, "op_id": uuid.uuid4().hex, **CONSENT},
        "consult:cancel": ref,
        "consult:widen": ref,
        "consult:accept": ref,
        "consult:decline": ref,
        "consult:end": {**ref, "outcome": "follow_up"},
        "consult:result": {**ref, "op_id": uuid.uuid4().hex, "result": "improving"},
        "consult:join": ref,
        "consult:leave": ref,
        "consult:invite": {**ref, "user_id": world.ids["xanhpon.obgyn"]},
        "consult:uninvite": {**ref, "user_id": world.ids["xanhpon.obgyn"]},
        "rtc:signal": {**ref, "to": "no-such-peer", "data": {"type": "offer", "sdp": "v=0"}},
        "rtc:stats": {**ref, "rtt_ms": 40.0},
        "note:add": {**ref, "op_id": uuid.uuid4().hex, "section": "plan", "text": "Theo dõi"},
        "note:amend": {**ref, "op_id": uuid.uuid4().hex, "note_id": "no-such-note", "text": "Sửa"},
        "note:list": ref,
        "round:join": {"round_id": "no-such-round"},
        "round:notes": {"round_id": "no-such-round", "cursor": "no-such-consult:0"},
        "round:leave": {"round_id": "no-such-round"},
        "round:focus": {"round_id": "no-such-round", "patient_id": "no-such-patient"},
        "round:end": {"round_id": "no-such-round"},
        "recording:start": ref,
        "recording:stop": ref,
    }
    assert event in payloads, f"tests/system/test_authorization.py needs a payload for {event}"
    return payloads[event]


# Connecting is tried in test_connecting_follows_the_table.
EVENT_CASES = cases(permissions.EVENTS, skip={"connect"})


@pytest.mark.parametrize(("key", "situation"), EVENT_CASES)
async def test_every_event_follows_the_table(world: World, key: tuple[str, str], situation: Situation) -> None:
    namespace, event = key
    rule = permissions.EVENTS[key]
    consult = await fresh_consult(world)
    if rule.relation == "in_call":
        await in_call(world, consult)
    client = world.clients[situation.username]
    ack = await client.call(event, event_payload(event, consult.id, world), namespace=namespace)
    error = None if ack["ok"] else ack["error"]["code"]
    if expected(rule, situation):
        assert error not in ("forbidden", "unauthorized"), ack
    else:
        assert error == "forbidden", ack


@pytest.mark.parametrize("namespace", ["/", "/monitor"])
@pytest.mark.parametrize("role", ROLES)
async def test_connecting_follows_the_table(world: World, namespace: str, role: str) -> None:
    situation = next(s for s in SITUATIONS if s.role == role)
    client = Client()
    refused: list[Any] = []
    client.sio.on("connect_error", refused.append, namespace=namespace)
    try:
        await client.connect(world.instance.url, world.tokens[situation.username], namespace)
    except socketio.exceptions.ConnectionError:
        pass
    allowed = permissions.permits(permissions.event_rule(namespace, "connect"), role, frozenset())
    if allowed:
        assert client.sio.connected and not refused
        await client.close()
    else:
        assert not client.sio.connected
        # The browser's socket.io-client reads it as `error.data.code`.
        assert refused and refused[0]["data"]["code"] == "forbidden", refused


async def test_every_registered_event_has_a_rule_and_every_rule_an_event() -> None:
    registered = {(router.namespace, event) for router in [*ROUTERS, monitor.router] for event in router.handlers}
    registered |= {("/", "connect"), (monitor.NAMESPACE, "connect")}
    missing = sorted(registered - set(permissions.EVENTS))
    assert not missing, f"events without a rule in server/policy/permissions.py: {missing}"
    stale = sorted(set(permissions.EVENTS) - registered)
    assert not stale, f"rules for events nobody handles: {stale}"
    assert permissions.event_rule("/", "consult:teleport").roles == frozenset()  # unknown: nobody


async def test_every_registered_route_has_a_rule_and_every_rule_a_route(world: World) -> None:
    app = world.instance.runner.app
    assert app is not None
    registered = {
        ("GET" if route.method == "HEAD" else route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
    }
    missing = sorted(registered - set(permissions.ROUTES))
    assert not missing, f"routes without a rule in server/policy/permissions.py: {missing}"
    stale = sorted(set(permissions.ROUTES) - registered)
    assert not stale, f"rules for routes that do not exist: {stale}"


async def _one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def add_attachment(world: World, consult: Consult) -> str:
    item = Attachment(
        id=new_id(),
        consult_id=consult.id,
        filename="phim.png",
        content_type="image/png",
        size=len(PNG),
        sha256=(await world.instance.services.blobs.put(_one_chunk(PNG), len(PNG)))[0],
        uploader_id=world.ids["bavi.clinician"],
        created_at=utcnow(),
    )
    async with world.db.session() as session, session.begin():
        session.add(item)
    return item.id


async def add_recording(world: World, consult: Consult) -> str:
    """A finished recording of the consult's call (its file: a few bytes, enough to be served)."""
    sha256, size = await world.instance.services.blobs.put(_one_chunk(b"\x1aE\xdf\xa3webm"), 64)
    item = Recording(
        id=new_id(),
        consult_id=consult.id,
        segment=1,
        state="stopped",
        started_at=utcnow(),
        stopped_at=utcnow(),
        started_by=world.ids["xanhpon.surgeon"],
        duration_s=1.0,
        bytes=size,
        sha256=sha256,
        retain_until=utcnow() + timedelta(days=3650),
        legal_hold=False,
    )
    async with world.db.session() as session, session.begin():
        session.add(item)
    return item.id


async def route_request(world: World, method: str, path: str, token: str) -> tuple[str, dict[str, Any]]:
    """A concrete URL and body for a route: real ids where the relation matters, harmless ones elsewhere."""
    values = {
        "hospital_id": "tyt-batrai",
        "upper_id": "qn-dkt",
        "lower_id": "bavi-dgh",  # not linked: 404 for an admin
        "user_id": world.ids["victim"],
        "round_id": "no-such-round",
        "patient_id": "no-such-patient",
    }
    if "{consult_id}" in path:
        consult = await fresh_consult(world)
        values["consult_id"] = consult.id
        if "{attachment_id}" in path:
            values["attachment_id"] = await add_attachment(world, consult)
    if "{recording_id}" in path:
        values["recording_id"] = await add_recording(world, await fresh_consult(world))
    url = path.format(**values)
    if path == "/static":
        url = "/static/app.js"
    elif path == "/api/rounds.ics":
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
            async with http.post(f"{world.instance.url}/api/rounds/calendar") as resp:
                url = (await resp.json())["url"].split(world.instance.url.split("//")[1], 1)[1]
    bodies: dict[str, Any] = {
        "/api/admin/users/{user_id}": {"name": "Victim"},
        "/api/admin/users/{user_id}/password": {"password": "a-new-password-1"},
        "/api/admin/hospitals/{hospital_id}": {"province": "hanoi", "province_name": "Hà Nội"},
    }
    kwargs: dict[str, Any] = {}
    if method in ("POST", "PUT", "PATCH") and not path.endswith(("/deactivate", "/activate")):
        kwargs["json"] = bodies.get(path, {})
    return url, kwargs


ROUTE_CASES = cases(permissions.ROUTES, skip=set())


@pytest.mark.parametrize(("key", "situation"), ROUTE_CASES)
async def test_every_route_follows_the_table(world: World, key: tuple[str, str], situation: Situation) -> None:
    method, path = key
    rule = permissions.ROUTES[key]
    token = world.tokens[situation.username]
    if key == ("POST", "/api/logout"):
        token = await login(world.instance.url, situation.username)  # signing out ends it: not the shared one
    url, kwargs = await route_request(world, method, path, token)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        async with http.request(method, world.instance.url + url, **kwargs) as resp:
            status = resp.status
            body = await resp.read()
    if expected(rule, situation):
        assert status not in (401, 403), (status, body[:300])
    else:
        assert status == 403, (status, body[:300])
        assert b'"forbidden"' in body


NON_PUBLIC = [key for key, rule in permissions.ROUTES.items() if rule.relation != "public"]


@pytest.mark.parametrize("key", NON_PUBLIC, ids=[f"{m} {p}" for m, p in NON_PUBLIC])
async def test_every_route_but_the_public_ones_wants_a_token(world: World, key: tuple[str, str]) -> None:
    method, path = key
    url, kwargs = await route_request(world, method, path, world.tokens["admin"])
    async with aiohttp.ClientSession() as http:
        async with http.request(method, world.instance.url + url, **kwargs) as resp:
            assert resp.status == 401
            assert (await resp.json())["error"]["code"] == "unauthorized"
