"""Who may read and write a consult's record."""

from __future__ import annotations

from server.contract.errors import AppError
from server.live import keys
from server.policy import rounds as round_policy
from server.policy import scope
from server.records import consults, provinces
from server.records import rounds as round_records
from server.records.models import Consult, RoundSession
from server.records.users import Account
from server.runtime.services import Services


async def consult_for(services: Services, account: Account, consult_id: str, *, write: bool) -> Consult:
    """The consult if `account` may read it (or write to it); `not_found` / `forbidden` otherwise.

    Participants (requester, accepted specialist, the requesting hospital's clinicians, invited
    users; for a round patient's consult, everyone taking part in the round) read and write;
    supervisors read within their scope.
    """
    consult = await consults.get(services.db, consult_id)
    if consult is None:
        raise AppError("not_found", "no such consult")
    invited = await services.rooms.invited(keys.consult_room(consult_id), account.id)
    if consults.may_join(consult, account.id, account.role, account.hospital_id, invited):
        return consult
    if consult.round_session_id and await _in_round(services, account, consult.round_session_id):
        return consult
    if not write and account.role == "supervisor" and await _oversees(services, account, consult):
        return consult
    raise AppError("forbidden", "you are not a participant of this consult")


async def _oversees(services: Services, account: Account, consult: Consult) -> bool:
    """A supervisor reads the consults of their scope, as on the board and in the statistics:
    those asked at, or answered from, a hospital in view (server/policy/scope.py)."""
    in_view = await provinces.in_view(services.db, account)
    if scope.sees(in_view, consult.hospital_id):
        return True
    specialist = (await consults.people(services.db, [consult.specialist_id])).get(consult.specialist_id or "")
    return specialist is not None and scope.sees(in_view, specialist["hospital"]["id"])


async def _in_round(services: Services, account: Account, session_id: str) -> bool:
    async with services.db.session() as session:
        held = await session.get(RoundSession, session_id)
    if held is None:
        return False
    return round_policy.takes_part(await round_records.get(services.db, held.round_id), account)
