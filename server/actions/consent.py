"""`consult:consent`: the requesting side records the patient's consent to a consult, or its
withdrawal (no scopes), at any time after the request: before acceptance (given late, or
withdrawn), during the call, or after the end (an emergency that went ahead without it).

Each change is one row of the consult's consents, one timeline line and one audit entry; the
consult's parties, and the specialists it is offered to, are told (`consult:updated`). A
repeated `op_id` changes nothing and tells nobody again."""

from __future__ import annotations

from server.actions import dispatch
from server.contract.errors import AppError
from server.outbox import Event
from server.policy import consent as consent_policy
from server.records import audit, consents, consults
from server.records.models import Consult
from server.records.users import Account
from server.runtime.services import Services


async def record(
    services: Services,
    out: list[Event],
    account: Account,
    *,
    consult_id: str,
    op_id: str,
    given: consents.Given,
    address: str = "",
) -> Consult:
    consult = await consults.get(services.db, consult_id)
    if consult is None:
        raise AppError("not_found", "no such consult")
    if not consent_policy.requesting_side(
        account.role, account.id, account.hospital_id, consult.requester_id, consult.hospital_id
    ):
        raise AppError("forbidden", "only the requesting side (its clinicians) records the patient's consent")
    if consult.status == "cancelled":
        raise AppError("conflict", "the consult was cancelled; there is nothing to consent to")
    changed, created = await consents.record(services.db, consult.id, op_id, given, account.id)
    if not created:
        return changed
    detail = "scopes=" + (",".join(given.scopes) or "none")
    await audit.record(services.db, account.id, "consult.consent", "consult", consult.id, address, detail)
    # Specialists holding an offer of it are told too: the offer shows whether consent is there.
    offer = await services.live.get(consult.id)
    await dispatch.updated(services, out, changed, also=offer.specialists if offer is not None else ())
    return changed
