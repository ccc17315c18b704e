"""Administration: hospitals, sister links, accounts, the specialist roster and the audit log.

No HTTP here: `server/http/admin.py` lets only admins in and parses; these functions check what
the records must satisfy, write, and audit every write in the same transaction (who, what,
target, from where; never a password). Deactivating an account takes effect everywhere at
once: see `deactivate`.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, StringConstraints, field_validator
from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.exc import IntegrityError

from server.contract.errors import AppError
from server.contract.validation import Payload
from server.contract.views import (
    AdminRosterEntry,
    AdminUserView,
    AuditEntryView,
    HospitalDetail,
    HospitalRef,
    SisterLinkView,
    admin_roster_entry,
    admin_user_view,
    audit_actor,
    audit_entry_view,
    hospital_detail,
    hospital_ref,
    sister_link,
)
from server.contract.vocabulary import ROLES, Role
from server.live import presence, revocation
from server.policy import matching, passwords
from server.policy.auth import hash_password
from server.records import audit
from server.records.models import (
    AuditEntry,
    CalendarFeed,
    Consult,
    Database,
    Hospital,
    Round,
    SisterLink,
    User,
    new_id,
    utcnow,
)
from server.records.users import Account
from server.runtime.services import Services

LEVELS: tuple[str, ...] = ("central", "city", "provincial", "district", "commune", "authority")
Level = Literal["central", "city", "provincial", "district", "commune", "authority"]


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


Ref = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200), AfterValidator(_not_blank)]
ProvinceName = Annotated[str, StringConstraints(min_length=1, max_length=100), AfterValidator(_not_blank)]
# The length here too, so a short one is refused with the body's other faults; the rest of the
# policy needs the account (its username and name): `server.policy.passwords`, in `_hashed`.
Password = Annotated[str, StringConstraints(min_length=passwords.MIN_LENGTH, max_length=passwords.MAX_LENGTH)]

AUDIT_PAGE_MAX = 200
USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,99}")
HOSPITAL_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
# A province is matched by its code (server/policy/scope.py), so one spelling only: `hanoi`, `quangninh`.
PROVINCE = re.compile(r"[a-z][a-z0-9]{1,31}")
PROVINCE_SHAPE = (
    "a short lowercase code such as hanoi or quangninh: 2 to 32 letters a-z or digits, no spaces or accents"
)


def _shaped(pattern: re.Pattern[str], what: str) -> Any:
    """A `before` validator: strings must match `pattern` whole; other types fail the strict check after."""

    def check(value: Any) -> Any:
        if isinstance(value, str) and pattern.fullmatch(value) is None:
            raise ValueError(what)
        return value

    return check


def _known_specialties(codes: list[str] | None) -> list[str] | None:
    if codes is None:
        return None
    for code in codes:
        if code not in matching.SPECIALTIES:
            raise ValueError(f"unknown specialty {code[:40]!r}; one of {', '.join(matching.SPECIALTIES)}")
    if len(set(codes)) != len(codes):
        raise ValueError("a specialty is listed twice")
    return codes


class NewHospital(Payload):
    id: str | None = None
    name: Name
    level: Level
    # None: no Department of Health sees the hospital until an admin sets it.
    province: str | None = None
    province_name: ProvinceName | None = None

    _id_shape = field_validator("id", mode="before")(
        _shaped(HOSPITAL_ID, "1 to 64 lowercase letters, digits or '-', starting with a letter or digit")
    )
    _province_shape = field_validator("province", mode="before")(_shaped(PROVINCE, PROVINCE_SHAPE))


class HospitalChange(Payload):
    """Fields left out stay as they are; `province: null` (or `province_name: null`) clears it."""

    name: Name | None = None
    level: Level | None = None
    province: str | None = None
    province_name: ProvinceName | None = None
    # True: the hospital's consults are recorded by themselves (server/policy/recording.py).
    record_consults: bool | None = None

    _province_shape = field_validator("province", mode="before")(_shaped(PROVINCE, PROVINCE_SHAPE))

    def changes(self) -> dict[str, Any]:
        """What to set: the fields given; a null name, level or record_consults is not a change."""
        given = {field: getattr(self, field) for field in self.model_fields_set}
        return {k: v for k, v in given.items() if v is not None or k in ("province", "province_name")}


class NewLink(Payload):
    upper_id: Ref
    lower_id: Ref


class NewUser(Payload):
    username: str
    name: Name
    role: Role
    hospital_id: Ref
    specialties: list[str] = Field(default_factory=list)
    password: Password

    @field_validator("specialties")
    @classmethod
    def known(cls, value: list[str]) -> list[str]:
        return _known_specialties(value) or []

    _username_shape = field_validator("username", mode="before")(
        _shaped(USERNAME, "2 to 100 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit")
    )


class UserChange(Payload):
    name: Name | None = None
    specialties: list[str] | None = None
    hospital_id: Ref | None = None

    @field_validator("specialties")
    @classmethod
    def known(cls, value: list[str] | None) -> list[str] | None:
        return _known_specialties(value)


class NewPassword(Payload):
    password: Password


# Views: what the admin screens see. Never a password hash.


def hospital_view(hospital: Hospital) -> HospitalDetail:
    return hospital_detail(
        hospital.id,
        hospital.name,
        hospital.level,
        hospital.province,
        hospital.province_name,
        bool(hospital.record_consults),
    )


def _hospital_ref(hospital: Hospital) -> HospitalRef:
    return hospital_ref(hospital.id, hospital.name, hospital.level)


def user_view(user: User, hospital: Hospital) -> AdminUserView:
    return admin_user_view(
        user.id,
        user.username,
        user.name,
        user.role,
        _hospital_ref(hospital),
        list(user.specialties or []),
        user.active,
        user.created_at,
    )


# Hospitals.


async def hospitals(db: Database) -> list[HospitalDetail]:
    async with db.session() as session:
        # Hospitals without a province first: what an admin has still to set.
        found = (
            await session.scalars(
                select(Hospital).order_by(Hospital.province.is_not(None), Hospital.province, Hospital.name)
            )
        ).all()
    return [hospital_view(h) for h in found]


async def create_hospital(db: Database, actor: Account, body: NewHospital, address: str) -> HospitalDetail:
    hospital = Hospital(
        id=body.id or new_id(),
        name=body.name,
        level=body.level,
        province=body.province,
        province_name=body.province_name,
        record_consults=False,
    )
    try:
        async with db.session() as session, session.begin():
            if await session.get(Hospital, hospital.id) is not None:
                raise AppError("conflict", f"a hospital with id {hospital.id!r} exists already")
            session.add(hospital)
            session.add(
                audit.entry(
                    actor.id, "admin.hospital.create", "hospital", hospital.id, address,
                    f"level={hospital.level} province={hospital.province}",
                )
            )  # fmt: skip
    except IntegrityError:
        raise AppError("conflict", f"a hospital with id {hospital.id!r} exists already") from None
    return hospital_view(hospital)


async def update_hospital(
    db: Database, actor: Account, hospital_id: str, body: HospitalChange, address: str
) -> HospitalDetail:
    changes = body.changes()
    if not changes:
        raise AppError("invalid", "give at least one of name, level, province, province_name, record_consults")
    async with db.session() as session, session.begin():
        hospital = await session.get(Hospital, hospital_id)
        if hospital is None:
            raise AppError("not_found", "no such hospital")
        for field, value in changes.items():
            setattr(hospital, field, value)
        detail = " ".join(f"{k}={v}" for k, v in changes.items())
        session.add(audit.entry(actor.id, "admin.hospital.update", "hospital", hospital.id, address, detail))
    return hospital_view(hospital)


# Sister links.


async def sister_links(db: Database) -> list[SisterLinkView]:
    async with db.session() as session:
        links = (await session.scalars(select(SisterLink))).all()
        named = {h.id: h for h in (await session.scalars(select(Hospital))).all()}
    found = [sister_link(_hospital_ref(named[x.upper_id]), _hospital_ref(named[x.lower_id])) for x in links]
    return sorted(found, key=lambda v: (v["upper"]["name"], v["lower"]["name"]))


async def link(db: Database, actor: Account, body: NewLink, address: str) -> SisterLinkView:
    """Pair an upper-level hospital with a lower-level one: both exist, differ, and are of different levels."""
    if body.upper_id == body.lower_id:
        raise AppError("invalid", "a hospital cannot be its own sister")
    try:
        async with db.session() as session, session.begin():
            upper = await session.get(Hospital, body.upper_id)
            lower = await session.get(Hospital, body.lower_id)
            if upper is None or lower is None:
                raise AppError("invalid", f"unknown hospital {(body.upper_id if upper is None else body.lower_id)!r}")
            if upper.level == lower.level:
                raise AppError("invalid", f"both hospitals are of level {upper.level}; a sister link joins two levels")
            if await session.get(SisterLink, (upper.id, lower.id)) is not None:
                raise AppError("conflict", "these hospitals are linked already")
            session.add(SisterLink(upper_id=upper.id, lower_id=lower.id))
            session.add(audit.entry(actor.id, "admin.link.create", "hospital", upper.id, address, f"lower={lower.id}"))
    except IntegrityError:
        raise AppError("conflict", "these hospitals are linked already") from None
    return sister_link(_hospital_ref(upper), _hospital_ref(lower))


async def unlink(db: Database, actor: Account, upper_id: str, lower_id: str, address: str) -> SisterLinkView:
    async with db.session() as session, session.begin():
        found = await session.get(SisterLink, (upper_id, lower_id))
        if found is None:
            raise AppError("not_found", "no such sister link")
        upper = await session.get(Hospital, upper_id)
        lower = await session.get(Hospital, lower_id)
        await session.delete(found)
        session.add(audit.entry(actor.id, "admin.link.delete", "hospital", upper_id, address, f"lower={lower_id}"))
    assert upper is not None and lower is not None  # a link's hospitals exist (foreign keys)
    return sister_link(_hospital_ref(upper), _hospital_ref(lower))


# Accounts.


async def users(
    db: Database, *, role: str | None = None, hospital_id: str | None = None, active: bool | None = None
) -> list[AdminUserView]:
    query = select(User, Hospital).join(Hospital, User.hospital_id == Hospital.id).order_by(User.username)
    if role is not None:
        query = query.where(User.role == role)
    if hospital_id is not None:
        query = query.where(User.hospital_id == hospital_id)
    if active is not None:
        query = query.where(User.active.is_(active))
    async with db.session() as session:
        rows = (await session.execute(query)).all()
    return [user_view(u, h) for u, h in rows]


def _check_specialties(role: str, specialties: list[str]) -> None:
    if role == "specialist" and not specialties:
        raise AppError("invalid", "specialties: a specialist needs at least one specialty")
    if role != "specialist" and specialties:
        raise AppError("invalid", "specialties: only specialists have specialties")


def _checked_hash(password: str, username: str, name: str) -> str:
    passwords.check(password, username, name)
    return hash_password(password)


async def _hashed(password: str, username: str, name: str) -> str:
    """The hash of a new password that the policy allows (`server.policy.passwords`), else `invalid`.
    argon2 is slow on purpose, and the policy's estimate takes milliseconds: off the event loop."""
    return await asyncio.to_thread(_checked_hash, password, username, name)


