"""Attacks on a real instance: forged tokens, cross-site sockets, oversized frames, event floods,
password guessing, path traversal, dates far from today; and the security headers on every kind
of response. The denial-of-service cases also hold the event loop's bound (`loop_held_under`)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
import warnings
from datetime import UTC, datetime
from typing import Any

import aiohttp
import jwt
import pytest
import socketio
from yarl import URL

from server.actions import rounds
from server.live import ratelimit
from server.policy.auth import AUDIENCE, ISSUER, issue_token
from server.records.models import Round
from tests.conftest import CONSENT, PASSWORD, SECRET, Client, Instance, StartInstance, login, loop_held_under
from tests.system.test_fuzz import logged_errors
from tests.system.test_record import PNG
from tests.system.test_rtc import active_consult

# --- Tokens -------------------------------------------------------------------------------------


def unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part(header)}.{part(claims)}."


def forged(user_id: str) -> dict[str, str]:
    """Tokens for a real user that must not be accepted, each wrong in one way."""
    now = int(time.time())
    claims = {"sub": user_id, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600}
    with warnings.catch_warnings():  # PyJWT warns that the key is short for HS512: that is the point
        warnings.simplefilter("ignore")
        other_algorithm = jwt.encode(claims, SECRET, algorithm="HS512")
    return {
        "alg none": jwt.encode(claims, None, algorithm="none"),
        "alg NONE": unsigned({"alg": "NONE", "typ": "JWT"}, claims),
        "wrong key": jwt.encode(claims, "another-secret-of-sufficient-length", algorithm="HS256"),
        "right key, other algorithm": other_algorithm,
        "expired": issue_token(SECRET, user_id, ttl_s=60, now=now - 3600),
        "wrong audience": jwt.encode({**claims, "aud": "elsewhere"}, SECRET, algorithm="HS256"),
        "wrong issuer": jwt.encode({**claims, "iss": "someone-else"}, SECRET, algorithm="HS256"),
        "no expiry": jwt.encode({k: v for k, v in claims.items() if k != "exp"}, SECRET, algorithm="HS256"),
        "signature cut off": issue_token(SECRET, user_id, ttl_s=600).rsplit(".", 1)[0] + ".",
    }


FORGERIES = list(forged("x"))


async def user_id_of(instance: Instance, username: str) -> str:
    token = await login(instance.url, username)
    return str(jwt.decode(token, options={"verify_signature": False})["sub"])


@pytest.mark.parametrize("kind", FORGERIES)
async def test_forged_tokens_are_refused_at_connect_and_over_http(instance: Instance, kind: str) -> None:
    token = forged(await user_id_of(instance, "bavi.clinician"))[kind]
    client = Client()
    refused: list[Any] = []
    client.sio.on("connect_error", refused.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(instance.url, token)
    assert refused[0]["data"]["code"] == "unauthorized"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{instance.url}/api/me", headers={"Authorization": f"Bearer {token}"}) as resp:
            assert resp.status == 401
            assert (await resp.json())["error"]["code"] == "unauthorized"


# --- Origins ------------------------------------------------------------------------------------


async def connect_with(instance: Instance, token: str, transport: str, origin: str | None) -> socketio.AsyncClient:
    sio = socketio.AsyncClient(reconnection=False)
    headers = {"Origin": origin} if origin is not None else {}
    try:
        await sio.connect(instance.url, auth={"token": token}, transports=[transport], headers=headers, wait_timeout=5)
    except socketio.exceptions.ConnectionError:
        await sio.eio.disconnect(abort=True)
        raise
    return sio


async def hang_up(sio: socketio.AsyncClient) -> None:
    # Without waiting for the last long-poll to come back (up to the ping interval, 25 s).
    await sio.eio.disconnect(abort=True)


@pytest.mark.parametrize("transport", ["websocket", "polling"])
@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1.evil.example"])
async def test_a_foreign_origin_is_refused_on_both_transports(instance: Instance, transport: str, origin: str) -> None:
    token = await login(instance.url, "bavi.clinician")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await connect_with(instance, token, transport, origin)


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_the_same_origin_and_no_origin_are_accepted(instance: Instance, transport: str) -> None:
    """A browser always sends Origin with a WebSocket and a cross-site request; a script sends
    none and still needs a token: nothing rides on cookies, so there is nothing to forge."""
    token = await login(instance.url, "bavi.clinician")
    for origin in (instance.url, None):
        sio = await connect_with(instance, token, transport, origin)
        assert sio.connected
        ack = await sio.call("presence:set", {"status": "available"}, timeout=5)
        assert ack["ok"], ack
        await hang_up(sio)


async def test_allowed_origins_admits_the_named_site_only(start_instance: StartInstance) -> None:
    instance = await start_instance(ALLOWED_ORIGINS="https://telerounds.benhvien.vn")
    token = await login(instance.url, "bavi.clinician")
    sio = await connect_with(instance, token, "websocket", "https://telerounds.benhvien.vn")
    await sio.disconnect()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await connect_with(instance, token, "websocket", "https://evil.example")


# --- Oversized messages -------------------------------------------------------------------------


async def test_an_oversized_frame_closes_that_socket_and_the_server_carries_on(instance: Instance, clients) -> None:
    flooder = await clients(instance, "bavi.clinician")
    gone = asyncio.Event()
    flooder.sio.on("disconnect", gone.set)
    async with loop_held_under():
        await flooder.sio.emit("note:add", {"consult_id": "x", "op_id": "x", "section": "plan", "text": "x" * 300_000})
        await asyncio.wait_for(gone.wait(), 10)
    # Everyone else, and the same user reconnecting, carry on.
    other = await clients(instance, "xanhpon.surgeon")
    assert (await other.call("presence:set", {"status": "available"}))["ok"]
    again = await clients(instance, "bavi.clinician")
    assert (await again.call("presence:set", {"status": "away"}))["ok"]


async def test_an_oversized_polling_request_is_refused_and_the_server_carries_on(instance: Instance) -> None:
    token = await login(instance.url, "bavi.clinician")
    sio = await connect_with(instance, token, "polling", None)
    gone = asyncio.Event()
    sio.on("disconnect", gone.set)
    async with loop_held_under():
        await sio.emit("note:add", {"consult_id": "x", "op_id": "x", "section": "plan", "text": "x" * 300_000})
        await asyncio.wait_for(gone.wait(), 10)  # the POST is refused and the session ends
    await hang_up(sio)
    again = await connect_with(instance, token, "polling", None)
    assert (await again.call("presence:set", {"status": "away"}, timeout=5))["ok"]
    await hang_up(again)


async def test_a_note_over_its_limit_is_too_large_and_the_socket_stays(instance: Instance, clients) -> None:
    clinician, _surgeon, consult = await active_consult(clients, instance, instance)
    payload = {"consult_id": consult["id"], "op_id": "big", "section": "plan", "text": "x" * 30_000}
    ack = await clinician.call("note:add", payload)
    assert ack["error"]["code"] == "too_large"
    assert (await clinician.call("presence:set", {"status": "away"}))["ok"]


# --- Event floods -------------------------------------------------------------------------------


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The rate limits' clock, held still; a test moves it by changing `clock[0]`."""
    clock = [float(int(time.time()))]  # whole seconds: moving it by 20 is exactly 20
    monkeypatch.setattr(ratelimit, "clock", lambda: clock[0])
    return clock


