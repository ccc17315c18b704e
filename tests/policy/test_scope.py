"""Who sees what (server/policy/scope.py): the scope named from an account alone, resolved
against the hospitals' provinces, and the membership test for a consult or a round. Pure: the
provinces are given as a mapping, as `server/records/provinces.py` reads them."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from server.policy.scope import NETWORK, NOTHING, Scope, hospital_scope, scope_for, sees

# Every hospital's province, as the database would give it: Ba Vì and Xanh Pôn in Hà Nội, Bãi
# Cháy in Quảng Ninh, and a hospital whose province is not set yet.
PROVINCES: dict[str, str | None] = {
    "bavi": "hanoi",
    "xanhpon": "hanoi",
    "baichay": "quangninh",
    "unplaced": None,
    "so-hanoi": "hanoi",  # the Hà Nội Department of Health itself
}


def in_view(scope: Scope) -> frozenset[str] | None:
    return scope.hospitals(PROVINCES)


def test_an_admin_sees_the_whole_network() -> None:
    scope = scope_for("admin", "so-hanoi", "authority", "hanoi")
    assert scope == NETWORK
    assert in_view(scope) is None
    assert sees(in_view(scope), "unplaced")
    assert sees(in_view(scope))  # even a round that involves no hospital yet


def test_a_department_of_health_sees_the_hospitals_of_its_province() -> None:
    scope = scope_for("supervisor", "so-hanoi", "authority", "hanoi")
    assert scope == Scope("province", "hanoi")
    assert in_view(scope) == {"bavi", "xanhpon", "so-hanoi"}
    assert sees(in_view(scope), "bavi")
    assert not sees(in_view(scope), "baichay")


def test_a_department_of_health_without_a_province_sees_nothing() -> None:
    scope = scope_for("supervisor", "so-nowhere", "authority", None)
    assert scope == NOTHING
    assert in_view(scope) == frozenset()
    assert not sees(in_view(scope), "bavi", "baichay", "unplaced")


def test_a_hospital_supervisor_sees_their_own_hospital_only() -> None:
    scope = scope_for("supervisor", "bavi", "district", "hanoi")
    assert scope == Scope("hospital", "bavi")
    assert in_view(scope) == {"bavi"}
    assert sees(in_view(scope), "bavi")
    assert not sees(in_view(scope), "xanhpon")


def test_a_hospital_without_a_province_is_seen_by_no_department_of_health() -> None:
    for province in ("hanoi", "quangninh"):
        assert not sees(in_view(Scope("province", province)), "unplaced")
    # ... but by its own supervisor, and by an admin.
    assert sees(in_view(scope_for("supervisor", "unplaced", "district", None)), "unplaced")
    assert sees(in_view(NETWORK), "unplaced")


def test_a_consult_between_two_provinces_is_seen_by_both_departments_of_health() -> None:
    asked_at, answered_from = "baichay", "xanhpon"  # Bãi Cháy asks Xanh Pôn
    assert sees(in_view(Scope("province", "quangninh")), asked_at, answered_from)
    assert sees(in_view(Scope("province", "hanoi")), asked_at, answered_from)
    assert not sees(in_view(Scope("hospital", "bavi")), asked_at, answered_from)


def test_a_consult_not_yet_answered_is_seen_by_its_asking_side() -> None:
    assert sees(in_view(Scope("province", "hanoi")), "bavi", None)
    assert not sees(in_view(Scope("province", "quangninh")), "bavi", None)


@pytest.mark.parametrize("scope", [NETWORK, NOTHING, Scope("province", "hanoi"), Scope("hospital", "bavi")])
def test_a_scope_survives_its_key(scope: Scope) -> None:
    assert Scope.from_key(scope.key) == scope


@pytest.mark.parametrize("key", ["", "province:", "hospital:", "network:x", "galaxy:far", "province"])
def test_an_unreadable_key_names_nothing(key: str) -> None:
    assert Scope.from_key(key) == NOTHING


def test_the_audit_names_a_hospital_by_its_id_and_other_scopes_by_their_key() -> None:
    assert Scope("hospital", "bavi").audit_target == "bavi"
    assert Scope("province", "hanoi").audit_target == "province:hanoi"


@dataclass(frozen=True)
class Signed:
    role: str
    hospital_id: str
    hospital_level: str
    hospital_province: str | None


def test_an_accounts_scope_reads_its_role_and_hospital() -> None:
    assert hospital_scope(Signed("supervisor", "so-hanoi", "authority", "hanoi")) == Scope("province", "hanoi")
    assert hospital_scope(Signed("clinician", "bavi", "district", "hanoi")) == Scope("hospital", "bavi")
    assert hospital_scope(Signed("admin", "bavi", "district", None)) == NETWORK