async def create_user(db: Database, actor: Account, body: NewUser, address: str) -> AdminUserView:
    _check_specialties(body.role, body.specialties)
    password_hash = await _hashed(body.password, body.username, body.name)
    user = User(
        id=new_id(),
        username=body.username,
        name=body.name,
        role=body.role,
        hospital_id=body.hospital_id,
        specialties=list(body.specialties),
        password_hash=password_hash,
        active=True,
        created_at=utcnow(),
    )
    try:
        async with db.session() as session, session.begin():
            hospital = await session.get(Hospital, body.hospital_id)
            if hospital is None:
                raise AppError("invalid", f"hospital_id: unknown hospital {body.hospital_id!r}")
            if await session.scalar(select(User.id).where(User.username == body.username)) is not None:
                raise AppError("conflict", f"the username {body.username!r} is taken")
            session.add(user)
            detail = f"username={user.username} role={user.role} hospital={hospital.id}"
            if user.specialties:
                detail += f" specialties={','.join(user.specialties)}"
            session.add(audit.entry(actor.id, "admin.user.create", "user", user.id, address, detail))
    except IntegrityError:
        raise AppError("conflict", f"the username {body.username!r} is taken") from None
    return user_view(user, hospital)


async def _user(session: Any, user_id: str) -> tuple[User, Hospital]:
    row = (
        await session.execute(
            select(User, Hospital).join(Hospital, User.hospital_id == Hospital.id).where(User.id == user_id)
        )
    ).first()
    if row is None:
        raise AppError("not_found", "no such user")
    return row[0], row[1]