async def test_a_flooding_clinician_is_rate_limited_on_every_instance_and_nobody_else_is(
    start_instance: StartInstance, clients, frozen_clock: list[float]
) -> None:
    limits = {"RATE_EVENTS_BURST": "5", "RATE_EVENTS_PER_S": "1"}
    a, b = await start_instance(**limits), await start_instance(**limits)
    clinician = await clients(a, "bavi.clinician")
    second_device = await clients(b, "bavi.clinician")
    surgeon = await clients(a, "xanhpon.surgeon")
    async with loop_held_under():
        acks = [await clinician.call("presence:set", {"status": "away"}) for _ in range(8)]
    assert [ack["ok"] for ack in acks] == [True] * 5 + [False] * 3
    assert acks[-1]["error"]["code"] == "rate_limited"
    assert "try again in 1 s" in acks[-1]["error"]["message"]
    assert acks[-1]["error"]["retry_after_s"] == 1  # a number the client waits, no message to parse
    # The bucket is the user's, in Redis: their other device on the other instance is limited too.
    assert (await second_device.call("presence:set", {"status": "away"}))["error"]["code"] == "rate_limited"
    # Another user is not affected.
    for _ in range(5):
        assert (await surgeon.call("presence:set", {"status": "available"}))["ok"]
    # A second later two more tokens are there, and no more.
    frozen_clock[0] += 2
    again = [(await clinician.call("presence:set", {"status": "away"}))["ok"] for _ in range(3)]
    assert again == [True, True, False]


