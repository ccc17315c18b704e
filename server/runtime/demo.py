"""Demo data: the Hanoi sister-hospital pair and a Quảng Ninh network, with demo logins.

Idempotent: running it again adds only what is missing. When it creates the demo logins (the
first seed) it can also add about three months of closed demo consults, so the statistics and
the monthly report have something to show: see `history`.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import insert, select

from server.policy.auth import hash_password
from server.records.consults import VIETNAM
from server.records.models import (
    Base,
    Consult,
    ConsultEvent,
    Database,
    Hospital,
    Round,
    RoundPatient,
    SisterLink,
    User,
)

HOSPITALS: list[tuple[str, str, str, str, str]] = [
    # id, name, level, province (code), province name
    ("xanhpon", "Bệnh viện Đa khoa Xanh Pôn", "city", "hanoi", "Hà Nội"),
    ("bavi-dgh", "Bệnh viện Đa khoa huyện Ba Vì", "district", "hanoi", "Hà Nội"),
    ("bavi-ttyt", "Trung tâm Y tế huyện Ba Vì", "district", "hanoi", "Hà Nội"),
    ("tyt-tanlinh", "Trạm Y tế xã Tản Lĩnh", "commune", "hanoi", "Hà Nội"),
    ("tyt-batrai", "Trạm Y tế xã Ba Trại", "commune", "hanoi", "Hà Nội"),
    ("soyte-hanoi", "Sở Y tế Hà Nội", "authority", "hanoi", "Hà Nội"),
    ("qn-dkt", "Bệnh viện Đa khoa tỉnh Quảng Ninh", "provincial", "quangninh", "Quảng Ninh"),
    ("ttyt-tienyen", "Trung tâm Y tế huyện Tiên Yên", "district", "quangninh", "Quảng Ninh"),
    ("ttyt-vandon", "Trung tâm Y tế huyện Vân Đồn", "district", "quangninh", "Quảng Ninh"),
    ("soyte-quangninh", "Sở Y tế Quảng Ninh", "authority", "quangninh", "Quảng Ninh"),
]

SISTER_LINKS: list[tuple[str, str]] = [
    ("xanhpon", "bavi-dgh"),
    ("xanhpon", "bavi-ttyt"),
    ("qn-dkt", "ttyt-tienyen"),
    ("qn-dkt", "ttyt-vandon"),
]


@dataclass(frozen=True)
class DemoUser:
    username: str
    name: str
    role: str
    hospital_id: str
    specialties: tuple[str, ...] = ()


USERS: list[DemoUser] = [
    DemoUser("bavi.clinician", "BS. Nguyễn Văn Hùng", "clinician", "bavi-dgh"),
    DemoUser("bavi.nurse", "ĐD. Trần Thị Lan", "clinician", "bavi-ttyt"),
    DemoUser("xanhpon.surgeon", "BS. Lê Minh Đức", "specialist", "xanhpon", ("surgery",)),
    DemoUser("xanhpon.icu", "BS. Phạm Thu Hà", "specialist", "xanhpon", ("icu",)),
    DemoUser("xanhpon.obgyn", "BS. Đỗ Thị Mai", "specialist", "xanhpon", ("obstetrics",)),
    DemoUser("soyte.supervisor", "Vũ Quang Minh", "supervisor", "soyte-hanoi"),
    DemoUser("admin", "Quản trị hệ thống", "admin", "soyte-hanoi"),
    DemoUser("quangninh.trauma", "BS. Hoàng Văn Nam", "specialist", "qn-dkt", ("trauma", "surgery")),
    DemoUser("quangninh.dialysis", "BS. Ngô Thị Hoa", "specialist", "qn-dkt", ("dialysis", "internal")),
    DemoUser("tienyen.clinician", "BS. Bùi Văn Tùng", "clinician", "ttyt-tienyen"),
    # The Quảng Ninh Department of Health: oversees Quảng Ninh's hospitals only (server/policy/scope.py).
    DemoUser("quangninh.supervisor", "Trịnh Thị Thu", "supervisor", "soyte-quangninh"),
]


async def seed(db: Database, password: str, *, history: bool = True) -> list[DemoUser]:
    """Add the demo hospitals, links and users that are missing; return the demo users.

    With `history`, the call that creates the demo logins also adds the demo history (in the
    same transaction); a database that already had them is left as it is.
    """
    async with db.session() as session, session.begin():
        known = set((await session.scalars(select(Hospital.id))).all())
        for hospital_id, name, level, province, province_name in HOSPITALS:
            if hospital_id not in known:
                session.add(
                    Hospital(id=hospital_id, name=name, level=level, province=province, province_name=province_name)
                )
        await session.flush()
        links = {(row[0], row[1]) for row in await session.execute(select(SisterLink.upper_id, SisterLink.lower_id))}
        for upper, lower in SISTER_LINKS:
            if (upper, lower) not in links:
                session.add(SisterLink(upper_id=upper, lower_id=lower))
        usernames = set((await session.scalars(select(User.username))).all())
        first_seed = not usernames & {demo.username for demo in USERS}
        password_hash = None
        for demo in USERS:
            if demo.username in usernames:
                continue
            # One hash for all demo users: argon2 is slow on purpose. Not checked against the
            # password rules (`server.policy.passwords`): "demo" is for trying the service (`make run`).
            password_hash = password_hash or hash_password(password)
            session.add(
                User(
                    username=demo.username,
                    name=demo.name,
                    role=demo.role,
                    hospital_id=demo.hospital_id,
                    specialties=list(demo.specialties),
                    password_hash=password_hash,
                    active=True,
                )
            )
        if history and first_seed:
            await session.flush()
            accounts = {
                row.username: (row.id, row.hospital_id)
                for row in await session.execute(
                    select(User.username, User.id, User.hospital_id).where(
                        User.username.in_([demo.username for demo in USERS])
                    )
                )
            }
            consult_rows, event_rows = history_rows(accounts, datetime.now(VIETNAM).date())
            # Core inserts of plain rows: the ORM's bulk path takes a second for these.
            tables = Base.metadata.tables
            await session.execute(insert(tables[Consult.__tablename__]), consult_rows)
            await session.execute(insert(tables[ConsultEvent.__tablename__]), event_rows)
            ids = {username: user_id for username, (user_id, _) in accounts.items()}
            for row in demo_round(ids, datetime.now(VIETNAM).date()):
                session.add(row)
                await session.flush()  # the round before its patients
    return USERS


# The demo ward round.

DEMO_ROUND_PATIENTS: list[tuple[str, str, str]] = [
    # bed, patient reference, summary
    ("2", "DEMO-R-001", "Nam 67 tuổi, viêm phổi nặng, thở oxy qua mask (dữ liệu demo)"),
    ("4", "DEMO-R-002", "Nữ 54 tuổi, sốc nhiễm khuẩn ngày 3, đang dùng vận mạch (dữ liệu demo)"),
    ("7", "DEMO-R-003", "Nam 45 tuổi, theo dõi sau mổ thoát vị bẹn nội soi ngày 1 (dữ liệu demo)"),
]


def demo_round(ids: dict[str, str], today: date) -> list[Round | RoundPatient]:
    """A daily 09:00 round of Ba Vì's intensive care ward led by xanhpon.icu, from `today` on."""
    item = Round(
        id="demo-bavi-hoi-suc",
        title="Đi buồng điện tử — Hồi sức tích cực",
        hospital_id="bavi-dgh",
        ward="Khoa Hồi sức tích cực",
        starts_at=datetime.combine(today, time(9), VIETNAM),
        duration_min=60,
        recurrence="daily",
        until=None,
        skipped=[],
        lead_specialist_id=ids["xanhpon.icu"],
        participant_ids=[ids["xanhpon.surgeon"]],
        created_by=ids["bavi.clinician"],
        version=1,
    )
    patients: list[Round | RoundPatient] = [
        RoundPatient(
            round_id=item.id, position=position, bed=bed, ref=ref, summary=summary, added_by=ids["bavi.clinician"]
        )
        for position, (bed, ref, summary) in enumerate(DEMO_ROUND_PATIENTS, start=1)
    ]
    return [item, *patients]


