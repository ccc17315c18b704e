"""Who may use each Socket.IO event and HTTP endpoint: one table, read by the code and by the tests.

A rule names the roles that may use an event or endpoint at all, and the relation to the consult
or round it is about that the caller needs besides:

- `public`: no sign-in (the login, health checks, the browser app's files).
- `any`: any signed-in user of the rule's roles; nothing else, or the answer is filtered to
  what the caller may see (the consult list, statistics by scope).
- `participant`: a participant of the consult: its requester, its accepted specialist, a
  clinician of the requesting hospital (the district team), a user a party invited, or
  someone taking part in the round the consult belongs to.
- `party`: the requester or the accepted specialist of the consult.
- `requester`: the clinician who asked.
- `requesting_side`: the clinician who asked or a clinician of the requesting hospital: the
  patient's side, who records the patient's consent (server/policy/consent.py).
- `chair`: chairs the call: the accepted specialist of the consult, or the lead of the round.
- `in_call`: a peer of the call, joined with `consult:join` (or `round:join`).
- `round_member`: takes part in the round: its lead, creator and invited people, and the
  clinicians of its hospital.
- `round_lead`: the round's lead or an invited specialist.
- `round_team`: edits the round's patient list: the lead and the clinicians of its hospital.
- `round_planner`: changes the round's schedule: its creator, lead and the clinicians of its hospital.
- `round_creator`: schedules rounds at a hospital: its own clinicians, its sister hospital's specialists.
- `round_named_lead`: the specialist named as the round's lead, accepted or asked (another network's).
- `in_scope`: the consult or round is within the caller's scope (server/policy/scope.py): it involves
  their hospital or, for a Department of Health, a hospital of its province (a consult between
  two provinces is in both). A supervisor of another province does not hold it.

Roles in `overseers` need `in_scope` instead of the rule's relation: supervisors read the consults
and rounds of their scope. Roles in `unrelated` need no relation: admins plan and read any round.

The role gate is enforced in one place before any handler runs (`signaling.router.Router` for
events, the middleware in `server.runtime.app` for HTTP). The relation is checked by the code that reads
the consult or round (`server.actions.access.consult_for`, `server.actions.dispatch`, `server.actions.rounds`
by the rules of `server.policy.rounds`, the call's rooms). An event or route missing here is refused with
`forbidden`; tests/system/test_authorization.py fails on it, and tries the rules below as every role, on
its own and on other people's consults.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from server.contract.errors import AppError
from server.contract.vocabulary import ROLES, Role

Relation = Literal[
    "public",
    "any",
    "participant",
    "party",
    "requester",
    "requesting_side",
    "in_call",
    "chair",
    "round_member",
    "round_lead",
    "round_team",
    "round_planner",
    "round_creator",
    "round_named_lead",
    "in_scope",
]


@dataclass(frozen=True)
class Rule:
    roles: frozenset[Role]
    relation: Relation = "any"
    unrelated: frozenset[Role] = frozenset()  # roles that need no relation
    overseers: frozenset[Role] = frozenset()  # roles that need `in_scope` instead of `relation`

    def describe(self) -> str:
        return ", ".join(role for role in ROLES if role in self.roles) or "nobody"


def _rule(
    *roles: Role, relation: Relation = "any", unrelated: tuple[Role, ...] = (), overseers: tuple[Role, ...] = ()
) -> Rule:
    return Rule(frozenset(roles), relation, frozenset(unrelated), frozenset(overseers))


EVERYONE = _rule(*ROLES)
PUBLIC = Rule(frozenset(ROLES), "public")
CALLERS: tuple[Role, ...] = ("clinician", "specialist")  # the people in consults and calls
ADMIN = _rule("admin")

# Socket.IO: (namespace, event) → rule. "connect" is the connection itself.
EVENTS: dict[tuple[str, str], Rule] = {
    ("/", "connect"): EVERYONE,  # every role's screens are built from `session:state`
    ("/", "presence:set"): _rule(*CALLERS),
    ("/", "consult:request"): _rule("clinician"),
    ("/", "consult:cancel"): _rule("clinician", relation="requester"),
    ("/", "consult:widen"): _rule("clinician", relation="requester"),
    ("/", "consult:consent"): _rule("clinician", relation="requesting_side"),
    # Whether the consult is offered to this specialist is state, answered with `conflict`.
    ("/", "consult:accept"): _rule("specialist"),
    ("/", "consult:decline"): _rule("specialist"),
    ("/", "consult:end"): _rule(*CALLERS, relation="party"),
    ("/", "consult:result"): _rule("clinician", relation="requesting_side"),
    ("/", "consult:join"): _rule(*CALLERS, relation="participant"),
    ("/", "consult:leave"): _rule(*CALLERS),  # leaves only the caller's own peer
    # Only the two parties call people in (of their hospitals' networks) or send them out again.
    ("/", "consult:invite"): _rule(*CALLERS, relation="party"),
    ("/", "consult:uninvite"): _rule(*CALLERS, relation="party"),
    ("/", "rtc:signal"): _rule(*CALLERS, relation="in_call"),
    ("/", "rtc:stats"): _rule(*CALLERS, relation="in_call"),
    ("/", "note:add"): _rule(*CALLERS, relation="participant"),
    ("/", "note:amend"): _rule(*CALLERS, relation="participant"),
    ("/", "note:list"): _rule(*CALLERS, "supervisor", relation="participant", overseers=("supervisor",)),
    ("/", "round:join"): _rule(*CALLERS, relation="round_member"),
    ("/", "round:notes"): _rule(*CALLERS, relation="round_member"),
    ("/", "round:leave"): _rule(*CALLERS),  # leaves only the caller's own peer
    # The chair records the call, with the patient's consent (server/actions/recording.py).
    ("/", "recording:start"): _rule("specialist", relation="chair"),
    ("/", "recording:stop"): _rule("specialist", relation="chair"),
    ("/", "round:focus"): _rule("specialist", relation="round_lead"),
    ("/", "round:end"): _rule("specialist", relation="round_lead"),
    ("/monitor", "connect"): _rule("supervisor"),
}

_CONSULT_READ = _rule(*CALLERS, "supervisor", relation="participant", overseers=("supervisor",))
_ROUND_PLAN = _rule(*CALLERS, "admin", relation="round_planner", unrelated=("admin",))
_ROUND_TEAM = _rule(*CALLERS, relation="round_team")

# HTTP: (method, canonical path) → rule; HEAD follows GET.
ROUTES: dict[tuple[str, str], Rule] = {
    ("GET", "/"): PUBLIC,
    ("GET", "/static"): PUBLIC,
    # Engine.IO's own endpoint: the token is checked by the Socket.IO connect above.
    ("GET", "/socket.io/"): PUBLIC,
    ("POST", "/socket.io/"): PUBLIC,
    ("OPTIONS", "/socket.io/"): PUBLIC,
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,  # no account: a scraper's METRICS_TOKEN, or this host (server/http/health.py)
    ("POST", "/api/login"): PUBLIC,
    ("GET", "/api/specialties"): PUBLIC,  # codes and their names, shown before sign-in too
    ("GET", "/api/me"): EVERYONE,
    ("POST", "/api/logout"): EVERYONE,
    ("GET", "/api/roster"): EVERYONE,
    ("POST", "/api/precall/offer"): _rule(*CALLERS),
    ("GET", "/api/ice-servers"): _rule(*CALLERS),  # fresh TURN credentials for a call that outlives its own
    ("GET", "/api/consults"): _rule(*CALLERS, "supervisor"),  # filtered to what the caller may see
    ("GET", "/api/consults/{consult_id}"): _CONSULT_READ,
    ("GET", "/api/consults/{consult_id}/minutes"): _CONSULT_READ,
    ("GET", "/api/consults/{consult_id}/minutes.pdf"): _CONSULT_READ,
    ("PATCH", "/api/consults/{consult_id}/minutes"): _rule(*CALLERS, relation="party"),
    # Whoever may write to the consult signs (the chair and the secretary, or as a member).
    ("POST", "/api/consults/{consult_id}/minutes/sign"): _rule(*CALLERS, relation="participant"),
    ("GET", "/api/consults/{consult_id}/minutes/signatures"): _CONSULT_READ,
    ("GET", "/api/consults/{consult_id}/fhir"): _CONSULT_READ,
    ("POST", "/api/consults/{consult_id}/attachments"): _rule(*CALLERS, relation="participant"),
    ("GET", "/api/consults/{consult_id}/attachments/{attachment_id}"): _CONSULT_READ,
    ("GET", "/api/consults/{consult_id}/recordings"): _CONSULT_READ,
    ("GET", "/api/recordings/{recording_id}/media"): _CONSULT_READ,  # its consult's or round's readers
    ("POST", "/api/recordings/{recording_id}/playback"): _CONSULT_READ,  # a link for a <video src>
    ("DELETE", "/api/admin/recordings/{recording_id}"): ADMIN,  # refused before retain_until
    ("GET", "/api/stats"): _rule("supervisor", "admin"),  # filtered to the supervisor's scope
    ("GET", "/api/stats/report"): _rule("supervisor", "admin"),
    ("GET", "/api/admin/hospitals"): ADMIN,
    ("POST", "/api/admin/hospitals"): ADMIN,
    ("PATCH", "/api/admin/hospitals/{hospital_id}"): ADMIN,
    ("GET", "/api/admin/sister-links"): ADMIN,
    ("POST", "/api/admin/sister-links"): ADMIN,
    ("DELETE", "/api/admin/sister-links/{upper_id}/{lower_id}"): ADMIN,
    ("GET", "/api/admin/users"): ADMIN,
    ("POST", "/api/admin/users"): ADMIN,
    ("PATCH", "/api/admin/users/{user_id}"): ADMIN,
    ("POST", "/api/admin/users/{user_id}/deactivate"): ADMIN,
    ("POST", "/api/admin/users/{user_id}/activate"): ADMIN,
    ("POST", "/api/admin/users/{user_id}/password"): ADMIN,
    ("POST", "/api/admin/users/{user_id}/certificate"): ADMIN,
    ("GET", "/api/admin/roster"): ADMIN,
    ("GET", "/api/admin/audit"): ADMIN,
    ("GET", "/api/rounds"): EVERYONE,  # filtered to the rounds the caller takes part in or supervises
    ("GET", "/api/rounds/hospitals"): _rule(*CALLERS, "admin"),  # where the caller may schedule a round
    ("POST", "/api/rounds"): _rule(*CALLERS, "admin", relation="round_creator", unrelated=("admin",)),
    ("GET", "/api/rounds/{round_id}"): _rule(
        *ROLES, relation="round_member", unrelated=("admin",), overseers=("supervisor",)
    ),
    ("GET", "/api/rounds/{round_id}/recordings"): _rule(
        *ROLES, relation="round_member", unrelated=("admin",), overseers=("supervisor",)
    ),
    ("PATCH", "/api/rounds/{round_id}"): _ROUND_PLAN,
    ("POST", "/api/rounds/{round_id}/lead"): _rule("specialist", relation="round_named_lead"),
    ("POST", "/api/rounds/{round_id}/cancel"): _ROUND_PLAN,
    ("POST", "/api/rounds/{round_id}/patients"): _ROUND_TEAM,
    ("PUT", "/api/rounds/{round_id}/patients"): _ROUND_TEAM,
    ("PATCH", "/api/rounds/{round_id}/patients/{patient_id}"): _ROUND_TEAM,
    ("DELETE", "/api/rounds/{round_id}/patients/{patient_id}"): _ROUND_TEAM,
    # The caller's own calendar address; the feed itself is authorized by the key in its address.
    ("POST", "/api/rounds/calendar"): EVERYONE,
    ("DELETE", "/api/rounds/calendar"): EVERYONE,
    ("GET", "/api/rounds.ics"): PUBLIC,
}

# Refuses everything: what an event or route without a rule gets.
NOBODY = Rule(frozenset())


def event_rule(namespace: str, event: str) -> Rule:
    return EVENTS.get((namespace, event), NOBODY)


def route_rule(method: str, path: str) -> Rule:
    return ROUTES.get(("GET" if method == "HEAD" else method, path), NOBODY)


def check_role(rule: Rule, role: str, what: str) -> None:
    """The role gate: `forbidden` unless `role` may use `what` at all."""
    if rule.relation != "public" and role not in rule.roles:
        if not rule.roles:
            raise AppError("forbidden", f"{what} has no permission rule; nobody may use it")
        raise AppError("forbidden", f"{what} is for: {rule.describe()}")


def permits(rule: Rule, role: str, relations: frozenset[str]) -> bool:
    """What the rule means in full: may a `role` holding `relations` (to the consult or round
    the request is about) use it? The tests compare every handler's answer with this."""
    if rule.relation == "public":
        return True
    if role not in rule.roles:
        return False
    if rule.relation == "any" or role in rule.unrelated:
        return True
    if role in rule.overseers:
        return "in_scope" in relations
    return rule.relation in relations