async def update_user(db: Database, actor: Account, user_id: str, body: UserChange, address: str) -> AdminUserView:
    """Name, specialties, hospital. The caller then has the user's open sockets re-read the
    account (`server.live.revocation.reauthorize`, done by the HTTP handler)."""
    if body.name is None and body.specialties is None and body.hospital_id is None:
        raise AppError("invalid", "give at least one of name, specialties, hospital_id")
    async with db.session() as session, session.begin():
        user, hospital = await _user(session, user_id)
        changed = []
        if body.hospital_id is not None:
            moved = await session.get(Hospital, body.hospital_id)
            if moved is None:
                raise AppError("invalid", f"hospital_id: unknown hospital {body.hospital_id!r}")
            user.hospital_id, hospital = moved.id, moved
            changed.append(f"hospital={moved.id}")
        if body.specialties is not None:
            _check_specialties(user.role, body.specialties)
            user.specialties = list(body.specialties)
            changed.append(f"specialties={','.join(body.specialties)}")
        if body.name is not None:
            user.name = body.name
            changed.append("name")
        session.add(audit.entry(actor.id, "admin.user.update", "user", user.id, address, " ".join(changed)))
    return user_view(user, hospital)


async def _set_active(
    db: Database, actor: Account, user_id: str, active: bool, address: str
) -> tuple[AdminUserView, bool]:
    """The account's view, and whether it was re-activated (inactive until now)."""
    async with db.session() as session, session.begin():
        user, hospital = await _user(session, user_id)
        reactivated = active and not user.active
        if reactivated:
            # A new token generation: no token issued before the deactivation comes back to life.
            user.token_generation += 1
        user.active = active
        action = "admin.user.activate" if active else "admin.user.deactivate"
        session.add(audit.entry(actor.id, action, "user", user.id, address, f"username={user.username}"))
    return user_view(user, hospital), reactivated