# Demo history.

HISTORY_SEED = 20240915
HISTORY_DAYS = 91
DEMO_PATIENT_SUMMARY = "Ca minh hoạ (dữ liệu demo)"
DEMO_CONCLUSION = "Kết luận minh hoạ (dữ liệu demo)"

# requester, specialist, specialty, weight: mostly Ba Vì asking Xanh Pôn.
HISTORY_PAIRS: list[tuple[str, str, str, int]] = [
    ("bavi.clinician", "xanhpon.surgeon", "surgery", 26),
    ("bavi.clinician", "xanhpon.icu", "icu", 16),
    ("bavi.clinician", "xanhpon.obgyn", "obstetrics", 14),
    ("bavi.nurse", "xanhpon.surgeon", "surgery", 8),
    ("bavi.nurse", "xanhpon.obgyn", "obstetrics", 6),
    ("bavi.nurse", "xanhpon.icu", "icu", 4),
    ("bavi.clinician", "quangninh.dialysis", "internal", 3),
    ("tienyen.clinician", "quangninh.trauma", "trauma", 8),
    ("tienyen.clinician", "quangninh.dialysis", "dialysis", 6),
    ("tienyen.clinician", "quangninh.dialysis", "internal", 5),
]
URGENCY_WEIGHTS = {"routine": 60, "urgent": 30, "emergency": 10}
OFFER_SECONDS = {"routine": 30, "urgent": 15, "emergency": 30}
QUEUED_SECONDS = {"routine": (60.0, 900.0), "urgent": (30.0, 300.0), "emergency": (10.0, 90.0)}
OUTCOME_WEIGHTS = {"treated_locally": 90, "transfer": 5, "follow_up": 3, "onsite_support": 2}


