"""The supervisor board on `/monitor`: a snapshot, then whole-board updates as things change,
across instances, scoped to what a supervisor oversees, and with no clinical text. A ward round
in progress is one session: its call, its quality, how many of its patients have a decision."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from server.actions import board
from server.live import keys
from server.policy.scope import Scope
from tests.conftest import Instance, StartInstance, add_user, until
from tests.system.test_consults import ask
from tests.system.test_rounds import join as join_round
from tests.system.test_rounds import new_round
from tests.system.test_rtc import active_consult, join

HANOI, BAVI = Scope("province", "hanoi"), Scope("hospital", "bavi-dgh")


def session_of(board: dict[str, Any], consult_id: str) -> dict[str, Any] | None:
    return next((s for s in board["sessions"] if s["id"] == consult_id), None)


async def test_the_board_follows_a_consult_from_queue_to_call_to_the_days_count(
    two_instances: tuple[Instance, Instance], clients
) -> None:
    a, b = two_instances
    supervisor = await clients(a, "soyte.supervisor", namespace="/monitor")
    board = await supervisor.next("monitor:snapshot")
    surgeons = [p for p in board["presence"] if "surgery" in p["specialties"]]
    assert {p["user"]["name"] for p in surgeons} >= {"BS. Lê Minh Đức"}
    assert board["queue"] == [] and board["sessions"] == []

    # A clinician at Ba Vì asks while no surgeon is connected: the request waits in the queue.
    clinician = await clients(b, "bavi.clinician")
    consult = await ask(clinician)
    board = await until(supervisor, "monitor:update", lambda u: any(q["id"] == consult["id"] for q in u["queue"]))
    waiting = next(q for q in board["queue"] if q["id"] == consult["id"])
    assert waiting["hospital"]["id"] == "bavi-dgh" and waiting["specialty"] == "surgery"
    assert "BV-0042" not in json.dumps(board) and "Đau bụng" not in json.dumps(board)  # no clinical text

    # A specialist at Xanh Pôn comes online on the other instance, accepts, and both join the call.
    surgeon = await clients(b, "xanhpon.surgeon")
    await surgeon.next("consult:offer", within=10)
    assert (await surgeon.call("consult:accept", {"consult_id": consult["id"]}))["ok"]
    await join(clinician, consult["id"])
    await join(surgeon, consult["id"])
    quality = {"consult_id": consult["id"], "rtt_ms": 180, "loss_pct": 2.5, "bitrate_kbps": 600}
    assert (await surgeon.call("rtc:stats", quality))["ok"]
    board = await until(
        supervisor,
        "monitor:update",
        lambda u: (
            len((session_of(u, consult["id"]) or {}).get("participants", [])) == 2
            and bool((session_of(u, consult["id"]) or {}).get("quality"))
        ),
    )
    live = session_of(board, consult["id"])
    assert live is not None and board["queue"] == []
    assert {p["user"]["name"] for p in live["participants"]} == {"BS. Nguyễn Văn Hùng", "BS. Lê Minh Đức"}
    assert live["specialist"]["hospital"]["id"] == "xanhpon" and live["duration_s"] >= 0
    assert [s["rtt_ms"] for s in live["quality"].values()] == [180]
    busy = next(p for p in board["presence"] if p["user"]["name"] == "BS. Lê Minh Đức")
    assert busy["in_consult"] is True and busy["online"] is True

    ack = await clinician.call("consult:end", {"consult_id": consult["id"], "outcome": "treated_locally"})
    assert ack["ok"], ack
    board = await until(supervisor, "monitor:update", lambda u: u["sessions"] == [] and u["stats"]["today"]["ended"])
    today = board["stats"]["today"]
    assert (today["requests"], today["accepted"], today["ended"], today["referrals_avoided"]) == (1, 1, 1, 1)


async def test_a_request_waiting_past_the_alert_is_flagged_overdue(start_instance: StartInstance, clients) -> None:
    """WAIT_ALERT_S: the board flags the row by itself (its periodic refresh, BOARD_REFRESH_S,
    here 1 s instead of 15 so the test does not wait it out), nobody has to act."""
    instance = await start_instance(WAIT_ALERT_S="2", BOARD_REFRESH_S="1")
    supervisor = await clients(instance, "soyte.supervisor", namespace="/monitor")
    await supervisor.next("monitor:snapshot")
    consult = await ask(await clients(instance, "bavi.clinician"), specialty="obstetrics")

    def row(u: dict[str, Any]) -> dict[str, Any] | None:
        return next((q for q in u["queue"] if q["id"] == consult["id"]), None)

    fresh = await until(supervisor, "monitor:update", lambda u: row(u) is not None)
    assert (row(fresh) or {})["overdue"] is False
    late = await until(supervisor, "monitor:update", lambda u: (row(u) or {}).get("overdue") is True, within=25)
    assert (row(late) or {})["waiting_s"] >= 2


async def test_a_hospital_supervisor_sees_only_what_involves_their_hospital(
    instance: Instance, clients, database_url: str
) -> None:
    await add_user(database_url, "bavi.supervisor", "supervisor", "bavi-dgh")
    await add_user(database_url, "tienyen.supervisor", "supervisor", "ttyt-tienyen")
    bavi = await clients(instance, "bavi.supervisor", namespace="/monitor")
    tienyen = await clients(instance, "tienyen.supervisor", namespace="/monitor")
    network = await clients(instance, "soyte.supervisor", namespace="/monitor")
    first = await bavi.next("monitor:snapshot")
    # Ba Vì's supervisor sees the specialists who serve Ba Vì: its sister hospital Xanh Pôn's.
    assert {p["user"]["hospital"]["id"] for p in first["presence"]} == {"xanhpon"}
    assert {p["user"]["hospital"]["id"] for p in (await tienyen.next("monitor:snapshot"))["presence"]} == {"qn-dkt"}
    await network.next("monitor:snapshot")

    clinician = await clients(instance, "bavi.clinician")
    consult = await ask(clinician)
    for watching in (bavi, network):
        await until(watching, "monitor:update", lambda u: any(q["id"] == consult["id"] for q in u["queue"]))
    # Every round of updates sends each scope its board; Tiên Yên's never shows Ba Vì's request.
    instance.services.board_changed()
    later = await until(tienyen, "monitor:update", lambda u: u["server_time"] > consult["created_at"])
    assert later["queue"] == [] and later["stats"]["today"]["requests"] == 0


async def test_boards_are_built_only_for_the_scopes_open_on_some_instance(
    two_instances: tuple[Instance, Instance], clients, database_url: str
) -> None:
    a, b = two_instances
    redis = a.services.redis
    # Nobody has a board open: a burst of connects and changes builds none.
    assert await board.watched(redis) == set()
    await add_user(database_url, "bavi.supervisor", "supervisor", "bavi-dgh")
    hanoi = await clients(a, "soyte.supervisor", namespace="/monitor")
    bavi = await clients(b, "bavi.supervisor", namespace="/monitor")
    await hanoi.next("monitor:snapshot")
    await bavi.next("monitor:snapshot")
    # The Hà Nội Department of Health watches its province's board, Ba Vì's supervisor Ba Vì's.
    assert await board.watched(redis) == {HANOI, BAVI}

    # A board left on a crashed instance lapses: it is not built, and the next keep-alive drops it.
    await redis.zadd(keys.MONITOR_WATCHERS, {"hospital:ttyt-tienyen|deadbeef0000~gone": time.time() - 1})
    assert await board.watched(redis) == {HANOI, BAVI}
    await board.keep_watching(redis, {}, ttl_s=30)
    assert await redis.zcard(keys.MONITOR_WATCHERS) == 2

    # A change on either instance reaches the board open on the other.
    clinician = await clients(b, "bavi.clinician")
    consult = await ask(clinician)
    await until(hanoi, "monitor:update", lambda u: any(q["id"] == consult["id"] for q in u["queue"]))

    await bavi.close()
    for _ in range(50):
        if await board.watched(redis) == {HANOI}:
            break
        await asyncio.sleep(0.1)
    assert await board.watched(redis) == {HANOI}


def round_session(board: dict[str, Any], round_id: str) -> dict[str, Any] | None:
    return next((s for s in board["sessions"] if s["kind"] == "round" and s["round"]["id"] == round_id), None)


async def test_a_ward_round_in_progress_is_one_session_with_its_call_and_progress(
    two_instances: tuple[Instance, Instance], clients, database_url: str
) -> None:
    a, b = two_instances
    await add_user(database_url, "tienyen.supervisor", "supervisor", "ttyt-tienyen")
    supervisor = await clients(a, "soyte.supervisor", namespace="/monitor")
    tienyen = await clients(a, "tienyen.supervisor", namespace="/monitor")
    await supervisor.next("monitor:snapshot")
    await tienyen.next("monitor:snapshot")

    # A clinician at Ba Vì schedules a daily round led by a specialist at Xanh Pôn, three patients;
    # both join its call on different instances and the lead reports the call's quality.
    created = await new_round(a)
    rid = created["id"]
    clinician = await clients(a, "bavi.clinician")
    lead = await clients(b, "xanhpon.icu")
    await join_round(clinician, rid)
    joined = await join_round(lead, rid)
    patients = joined["round"]["patients"]
    assert (await lead.call("rtc:stats", {"round_id": rid, "rtt_ms": 240, "loss_pct": 1.5}))["ok"]

    def shows_the_call(u: dict[str, Any]) -> bool:
        live = round_session(u, rid)
        return live is not None and len(live["participants"]) == 2 and bool(live["quality"])

    board = await until(supervisor, "monitor:update", shows_the_call)
    live = round_session(board, rid)
    assert live is not None
    assert live["id"] == joined["round"]["session"]["id"]
    assert live["round"] == {
        "id": rid,
        "title": "Đi buồng khoa Hồi sức",
        "ward": "Hồi sức tích cực",
        "patients": 3,
        "decided": 0,
    }
    assert live["hospital"]["id"] == "bavi-dgh" and live["specialist"]["name"] == "BS. Phạm Thu Hà"
    assert {p["user"]["name"] for p in live["participants"]} == {"BS. Nguyễn Văn Hùng", "BS. Phạm Thu Hà"}
    assert [s["rtt_ms"] for s in live["quality"].values()] == [240]
    # One session, not one per patient; and no clinical text (patient references, summaries).
    assert [s["id"] for s in board["sessions"]] == [live["id"]]
    assert board["stats"]["today"]["active"] == 1
    # Its patients are reviewed on a schedule, not requested: no consult request today.
    assert board["stats"]["today"]["requests"] == 0
    text = json.dumps(board, ensure_ascii=False)
    for patient in patients:
        assert patient["consult_id"] not in text
        assert patient["ref"] not in text and patient["summary"] not in text

    # The lead records a decision for one patient: the board counts it.
    decided = {"consult_id": patients[0]["consult_id"], "outcome": "treated_locally"}
    assert (await lead.call("consult:end", decided))["ok"]
    board = await until(
        supervisor, "monitor:update", lambda u: (round_session(u, rid) or {}).get("round", {}).get("decided") == 1
    )
    live = round_session(board, rid)
    assert live is not None and live["round"]["patients"] == 3
    today = board["stats"]["today"]
    assert (today["requests"], today["accepted"], today["referrals_avoided"]) == (0, 0, 1)

    # A supervisor at Tiên Yên oversees neither Ba Vì nor Xanh Pôn: the round is not on their board.
    a.services.board_changed()
    later = await until(
        tienyen, "monitor:update", lambda u: u["server_time"] > joined["round"]["session"]["started_at"]
    )
    assert later["sessions"] == []

    # The round ends: its session leaves the board.
    assert (await lead.call("round:end", {"round_id": rid}))["ok"]
    await until(supervisor, "monitor:update", lambda u: u["sessions"] == [])


async def test_a_call_whose_link_went_audio_only_is_shown_on_the_board(start_instance: StartInstance, clients) -> None:
    a, b = await start_instance(), await start_instance()
    supervisor = await clients(a, "soyte.supervisor", namespace="/monitor")
    await supervisor.next("monitor:snapshot")
    clinician, surgeon, consult = await active_consult(clients, a, b)
    await join(clinician, consult["id"])
    second = await join(surgeon, consult["id"])
    peer = second["peers"][0]["peer_id"]  # the clinician at Ba Vì

    def audio_only(u: dict[str, Any]) -> bool:
        live = session_of(u, consult["id"]) or {}
        return any(s.get("audio_only_link") for s in live.get("quality", {}).values())

    # The specialist's video to Ba Vì stopped for the weak link: the clinician is told, and the board shows it.
    signal = {"consult_id": consult["id"], "to": peer, "data": {"link": "audio_only"}}
    assert (await surgeon.call("rtc:signal", signal))["ok"]
    told = await clinician.next("rtc:signal")
    assert told["data"] == {"link": "audio_only"} and told["from"] == second["peer_id"]
    await until(supervisor, "monitor:update", audio_only)
    # Video back: the board no longer shows it.
    assert (await surgeon.call("rtc:signal", {**signal, "data": {"link": "ok"}}))["ok"]
    await until(supervisor, "monitor:update", lambda u: session_of(u, consult["id"]) is not None and not audio_only(u))
    bad = {**signal, "data": {"link": "video_only"}}
    assert (await surgeon.call("rtc:signal", bad))["error"]["code"] == "invalid"
