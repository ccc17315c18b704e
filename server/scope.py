"""What a supervisor oversees: the whole network, or one hospital.

A supervisor attached to the Department of Health (a hospital record of level `authority`)
and an admin see the whole network; a supervisor attached to a hospital sees what involves
that hospital. The live board and the statistics both ask this one question.
"""

from __future__ import annotations

from server.users import Account


def scope_for(role: str, hospital_id: str, hospital_level: str) -> str | None:
    """None for the whole network, else the id of the one hospital in view."""
    if role == "admin" or hospital_level == "authority":
        return None
    return hospital_id


def hospital_scope(account: Account) -> str | None:
    return scope_for(account.role, account.hospital_id, account.hospital_level)
