"""Who may read and write a consult's record."""

from __future__ import annotations

from server import consults
from server.errors import AppError
from server.records import Consult
from server.services import Services
from server.users import Account


async def consult_for(services: Services, account: Account, consult_id: str, *, write: bool) -> Consult:
    """The consult if `account` may read it (or write to it); `not_found` / `forbidden` otherwise.

    Participants (requester, accepted specialist, the requesting hospital's clinicians, invited
    users) read and write; supervisors read.
    """
    consult = await consults.get(services.db, consult_id)
    if consult is None:
        raise AppError("not_found", "no such consult")
    invited = await services.rooms.invited(f"consult:{consult_id}", account.id)
    if consults.may_join(consult, account.id, account.role, account.hospital_id, invited):
        return consult
    if not write and account.role == "supervisor":
        return consult
    raise AppError("forbidden", "you are not a participant of this consult")
