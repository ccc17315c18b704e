"""Sign-in that cannot be used to lock people out, the client's address through trusted proxies,
signing out, re-activation, and what a new password must be.

Different client addresses are real: the test's HTTP clients bind to 127.0.0.2, 127.0.0.3, ...
(all loopback on Linux) and the server sees them as the peer. A "proxy" is a client at a
trusted address that sends `X-Forwarded-For`, as nginx does (`$proxy_add_x_forwarded_for`).
"""

from __future__ import annotations

import ipaddress
from typing import Any

import aiohttp
import pytest
import socketio

from server.http import addresses
from server.policy.passwords import problem
from server.runtime.settings import SettingsError, load_settings
from tests.conftest import PASSWORD, Client, Instance, StartInstance, login
from tests.system.test_admin import NEW_PASSWORD, gone, http, new_user, ok, user_id


def from_address(address: str) -> aiohttp.ClientSession:
    """An HTTP client whose connections come from `address` (a loopback address)."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(address, 0)))


async def attempt(
    instance: Instance, address: str, username: str, password: str, forwarded_for: str | None = None
) -> tuple[int, dict[str, Any], str | None]:
    """A sign-in from `address`: its status, body and Retry-After."""
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    async with from_address(address) as session:
        body = {"username": username, "password": password}
        async with session.post(f"{instance.url}/api/login", json=body, headers=headers) as resp:
            return resp.status, await resp.json(), resp.headers.get("Retry-After")


# The throttle.


async def test_the_owner_signs_in_from_their_address_while_a_strangers_is_throttled(
    start_instance: StartInstance,
) -> None:
    a = await start_instance(LOGIN_ATTEMPTS_PER_MINUTE="3")
    b = await start_instance(LOGIN_ATTEMPTS_PER_MINUTE="3")
    stranger, owner = "127.0.0.2", "127.0.0.3"
    answers = [await attempt((a, b)[n % 2], stranger, "xanhpon.icu", "wrong") for n in range(5)]
    assert [status for status, _, _ in answers] == [401, 401, 401, 429, 429]  # counted across instances
    _, body, retry_after = answers[-1]
    assert body["error"]["code"] == "rate_limited" and "too many sign-in attempts" in body["error"]["message"]
    assert retry_after is not None and 1 <= int(retry_after) <= 60
    # From the stranger's address even the right password waits (they may have guessed it).
    assert (await attempt(a, stranger, "xanhpon.icu", PASSWORD))[0] == 429
    # The owner, from their own address, is not locked out, on either instance.
    assert (await attempt(b, owner, "xanhpon.icu", PASSWORD))[0] == 200
    assert (await attempt(a, owner, "xanhpon.icu", PASSWORD))[0] == 200
    # And the stranger's address may still sign in to other accounts (its own per-address budget).
    assert (await attempt(a, stranger, "bavi.clinician", PASSWORD))[0] == 200


async def test_one_address_trying_many_accounts_is_throttled_and_no_other_address(
    start_instance: StartInstance,
) -> None:
    instance = await start_instance(LOGIN_ADDRESS_ATTEMPTS_PER_MINUTE="4")
    usernames = ["bavi.clinician", "bavi.nurse", "xanhpon.icu", "xanhpon.surgeon", "admin"]
    statuses = [(await attempt(instance, "127.0.0.2", name, "wrong"))[0] for name in usernames]
    assert statuses == [401, 401, 401, 401, 429]
    status, body, retry_after = await attempt(instance, "127.0.0.2", "tienyen.clinician", "wrong")
    assert status == 429 and "from this address" in body["error"]["message"] and retry_after
    assert (await attempt(instance, "127.0.0.4", "admin", PASSWORD))[0] == 200


async def test_behind_a_trusted_proxy_each_client_has_its_own_budget(start_instance: StartInstance) -> None:
    # Behind nginx every connection comes from nginx: without TRUSTED_PROXIES one client's
    # guesses would use up everyone's budget. With it, each client is counted by its own address.
    proxy = "127.0.0.5"
    instance = await start_instance(TRUSTED_PROXIES=f"{proxy}/32", LOGIN_ADDRESS_ATTEMPTS_PER_MINUTE="2")
    statuses = [(await attempt(instance, proxy, "bavi.nurse", "wrong", "198.51.100.9"))[0] for _ in range(3)]
    assert statuses == [401, 401, 429]
    assert (await attempt(instance, proxy, "bavi.nurse", PASSWORD, "203.0.113.7"))[0] == 200
    # A client naming another address in its own header still lands on its real one.
    assert (await attempt(instance, proxy, "bavi.nurse", PASSWORD, "203.0.113.7, 198.51.100.9"))[0] == 429


# The client's address, in the audit log and on sockets.


async def audited_addresses(instance: Instance, admin_token: str, username: str, action: str) -> list[str]:
    subject = await user_id(instance, admin_token, username)
    entries = (await ok(instance, "GET", f"/api/admin/audit?user_id={subject}", admin_token))["entries"]
    return [e["address"] for e in entries if e["action"] == action]


async def test_the_audit_records_the_forwarded_address_only_through_a_trusted_proxy(
    start_instance: StartInstance,
) -> None:
    proxy, other = "127.0.0.5", "127.0.0.6"
    instance = await start_instance(TRUSTED_PROXIES=f"{proxy}, 10.0.0.0/8")
    admin_token = await login(instance.url, "admin")
    token = await login(instance.url, "bavi.clinician")
    headers = {"Authorization": f"Bearer {token}"}
    # The client sent a made-up X-Forwarded-For; nginx appended the address it got the request
    # from, and a second, inner proxy (10.1.2.3) appended its own peer: the client is 203.0.113.7.
    forwarded = {"X-Forwarded-For": "192.0.2.66, 203.0.113.7, 10.1.2.3"}
    for address in (proxy, other):
        async with from_address(address) as session:
            async with session.post(f"{instance.url}/api/rounds/calendar", headers={**headers, **forwarded}) as resp:
                assert resp.status == 201
    # Newest first: the untrusted peer's own address, then the client behind the trusted proxy.
    assert await audited_addresses(instance, admin_token, "bavi.clinician", "calendar.key") == [other, "203.0.113.7"]

    # Signing out is audited with the client's address too.
    async with from_address(proxy) as session:
        async with session.post(f"{instance.url}/api/logout", headers={**headers, **forwarded}) as resp:
            assert resp.status == 200
    assert await audited_addresses(instance, admin_token, "bavi.clinician", "auth.logout") == ["203.0.113.7"]


async def test_a_socket_keeps_the_forwarded_address_only_through_a_trusted_proxy(
    start_instance: StartInstance,
) -> None:
    forwarded = {"X-Forwarded-For": "203.0.113.7"}
    for trusted, expected in (("127.0.0.1", "203.0.113.7"), ("127.0.0.9", "127.0.0.1")):
        instance = await start_instance(TRUSTED_PROXIES=trusted)
        client = Client()
        await client.connect(instance.url, await login(instance.url, "bavi.clinician"), headers=forwarded)
        try:
            assert instance.services.sio is not None
            session = await instance.services.sio.get_session(client.sio.get_sid("/"))
            assert session["address"] == expected
        finally:
            await client.close()


@pytest.mark.parametrize(
    "peer, forwarded, proxies, client",
    [
        ("192.0.2.1", ["203.0.113.7"], [], "192.0.2.1"),  # no trusted proxies: the header is ignored
        ("192.0.2.1", ["203.0.113.7"], ["10.0.0.0/8"], "192.0.2.1"),  # an untrusted peer's header is ignored
        ("10.0.0.2", ["203.0.113.7"], ["10.0.0.0/8"], "203.0.113.7"),
        ("10.0.0.2", ["1.1.1.1, 203.0.113.7"], ["10.0.0.0/8"], "203.0.113.7"),  # what the client wrote is not believed
        ("10.0.0.2", ["1.1.1.1, 203.0.113.7, 10.0.0.3"], ["10.0.0.0/8"], "203.0.113.7"),  # two proxies
        ("10.0.0.2", ["1.1.1.1", "203.0.113.7"], ["10.0.0.0/8"], "203.0.113.7"),  # two header lines
        ("10.0.0.2", ["10.0.0.4, 10.0.0.3"], ["10.0.0.0/8"], "10.0.0.4"),  # all trusted: the first
        ("10.0.0.2", ["not-an-address"], ["10.0.0.0/8"], "10.0.0.2"),  # garbage: the last proxy that vouched
        ("10.0.0.2", [""], ["10.0.0.0/8"], "10.0.0.2"),
        ("10.0.0.2", [], ["10.0.0.0/8"], "10.0.0.2"),
        ("10.0.0.2", ["203.0.113.7:5123"], ["10.0.0.0/8"], "203.0.113.7"),  # with a port
        ("10.0.0.2", ["[2001:db8::7]:443"], ["10.0.0.0/8"], "2001:db8::7"),
        ("::ffff:10.0.0.2", ["203.0.113.7"], ["10.0.0.0/8"], "203.0.113.7"),  # IPv4 on a dual-stack socket
        ("fd00::1", ["2001:db8::7"], ["fd00::/8"], "2001:db8::7"),
        (None, ["203.0.113.7"], ["10.0.0.0/8"], ""),
    ],
)
def test_the_client_address_is_read_right_to_left_through_trusted_proxies(
    peer: str | None, forwarded: list[str], proxies: list[str], client: str
) -> None:
    networks = [ipaddress.ip_network(p) for p in proxies]
    assert addresses.client_address(peer, forwarded, networks) == client


def test_an_ipv6_client_is_throttled_by_its_block() -> None:
    assert addresses.throttle_key("2001:db8:1:2:aaaa::1") == addresses.throttle_key("2001:db8:1:2:bbbb::9")
    assert addresses.throttle_key("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert addresses.throttle_key("203.0.113.7") == "203.0.113.7"


@pytest.mark.parametrize("value", ["nginx", "10.0.0.0/33", "10.0.0.1,,x"])
def test_a_bad_trusted_proxies_setting_stops_the_start_naming_it(value: str, tmp_path: Any) -> None:
    with pytest.raises(SettingsError, match="TRUSTED_PROXIES"):
        load_settings({"TRUSTED_PROXIES": value, "TELEROUNDS_VAR_DIR": str(tmp_path), "SECRET_KEY": "x" * 32})


# Signing out and re-activation.


async def test_signing_out_ends_that_token_over_http_and_socketio_on_every_instance(two_instances, clients) -> None:
    a, b = two_instances
    ward_pc = await login(a.url, "bavi.clinician")
    phone = await login(b.url, "bavi.clinician")
    on_b = Client()
    await on_b.connect(b.url, ward_pc)  # the ward PC's socket landed on the other instance
    other_device = Client()
    await other_device.connect(a.url, phone)
    await on_b.next("session:state")

    assert await ok(a, "POST", "/api/logout", ward_pc) == {"signed_out": True}
    await gone(on_b)
    for instance in (a, b):
        status, body = await http(instance, "GET", "/api/me", ward_pc)
        assert (status, body["error"]["code"]) == (401, "unauthorized") and "signed out" in body["error"]["message"]
        with pytest.raises(socketio.exceptions.ConnectionError):
            await Client().connect(instance.url, ward_pc)
    assert (await http(b, "POST", "/api/logout", ward_pc))[0] == 401

    # The same user's other sign-in goes on.
    assert other_device.sio.connected
    assert (await other_device.call("presence:set", {"status": "available"}))["ok"] is True
    assert (await ok(b, "GET", "/api/me", phone))["role"] == "clinician"
    await other_device.close()


async def test_reactivation_starts_a_new_token_generation(two_instances) -> None:
    a, b = two_instances
    before = await login(a.url, "bavi.clinician")
    admin_token = await login(b.url, "admin")
    clinician = await user_id(b, admin_token, "bavi.clinician")
    await ok(b, "POST", f"/api/admin/users/{clinician}/deactivate", admin_token)
    await ok(b, "POST", f"/api/admin/users/{clinician}/activate", admin_token)

    for instance in (a, b):
        status, body = await http(instance, "GET", "/api/me", before)
        assert (status, body["error"]["code"]) == (401, "unauthorized")
        with pytest.raises(socketio.exceptions.ConnectionError):
            await Client().connect(instance.url, before)
    after = await login(a.url, "bavi.clinician")
    assert (await ok(b, "GET", "/api/me", after))["role"] == "clinician"
    # Activating an account that is active already ends nothing.
    await ok(b, "POST", f"/api/admin/users/{clinician}/activate", admin_token)
    assert (await ok(a, "GET", "/api/me", after))["role"] == "clinician"


async def feed_status(url: str) -> int:
    async with aiohttp.ClientSession() as session:  # a calendar app: no token
        async with session.get(url) as resp:
            return resp.status


async def test_a_new_password_ends_the_calendar_feed_address(instance: Instance) -> None:
    token = await login(instance.url, "xanhpon.icu")
    old_feed = (await ok(instance, "POST", "/api/rounds/calendar", token, status=201))["url"]
    assert await feed_status(old_feed) == 200
    admin_token = await login(instance.url, "admin")
    icu = await user_id(instance, admin_token, "xanhpon.icu")

    await ok(instance, "POST", f"/api/admin/users/{icu}/password", admin_token, {"password": NEW_PASSWORD})
    assert await feed_status(old_feed) == 401  # "this calendar address is not valid (revoked or never made)"
    token = await login(instance.url, "xanhpon.icu", NEW_PASSWORD)
    new_feed = (await ok(instance, "POST", "/api/rounds/calendar", token, status=201))["url"]
    assert new_feed != old_feed and await feed_status(new_feed) == 200
    assert await feed_status(old_feed) == 401


# What a new password must be.


@pytest.mark.parametrize(
    "password, words",
    [
        ("ngan9chu", "at least 10 characters"),
        ("bavi.doctor2", "not be the username"),
        ("BAVI.DOCTOR2", "not be the username"),
        ("1234567890", "too common or too easy to guess (this is a top-100 common password)"),
        ("password123", "too common"),
        ("qwertyuiop", "too common"),
        ("aaaaaaaaaaaa", "too easy to guess"),
        ("tranvanbinh1", "too easy to guess"),  # the account's own name (BS. Trần Văn Bình)
        ("telerounds2024", "too easy to guess"),
    ],
)
async def test_a_weak_password_is_refused_with_a_clear_message(instance: Instance, password: str, words: str) -> None:
    token = await login(instance.url, "admin")
    status, answer = await http(instance, "POST", "/api/admin/users", token, new_user(password=password))
    assert (status, answer["error"]["code"]) == (400, "invalid"), answer
    assert "password" in answer["error"]["message"] and words in answer["error"]["message"], answer
    # The same rules for a new password of an existing account (here the nurse's own username).
    nurse = await user_id(instance, token, "bavi.nurse")
    weak = password.replace("bavi.doctor2", "bavi.nurse").replace("BAVI.DOCTOR2", "BAVI.NURSE")
    if "tranvanbinh" not in weak:  # the new account's name, not the nurse's
        status, answer = await http(instance, "POST", f"/api/admin/users/{nurse}/password", token, {"password": weak})
        assert (status, answer["error"]["code"]) == (400, "invalid") and words in answer["error"]["message"], answer
        assert await login(instance.url, "bavi.nurse") is not None  # the old password still works


@pytest.mark.parametrize(
    "password", [NEW_PASSWORD, "mat-khau-moi-2026", "đi buồng sáng thứ hai", "correct horse battery", "x7#Lq9!vR2"]
)
def test_long_uncommon_passwords_pass_without_composition_rules(password: str) -> None:
    assert problem(password, "bavi.doctor2", "BS. Trần Văn Bình") is None


def test_the_policy_judges_a_very_long_password_quickly() -> None:
    assert problem("a" * 200, "bavi.doctor2") is not None  # repeats
    assert problem("z" * 201, "bavi.doctor2") == "the password must be at most 200 characters long"