async def deactivate(
    services: Services, actor: Account, user_id: str, address: str, *, disconnect: bool = True
) -> AdminUserView:
    """Deactivate an account, effective everywhere at once.

    1. The database: the account can no longer log in, connect, or use its tokens over HTTP
       (`server.records.users.load_account` checks `active` on every request and connect).
    2. Redis `revoked:<id>`: the sockets it still has are refused on their next event, on any
       instance (checked in `signaling.router`), should the disconnect below not reach them.
    3. Its sockets are disconnected, in every namespace, on every instance.

    `disconnect=False` skips step 3 and so stands, in the tests, for that message being lost.
    """
    if user_id == actor.id:
        raise AppError("forbidden", "an admin cannot deactivate their own account")
    view, _ = await _set_active(services.db, actor, user_id, False, address)
    await revocation.revoke(services.redis, user_id)
    # A new stamp too: should Redis lose the key above, an open socket re-reads the account
    # (inactive) at its next event all the same.
    await revocation.bump(services.redis, [user_id])
    if disconnect and services.sio is not None:
        # signaling.redis_manager.RedisManager: this instance's sockets, then a message to the others.
        await services.sio.manager.disconnect_user(user_id)
    services.board_changed()
    return view


async def activate(services: Services, actor: Account, user_id: str, address: str) -> AdminUserView:
    """Let the account sign in again. Only a new sign-in: its earlier tokens stay refused (a new
    token generation), and a socket that outlived the deactivation is closed, on every instance."""
    view, reactivated = await _set_active(services.db, actor, user_id, True, address)
    if reactivated and services.sio is not None:
        await services.sio.manager.disconnect_user(user_id)
    await revocation.restore(services.redis, user_id)
    services.board_changed()
    return view


