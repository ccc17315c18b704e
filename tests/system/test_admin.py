"""Administration: admins only; accounts, hospitals, sister links, the roster and the audit log;
a deactivation takes effect on every instance, even when the message between them is lost."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
import socketio
from sqlalchemy import select

from server.actions import admin
from server.records.models import AuditEntry
from server.records.users import load_account
from tests.conftest import PASSWORD, Client, Instance, StartInstance, login
from tests.system.test_notes import add, note
from tests.system.test_rtc import active_consult

NEW_PASSWORD = "mật-khẩu-mới-2024"


async def http(
    instance: Instance, method: str, path: str, token: str | None = None, body: Any = None
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as session:
        async with session.request(method, f"{instance.url}{path}", headers=headers, json=body) as resp:
            return resp.status, await resp.json()


async def ok(instance: Instance, method: str, path: str, token: str, body: Any = None, status: int = 200) -> Any:
    got, answer = await http(instance, method, path, token, body)
    assert got == status, answer
    return answer


async def login_status(instance: Instance, username: str, password: str) -> int:
    status, _ = await http(instance, "POST", "/api/login", body={"username": username, "password": password})
    return status


async def user_id(instance: Instance, token: str, username: str) -> str:
    found = (await ok(instance, "GET", "/api/admin/users", token))["users"]
    return next(u["id"] for u in found if u["username"] == username)


async def gone(client: Client, within: float = 5.0) -> None:
    """Wait until the server has disconnected this client."""
    deadline = asyncio.get_running_loop().time() + within
    while client.sio.connected:
        assert asyncio.get_running_loop().time() < deadline, "the client is still connected"
        await asyncio.sleep(0.05)


def new_user(**fields: Any) -> dict[str, Any]:
    return {
        "username": "bavi.doctor2",
        "name": "BS. Trần Văn Bình",
        "role": "clinician",
        "hospital_id": "bavi-dgh",
        "password": NEW_PASSWORD,
        **fields,
    }


# Who may administer.

ENDPOINTS: list[tuple[str, str, Any]] = [
    ("GET", "/api/admin/hospitals", None),
    (
        "POST",
        "/api/admin/hospitals",
        {"name": "Trạm Y tế xã Vật Lại", "level": "commune", "province": "hanoi", "province_name": "Hà Nội"},
    ),
    ("PATCH", "/api/admin/hospitals/{hospital_id}", {"name": "Đổi tên"}),
    ("GET", "/api/admin/sister-links", None),
    ("POST", "/api/admin/sister-links", {"upper_id": "xanhpon", "lower_id": "tyt-tanlinh"}),
    ("DELETE", "/api/admin/sister-links/{upper_id}/{lower_id}", None),
    ("GET", "/api/admin/users", None),
    ("POST", "/api/admin/users", new_user()),
    ("PATCH", "/api/admin/users/{user_id}", {"name": "Đổi tên"}),
    ("POST", "/api/admin/users/{user_id}/deactivate", None),
    ("POST", "/api/admin/users/{user_id}/activate", None),
    ("POST", "/api/admin/users/{user_id}/password", {"password": NEW_PASSWORD}),
    ("POST", "/api/admin/users/{user_id}/certificate", {}),  # multipart when it is an admin's
    ("GET", "/api/admin/roster", None),
    ("GET", "/api/admin/audit", None),
    ("DELETE", "/api/admin/recordings/{recording_id}", None),
]


async def test_the_refusal_table_names_every_admin_endpoint(instance: Instance) -> None:
    served = {
        (route.method, route.resource.canonical)
        for route in instance.runner.app.router.routes()
        if route.resource is not None and route.resource.canonical.startswith("/api/admin") and route.method != "HEAD"
    }
    assert served == {(method, path) for method, path, _ in ENDPOINTS}


@pytest.mark.parametrize(
    "username, status, code",
    [
        ("bavi.clinician", 403, "forbidden"),
        ("xanhpon.surgeon", 403, "forbidden"),
        ("soyte.supervisor", 403, "forbidden"),
        (None, 401, "unauthorized"),
    ],
)
async def test_only_admins_may_administer(instance: Instance, username: str | None, status: int, code: str) -> None:
    admin_token = await login(instance.url, "admin")
    nurse = await user_id(instance, admin_token, "bavi.nurse")
    token = await login(instance.url, username) if username else None
    for method, template, body in ENDPOINTS:
        path = template.format(
            hospital_id="bavi-dgh", upper_id="xanhpon", lower_id="bavi-dgh", user_id=nurse, recording_id="r1"
        )
        got, answer = await http(instance, method, path, token, body)
        assert (got, answer["error"]["code"]) == (status, code), (method, path, answer)
    # Nothing was changed by any of them.
    users = (await ok(instance, "GET", "/api/admin/users?active=true", admin_token))["users"]
    assert "bavi.doctor2" not in {u["username"] for u in users}
    assert nurse in {u["id"] for u in users}
    links = (await ok(instance, "GET", "/api/admin/sister-links", admin_token))["links"]
    assert ("xanhpon", "bavi-dgh") in {(x["upper"]["id"], x["lower"]["id"]) for x in links}
    assert await login_status(instance, "bavi.nurse", PASSWORD) == 200


# Accounts.


async def test_a_created_user_can_log_in_and_is_never_shown_with_a_password(instance: Instance) -> None:
    token = await login(instance.url, "admin")
    created = (await ok(instance, "POST", "/api/admin/users", token, new_user(), status=201))["user"]
    assert created["username"] == "bavi.doctor2" and created["active"] is True
    assert created["hospital"] == {"id": "bavi-dgh", "name": "Bệnh viện Đa khoa huyện Ba Vì", "level": "district"}
    specialist = new_user(
        username="xanhpon.cardio", role="specialist", hospital_id="xanhpon", specialties=["cardiology"]
    )
    await ok(instance, "POST", "/api/admin/users", token, specialist, status=201)

    new_token = await login(instance.url, "bavi.doctor2", NEW_PASSWORD)
    me = await ok(instance, "GET", "/api/me", new_token)
    assert (me["role"], me["hospital"]["id"], me["name"]) == ("clinician", "bavi-dgh", "BS. Trần Văn Bình")
    roster = (await ok(instance, "GET", "/api/roster?specialty=cardiology", new_token))["specialists"]
    assert [s["name"] for s in roster] == ["BS. Trần Văn Bình"]

    listed = await ok(instance, "GET", "/api/admin/users", token)
    for user in listed["users"]:
        assert set(user) == {"id", "username", "name", "role", "hospital", "specialties", "active", "created_at"}
    assert NEW_PASSWORD not in json.dumps(listed)
    assert "argon2" not in json.dumps(listed)
    audit = await ok(instance, "GET", "/api/admin/audit?limit=200", token)
    assert NEW_PASSWORD not in json.dumps(audit, ensure_ascii=False)


async def test_a_taken_username_is_a_conflict(instance: Instance) -> None:
    token = await login(instance.url, "admin")
    status, answer = await http(instance, "POST", "/api/admin/users", token, new_user(username="bavi.clinician"))
    assert (status, answer["error"]["code"]) == (409, "conflict")
    assert "bavi.clinician" in answer["error"]["message"]


@pytest.mark.parametrize(
    "fields, words",
    [
        ({"role": "nurse"}, "role"),
        ({"role": "specialist", "specialties": ["surgery", "astrology"]}, "unknown specialty 'astrology'"),
        ({"role": "specialist", "specialties": []}, "at least one specialty"),
        ({"specialties": ["surgery"]}, "only specialists"),
        ({"password": "short"}, "password"),
        ({"hospital_id": "bv-khong-co"}, "unknown hospital 'bv-khong-co'"),
        ({"username": "Bavi Doctor"}, "username"),
        ({"name": "   "}, "name"),
        ({"active": False}, "active"),
        ({"password": 12345678}, "password"),
    ],
)
async def test_bad_new_users_get_a_400_that_says_what_is_wrong(
    instance: Instance, fields: dict[str, Any], words: str
) -> None:
    token = await login(instance.url, "admin")
    status, answer = await http(instance, "POST", "/api/admin/users", token, new_user(**fields))
    assert (status, answer["error"]["code"]) == (400, "invalid")
    assert words in answer["error"]["message"]
    assert await login_status(instance, "bavi.doctor2", NEW_PASSWORD) == 401


async def test_users_are_listed_by_role_hospital_and_state_and_can_be_changed(instance: Instance) -> None:
    token = await login(instance.url, "admin")
    specialists = (await ok(instance, "GET", "/api/admin/users?role=specialist", token))["users"]
    assert {u["role"] for u in specialists} == {"specialist"} and len(specialists) == 5
    at_xanhpon = (await ok(instance, "GET", "/api/admin/users?hospital_id=xanhpon&role=specialist", token))["users"]
    assert {u["username"] for u in at_xanhpon} == {"xanhpon.surgeon", "xanhpon.icu", "xanhpon.obgyn"}
    assert (await ok(instance, "GET", "/api/admin/users?active=false", token))["users"] == []
    for query in ("role=nurse", "active=maybe"):
        status, answer = await http(instance, "GET", f"/api/admin/users?{query}", token)
        assert status == 400 and answer["error"]["message"]

    surgeon = await user_id(instance, token, "xanhpon.surgeon")
    changed = await ok(
        instance, "PATCH", f"/api/admin/users/{surgeon}", token, {"specialties": ["surgery", "trauma"], "name": "X"}
    )
    assert changed["user"]["specialties"] == ["surgery", "trauma"] and changed["user"]["name"] == "X"
    moved = await ok(instance, "PATCH", f"/api/admin/users/{surgeon}", token, {"hospital_id": "qn-dkt"})
    assert moved["user"]["hospital"]["id"] == "qn-dkt"
    nurse = await user_id(instance, token, "bavi.nurse")
    for who, body, status in [
        (nurse, {"specialties": ["icu"]}, 400),
        (surgeon, {"specialties": []}, 400),
        (surgeon, {"hospital_id": "bv-khong-co"}, 400),
        (surgeon, {}, 400),
        (surgeon, {"role": "admin"}, 400),
        ("no-such-user", {"name": "Y"}, 404),
    ]:
        got, answer = await http(instance, "PATCH", f"/api/admin/users/{who}", token, body)
        assert got == status, (body, answer)
    actions = [
        e["action"] for e in (await ok(instance, "GET", f"/api/admin/audit?user_id={surgeon}", token))["entries"]
    ]
    assert actions == ["admin.user.update", "admin.user.update"]


async def test_a_reset_password_replaces_the_old_one(two_instances) -> None:
    a, b = two_instances
    token = await login(b.url, "admin")
    nurse = await user_id(b, token, "bavi.nurse")
    status, answer = await http(b, "POST", f"/api/admin/users/{nurse}/password", token, {"password": "1234567"})
    assert status == 400 and "password" in answer["error"]["message"]
    assert await login_status(a, "bavi.nurse", PASSWORD) == 200
    answer = await ok(b, "POST", f"/api/admin/users/{nurse}/password", token, {"password": NEW_PASSWORD})
    assert "password" not in json.dumps(answer["user"])
    assert await login_status(a, "bavi.nurse", PASSWORD) == 401
    assert await login_status(a, "bavi.nurse", NEW_PASSWORD) == 200
    entries = (await ok(a, "GET", f"/api/admin/audit?user_id={nurse}", token))["entries"]
    assert [e["action"] for e in entries] == ["admin.user.password"]
    assert NEW_PASSWORD not in json.dumps(entries, ensure_ascii=False)


async def test_a_new_password_ends_every_sign_in_made_before_it(two_instances, clients) -> None:
    a, b = two_instances
    phone = await clients(a, "bavi.clinician")
    laptop = await clients(b, "bavi.clinician")
    bystander = await clients(a, "bavi.nurse")
    await phone.next("session:state")
    old_token = await login(a.url, "bavi.clinician")
    token = await login(b.url, "admin")
    clinician = await user_id(b, token, "bavi.clinician")

    await ok(b, "POST", f"/api/admin/users/{clinician}/password", token, {"password": NEW_PASSWORD})
    await gone(phone)
    await gone(laptop)
    assert bystander.sio.connected

    for instance in (a, b):
        status, body = await http(instance, "GET", "/api/me", old_token)
        assert (status, body["error"]["code"]) == (401, "unauthorized")
        assert "password" in body["error"]["message"]
    with pytest.raises(socketio.exceptions.ConnectionError):
        await Client().connect(a.url, old_token)

    # Signing in with the new password works everywhere, at once.
    new_token = await login(a.url, "bavi.clinician", NEW_PASSWORD)
    assert (await ok(b, "GET", "/api/me", new_token))["role"] == "clinician"
    again = Client()
    await again.connect(b.url, new_token)
    assert (await again.next("session:state"))["user"]["role"] == "clinician"
    await again.close()


async def test_an_admin_cannot_deactivate_themselves(instance: Instance) -> None:
    token = await login(instance.url, "admin")
    me = await user_id(instance, token, "admin")
    status, answer = await http(instance, "POST", f"/api/admin/users/{me}/deactivate", token)
    assert (status, answer["error"]["code"]) == (403, "forbidden")
    assert (await ok(instance, "GET", "/api/me", token))["role"] == "admin"
    status, _ = await http(instance, "POST", "/api/admin/users/no-such-user/deactivate", token)
    assert status == 404


# Deactivation, everywhere.


async def test_deactivating_on_one_instance_disconnects_the_user_on_every_instance(two_instances, clients) -> None:
    a, b = two_instances
    on_a = await clients(a, "bavi.clinician")
    on_b = await clients(b, "bavi.clinician")  # a second device, on the deactivating instance
    supervisor = await clients(a, "soyte.supervisor", "/monitor")
    bystander = await clients(a, "bavi.nurse")
    await on_a.next("session:state")
    clinician_token = await login(a.url, "bavi.clinician")
    token = await login(b.url, "admin")

    clinician = await user_id(b, token, "bavi.clinician")
    answer = await ok(b, "POST", f"/api/admin/users/{clinician}/deactivate", token)
    assert answer["user"]["active"] is False
    await gone(on_a)
    await gone(on_b)
    assert bystander.sio.connected

    # Its tokens, its password and a new connection are all refused.
    for instance in (a, b):
        status, body = await http(instance, "GET", "/api/me", clinician_token)
        assert (status, body["error"]["code"]) == (401, "unauthorized")
    assert await login_status(a, "bavi.clinician", PASSWORD) == 401
    with pytest.raises(socketio.exceptions.ConnectionError):
        await Client().connect(a.url, clinician_token)

    # A supervisor's board connection (namespace /monitor) goes too.
    await ok(b, "POST", f"/api/admin/users/{await user_id(b, token, 'soyte.supervisor')}/deactivate", token)
    await gone(supervisor)
    assert bystander.sio.connected
    assert (await bystander.call("presence:set", {"status": "available"}))["ok"] is True


async def test_a_lost_disconnect_still_refuses_the_next_event_and_activation_lets_them_back(
    two_instances, clients
) -> None:
    a, b = two_instances
    device = await clients(a, "bavi.clinician")
    await device.next("session:state")
    token = await login(b.url, "admin")
    clinician = await user_id(b, token, "bavi.clinician")
    actor = await load_account(b.services, await user_id(b, token, "admin"))

    # Deactivation as the HTTP handler does it, but without the disconnect message: as if lost.
    await admin.deactivate(b.services, actor, clinician, "127.0.0.1", disconnect=False)
    await asyncio.sleep(0.3)
    assert device.sio.connected
    # Refused as deactivated before anything else: here a signal naming no room, otherwise `invalid`.
    ack = await device.call("rtc:signal", {"to": "p", "data": {"type": "offer", "sdp": ""}})
    assert ack["ok"] is False and ack["error"]["code"] == "unauthorized", ack
    await gone(device)  # and the instance holding the socket closes it

    await ok(b, "POST", f"/api/admin/users/{clinician}/activate", token)
    again = await clients(a, "bavi.clinician")
    assert (await again.next("session:state"))["user"]["id"] == clinician
    assert (await again.call("presence:set", {"status": "available"}))["ok"] is True
    entries = (await ok(a, "GET", f"/api/admin/audit?user_id={clinician}", token))["entries"]
    about_the_account = [e["action"] for e in entries if e["target_type"] == "user"]  # not their own reads
    assert about_the_account[:2] == ["admin.user.activate", "admin.user.deactivate"]


# Hospitals and sister links.


async def test_hospitals_are_created_listed_and_changed(instance: Instance) -> None:
    token = await login(instance.url, "admin")
    body = {
        "id": "tyt-vatlai",
        "name": "Trạm Y tế xã Vật Lại",
        "level": "commune",
        "province": "hanoi",
        "province_name": "Hà Nội",
    }
    shown = {**body, "record_consults": False}  # its consults are not recorded by themselves until set
    assert (await ok(instance, "POST", "/api/admin/hospitals", token, body, status=201))["hospital"] == shown
    unnamed = {"name": "Trạm Y tế xã Cẩm Lĩnh", "level": "commune", "province": "hanoi", "province_name": "Hà Nội"}
    generated = (await ok(instance, "POST", "/api/admin/hospitals", token, unnamed, status=201))["hospital"]
    assert generated["id"]
    listed = (await ok(instance, "GET", "/api/admin/hospitals", token))["hospitals"]
    assert shown in listed and generated in listed and len(listed) == 12

    changed = await ok(instance, "PATCH", "/api/admin/hospitals/tyt-vatlai", token, {"name": "TYT Vật Lại"})
    assert changed["hospital"] == {**shown, "name": "TYT Vật Lại"}
    for method, path, payload, status in [
        ("POST", "/api/admin/hospitals", body, 409),
        ("POST", "/api/admin/hospitals", {**body, "id": "new-one", "level": "village"}, 400),
        ("POST", "/api/admin/hospitals", {**body, "id": "Có Dấu"}, 400),
        # A province is a code, not its name: Departments of Health match it (server/policy/scope.py).
        ("POST", "/api/admin/hospitals", {**body, "id": "new-two", "province": "Hà Nội"}, 400),
        ("PATCH", "/api/admin/hospitals/tyt-vatlai", {"province": "Ha Noi"}, 400),
        ("PATCH", "/api/admin/hospitals/tyt-vatlai", {}, 400),
        ("PATCH", "/api/admin/hospitals/no-such", {"name": "x"}, 404),
    ]:
        got, answer = await http(instance, method, path, token, payload)
        assert got == status and answer["error"]["message"], (payload, answer)


async def test_sister_links_are_added_and_removed(instance: Instance) -> None:
    token = await login(instance.url, "admin")

    async def links() -> set[tuple[str, str]]:
        found = (await ok(instance, "GET", "/api/admin/sister-links", token))["links"]
        return {(x["upper"]["id"], x["lower"]["id"]) for x in found}

    assert await links() == {
        ("xanhpon", "bavi-dgh"),
        ("xanhpon", "bavi-ttyt"),
        ("qn-dkt", "ttyt-tienyen"),
        ("qn-dkt", "ttyt-vandon"),
    }
    link = {"upper_id": "xanhpon", "lower_id": "tyt-tanlinh"}
    created = await ok(instance, "POST", "/api/admin/sister-links", token, link, status=201)
    assert created["link"]["lower"] == {"id": "tyt-tanlinh", "name": "Trạm Y tế xã Tản Lĩnh", "level": "commune"}
    assert ("xanhpon", "tyt-tanlinh") in await links()
    for body, status, words in [
        (link, 409, "linked already"),
        ({"upper_id": "xanhpon", "lower_id": "xanhpon"}, 400, "its own sister"),
        ({"upper_id": "bavi-dgh", "lower_id": "bavi-ttyt"}, 400, "level district"),
        ({"upper_id": "xanhpon", "lower_id": "bv-khong-co"}, 400, "unknown hospital 'bv-khong-co'"),
        ({"upper_id": "xanhpon"}, 400, "lower_id"),
    ]:
        got, answer = await http(instance, "POST", "/api/admin/sister-links", token, body)
        assert got == status and words in answer["error"]["message"], (body, answer)

    removed = await ok(instance, "DELETE", "/api/admin/sister-links/xanhpon/bavi-dgh", token)
    assert removed["link"]["upper"]["id"] == "xanhpon"
    assert await links() == {("xanhpon", "bavi-ttyt"), ("xanhpon", "tyt-tanlinh"), ("qn-dkt", "ttyt-tienyen"),
                             ("qn-dkt", "ttyt-vandon")}  # fmt: skip
    status, _ = await http(instance, "DELETE", "/api/admin/sister-links/xanhpon/bavi-dgh", token)
    assert status == 404
    entries = (await ok(instance, "GET", "/api/admin/audit", token))["entries"]
    assert [(e["action"], e["target_id"], e["detail"]) for e in entries[:2]] == [
        ("admin.link.delete", "xanhpon", "lower=bavi-dgh"),
        ("admin.link.create", "xanhpon", "lower=tyt-tanlinh"),
    ]


# The roster.


async def test_the_roster_shows_every_specialist_with_live_presence(instance: Instance, clients) -> None:
    token = await login(instance.url, "admin")
    surgeon = await clients(instance, "xanhpon.surgeon")
    await surgeon.next("session:state")
    await ok(instance, "POST", f"/api/admin/users/{await user_id(instance, token, 'xanhpon.obgyn')}/deactivate", token)
    roster = {s["username"]: s for s in (await ok(instance, "GET", "/api/admin/roster", token))["specialists"]}
    assert set(roster) == {"xanhpon.surgeon", "xanhpon.icu", "xanhpon.obgyn", "quangninh.trauma", "quangninh.dialysis"}
    assert roster["xanhpon.surgeon"]["presence"]["online"] is True
    assert roster["xanhpon.surgeon"]["presence"]["status"] == "available"
    assert roster["xanhpon.icu"]["presence"]["online"] is False
    assert roster["xanhpon.obgyn"]["active"] is False
    assert roster["quangninh.trauma"]["specialties"] == ["trauma", "surgery"]
    assert roster["quangninh.trauma"]["hospital"]["id"] == "qn-dkt"


# The audit log.


async def all_entries(instance: Instance, token: str, query: str = "", limit: int = 200) -> list[dict[str, Any]]:
    """Every page of a query, following `next_before`."""
    entries: list[dict[str, Any]] = []
    cursor = ""
    while True:
        page = await ok(instance, "GET", f"/api/admin/audit?limit={limit}{query}{cursor}", token)
        assert len(page["entries"]) <= limit
        entries += page["entries"]
        if page["next_before"] is None:
            return entries
        cursor = f"&before={page['next_before']}"


async def test_the_audit_log_by_consult_never_holds_the_notes(two_instances, clients) -> None:
    a, b = two_instances
    clinician, surgeon, consult = await active_consult(clients, a, b)
    secret = "Bệnh nhân khai có tiền sử dị ứng penicillin — ghi chú bí mật 7431"
    await add(clinician, note(consult["id"], secret))
    listed = await surgeon.call("note:list", {"consult_id": consult["id"]})
    assert listed["notes"][0]["text"] == secret
    clinician_token = await login(a.url, "bavi.clinician")
    await ok(a, "GET", f"/api/consults/{consult['id']}", clinician_token)

    token = await login(b.url, "admin")
    about = await all_entries(b, token, f"&consult_id={consult['id']}")
    assert {(e["target_type"], e["target_id"]) for e in about} == {("consult", consult["id"])}
    by_action = {e["action"]: e for e in about}
    assert {"consult.read", "notes.list"} <= set(by_action)
    assert by_action["consult.read"]["actor"]["name"] == "BS. Nguyễn Văn Hùng"
    assert by_action["notes.list"]["actor"]["name"] == "BS. Lê Minh Đức"
    everything = await all_entries(b, token)
    assert everything and secret not in json.dumps(everything, ensure_ascii=False)
    assert "7431" not in json.dumps(everything)
    async with b.services.db.session() as session:  # not even in what the viewer does not show
        stored = (await session.scalars(select(AuditEntry))).all()
    assert all("7431" not in f"{e.action} {e.target_id} {e.detail} {e.address}" for e in stored)


async def test_the_audit_log_filters_by_user_and_date_and_pages_newest_first(instance: Instance) -> None:
    token = await login(instance.url, "admin")
    someone = "auditor-0001"
    base = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
    times = [base + timedelta(days=d) for d in (0, 1, 1, 1, 2, 3, 10)]  # three at the same instant
    async with instance.services.db.session() as session, session.begin():
        for n, at in enumerate(times):
            session.add(AuditEntry(at=at, actor_id=someone, action=f"test.{n}", target_type="consult", target_id="c"))
        session.add(AuditEntry(at=base, actor_id="someone-else", action="test.other", target_type="x", target_id="y"))

    mine = await all_entries(instance, token, f"&user_id={someone}")
    assert len(mine) == 7
    assert [e["at"] for e in mine] == sorted((e["at"] for e in mine), reverse=True)
    assert {e["actor_id"] for e in mine} == {someone} and all(e["actor"] is None for e in mine)
    for limit in (1, 2, 3):
        assert await all_entries(instance, token, f"&user_id={someone}", limit=limit) == mine

    window = await all_entries(instance, token, f"&user_id={someone}&from=2024-03-02&to=2024-03-04")
    assert sorted(e["action"] for e in window) == ["test.1", "test.2", "test.3", "test.4"]  # to: before
    late = await all_entries(instance, token, "&from=2024-03-04T08:00:00%2B00:00&to=2024-03-20")
    assert [e["action"] for e in late] == ["test.6", "test.5"]

    first = await ok(instance, "GET", f"/api/admin/audit?user_id={someone}&limit=4", token)
    assert len(first["entries"]) == 4 and first["next_before"] == first["entries"][-1]["id"]
    for query in ("limit=0", "limit=201", "limit=x", "from=yesterday", "before=no-such-entry"):
        status, answer = await http(instance, "GET", f"/api/admin/audit?{query}", token)
        assert status == 400 and answer["error"]["message"], query


async def test_a_silent_socket_of_a_deactivated_user_is_closed_by_the_heartbeat(
    start_instance: StartInstance, clients
) -> None:
    # Nothing is sent from the device, and the disconnect message is lost: the instance holding
    # the socket still closes it at its next presence heartbeat (every PRESENCE_TTL_S / 3).
    a = await start_instance(PRESENCE_TTL_S="3")
    device = await clients(a, "bavi.clinician")
    await device.next("session:state")
    token = await login(a.url, "admin")
    actor = await load_account(a.services, await user_id(a, token, "admin"))
    await admin.deactivate(a.services, actor, await user_id(a, token, "bavi.clinician"), "127.0.0.1", disconnect=False)
    await gone(device)


async def test_the_audit_viewer_filters_by_action_and_patient_and_names_the_targets(
    instance: Instance, clients
) -> None:
    _, _, consult = await active_consult(clients, instance, instance)
    token = await login(instance.url, "admin")
    clinician_token = await login(instance.url, "bavi.clinician")
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {clinician_token}"}) as session:
        async with session.get(f"{instance.url}/api/consults/{consult['id']}") as resp:
            assert resp.status == 200
    reads = (await ok(instance, "GET", "/api/admin/audit?action=consult.read", token))["entries"]
    assert reads and {e["action"] for e in reads} == {"consult.read"}
    assert reads[0]["target_label"] == "BV-0042" and reads[0]["actor"]["name"] == "BS. Nguyễn Văn Hùng"
    about = (await ok(instance, "GET", "/api/admin/audit?patient_ref=bv-0042", token))["entries"]
    assert about and all(e["target_id"] == consult["id"] or "ids=" in e["detail"] for e in about)
    assert "consult.read" in {e["action"] for e in about}
    assert (await ok(instance, "GET", "/api/admin/audit?patient_ref=BV-9999", token))["entries"] == []
    surgeon_id = await user_id(instance, token, "xanhpon.surgeon")
    await ok(instance, "PATCH", f"/api/admin/users/{surgeon_id}", token, {"name": "BS. Lê Minh Đức"})
    [changed] = (await ok(instance, "GET", "/api/admin/audit?action=admin.user.update&limit=1", token))["entries"]
    assert changed["target_label"] == "BS. Lê Minh Đức" and changed["actor"]["username"] == "admin"
    for bad in ("action=consult.delete", "action=", "limit=201", "patient_ref=" + "x" * 65):
        status, body = await http(instance, "GET", f"/api/admin/audit?{bad}", token)
        if bad == "action=":
            assert status == 200  # an empty filter is no filter
            continue
        assert status == 400 and body["error"]["code"] == "invalid", (bad, body)


def test_every_action_the_service_audits_is_one_the_viewer_filters_by() -> None:
    """`action=` is checked against `audit.ACTIONS`: an action recorded but missing there could never be found."""
    import re
    from pathlib import Path

    from server.records import audit

    root = Path(__file__).resolve().parent.parent.parent
    calls = re.compile(r"audit\.(?:record|entry|record_listing)\(([^()]*(?:\([^()]*\)[^()]*)*)\)", re.S)
    found: set[str] = set()
    for path in [*(root / "server").rglob("*.py"), *(root / "signaling").rglob("*.py")]:
        for args in calls.findall(path.read_text()):
            found |= set(re.findall(r'"([a-z_]+\.[a-z_.]+)"', args))
    assert found and found <= set(audit.ACTIONS), sorted(found - set(audit.ACTIONS))