async def test_refusals_come_in_order_and_refused_events_use_the_budget_too(
    start_instance: StartInstance, clients, frozen_clock: list[float]
) -> None:
    instance = await start_instance(RATE_EVENTS_BURST="3", RATE_EVENTS_PER_S="1")
    clinician = await clients(instance, "bavi.clinician")
    both_rooms = {"consult_id": "c", "round_id": "r", "to": "p", "data": {"candidate": {"candidate": ""}}}
    # Within the budget: the role gate, then the payload (also the room a signal names).
    assert (await clinician.call("consult:accept", {"nonsense": 1}))["error"]["code"] == "forbidden"
    assert (await clinician.call("rtc:signal", both_rooms))["error"]["code"] == "invalid"
    assert (await clinician.call("presence:set", {"status": "away"}))["ok"] is True
    # The two refusals took tokens: the budget is spent, and the limit comes before anything else.
    for event, data in [("consult:accept", {"nonsense": 1}), ("rtc:signal", both_rooms), ("presence:set", {})]:
        assert (await clinician.call(event, data))["error"]["code"] == "rate_limited", event


# --- Password guessing --------------------------------------------------------------------------


async def attempt(instance: Instance, username: str, password: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http:
        body = {"username": username, "password": password}
        async with http.post(f"{instance.url}/api/login", json=body) as resp:
            return resp.status, await resp.json()


async def test_guessing_one_password_is_throttled_and_the_owner_gets_in_after_the_window(
    start_instance: StartInstance, frozen_clock: list[float]
) -> None:
    instance = await start_instance(LOGIN_ATTEMPTS_PER_MINUTE="3")
    async with loop_held_under():  # password hashing runs beside the loop, not on it
        statuses = [(await attempt(instance, "xanhpon.icu", f"guess-{n}"))[0] for n in range(3)]
    assert statuses == [401, 401, 401]
    status, body = await attempt(instance, "xanhpon.icu", PASSWORD)  # even the right one waits
    assert status == 429 and body["error"]["code"] == "rate_limited"
    assert body["error"]["message"] == "too many sign-in attempts for this username; try again in 20 s"
    # Another account from the same address is not locked by it.
    assert (await attempt(instance, "xanhpon.obgyn", PASSWORD))[0] == 200
    frozen_clock[0] += 20  # one attempt back (3 a minute)
    assert (await attempt(instance, "xanhpon.icu", PASSWORD))[0] == 200


async def test_guessing_many_accounts_from_one_address_is_throttled(
    start_instance: StartInstance, frozen_clock: list[float]
) -> None:
    instance = await start_instance(LOGIN_ADDRESS_ATTEMPTS_PER_MINUTE="4")
    statuses = [(await attempt(instance, f"guess{n}", "wrong"))[0] for n in range(4)]
    assert statuses == [401] * 4
    status, body = await attempt(instance, "bavi.nurse", PASSWORD)
    assert status == 429 and "from this address" in body["error"]["message"]
    frozen_clock[0] += 60
    assert (await attempt(instance, "bavi.nurse", PASSWORD))[0] == 200


async def test_signing_in_successfully_does_not_use_up_the_attempts(
    start_instance: StartInstance, frozen_clock: list[float]
) -> None:
    instance = await start_instance(LOGIN_ATTEMPTS_PER_MINUTE="2", LOGIN_ADDRESS_ATTEMPTS_PER_MINUTE="2")
    for _ in range(6):  # a whole ward signing in from one address, or one user on many devices
        assert (await attempt(instance, "bavi.clinician", PASSWORD))[0] == 200


# --- Path traversal -----------------------------------------------------------------------------

TRAVERSALS = [
    "..",
    "../../../../etc/passwd",
    "..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "%2e%2e%2f%2e%2e%2fsecret_key",
    "..\\..\\secret_key",
    "%252e%252e%252fsecret_key",
    "/etc/passwd",
    "secret_key%00.png",
]


async def test_attachment_paths_never_leave_the_attachment_folder(instance: Instance, clients) -> None:
    _clinician, _surgeon, consult = await active_consult(clients, instance, instance)
    cid = consult["id"]
    var_dir = instance.services.settings.var_dir
    var_dir.mkdir(parents=True, exist_ok=True)
    secret = (var_dir / "secret.txt").resolve()
    secret.write_text("BÍ MẬT")
    token = await login(instance.url, "bavi.clinician")
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        # An upload whose name climbs out: stored under a generated id, the name only cleaned up.
        form = aiohttp.FormData()
        form.add_field("file", PNG, filename="../../../../tmp/evil.png", content_type="image/png")
        async with http.post(f"{instance.url}/api/consults/{cid}/attachments", data=form) as resp:
            assert resp.status == 201
            stored = (await resp.json())["attachment"]
        assert "/" not in stored["filename"] and "\\" not in stored["filename"]  # a name, never a path
        files = [p.resolve() for p in var_dir.rglob("*") if p.is_file()]
        # Stored once, named by its content's SHA-256 in the blob store (under var/ by default).
        blob = instance.services.blobs.path_of(stored["sha256"]).resolve()
        assert [p for p in files if p.read_bytes() == PNG] == [blob]
        for bad in TRAVERSALS:
            for path in (
                f"/api/consults/{cid}/attachments/{bad}",
                f"/api/consults/{bad}/attachments/{stored['id']}",
                f"/api/consults/{cid}/attachments/{stored['id']}/{bad}",
                f"/static/{bad}",
                f"/static/{bad.replace('secret_key', 'server/runtime/settings.py')}",
            ):
                # As sent, not normalized by the client: the server sees the dots.
                async with http.get(URL(f"{instance.url}{path}", encoded=True)) as resp:
                    body = await resp.read()
                    assert 400 <= resp.status < 500, (path, resp.status)
                    assert "BÍ MẬT".encode() not in body and b"root:" not in body and b"SECRET_KEY" not in body


# --- Security headers ---------------------------------------------------------------------------


async def test_every_kind_of_response_carries_the_security_headers(instance: Instance, clients) -> None:
    _clinician, _surgeon, consult = await active_consult(clients, instance, instance)
    token = await login(instance.url, "bavi.clinician")
    signed = {"Authorization": f"Bearer {token}"}
    requests = [
        ("GET", "/", {}),  # the app (HTML)
        ("GET", "/static/app.js", {}),
        ("GET", "/api/specialties", {}),  # JSON
        ("GET", "/api/me", signed),
        ("GET", "/api/me", {}),  # 401 JSON
        ("GET", "/api/admin/users", signed),  # 403 JSON
        ("GET", "/api/nothing-here", {}),  # 404
        ("POST", "/api/login", {}),  # 400
        ("GET", f"/api/consults/{consult['id']}/minutes", signed),  # a printable page with its own policy
        ("GET", "/healthz", {}),
        ("GET", "/metrics", {}),
    ]
    async with aiohttp.ClientSession() as http:
        for method, path, headers in requests:
            async with http.request(method, f"{instance.url}{path}", headers=headers) as resp:
                where = f"{method} {path} ({resp.status})"
                assert resp.headers.get("X-Content-Type-Options") == "nosniff", where
                assert resp.headers.get("X-Frame-Options") == "DENY", where
                assert resp.headers.get("Referrer-Policy") == "no-referrer", where
                csp = resp.headers.get("Content-Security-Policy", "")
                assert "frame-ancestors 'none'" in csp, where
                if resp.content_type == "text/html":
                    assert "script-src 'unsafe-inline'" not in csp and "default-src" in csp, where
                else:
                    assert resp.headers.get("Access-Control-Allow-Origin") is None, where
    # A revalidated page keeps its own policy: a 304 brings none that would replace it.
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{instance.url}/") as resp:
            etag = resp.headers["ETag"]
        async with http.get(f"{instance.url}/", headers={"If-None-Match": etag}) as resp:
            assert resp.status == 304
            assert "Content-Security-Policy" not in resp.headers
    html_pages = {"/": "script-src 'self'", f"/api/consults/{consult['id']}/minutes": "default-src 'none'"}
    async with aiohttp.ClientSession(headers=signed) as http:
        for path, policy in html_pages.items():
            async with http.get(f"{instance.url}{path}") as resp:
                assert policy in resp.headers["Content-Security-Policy"], path


async def test_the_api_does_not_answer_other_sites(instance: Instance) -> None:
    """No CORS headers: another site's page cannot read an answer, even with a stolen token."""
    token = await login(instance.url, "bavi.clinician")
    headers = {"Authorization": f"Bearer {token}", "Origin": "http://evil.example"}
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{instance.url}/api/me", headers=headers) as resp:
            assert "Access-Control-Allow-Origin" not in resp.headers
        preflight = {"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"}
        async with http.options(f"{instance.url}/api/login", headers=preflight) as resp:
            assert "Access-Control-Allow-Origin" not in resp.headers
        async with http.get(f"{instance.url}/socket.io/?EIO=4&transport=polling&t={uuid.uuid4().hex}",
                            headers={"Origin": "http://evil.example"}) as resp:  # fmt: skip
            assert resp.status == 400
            assert "Access-Control-Allow-Origin" not in resp.headers


# --- Bounded work: dates far from today -----------------------------------------------------------


async def signed(instance: Instance, token: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bearer {token}"}
        async with http.request(method, instance.url + path, json=body, headers=headers) as resp:
            return resp.status, await resp.json()


async def bystander(client: Client, stop: asyncio.Event, waits: list[float]) -> None:
    """Another user of the instance, asking something every 20 ms: how long each answer took."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        started = loop.time()
        ack = await client.call("presence:set", {"status": "available"})
        assert ack["ok"], ack
        waits.append(loop.time() - started)
        await asyncio.sleep(0.02)


async def test_a_year_one_round_and_a_far_window_do_not_hold_the_loop(start_instance: StartInstance, clients) -> None:
    """Occurrences were walked day by day from a round's first day: `?from=9999-12-29` held the
    loop 14 s, and a daily round from year 1 more than a second on every list, read and clock tick.
    Now dates outside 2000..2100 are refused, a round already stored with one (from before the
    bound) is answered by arithmetic, and another user is served all along."""
    instance = await start_instance(RATE_EVENTS_BURST="100000", RATE_EVENTS_PER_S="100000")
    clinician, supervisor = await login(instance.url, "bavi.clinician"), await login(instance.url, "soyte.supervisor")
    lead_id = await user_id_of(instance, "xanhpon.icu")
    clinician_id = await user_id_of(instance, "bavi.clinician")
    ancient = Round(
        title="Stored before dates were bounded",
        hospital_id="bavi-dgh",
        ward="Khoa Nội",
        starts_at=datetime(1, 1, 2, 2, tzinfo=UTC),  # 09:00 in Vietnam, daily since year 1
        duration_min=30,
        recurrence="daily",
        until=None,
        skipped=[],
        lead_specialist_id=lead_id,
        participant_ids=[],
        created_by=clinician_id,
        version=1,
    )
    async with instance.services.db.session() as session, session.begin():
        session.add(ancient)
    other = await clients(instance, "xanhpon.surgeon")
    stop, waits = asyncio.Event(), []
    served = asyncio.create_task(bystander(other, stop, waits))
    new_round = {
        "title": "Giao ban",
        "hospital_id": "bavi-dgh",
        "ward": "Khoa Nội",
        "duration_min": 30,
        "recurrence": "daily",
        "lead_specialist_id": lead_id,
    }
    async with loop_held_under():
        for starts_at, until in [
            ("0001-01-01T02:00:00+00:00", None),
            ("9999-12-31T02:00:00+00:00", None),
            ("1999-12-31T02:00:00+00:00", None),
            ("2025-03-03T02:00:00+00:00", "9999-12-31"),
            ("2025-03-03T02:00:00+00:00", "2101-01-01"),
        ]:
            status, body = await signed(
                instance, clinician, "POST", "/api/rounds", {**new_round, "starts_at": starts_at, "until": until}
            )
            assert status == 400 and body["error"]["code"] == "invalid", (starts_at, until, body)
            assert "between 2000-01-01 and 2100-12-31" in body["error"]["message"]
        status, body = await signed(
            instance, clinician, "POST", "/api/rounds", {**new_round, "starts_at": "2000-01-01T02:00:00+00:00"}
        )
        assert status == 201, body
        for window in [
            "from=9999-12-29&to=9999-12-31",
            "from=0001-01-01&to=0001-03-01",
            "from=2100-12-01&to=2101-02-01",
        ]:
            status, body = await signed(instance, clinician, "GET", f"/api/rounds?{window}")
            assert status == 400 and body["error"]["code"] == "invalid", (window, body)
        status, body = await signed(instance, clinician, "GET", "/api/rounds?from=2100-10-01&to=2100-12-31")
        assert status == 200, body
        found = {r["id"]: r for r in body["rounds"]}
        assert len(found[ancient.id]["occurrences"]) == 91  # the last, on 31 December, starts after `to`
        assert found[ancient.id]["occurrences"][0] == "2100-10-01T02:00:00+00:00"
        status, body = await signed(instance, clinician, "GET", "/api/rounds")  # this week
        assert status == 200 and len({r["id"]: r for r in body["rounds"]}[ancient.id]["occurrences"]) == 7
        status, body = await signed(instance, clinician, "GET", f"/api/rounds/{ancient.id}")
        assert status == 200 and body["round"]["next_starts_at"] is not None
        path = f"/api/rounds/{ancient.id}/cancel"
        for day in ("9999-12-31", "0001-01-01", "1999-12-31"):
            status, body = await signed(instance, clinician, "POST", path, {"day": day})
            assert status == 400 and body["error"]["code"] == "invalid", (day, body)
        status, body = await signed(instance, clinician, "POST", path, {"day": "2100-12-31"})
        assert status == 200 and body["round"]["skipped"] == ["2100-12-31"]
        for query in ("from=2000-01-01&to=2100-12-31", "from=2024-01-01&to=2025-01-03", "from=0001-01-01"):
            status, body = await signed(instance, supervisor, "GET", f"/api/stats?{query}")
            assert status == 400 and body["error"]["code"] == "invalid", (query, body)
        assert (await signed(instance, supervisor, "GET", "/api/stats?from=2024-01-01&to=2024-12-31"))[0] == 200
        # A connect lists today's rounds; the clock of every instance looks for rounds starting now.
        again = await clients(instance, "bavi.clinician")
        state = await again.next("session:state")
        assert ancient.id in {r["round"]["id"] for r in state["rounds"]}
        await rounds.announce_starting(instance.services, datetime.now(UTC))
    stop.set()
    await served
    assert len(waits) >= 5 and max(waits) < 1.0, waits


# --- Messages that cannot be decoded -------------------------------------------------------------

DEEP = 5_000  # 10 KB of brackets: under the message size limit, past Python's recursion limit


async def raw_socket(http: aiohttp.ClientSession, instance: Instance) -> aiohttp.ClientWebSocketResponse:
    """An Engine.IO WebSocket, as a client that writes its own frames would open it."""
    ws = await http.ws_connect(f"{instance.url}/socket.io/?EIO=4&transport=websocket")
    opened = await ws.receive_str()
    assert opened.startswith("0{"), opened
    return ws


async def closed_by_server(ws: aiohttp.ClientWebSocketResponse) -> bool:
    """Whether the server ends the socket within a few seconds (Engine.IO close, or the socket)."""
    try:
        while True:
            message = await asyncio.wait_for(ws.receive(), 5)
            if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                return True
            if message.type == aiohttp.WSMsgType.TEXT and message.data == "1":  # Engine.IO close
                return True
    except TimeoutError:
        return False


async def test_deeply_nested_or_broken_json_gets_an_error_ack_or_a_closed_socket(instance: Instance, clients) -> None:
    token = await login(instance.url, "bavi.clinician")
    bystander = await clients(instance, "xanhpon.surgeon")
    nested = "[" * DEEP + "]" * DEEP
    with logged_errors() as errors:
        async with aiohttp.ClientSession() as http, loop_held_under():
            # Before sign-in: in the connect's auth, and an event on a namespace not joined.
            for frame in ("40" + nested, '40{"token":' + nested + "}", '42["presence:set",' + nested + "]", "40{"):
                ws = await raw_socket(http, instance)
                await ws.send_str(frame)
                assert await closed_by_server(ws), frame[:40]
                await ws.close()
            # Signed in: an event asking for an ack gets the contract's error ack and the socket stays.
            ws = await raw_socket(http, instance)
            await ws.send_str("40" + json.dumps({"token": token}))
            assert (await ws.receive_str()).startswith("40{")
            for ack_id, frame in [(7, f'427["presence:set",{nested}]'), (8, '428["presence:set",{"status":')]:
                await ws.send_str(frame)
                while not (answer := await asyncio.wait_for(ws.receive_str(), 5)).startswith(f"43{ack_id}"):
                    pass  # session:state and other pushes
                ack = json.loads(answer[len(f"43{ack_id}") :])[0]
                assert ack["ok"] is False and ack["error"]["code"] == "invalid", ack
            await ws.send_str('429["presence:set",{"status":"away"}]')
            while not (answer := await asyncio.wait_for(ws.receive_str(), 5)).startswith("439"):
                pass
            assert json.loads(answer[3:])[0]["ok"] is True
            # Without an ack id there is no one to answer: the socket is closed.
            await ws.send_str(f'42["presence:set",{nested}]')
            assert await closed_by_server(ws)
            await ws.close()
            # Everyone else carries on.
            assert (await bystander.call("presence:set", {"status": "available"}))["ok"]
    assert not errors.records, errors.describe()


# --- NUL characters ------------------------------------------------------------------------------


async def test_a_nul_character_in_any_text_is_invalid_on_every_database(
    start_instance: StartInstance, clients, any_database_url: str
) -> None:
    """PostgreSQL cannot store NUL in text (SQLite can): an id or a field holding one failed in the
    database on one of them. It is `invalid` on both, over HTTP and over the socket."""
    instance = await start_instance(database=any_database_url)
    clinician, admin = await login(instance.url, "bavi.clinician"), await login(instance.url, "admin")
    with logged_errors() as errors:
        requests: list[tuple[str, str, str | None, Any]] = [
            ("POST", "/api/login", None, {"username": "bavi.clinician\x00", "password": PASSWORD}),
            ("GET", "/api/consults/abc%00def", clinician, None),
            ("GET", "/api/rounds?from=2025-03-01%00", clinician, None),
            ("GET", "/api/admin/users?role=clinician%00", admin, None),
            ("GET", "/api/admin/audit?x%00=1", admin, None),
            ("PATCH", "/api/admin/hospitals/bavi-dgh", admin, {"name": "Bệnh viện\x00 Ba Vì"}),
            ("POST", "/api/rounds", clinician, {"title": "x\x00", "hospital_id": "bavi-dgh"}),
            ("POST", "/api/admin/hospitals", admin, {"id": "x", "name": "y", "level": "district", "\x00": 1}),
        ]
        async with aiohttp.ClientSession() as http:
            for method, path, token, body in requests:
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                async with http.request(
                    method, URL(instance.url + path, encoded=True), json=body, headers=headers
                ) as resp:
                    answer = await resp.json()
                    assert resp.status == 400 and answer["error"]["code"] == "invalid", (path, answer)
                    assert "NUL" in answer["error"]["message"], (path, answer)
        client = await clients(instance, "bavi.clinician")
        request = {
            "op_id": "nul-1",
            "specialty": "surgery",
            "urgency": "routine",
            "patient": {"ref": "BV-1", "summary": "khó thở\x00"},
            "consent": CONSENT,
        }
        ack = await client.call("consult:request", request)
        assert ack["error"]["code"] == "invalid" and "patient.summary" in ack["error"]["message"], ack
        ack = await client.call("note:list", {"consult_id": "\x00"})
        assert ack["error"]["code"] == "invalid", ack
        # The same text without the NUL is stored, on either database.
        ack = await client.call("consult:request", {**request, "patient": {"ref": "BV-1", "summary": "khó thở"}})
        assert ack["ok"], ack
    assert not errors.records, errors.describe()


# --- The HTTP server itself -----------------------------------------------------------------------


async def raw_exchange(instance: Instance, data: bytes) -> bytes:
    """Send `data` on a new connection as is; everything the server answers until it closes."""
    host, port = instance.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(data)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return answer


async def test_no_response_names_the_server_software(instance: Instance) -> None:
    """aiohttp's `Server: Python/3.x aiohttp/3.x` is sent on nothing: not on the app's answers,
    files, the WebSocket handshake, nor on aiohttp's own pages for malformed requests."""
    token = await login(instance.url, "bavi.clinician")
    async with aiohttp.ClientSession() as http:
        for method, path, headers in [
            ("GET", "/", {}),
            ("GET", "/static/app.js", {}),
            ("GET", "/api/me", {"Authorization": f"Bearer {token}"}),
            ("GET", "/api/me", {}),
            ("GET", "/api/nothing-here", {}),
            ("GET", "/healthz", {}),
            ("GET", "/socket.io/?EIO=4&transport=polling", {}),
        ]:
            async with http.request(method, instance.url + path, headers=headers) as resp:
                assert "Server" not in resp.headers, (path, resp.headers.get("Server"))
        ws = await http.ws_connect(f"{instance.url}/socket.io/?EIO=4&transport=websocket")
        assert "Server" not in ws._response.headers
        await ws.close()
    for malformed in [
        b"FOO\x01 / HTTP/1.1\r\nHost: x\r\n\r\n",  # a method no parser knows
        b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",  # a request line over 8 KB
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
    ]:
        answer = await raw_exchange(instance, malformed)
        head = answer.split(b"\r\n\r\n", 1)[0].lower()
        assert head.startswith((b"http/1.1 4", b"http/1.0 4")), answer[:200]
        assert b"\r\nserver:" not in head and b"aiohttp" not in answer, answer[:300]


async def test_a_slow_half_sent_request_is_cut_after_the_header_timeout(start_instance: StartInstance) -> None:
    """Slowloris: a connection that never finishes its request line and headers was held as
    long as the client liked. Now it is closed `HTTP_HEADER_TIMEOUT_S` after it opened (or after
    its last answer), however slowly it keeps sending; complete requests are served meanwhile."""
    instance = await start_instance(HTTP_HEADER_TIMEOUT_S="1")
    host, port = instance.url.removeprefix("http://").split(":")
    loop = asyncio.get_running_loop()

    async def held_for(*pieces: bytes, gap_s: float = 0.0) -> float:
        """Seconds until the server closed a connection sending `pieces`, `gap_s` apart."""
        reader, writer = await asyncio.open_connection(host, int(port))
        opened = loop.time()
        try:
            for piece in pieces:
                writer.write(piece)
                await writer.drain()
                await asyncio.sleep(gap_s)
            assert await asyncio.wait_for(reader.read(), 10) == b""  # closed, and nothing answered
        except ConnectionResetError:
            pass
        finally:
            writer.close()
        return loop.time() - opened

    half_line = b"GET /api/specialti"
    half_head = b"GET /api/specialties HTTP/1.1\r\nHost: telerounds\r\nAccept: appl"
    drip = [bytes([b]) for b in b"GET /api/specialties HTTP/1.1\r\nHost: telerounds\r\n"]
    async with loop_held_under():
        waits = await asyncio.gather(
            held_for(),  # connects and sends nothing
            held_for(half_line),
            held_for(half_head),
            held_for(*drip, gap_s=0.1),  # a byte every 100 ms: still cut at the timeout
            *(held_for(half_line) for _ in range(20)),
        )
        # Meanwhile a whole request is answered, and a kept-alive connection serves a second one.
        async with aiohttp.ClientSession() as http:
            for _ in range(2):
                async with http.get(f"{instance.url}/api/specialties") as resp:
                    assert resp.status == 200
    assert all(0.9 <= wait < 4.0 for wait in waits), waits
