"""The permission table's shape, read without a server: every rule names known roles and a
documented relation, and every event and route docs/protocol.md promises has a rule.

What the handlers do with the table (each rule tried as every role, on one's own and on other
people's consults; every registered event and route has a rule and every rule a handler) is
tests/system/test_authorization.py's, on real instances; this file checks the table itself."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

import pytest

from server.contract.errors import AppError
from server.contract.vocabulary import ROLES
from server.policy import permissions
from server.policy.permissions import EVENTS, NOBODY, ROUTES, Relation, Rule

PROTOCOL = (Path(__file__).resolve().parent.parent.parent / "docs" / "protocol.md").read_text()
RULES: list[tuple[str, Rule]] = [
    *((f"{namespace} {event}", rule) for (namespace, event), rule in EVENTS.items()),
    *((f"{method} {path}", rule) for (method, path), rule in ROUTES.items()),
]
RELATIONS: tuple[str, ...] = get_args(Relation)


def _ids(rules: list[tuple[str, Rule]]) -> list[str]:
    return [name for name, _ in rules]


@pytest.mark.parametrize(("name", "rule"), RULES, ids=_ids(RULES))
def test_every_rule_names_known_roles(name: str, rule: Rule) -> None:
    for roles in (rule.roles, rule.unrelated, rule.overseers):
        assert roles <= set(ROLES), f"{name}: unknown roles {sorted(roles - set(ROLES))}"
    assert rule.roles, f"{name}: a rule nobody may use is no rule (leave it out: NOBODY refuses it)"


@pytest.mark.parametrize(("name", "rule"), RULES, ids=_ids(RULES))
def test_exempted_roles_are_roles_the_rule_admits(name: str, rule: Rule) -> None:
    # An admin planning any round, a supervisor reading what their scope holds: only a role the
    # rule lets in at all can be spared the relation or given `in_scope` instead.
    assert rule.unrelated <= rule.roles, name
    assert rule.overseers <= rule.roles, name
    assert not rule.unrelated & rule.overseers, f"{name}: a role either needs no relation or needs in_scope"
    if rule.relation in ("public", "any"):
        assert not rule.unrelated and not rule.overseers, f"{name}: nothing to be spared from"


@pytest.mark.parametrize("relation", RELATIONS)
def test_every_relation_is_documented_in_the_module(relation: str) -> None:
    assert f"- `{relation}`:" in (permissions.__doc__ or ""), f"describe `{relation}` in permissions.py's docstring"


def test_the_docstring_documents_no_relation_the_table_lacks() -> None:
    documented = set(re.findall(r"^- `([a-z_]+)`:", permissions.__doc__ or "", re.MULTILINE))
    assert documented == set(RELATIONS)


def test_every_relation_is_used_by_some_rule() -> None:
    used = {rule.relation for _, rule in RULES} | {"in_scope"}  # in_scope: what overseers hold
    assert used == set(RELATIONS)


def _client_events() -> set[str]:
    """The events docs/protocol.md lists under "Client → server" (a row may name several)."""
    found: set[str] = set()
    reading = False
    for line in PROTOCOL.splitlines():
        if "Client → server" in line:
            reading = True
        elif line.startswith("#") or "Server → client" in line:
            reading = False
        elif reading and line.startswith("| `"):
            first_cell = line.split("|")[1]
            found |= set(re.findall(r"`([a-z]+:[a-z-]+)`", first_cell))
    return found


def _documented_routes() -> set[tuple[str, str]]:
    """`METHOD /path` at the start of a table row; path parameters compared by place, not name."""
    return {
        (method, re.sub(r"\{[^}]*\}", "{}", path))
        for method, path in re.findall(r"^\| `([A-Z]+) (/[^`?]*)`", PROTOCOL, re.MULTILINE)
    }


def test_the_protocol_lists_client_events_and_routes() -> None:
    # The readers above find something: a change of the document's layout fails here, not silently.
    assert {"consult:request", "note:add", "round:focus", "rtc:signal"} <= _client_events()
    assert {("POST", "/api/login"), ("GET", "/api/consults/{}")} <= _documented_routes()


def test_every_client_event_in_the_protocol_has_a_rule() -> None:
    ruled = {event for namespace, event in EVENTS if namespace == "/"}
    missing = sorted(_client_events() - ruled)
    assert not missing, f"docs/protocol.md documents events without a rule in permissions.EVENTS: {missing}"


def test_every_route_in_the_protocol_has_a_rule() -> None:
    ruled = {(method, re.sub(r"\{[^}]*\}", "{}", path)) for method, path in ROUTES}
    missing = sorted(_documented_routes() - ruled)
    assert not missing, f"docs/protocol.md documents routes without a rule in permissions.ROUTES: {missing}"


def test_a_missing_rule_refuses_everyone() -> None:
    assert permissions.event_rule("/", "consult:teleport") is NOBODY
    assert permissions.route_rule("GET", "/api/nowhere") is NOBODY
    for role in ROLES:
        assert not permissions.permits(NOBODY, role, frozenset(RELATIONS))
        with pytest.raises(AppError, match="no permission rule") as raised:
            permissions.check_role(NOBODY, role, "consult:teleport")
        assert raised.value.code == "forbidden"


def test_head_follows_get() -> None:
    assert permissions.route_rule("HEAD", "/api/consults/{consult_id}") is ROUTES[("GET", "/api/consults/{consult_id}")]


# What `permits` means, on one rule of each kind; the table's rules are tried through the real
# handlers in tests/system/test_authorization.py.
READ = ROUTES[("GET", "/api/consults/{consult_id}")]  # participants; supervisors in scope
PLAN = ROUTES[("PATCH", "/api/rounds/{round_id}")]  # planners; admins need nothing


@pytest.mark.parametrize(
    ("rule", "role", "relations", "allowed"),
    [
        (permissions.PUBLIC, "clinician", frozenset(), True),
        (EVENTS[("/", "consult:request")], "clinician", frozenset(), True),
        (EVENTS[("/", "consult:request")], "specialist", frozenset(), False),
        (READ, "specialist", frozenset({"participant"}), True),
        (READ, "specialist", frozenset(), False),
        (READ, "specialist", frozenset({"in_scope"}), False),  # only overseers read by scope
        (READ, "supervisor", frozenset({"in_scope"}), True),
        (READ, "supervisor", frozenset({"participant"}), False),  # a supervisor reads by scope alone
        (READ, "admin", frozenset({"participant", "in_scope"}), False),
        (PLAN, "admin", frozenset(), True),
        (PLAN, "clinician", frozenset(), False),
        (PLAN, "clinician", frozenset({"round_planner"}), True),
    ],
)
def test_permits(rule: Rule, role: str, relations: frozenset[str], allowed: bool) -> None:
    assert permissions.permits(rule, role, relations) is allowed


def test_the_role_gate_names_who_may() -> None:
    with pytest.raises(AppError, match="is for: clinician") as raised:
        permissions.check_role(EVENTS[("/", "consult:request")], "specialist", "consult:request")
    assert raised.value.code == "forbidden"
    permissions.check_role(permissions.PUBLIC, "admin", "POST /api/login")  # public: no gate
