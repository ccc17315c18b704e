"""One pure function that moves a screen's state along by one server→client event.

A client's screen starts from `session:state` (a supervisor's board from `monitor:snapshot`) and
then lives on events. `apply(state, event, payload)` is what a client must do with each event so
that its screen equals a fresh `session:state` (or `monitor:snapshot`) taken afterwards; the tests
in this folder check that the server's events and its snapshots agree, action by action.

A screen state is the `session:state` payload, with `notes: {consult_id: [note, ...]}` added for
the consults whose notes the screen shows (read with `note:list`), and `seen: {consult_id:
version}`, the highest version of each consult the screen has been told of (kept after the consult
leaves the screen, so that a late older event cannot bring it back); or the board.
"""

from __future__ import annotations

import copy
from typing import Any

State = dict[str, Any]

OPEN_STATUSES = frozenset({"queued", "offered", "active"})

# Events that change nothing a snapshot holds: call membership and media (`consult:join` and
# `round:join` acks carry those), invitations (an invited user's consult is not in `consults`),
# files (read with the record), a round lead's request (answered over HTTP).
WITHOUT_STATE = frozenset(
    {
        "consult:invited",
        "consult:uninvited",
        "consult:peer-joined",
        "consult:peer-reconnecting",
        "consult:peer-left",
        "consult:replaced",
        "rtc:signal",
        "attachment:added",
        "round:lead-requested",
        "round:peer-joined",
        "round:peer-reconnecting",
        "round:peer-left",
        "round:replaced",
    }
)


def apply(state: State, event: str, payload: Any) -> State:
    """The state after `event`; `state` itself is left as it was. An event this function does not
    know is an error: a new event must be given its meaning here before a test can pass."""
    if event in WITHOUT_STATE:
        return state
    new = copy.deepcopy(state)
    if event in ("monitor:snapshot", "monitor:update"):
        return copy.deepcopy(payload)  # the whole board each time
    if event == "session:state":
        notes, seen = new.get("notes"), new.get("seen", {})
        new = copy.deepcopy(payload)
        if notes is not None:
            new["notes"] = notes
        new["seen"] = seen
        for consult in [*new["consults"], *(o["consult"] for o in new["offers"])]:
            _remember(new, consult)
        return new
    if event == "presence:changed":
        new["presence"] = payload["presence"]
    elif event in ("consult:offer", "consult:updated") and _older(new, payload["consult"]):
        return state  # events from two instances may cross; a screen never goes back a version
    elif event == "consult:offer":
        new["offers"] = [o for o in new["offers"] if o["consult"]["id"] != payload["consult"]["id"]]
        new["offers"].append({"consult": payload["consult"], "expires_at": payload["expires_at"]})
        _consult_changed(new, payload["consult"])
    elif event == "consult:updated":
        consult = payload["consult"]
        # An offer card stays open only while the consult is offered as it was when offered;
        # any other change of it (taken, cancelled, expired, moved on) closes it.
        new["offers"] = [
            o
            for o in new["offers"]
            if o["consult"]["id"] != consult["id"]
            or (consult["status"] == "offered" and consult["version"] == o["consult"]["version"])
        ]
        _consult_changed(new, consult)
    elif event == "round:updated":
        _round_changed(new, payload["round"])
    elif event == "round:starting":
        rounds = [r for r in new["rounds"] if r["round"]["id"] != payload["round"]["id"]]
        new["rounds"] = [*rounds, {"round": payload["round"], "starts_at": payload["starts_at"]}]
    elif event == "note:added":
        shown = new.get("notes", {})
        line = shown.get(payload["consult_id"])
        if line is not None and all(n["id"] != payload["note"]["id"] for n in line):
            line.append(payload["note"])
            line.sort(key=lambda n: n["seq"])
    else:
        raise ValueError(f"apply does not know the event {event!r}")
    return new


def _older(state: State, consult: dict[str, Any]) -> bool:
    """As static/protocol.js `isOlder`: a version older than one the screen was told of is ignored,
    also once that consult has left the screen (a `cancelled` crossing the `offered` before it)."""
    held = [c for c in state["consults"] if c["id"] == consult["id"]]
    held += [o["consult"] for o in state["offers"] if o["consult"]["id"] == consult["id"]]
    versions = [c["version"] for c in held]
    if consult["id"] in state.get("seen", {}):
        versions.append(state["seen"][consult["id"]])
    return bool(versions) and max(versions) > consult["version"]


def _remember(state: State, consult: dict[str, Any]) -> None:
    seen = state.setdefault("seen", {})
    seen[consult["id"]] = max(seen.get(consult["id"], 0), consult["version"])


def _consult_changed(state: State, consult: dict[str, Any]) -> None:
    """`consults` holds the user's open consults as requester or specialist, round patients' aside."""
    _remember(state, consult)
    me = state["user"]["id"]
    mine = me in {(consult.get("requester") or {}).get("id"), (consult.get("specialist") or {}).get("id")}
    kept = [c for c in state["consults"] if c["id"] != consult["id"]]
    if mine and consult["status"] in OPEN_STATUSES and consult["kind"] != "round":
        kept.append(consult)
    kept.sort(key=lambda c: (c["created_at"], c["id"]))
    state["consults"] = kept
    for offer in state["offers"]:  # the card shows the consult as it is now
        if offer["consult"]["id"] == consult["id"]:
            offer["consult"] = consult
    # A round patient's consult is not in `consults`: its status and outcome show on the patient's
    # row of its round (a decision is announced as `consult:updated`, not `round:updated`).
    for entry in state["rounds"]:
        for patient in entry["round"]["patients"]:
            if patient["consult_id"] == consult["id"]:
                patient["status"], patient["outcome"] = consult["status"], consult["outcome"]


def _round_changed(state: State, described: dict[str, Any]) -> None:
    """Keep the highest (`version`, `session.version`), as the protocol says."""

    def rank(r: dict[str, Any]) -> tuple[int, int]:
        return (r.get("version") or 0, (r.get("session") or {}).get("version") or 0)

    for entry in state["rounds"]:
        if entry["round"]["id"] == described["id"] and rank(described) >= rank(entry["round"]):
            entry["round"] = described
