"""The patient's consent to a remote consult (Công văn 7946/BYT-KCB: confirm the patient's
consent before a remote examination), as rules: pure, no I/O.

- A routine or urgent request carries the consent to `consult` when it is made (refused
  `invalid` otherwise): nothing waits in a specialist's queue that could not be accepted.
- An emergency may go ahead without it, but then carries the reason it could not be had
  (`consent_waived_reason`, on the consult and its timeline); consent is recorded afterwards.
- Acceptance (`consult:accept`) checks again: consent withdrawn meanwhile (scopes `[]`) makes
  a routine or urgent consult unacceptable (`conflict`); an emergency with a waiver stays acceptable.
- Only the requesting side records or withdraws consent: the clinician who asked, or a clinician
  of the requesting hospital (the patient is theirs).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, get_args

Scope = Literal["consult", "recording"]
SCOPES: tuple[Scope, ...] = get_args(Scope)
GivenBy = Literal["patient", "relative", "guardian"]
Method = Literal["verbal", "written", "electronic"]

WAIVER_LENGTH = 500  # the reason an emergency went ahead without consent


def consents_to(scopes: Sequence[str] | None, scope: Scope) -> bool:
    return scopes is not None and scope in scopes


def request_refusal(urgency: str, scopes: Sequence[str] | None, waived_reason: str | None) -> str | None:
    """Why a new request is refused (`invalid`), or None. `scopes`: the consent it carries (None: none)."""
    if scopes is not None and not consents_to(scopes, "consult"):
        return "consent given with a request must include the scope consult"
    if scopes is not None and waived_reason is not None:
        return "a request carries either consent or consent_waived_reason, not both"
    if consents_to(scopes, "consult"):
        return None
    if urgency == "emergency":
        if waived_reason is None:
            return "an emergency without consent must carry consent_waived_reason: why consent could not be had"
        return None
    article = "an" if urgency[:1] in "aeiou" else "a"
    return f"{article} {urgency} request must carry the patient's consent to the consult (consent with scope consult)"


def acceptance_refusal(urgency: str, scopes: Sequence[str] | None, waived_reason: str | None) -> str | None:
    """Why the consult may not be accepted now (`conflict`), or None."""
    if consents_to(scopes, "consult"):
        return None
    if urgency == "emergency" and waived_reason:
        return None
    if scopes is not None:
        return "the patient's consent to the consult was withdrawn; it cannot be accepted"
    return "the patient's consent to the consult is missing; it cannot be accepted"


def requesting_side(role: str, user_id: str, hospital_id: str, requester_id: str, requesting_hospital_id: str) -> bool:
    """Who records or withdraws a consult's consent: its requester, or a clinician of the requesting hospital."""
    return user_id == requester_id or (role == "clinician" and hospital_id == requesting_hospital_id)
