"""Connecting to Socket.IO: tokens checked at connect, `session:state` right after, error acks."""

from __future__ import annotations

import time

import jwt
import pytest
import socketio

from server.policy.auth import issue_token
from tests.conftest import SECRET, Client, Instance, login


async def test_a_valid_token_receives_session_state(instance: Instance, clients) -> None:
    client = await clients(instance, "bavi.clinician")
    state = await client.next("session:state")
    assert state["user"]["role"] == "clinician"
    assert state["user"]["hospital"]["id"] == "bavi-dgh"
    assert state["presence"]["online"] is True
    assert state["consults"] == []
    assert state["server_time"].endswith("+00:00")


def forged_tokens(user_id: str) -> list[str | None]:
    now = int(time.time())
    claims = {"sub": user_id, "iss": "telerounds", "aud": "telerounds", "iat": now, "exp": now + 60}
    return [
        None,
        "",
        "garbage",
        jwt.encode(claims, "another-secret-of-sufficient-length", algorithm="HS256"),
        jwt.encode({**claims, "aud": "elsewhere"}, SECRET, algorithm="HS256"),
        jwt.encode({k: v for k, v in claims.items() if k != "exp"}, SECRET, algorithm="HS256"),
        jwt.encode(claims, None, algorithm="none"),
        issue_token(SECRET, user_id, ttl_s=60, now=now - 3600),  # expired
        issue_token(SECRET, "no-such-user", ttl_s=60),
    ]


@pytest.mark.parametrize("case", range(len(forged_tokens("x"))))
async def test_missing_forged_and_expired_tokens_are_refused_at_connect(instance: Instance, case: int) -> None:
    token = await login(instance.url, "bavi.clinician")
    user_id = jwt.decode(token, options={"verify_signature": False})["sub"]
    client = Client()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(instance.url, forged_tokens(user_id)[case])
    assert not client.sio.connected


async def test_unknown_event_gets_an_invalid_ack(instance: Instance, clients) -> None:
    client = await clients(instance, "bavi.clinician")
    ack = await client.call("consult:teleport", {"x": 1})
    assert ack == {"ok": False, "error": {"code": "invalid", "message": "unknown event 'consult:teleport'"}}


@pytest.mark.parametrize(
    "payload",
    [None, "available", 42, [], {"status": "asleep"}, {"status": 1}, {"status": "away", "x": 1}],
)
async def test_malformed_payloads_get_an_invalid_ack(instance: Instance, clients, payload) -> None:
    client = await clients(instance, "xanhpon.surgeon")
    ack = await client.call("presence:set", payload)
    assert ack["ok"] is False
    assert ack["error"]["code"] == "invalid"
    assert ack["error"]["message"]


async def test_presence_set_is_seen_from_another_instance(two_instances, clients) -> None:
    first, second = two_instances
    surgeon = await clients(first, "xanhpon.surgeon")
    ack = await surgeon.call("presence:set", {"status": "away"})
    assert ack["ok"] is True and ack["presence"]["status"] == "away"
    other_device = await clients(second, "xanhpon.surgeon")
    state = await other_device.next("session:state")
    assert state["presence"]["status"] == "away"


async def test_monitor_refuses_non_supervisors_and_gives_supervisors_a_snapshot(instance: Instance, clients) -> None:
    for username in ("bavi.clinician", "xanhpon.surgeon", "admin"):
        client = Client()
        with pytest.raises(socketio.exceptions.ConnectionError):
            await client.connect(instance.url, await login(instance.url, username), namespace="/monitor")
    supervisor = await clients(instance, "soyte.supervisor", namespace="/monitor")
    snapshot = await supervisor.next("monitor:snapshot")
    assert set(snapshot) >= {"presence", "queue", "sessions", "stats"}


async def test_origin_other_than_the_service_is_refused(instance: Instance) -> None:
    token = await login(instance.url, "bavi.clinician")
    client = Client()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(instance.url, token, headers={"Origin": "http://evil.example"})