def history_rows(
    accounts: dict[str, tuple[str, str]], today: date, seed: int = HISTORY_SEED
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Closed demo consults for the `HISTORY_DAYS` days before `today` (Vietnam time), with their
    timelines: the same `accounts` (username → (user id, hospital id)), day and seed give the same rows.

    About 94% are accepted and ended (90% of those treated locally), 3% go unanswered (offers
    lapse, then the requester cancels) and 3% are cancelled before anyone answered. No notes;
    patients are `DEMO-nnnn` with a generic summary. Everything is marked `demo`.
    """
    rng = random.Random(seed)
    consults: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    pair_weights = [p[3] for p in HISTORY_PAIRS]
    for back in range(HISTORY_DAYS, 0, -1):
        day = today - timedelta(days=back)
        for _ in range(rng.randint(3, 7) if day.weekday() < 5 else rng.randint(0, 2)):
            requester, specialist, specialty, _weight = rng.choices(HISTORY_PAIRS, pair_weights)[0]
            urgency = rng.choices(list(URGENCY_WEIGHTS), list(URGENCY_WEIGHTS.values()))[0]
            hours = rng.uniform(0, 23) if urgency == "emergency" else rng.uniform(7, 17.5)  # all over by midnight
            created = datetime.combine(day, time(), VIETNAM) + timedelta(hours=hours)
            n = len(consults) + 1
            consult_id = uuid.UUID(int=rng.getrandbits(128), version=4).hex
            requester_id, hospital_id = accounts[requester]
            specialist_id = accounts[specialist][0]
            timeline: list[tuple[datetime, str, str | None, dict[str, Any]]] = [
                (created, "requested", requester_id, {})
            ]
            offer_at = created + timedelta(seconds=rng.uniform(1, 4))
            timeout = timedelta(seconds=OFFER_SECONDS[urgency])
            row: dict[str, Any] = {"specialist_id": None, "started_at": None, "outcome": None, "summary": None}
            fate = rng.random()
            if fate < 0.03:  # unanswered: one or two offers lapse, then the requester gives up
                for _lapse in range(rng.randint(1, 2)):
                    timeline.append((offer_at, "offered", None, {"to": [specialist_id]}))
                    timeline.append((offer_at + timeout, "expired", None, {"to": [specialist_id]}))
                    offer_at += timeout + timedelta(seconds=rng.uniform(60, 300))
                cancelled_at = offer_at + timedelta(seconds=rng.uniform(60, 600))
                timeline.append((cancelled_at, "cancelled", requester_id, {}))
                row.update(status="cancelled", ended_at=cancelled_at)
            elif fate < 0.06:  # cancelled before anyone answered, offered or still queued
                if rng.random() < 0.5:
                    timeline.append((offer_at, "offered", None, {"to": [specialist_id]}))
                cancelled_at = offer_at + timedelta(seconds=rng.uniform(3, OFFER_SECONDS[urgency] - 3))
                timeline.append((cancelled_at, "cancelled", requester_id, {}))
                row.update(status="cancelled", ended_at=cancelled_at)
            else:
                if rng.random() < 0.08:  # the first offer lapsed; the specialist took it when back
                    timeline.append((offer_at, "offered", None, {"to": [specialist_id]}))
                    timeline.append((offer_at + timeout, "expired", None, {"to": [specialist_id]}))
                    offer_at += timeout + timedelta(seconds=rng.uniform(30, 600))
                if rng.random() < 0.4:  # nobody was free: it waited in the queue first
                    offer_at += timedelta(seconds=rng.uniform(*QUEUED_SECONDS[urgency]))
                timeline.append((offer_at, "offered", None, {"to": [specialist_id]}))
                started = offer_at + timedelta(seconds=rng.uniform(3, OFFER_SECONDS[urgency] - 1))
                ended = started + timedelta(minutes=rng.uniform(8, 35))
                outcome = rng.choices(list(OUTCOME_WEIGHTS), list(OUTCOME_WEIGHTS.values()))[0]
                timeline.append((started, "accepted", specialist_id, {}))
                timeline.append((ended, "ended", specialist_id, {"outcome": outcome}))
                row.update(
                    status="ended",
                    specialist_id=specialist_id,
                    started_at=started,
                    ended_at=ended,
                    outcome=outcome,
                    summary=DEMO_CONCLUSION,
                )
            female = specialty == "obstetrics" or rng.random() < 0.5
            consults.append(
                {
                    **row,
                    "id": consult_id,
                    "kind": "consult",
                    "op_id": f"demo-history-{n:04d}",
                    "specialty": specialty,
                    "urgency": urgency,
                    "patient": {
                        "ref": f"DEMO-{n:04d}",
                        "summary": DEMO_PATIENT_SUMMARY,
                        "age": rng.randint(18, 42) if specialty == "obstetrics" else rng.randint(1, 90),
                        "sex": "female" if female else "male",
                    },
                    "requester_id": requester_id,
                    "hospital_id": hospital_id,
                    "named_specialist_id": None,
                    "named_answer": None,
                    "created_at": created,
                    "version": len(timeline),  # one more with each status change after the request
                    "note_seq": 0,
                    "demo": True,
                }
            )
            events.extend(
                {"consult_id": consult_id, "at": at, "kind": kind, "actor_id": actor, "detail": detail}
                for at, kind, actor, detail in timeline
            )
    return consults, events
