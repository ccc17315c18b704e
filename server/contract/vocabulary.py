"""The service's words, defined once: the roles of its users.

(The specialties are `matching.SPECIALTIES`; a consult's statuses and the actions that move them
are in `lifecycle`; the identifiers a payload carries are `validation.Id` and `validation.OpId`.)
"""

from __future__ import annotations

from typing import Literal, get_args

# Who a user is: a clinician at a district hospital asks, a specialist answers, a supervisor at
# the Department of Health watches, an admin keeps the accounts.
Role = Literal["clinician", "specialist", "supervisor", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
