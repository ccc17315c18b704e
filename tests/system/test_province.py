"""Province scope: each Department of Health sees only its own province.

The two demo Departments of Health, Hà Nội's (`soyte.supervisor`) and Quảng Ninh's
(`quangninh.supervisor`), each against the other province's consult, round, record, minutes,
FHIR export, attachment, board (snapshot and updates, on two instances) and statistics (JSON,
CSV, monthly report): refused or absent; each sees its own; a consult asked in Hà Nội and answered
from Quảng Ninh is seen by both; a hospital without a province is seen by neither.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from typing import Any

import aiohttp
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, select, text

from server.policy.scope import NETWORK, NOTHING, Scope, scope_for, sees
from server.records import consults, migrate
from server.records.models import Consult, Database, User, utcnow
from server.runtime.settings import normalize_database_url
from tests.conftest import Instance, add_user, login, until
from tests.system.test_consults import ask
from tests.system.test_rounds import http, new_round, schedule, user_id

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
HANOI_DOH, QN_DOH = "soyte.supervisor", "quangninh.supervisor"
SUPERVISORS = (HANOI_DOH, QN_DOH)
HANOI_HOSPITALS = {"xanhpon", "bavi-dgh", "bavi-ttyt", "tyt-tanlinh", "tyt-batrai", "soyte-hanoi"}
QN_HOSPITALS = {"qn-dkt", "ttyt-tienyen", "ttyt-vandon", "soyte-quangninh"}


# The rule itself, as pure functions.


def test_the_scope_of_each_kind_of_reader() -> None:
    provinces = {"bavi-dgh": "hanoi", "xanhpon": "hanoi", "qn-dkt": "quangninh", "tyt-new": None}
    hanoi = scope_for("supervisor", "soyte-hanoi", "authority", "hanoi")
    assert hanoi == Scope("province", "hanoi") and hanoi.hospitals(provinces) == {"bavi-dgh", "xanhpon"}
    assert scope_for("supervisor", "soyte-quangninh", "authority", "quangninh").hospitals(provinces) == {"qn-dkt"}
    # A Department of Health without a province sees nothing; no province is matched by None.
    assert scope_for("supervisor", "soyte-x", "authority", None) == NOTHING
    assert NOTHING.hospitals(provinces) == frozenset()
    # A supervisor at a hospital sees that hospital, whatever its province; an admin everything.
    assert scope_for("supervisor", "tyt-new", "commune", None).hospitals(provinces) == {"tyt-new"}
    assert scope_for("admin", "soyte-hanoi", "authority", "hanoi") == NETWORK
    assert NETWORK.hospitals(provinces) is None
    # A consult between two provinces is seen from both.
    assert sees(frozenset({"qn-dkt"}), "bavi-dgh", "qn-dkt") and sees(frozenset({"bavi-dgh"}), "bavi-dgh", "qn-dkt")
    assert not sees(frozenset({"qn-dkt"}), "bavi-dgh", None) and sees(None, "anything")
    # Keys survive Redis and room names; an unreadable key names nothing, never more.
    for scope in (hanoi, NETWORK, NOTHING, Scope("hospital", "bavi-dgh")):
        assert Scope.from_key(scope.key) == scope
    for bad in ("", "province", "province:", "hospital:", "galaxy:far", "network:x"):
        assert Scope.from_key(bad) == NOTHING


# Consults, records, minutes, FHIR, attachments, notes, the consult list.


async def ids_of(instance: Instance) -> dict[str, str]:
    async with instance.services.db.session() as session:
        return {u.username: u.id for u in (await session.scalars(select(User))).all()}


async def accepted_consult(instance: Instance, requester: str, specialist: str, specialty: str) -> Consult:
    """An active consult asked by `requester` (at their hospital) and accepted by `specialist`."""
    ids = await ids_of(instance)
    async with instance.services.db.session() as session:
        hospital_id = (await session.get(User, ids[requester])).hospital_id  # type: ignore[union-attr]
    created, _ = await consults.create(
        instance.services.db,
        op_id=uuid.uuid4().hex,
        requester_id=ids[requester],
        hospital_id=hospital_id,
        specialty=specialty,
        urgency="routine",
        patient={"ref": f"PROV-{requester}", "summary": f"Bệnh nhân của {requester}"},
        named_specialist_id=None,
    )
    active = await consults.transition(
        instance.services.db,
        created,
        "accepted",
        ids[specialist],
        status="active",
        specialist_id=ids[specialist],
        started_at=utcnow(),
    )
    assert active is not None
    return active


async def get(instance: Instance, token: str, path: str, accept: str = "application/json") -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {token}", "Accept": accept}
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.get(instance.url + path) as resp:
            return resp.status, await resp.read()


async def attach(instance: Instance, token: str, consult_id: str) -> str:
    form = aiohttp.FormData()
    form.add_field("file", PNG, filename="phim.png", content_type="image/png")
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        async with http.post(f"{instance.url}/api/consults/{consult_id}/attachments", data=form) as resp:
            body = await resp.json()
            assert resp.status == 201, body
            return str(body["attachment"]["id"])


async def written(clients: Any, instance: Instance, author: str, consult: Consult) -> None:
    """A note on the consult, by its requester, over their socket."""
    client = await clients(instance, author)
    note = {"consult_id": consult.id, "op_id": uuid.uuid4().hex, "section": "plan", "text": f"Kế hoạch {author}"}
    ack = await client.call("note:add", note)
    assert ack["ok"], ack


async def test_each_department_reads_its_own_province_and_the_shared_consult_only(
    two_instances: tuple[Instance, Instance], clients: Any, database_url: str
) -> None:
    a, b = two_instances
    tokens = {u: await login(a.url, u) for u in (*SUPERVISORS, "bavi.clinician", "tienyen.clinician")}
    hanoi = await accepted_consult(a, "bavi.clinician", "xanhpon.surgeon", "surgery")
    quangninh = await accepted_consult(a, "tienyen.clinician", "quangninh.trauma", "trauma")
    # Asked at Ba Vì (Hà Nội), answered from the Quảng Ninh provincial hospital: both provinces'.
    shared = await accepted_consult(a, "bavi.clinician", "quangninh.dialysis", "dialysis")
    attachments = {}
    for consult, requester in ((hanoi, "bavi.clinician"), (quangninh, "tienyen.clinician"), (shared, "bavi.clinician")):
        await written(clients, a, requester, consult)
        attachments[consult.id] = await attach(a, tokens[requester], consult.id)

    sees_them = {HANOI_DOH: {hanoi.id, shared.id}, QN_DOH: {quangninh.id, shared.id}}
    for supervisor in SUPERVISORS:
        token = tokens[supervisor]
        socket = await clients(b, supervisor)
        for consult in (hanoi, quangninh, shared):
            visible = consult.id in sees_them[supervisor]
            paths = [
                f"/api/consults/{consult.id}",
                f"/api/consults/{consult.id}/minutes",
                f"/api/consults/{consult.id}/fhir",
                f"/api/consults/{consult.id}/attachments/{attachments[consult.id]}",
            ]
            for path in paths:
                status, body = await get(b, token, path)
                if visible:
                    assert status == 200, (supervisor, path, body[:200])
                else:
                    assert status == 403 and b'"forbidden"' in body, (supervisor, path, status, body[:200])
                    assert consult.patient["summary"].encode() not in body
            ack = await socket.call("note:list", {"consult_id": consult.id})
            if visible:
                assert ack["ok"] and [n["text"] for n in ack["notes"]], (supervisor, ack)
            else:
                assert ack["error"]["code"] == "forbidden", (supervisor, ack)

        status, body = await get(b, token, "/api/consults")
        assert status == 200
        listed = {c["id"] for c in json.loads(body)["consults"]}
        assert listed & {hanoi.id, quangninh.id, shared.id} == sees_them[supervisor], supervisor


async def test_a_hospital_without_a_province_is_seen_by_no_department_until_an_admin_sets_it(
    instance: Instance, database_url: str
) -> None:
    admin = await login(instance.url, "admin")
    headers = {"Authorization": f"Bearer {admin}"}
    async with aiohttp.ClientSession(base_url=instance.url, headers=headers) as http:
        new = {"id": "tyt-moi", "name": "Trạm Y tế xã Mới", "level": "commune"}
        async with http.post("/api/admin/hospitals", json=new) as resp:
            assert resp.status == 201
            assert (await resp.json())["hospital"] == {
                **new,
                "province": None,
                "province_name": None,
                "record_consults": False,
            }
        # The code is one spelling only: a name, spaces, accents or capitals are refused.
        for bad in ("Hà Nội", "Ha Noi", "HANOI", "h", "x" * 33, 7, ""):
            async with http.patch("/api/admin/hospitals/tyt-moi", json={"province": bad}) as resp:
                body = await resp.json()
                assert resp.status == 400 and body["error"]["code"] == "invalid", (bad, body)
                assert "province" in body["error"]["message"]
    await add_user(database_url, "moi.clinician", "clinician", "tyt-moi")
    consult = await accepted_consult(instance, "moi.clinician", "xanhpon.surgeon", "surgery")
    # Answered from Xanh Pôn, so Hà Nội's Department sees it already; one nobody answered is the test.
    unanswered, _ = await consults.create(
        instance.services.db,
        op_id=uuid.uuid4().hex,
        requester_id=(await ids_of(instance))["moi.clinician"],
        hospital_id="tyt-moi",
        specialty="ent",
        urgency="routine",
        patient={"ref": "MOI-1", "summary": ""},
        named_specialist_id=None,
    )
    tokens = {u: await login(instance.url, u) for u in SUPERVISORS}
    for supervisor in SUPERVISORS:
        status, _ = await get(instance, tokens[supervisor], f"/api/consults/{unanswered.id}")
        assert status == 403, supervisor
    status, _ = await get(instance, tokens[HANOI_DOH], f"/api/consults/{consult.id}")
    assert status == 200

    async with aiohttp.ClientSession(base_url=instance.url, headers=headers) as http:
        change = {"province": "quangninh", "province_name": "Quảng Ninh"}
        async with http.patch("/api/admin/hospitals/tyt-moi", json=change) as resp:
            assert resp.status == 200
            assert (await resp.json())["hospital"]["province"] == "quangninh"
    # At the next read, not at the next sign-in.
    assert (await get(instance, tokens[QN_DOH], f"/api/consults/{unanswered.id}"))[0] == 200
    assert (await get(instance, tokens[HANOI_DOH], f"/api/consults/{unanswered.id}"))[0] == 403

    async with aiohttp.ClientSession(base_url=instance.url, headers=headers) as http:
        async with http.patch("/api/admin/hospitals/tyt-moi", json={"province": None}) as resp:
            assert resp.status == 200 and (await resp.json())["hospital"]["province"] is None
        async with http.get("/api/admin/hospitals") as resp:
            listed = (await resp.json())["hospitals"]
    assert listed[0]["id"] == "tyt-moi"  # the ones still to set come first
    assert (await get(instance, tokens[QN_DOH], f"/api/consults/{unanswered.id}"))[0] == 403


# Rounds.


async def test_each_department_sees_its_own_provinces_rounds_only(instance: Instance) -> None:
    hanoi = await new_round(instance)  # at Ba Vì, led from Xanh Pôn
    lead = await user_id(instance, "quangninh.trauma")
    status, body = await http(instance, "tienyen.clinician", "POST", "/api/rounds", qn_round(lead))
    assert status == 201, body
    quangninh = body["round"]
    own = {HANOI_DOH: hanoi["id"], QN_DOH: quangninh["id"]}
    for supervisor in SUPERVISORS:
        other = quangninh["id"] if supervisor == HANOI_DOH else hanoi["id"]
        status, body = await http(instance, supervisor, "GET", f"/api/rounds/{own[supervisor]}")
        assert status == 200, body
        status, body = await http(instance, supervisor, "GET", f"/api/rounds/{other}")
        assert status == 403 and body["error"]["code"] == "forbidden", body
        status, body = await http(instance, supervisor, "GET", "/api/rounds")
        assert status == 200
        listed = {r["id"] for r in body["rounds"]}
        assert own[supervisor] in listed and other not in listed, (supervisor, listed)


def qn_round(lead_id: str) -> dict[str, Any]:
    """A daily round at Tiên Yên led by a specialist of its sister hospital, the Quảng Ninh provincial one."""
    return {
        **schedule(lead_id),
        "title": "Đi buồng Tiên Yên",
        "hospital_id": "ttyt-tienyen",
        "ward": "Nội tổng hợp",
    }


# The board, on two instances.


def consult_ids(board: dict[str, Any]) -> set[str]:
    return {q["id"] for q in board["queue"]} | {s["id"] for s in board["sessions"]}


async def test_each_departments_board_shows_its_province_only_across_instances(
    two_instances: tuple[Instance, Instance], clients: Any
) -> None:
    a, b = two_instances
    boards = {HANOI_DOH: await clients(a, HANOI_DOH, "/monitor"), QN_DOH: await clients(b, QN_DOH, "/monitor")}
    for supervisor, hospitals in ((HANOI_DOH, HANOI_HOSPITALS), (QN_DOH, QN_HOSPITALS)):
        snapshot = await boards[supervisor].next("monitor:snapshot")
        seen = {p["user"]["hospital"]["id"] for p in snapshot["presence"]}
        assert seen and seen <= hospitals, (supervisor, seen)

    # A request at Ba Vì on B, one at Tiên Yên on A; nobody of either specialty is online: queued.
    hanoi = await ask(await clients(b, "bavi.clinician"))
    tienyen_clinician = await clients(a, "tienyen.clinician")
    quangninh = await ask(tienyen_clinician, specialty="trauma")
    # Asked at Ba Vì for dialysis, accepted from Quảng Ninh: on both boards once accepted.
    bavi = await clients(a, "bavi.clinician")
    dialysis = await clients(b, "quangninh.dialysis")
    shared = await ask(bavi, specialty="dialysis")
    await dialysis.next("consult:offer", within=10)
    assert (await dialysis.call("consult:accept", {"consult_id": shared["id"]}))["ok"]

    own = {HANOI_DOH: {hanoi["id"], shared["id"]}, QN_DOH: {quangninh["id"], shared["id"]}}
    for supervisor, board in boards.items():
        update = await until(board, "monitor:update", lambda u, s=supervisor: own[s] <= consult_ids(u), within=10)
        assert consult_ids(update) == own[supervisor], supervisor
    # Every later update, from either instance, still leaves the other province out.
    a.services.board_changed()
    b.services.board_changed()
    moment = utcnow().isoformat()
    for supervisor, board in boards.items():
        later = await until(board, "monitor:update", lambda u: u["server_time"] > moment, within=10)
        assert consult_ids(later) == own[supervisor], supervisor
        text = str(later)
        assert ("Tiên Yên" in text) == (supervisor == QN_DOH) and ("Xanh Pôn" in text) == (supervisor == HANOI_DOH)
        drained = []
        while not board.queue("monitor:update").empty():
            drained.append(board.queue("monitor:update").get_nowait())
        assert all(consult_ids(u) <= own[supervisor] for u in drained), supervisor

    # A board opened now starts from the same view.
    for supervisor in SUPERVISORS:
        snapshot = await (await clients(a if supervisor == QN_DOH else b, supervisor, "/monitor")).next(
            "monitor:snapshot"
        )
        assert consult_ids(snapshot) == own[supervisor], supervisor


# Statistics: JSON, CSV, the monthly report.


async def test_each_departments_statistics_count_its_province_only(instance: Instance) -> None:
    hanoi = await accepted_consult(instance, "bavi.clinician", "xanhpon.surgeon", "surgery")
    quangninh = await accepted_consult(instance, "tienyen.clinician", "quangninh.trauma", "trauma")
    shared = await accepted_consult(instance, "bavi.clinician", "quangninh.dialysis", "dialysis")
    assert hanoi and quangninh and shared
    pairs = {
        HANOI_DOH: {"bavi-dgh>xanhpon", "bavi-dgh>qn-dkt"},
        QN_DOH: {"ttyt-tienyen>qn-dkt", "bavi-dgh>qn-dkt"},
    }
    for supervisor in SUPERVISORS:
        token = await login(instance.url, supervisor)
        status, body = await get(instance, token, "/api/stats?group_by=pair")
        assert status == 200
        figures = json.loads(body)
        assert figures["totals"]["requests"] == 2, (supervisor, figures["totals"])
        assert {g["key"] for g in figures["groups"]} == pairs[supervisor]
        status, body = await get(instance, token, "/api/stats?group_by=pair", accept="text/csv")
        assert status == 200
        rows = list(csv.reader(io.StringIO(body.decode().removeprefix("\ufeff")), delimiter=";"))  # Vietnamese Excel's
        assert {r[0] for r in rows[1:-1]} == pairs[supervisor] and rows[-1][2] == "2"
        status, body = await get(instance, token, "/api/stats/report")
        assert status == 200
        page = body.decode()
        if supervisor == HANOI_DOH:
            assert "Phạm vi: Hà Nội" in page and "Tiên Yên" not in page
        else:
            assert "Phạm vi: Quảng Ninh" in page and "Xanh Pôn" not in page


# The migration.


def _to(revision: str) -> Any:
    def run(connection: Connection) -> None:
        config = Config()
        config.set_main_option("script_location", str(migrate.MIGRATIONS))
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    return run


async def test_the_migration_turns_province_names_into_codes(tmp_path: Any) -> None:
    db = Database(normalize_database_url(f"sqlite:///{tmp_path / 'old.db'}"))
    try:
        async with db.engine.begin() as connection:
            await connection.run_sync(_to("0006"))
            rows = [
                ("bavi-dgh", "Bệnh viện Đa khoa huyện Ba Vì", "district", "Hà Nội"),
                ("soyte-quangninh", "Sở Y tế Quảng Ninh", "authority", "Quảng Ninh"),
                ("tyt-khac", "Trạm Y tế xã Khác", "commune", "Quang Ninh"),
                ("bv-hue", "Bệnh viện Trung ương Huế", "central", "Thừa Thiên Huế"),
            ]
            for row in rows:
                await connection.execute(
                    text("INSERT INTO hospitals (id, name, level, province) VALUES (:i, :n, :l, :p)"),
                    {"i": row[0], "n": row[1], "l": row[2], "p": row[3]},
                )
        await migrate.upgrade(db)
        async with db.engine.connect() as connection:
            found = (await connection.execute(text("SELECT id, province, province_name FROM hospitals"))).all()
        assert sorted(found) == [
            ("bavi-dgh", "hanoi", "Hà Nội"),
            ("bv-hue", None, "Thừa Thiên Huế"),  # no Department of Health sees it until an admin sets it
            ("soyte-quangninh", "quangninh", "Quảng Ninh"),
            ("tyt-khac", "quangninh", "Quang Ninh"),
        ]
    finally:
        await db.close()