async def set_password(
    services: Services, actor: Account, user_id: str, body: NewPassword, address: str
) -> AdminUserView:
    """A new password, which ends every sign-in made with the old one: it no longer logs in,
    the tokens issued before it are refused (a new token generation, `server.policy.auth.Token`), the
    user's sockets are disconnected on every instance, so each device asks them to log in, and
    their calendar feed address stops working (whoever had the password could have read it):
    they make a new one from the rounds screen."""
    async with services.db.session() as session:
        user, _ = await _user(session, user_id)
        username, name = user.username, user.name
    password_hash = await _hashed(body.password, username, name)
    async with services.db.session() as session, session.begin():
        user, hospital = await _user(session, user_id)
        user.password_hash = password_hash
        user.token_generation += 1
        await session.execute(delete(CalendarFeed).where(CalendarFeed.user_id == user.id))
        session.add(audit.entry(actor.id, "admin.user.password", "user", user.id, address, f"username={user.username}"))
    # A socket the disconnect below does not reach re-reads its account at its next event and
    # is refused: its sign-in is of the old generation.
    await revocation.bump(services.redis, [user_id])
    if services.sio is not None:
        await services.sio.manager.disconnect_user(user_id)
    return user_view(user, hospital)


# The roster: every specialist, active or not, with live presence.


async def roster(services: Services) -> list[AdminRosterEntry]:
    async with services.db.session() as session:
        rows = (
            await session.execute(
                select(User, Hospital)
                .join(Hospital, User.hospital_id == Hospital.id)
                .where(User.role == "specialist")
                .order_by(Hospital.name, User.name)
            )
        ).all()
    live = await presence.many(services.redis, [u.id for u, _ in rows])
    in_consult = await services.live.in_consult()
    return [
        admin_roster_entry(
            u.id,
            u.username,
            u.name,
            _hospital_ref(h),
            list(u.specialties or []),
            u.active,
            {**live[u.id], "in_consult": u.id in in_consult},
        )
        for u, h in rows
    ]


# The audit log.


@dataclass(frozen=True)
class AuditQuery:
    """Filters of the audit viewer. `before`: the id of the last entry of the previous page."""

    user_id: str | None = None  # entries by this user, or about this user's account
    consult_id: str | None = None
    start: datetime | None = None  # at or after
    end: datetime | None = None  # before
    limit: int = 50
    before: str | None = None
    action: str | None = None  # exactly this action (one of `audit.ACTIONS`)
    patient_ref: str | None = None  # entries about the consults of this patient reference


PATIENT_REF_CONSULTS = 200  # the consults of one patient reference an audit search looks at


def known_action(action: str | None) -> str | None:
    if action is not None and action not in audit.ACTIONS:
        raise AppError("invalid", "action must be one of " + ", ".join(audit.ACTIONS))
    return action


