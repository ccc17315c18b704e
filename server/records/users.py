"""Users as the rest of the service sees them."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from server.contract import views
from server.contract.errors import AppError
from server.records.models import Hospital, RevokedToken, User
from server.runtime.services import Services


@dataclass(frozen=True, slots=True)  # one per connected socket: no per-instance dict
class Account:
    """A signed-in user with their hospital: what authorization decisions look at."""

    id: str
    username: str
    name: str
    role: str
    hospital_id: str
    hospital_name: str
    hospital_level: str
    specialties: tuple[str, ...]
    # The hospital's province code (None when unset): a Department of Health oversees its province.
    hospital_province: str | None = None
    # Which sign-in this copy belongs to (`server.policy.auth.Token`): a copy kept by an open socket is
    # refused once the password changed.
    token_generation: int = 0
    # Which version of the user's authorization this copy was read at (`server.live.revocation`):
    # an open socket re-reads the account when the version in Redis is another.
    stamp: str = ""

    def public(self) -> views.AccountView:
        return views.account_view(self.id, self.name, self.role, self.hospital(), list(self.specialties))

    def person(self) -> views.Person:
        """The account as others see it (a call's peer, a note's author)."""
        return views.person(self.id, self.name, self.role, self.hospital())

    def hospital(self) -> views.HospitalRef:
        return views.hospital_ref(self.hospital_id, self.hospital_name, self.hospital_level)


def _account(user: User, hospital: Hospital) -> Account:
    return Account(
        id=user.id,
        username=user.username,
        name=user.name,
        role=user.role,
        hospital_id=hospital.id,
        hospital_name=hospital.name,
        hospital_level=hospital.level,
        specialties=tuple(user.specialties or ()),
        hospital_province=hospital.province,
        token_generation=user.token_generation,
    )


async def load_account(
    services: Services, user_id: str, token_generation: int | None = None, token_id: str | None = None
) -> Account:
    """The active account with this id; `unauthorized` when it is gone or deactivated, when
    `token_generation` (a token's) is not the account's (its password changed, or it was
    deactivated and activated again, since), or when the token `token_id` was signed out.
    One query: whether the token is revoked is read with the account."""
    revoked = select(RevokedToken.id).where(RevokedToken.id == (token_id or "")).exists()  # no id: none
    query = select(User, Hospital, revoked).join(Hospital, User.hospital_id == Hospital.id).where(User.id == user_id)
    async with services.db.session() as session:
        row = (await session.execute(query)).first()
    if row is None or not row[0].active:
        raise AppError("unauthorized", "this account is not active; log in again")
    if token_generation is not None and token_generation != row[0].token_generation:
        raise AppError("unauthorized", "the password was changed or the account re-activated; log in again")
    if row[2]:
        raise AppError("unauthorized", "this sign-in has ended (signed out); log in again")
    return _account(row[0], row[1])


@dataclass(frozen=True)
class Credentials:
    """What signing in checks and gives: the account, its password hash, its token generation."""

    account: Account
    password_hash: str
    token_generation: int


async def find_for_login(services: Services, username: str) -> Credentials | None:
    """The credentials of an active account with this username, if there is one."""
    async with services.db.session() as session:
        row = (
            await session.execute(
                select(User, Hospital).join(Hospital, User.hospital_id == Hospital.id).where(User.username == username)
            )
        ).first()
    if row is None or not row[0].active:
        return None
    return Credentials(_account(row[0], row[1]), row[0].password_hash, row[0].token_generation)
