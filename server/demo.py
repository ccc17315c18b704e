"""Demo data: the Hanoi sister-hospital pair and a Quảng Ninh network, with demo logins.

Idempotent: running it again adds only what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from server.auth import hash_password
from server.records import Database, Hospital, SisterLink, User

HOSPITALS: list[tuple[str, str, str, str]] = [
    # id, name, level, province
    ("xanhpon", "Bệnh viện Đa khoa Xanh Pôn", "city", "Hà Nội"),
    ("bavi-dgh", "Bệnh viện Đa khoa huyện Ba Vì", "district", "Hà Nội"),
    ("bavi-ttyt", "Trung tâm Y tế huyện Ba Vì", "district", "Hà Nội"),
    ("tyt-tanlinh", "Trạm Y tế xã Tản Lĩnh", "commune", "Hà Nội"),
    ("tyt-batrai", "Trạm Y tế xã Ba Trại", "commune", "Hà Nội"),
    ("soyte-hanoi", "Sở Y tế Hà Nội", "authority", "Hà Nội"),
    ("qn-dkt", "Bệnh viện Đa khoa tỉnh Quảng Ninh", "provincial", "Quảng Ninh"),
    ("ttyt-tienyen", "Trung tâm Y tế huyện Tiên Yên", "district", "Quảng Ninh"),
    ("ttyt-vandon", "Trung tâm Y tế huyện Vân Đồn", "district", "Quảng Ninh"),
    ("soyte-quangninh", "Sở Y tế Quảng Ninh", "authority", "Quảng Ninh"),
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
]


async def seed(db: Database, password: str) -> list[DemoUser]:
    """Add the demo hospitals, links and users that are missing; return the demo users."""
    async with db.session() as session, session.begin():
        known = set((await session.scalars(select(Hospital.id))).all())
        for hospital_id, name, level, province in HOSPITALS:
            if hospital_id not in known:
                session.add(Hospital(id=hospital_id, name=name, level=level, province=province))
        await session.flush()
        links = {(row[0], row[1]) for row in await session.execute(select(SisterLink.upper_id, SisterLink.lower_id))}
        for upper, lower in SISTER_LINKS:
            if (upper, lower) not in links:
                session.add(SisterLink(upper_id=upper, lower_id=lower))
        usernames = set((await session.scalars(select(User.username))).all())
        password_hash = None
        for demo in USERS:
            if demo.username in usernames:
                continue
            # One hash for all demo users: argon2 is slow on purpose.
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
    return USERS