async def audit_page(db: Database, query: AuditQuery) -> dict[str, Any]:
    """Newest first; `next_before` continues with older entries (null on the last page)."""
    select_entries = select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    if query.user_id is not None:
        about = and_(AuditEntry.target_type == "user", AuditEntry.target_id == query.user_id)
        select_entries = select_entries.where(or_(AuditEntry.actor_id == query.user_id, about))
    if query.consult_id is not None:
        about_it = and_(AuditEntry.target_type == "consult", AuditEntry.target_id == query.consult_id)
        select_entries = select_entries.where(or_(about_it, audit.listed(query.consult_id)))  # lists that showed it
    if query.action is not None:
        select_entries = select_entries.where(AuditEntry.action == query.action)
    if query.start is not None:
        select_entries = select_entries.where(AuditEntry.at >= query.start)
    if query.end is not None:
        select_entries = select_entries.where(AuditEntry.at < query.end)
    async with db.session() as session:
        if query.patient_ref is not None:
            # Case as written is not how people remember a reference: matched whatever the case.
            ref = Consult.patient["ref"].as_string()
            ids = (
                await session.scalars(
                    select(Consult.id).where(func.lower(ref) == query.patient_ref.lower()).limit(PATIENT_REF_CONSULTS)
                )
            ).all()
            on_them = and_(AuditEntry.target_type == "consult", AuditEntry.target_id.in_(list(ids)))
            select_entries = select_entries.where(or_(on_them, *(audit.listed(i) for i in ids)))
        if query.before is not None:
            last = await session.get(AuditEntry, query.before)
            if last is None:
                raise AppError("invalid", "before: no such audit entry")
            older = or_(AuditEntry.at < last.at, and_(AuditEntry.at == last.at, AuditEntry.id < last.id))
            select_entries = select_entries.where(older)
        found = list((await session.scalars(select_entries.limit(query.limit + 1))).all())
        page, more = found[: query.limit], len(found) > query.limit
        actor_ids = {e.actor_id for e in page if e.actor_id is not None}
        actors = {u.id: u for u in (await session.scalars(select(User).where(User.id.in_(actor_ids)))).all()}
        labels = await _target_labels(session, page)
    return {
        "entries": [_entry_view(e, actors.get(e.actor_id or ""), labels) for e in page],
        "next_before": page[-1].id if more else None,
    }


async def _target_labels(session: Any, page: list[AuditEntry]) -> dict[tuple[str, str], str]:
    """What each target of the page is called: one read per kind of target, not one per entry."""

    def wanted(kind: str) -> list[str]:
        return sorted({e.target_id for e in page if e.target_type == kind and e.target_id})

    labels: dict[tuple[str, str], str] = {}
    for consult_id, patient in (
        await session.execute(select(Consult.id, Consult.patient).where(Consult.id.in_(wanted("consult"))))
    ).all():
        if isinstance(patient, dict) and patient.get("ref"):
            labels["consult", consult_id] = str(patient["ref"])
    for user_id, name in (await session.execute(select(User.id, User.name).where(User.id.in_(wanted("user"))))).all():
        labels["user", user_id] = name
    hospital_ids = wanted("hospital") + wanted("stats")  # statistics name a hospital, `network` or `province:CODE`
    for hospital_id, name in (
        await session.execute(select(Hospital.id, Hospital.name).where(Hospital.id.in_(hospital_ids)))
    ).all():
        labels["hospital", hospital_id] = labels["stats", hospital_id] = name
    for round_id, title in (
        await session.execute(select(Round.id, Round.title).where(Round.id.in_(wanted("round"))))
    ).all():
        labels["round", round_id] = title
    return labels


def _entry_view(entry: AuditEntry, actor: User | None, labels: dict[tuple[str, str], str]) -> AuditEntryView:
    who = None if actor is None else audit_actor(actor.id, actor.username, actor.name)
    return audit_entry_view(entry, who, labels.get((entry.target_type, entry.target_id)))


def known_role(role: str) -> str:
    if role not in ROLES:
        raise AppError("invalid", f"role must be one of {', '.join(ROLES)}")
    return role


async def signer(services: Services, user_id: str) -> str:
    """The user a signing certificate is uploaded for: someone who takes part in consults."""
    async with services.db.session() as session:
        user, _ = await _user(session, user_id)
    if user.role not in ("clinician", "specialist"):
        raise AppError("invalid", "signing certificates are for clinicians and specialists")
    return user.id
