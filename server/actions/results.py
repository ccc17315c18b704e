"""`consult:result`: the requesting side reports back what became of the patient after a consult.

Thông tư 49/2017 Art. 3 asks the requesting hospital to tell the consultants the result. The
requester, or a clinician of the requesting hospital, reports it once the consult has ended; a
later report replaces the shown one, and every report stays on the consult's timeline. The
consultants (the accepted specialist and everyone a party invited, the only people outside the
requesting hospital who may have been in its call) get `consult:updated`, with the requesting side.
"""

from __future__ import annotations

from server.actions import dispatch
from server.contract.errors import AppError
from server.outbox import Event
from server.records import audit, consults
from server.records.models import Consult
from server.records.users import Account
from server.runtime.services import Services

RESULTS: tuple[str, ...] = ("recovered", "improving", "transferred", "died", "other")


def may_report(consult: Consult, account: Account) -> bool:
    """The requesting side: the requester, or a clinician of the requesting hospital."""
    return account.id == consult.requester_id or (
        account.role == "clinician" and account.hospital_id == consult.hospital_id
    )


async def consultants(services: Services, consult: Consult) -> set[str]:
    """Who gave the consult: its accepted specialist and everyone a party invited into its call."""
    invited = {
        str(e.detail.get("user_id")) for e in await consults.timeline(services.db, consult.id) if e.kind == "invited"
    }
    return invited | ({consult.specialist_id} if consult.specialist_id else set())


async def report(
    services: Services,
    out: list[Event],
    account: Account,
    *,
    consult_id: str,
    op_id: str,
    result: str,
    note: str,
    address: str = "",
) -> Consult:
    """Keep the result (audited, on the timeline) and tell the consultants; the same `op_id`
    again (its answer was lost) gets the consult as it is and changes nothing."""
    for _ in range(5):
        consult = await consults.get(services.db, consult_id)
        if consult is None:
            raise AppError("not_found", "no such consult")
        if not may_report(consult, account):
            raise AppError("forbidden", "only the requesting hospital reports the result of a consult")
        if await consults.result_reported(services.db, consult.id, op_id):
            return consult
        if consult.status != "ended":
            raise AppError("conflict", f"a result is reported after the consult ended; it is {consult.status}")
        entry = audit.entry(account.id, "consult.result", "consult", consult.id, address, f"result={result}")
        changed = await consults.report_result(
            services.db, consult, account.id, op_id=op_id, result=result, note=note, audit_entry=entry
        )
        if changed is not None:
            await dispatch.updated(services, out, changed, also=await consultants(services, changed))
            return changed
    raise AppError("unavailable", "the consult kept changing; try again")
