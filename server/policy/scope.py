"""What a reader oversees: the whole network, one province, one hospital, or nothing.

A supervisor attached to a Department of Health (a hospital of level `authority`) oversees the
hospitals of its own province; a supervisor attached to a hospital oversees that hospital; an
admin oversees the whole network (the statistics). A Department of Health without a province
oversees nothing, and a hospital without a province is overseen by no Department of Health:
an unset province must never widen what anyone sees.

Two pure steps, so every reader asks the same question the same way:
- `scope_for` names the scope from the account alone (a value kept per socket, in the Redis
  record of open boards and in room names: `Scope.key`);
- `Scope.hospitals` resolves it against the hospitals' provinces, read when needed
  (`server/records/provinces.py`), into the
  set of hospital ids in view (`None`: every hospital), so that an admin moving a hospital to
  another province changes what its Department of Health sees at the next read.
`sees` is the membership test: a consult or round is in view when any hospital it involves
(asked there, answered from there, held there, led from there) is; a consult between two
provinces is therefore seen by both provinces' Departments of Health.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

Kind = Literal["network", "province", "hospital", "nothing"]
InView = frozenset[str] | None  # the hospital ids in view; None: every hospital


@dataclass(frozen=True, slots=True)
class Scope:
    kind: Kind
    code: str = ""  # the province code (kind "province") or the hospital id (kind "hospital")

    @property
    def key(self) -> str:
        """A stable text form: `network`, `nothing`, `province:<code>`, `hospital:<id>`."""
        return f"{self.kind}:{self.code}" if self.code else self.kind

    @property
    def audit_target(self) -> str:
        """What the audit log names: a hospital's id as before provinces, else the key."""
        return self.code if self.kind == "hospital" else self.key

    @staticmethod
    def from_key(key: str) -> Scope:
        """The scope `key` names; an unreadable key names nothing (never more than was meant)."""
        kind, _, code = key.partition(":")
        if kind == "network" and not code:
            return NETWORK
        if kind == "province" and code:
            return Scope("province", code)
        if kind == "hospital" and code:
            return Scope("hospital", code)
        return NOTHING

    def hospitals(self, provinces: Mapping[str, str | None]) -> InView:
        """The ids of the hospitals in view, given every hospital's province (id -> code or None)."""
        if self.kind == "network":
            return None
        if self.kind == "province":
            return frozenset(h for h, province in provinces.items() if province == self.code)
        if self.kind == "hospital":
            return frozenset({self.code})
        return frozenset()

    @property
    def needs_provinces(self) -> bool:
        return self.kind == "province"


NETWORK = Scope("network")
NOTHING = Scope("nothing")


def scope_for(role: str, hospital_id: str, hospital_level: str, province: str | None) -> Scope:
    """The one rule: admins the network; a Department of Health its province (nothing without
    one); anyone else their own hospital."""
    if role == "admin":
        return NETWORK
    if hospital_level == "authority":
        return Scope("province", province) if province else NOTHING
    return Scope("hospital", hospital_id)


class Holder(Protocol):
    """What `hospital_scope` reads of an account (`server.records.users.Account` has it)."""

    @property
    def role(self) -> str: ...
    @property
    def hospital_id(self) -> str: ...
    @property
    def hospital_level(self) -> str: ...
    @property
    def hospital_province(self) -> str | None: ...


def hospital_scope(account: Holder) -> Scope:
    """The scope of a signed-in account: `scope_for` on its role and hospital."""
    return scope_for(account.role, account.hospital_id, account.hospital_level, account.hospital_province)


def sees(in_view: InView, *hospital_ids: str | None) -> bool:
    """Whether any of the hospitals a consult or round involves is in view."""
    return in_view is None or any(h in in_view for h in hospital_ids if h is not None)
