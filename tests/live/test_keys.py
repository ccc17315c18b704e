"""Every Redis key and Socket.IO room name is spelled in `server/live/keys.py` alone.

Running instances share Redis and rooms by these names byte for byte, so a name spelled twice
drifts once (one place renamed, the other not, and an offer or a revoked user is lost between
them). The test reads every string in `server/` and `signaling/` and fails on one that builds a
key or a room outside `keys.py`: an f-string starting with a known prefix, a bare prefix (for
`"user:" + id` or `startswith("consult:")`), or a whole fixed key written out again."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from server.live import keys

ROOT = Path(__file__).resolve().parent.parent.parent
KEYS_MODULE = ROOT / "server" / "live" / "keys.py"

# The first word of every key and room name `keys.py` builds.
PREFIXES = (
    "user:",
    "round-session:",
    "consult:",
    "round:",
    "monitor:",
    "offers:",
    "offer:",
    "queue:",
    "rooms:",
    "room:",
    "sid:",
    "presence:",
    "revoked:",
    "authz:",
    "ratelimit:",
    "events:",
    "login:",
    "caps:",
    "precall:",
    "recording:",
    "recorder:",
    "live:",
)

# The fixed keys, whole: written anywhere else, they are a second spelling. (Event names such
# as `consult:request` share the prefixes but are neither; they are left alone.)
FIXED = {value for name, value in vars(keys).items() if name.isupper() and isinstance(value, str)}


def offences(path: Path) -> list[str]:
    """The strings in `path` that spell a key or a room: `line: text`."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[int, str]] = []
    parts = {id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for part in node.values}
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr) and node.values:  # f"user:{id}"
            first = node.values[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str) and first.value.startswith(PREFIXES):
                found.append((node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in parts:
            if node.value in PREFIXES or node.value in FIXED:  # "user:" + id, "offers:due"
                found.append((node.lineno, repr(node.value)))
    return [f"{line}: {text}" for line, text in sorted(found)]


SOURCES = sorted(p for folder in ("server", "signaling") for p in (ROOT / folder).rglob("*.py") if p != KEYS_MODULE)


def test_there_are_sources_to_read() -> None:
    assert len(SOURCES) > 50
    assert FIXED >= {"offers:due", "presence:sockets", "rooms:dropped", "monitor:watchers", "live:epoch"}


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_keys_and_rooms_are_named_in_keys_only(path: Path) -> None:
    assert offences(path) == [], f"{path.name} spells a Redis key or a room: build it with server/live/keys.py"


def test_the_rule_catches_what_it_forbids(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        'room = f"user:{user_id}"\n'
        'key = f"offers:to:{specialist}"\n'
        'prefix = "round:"\n'
        'due = "offers:due"\n'
        'event = "consult:request"\n'  # an event's name: fine
        'message = "monitor:snapshot failed"\n'  # a log line: fine
        'url = f"http://{host}"\n'
    )
    assert offences(sample) == [
        "1: f'user:{user_id}'",
        "2: f'offers:to:{specialist}'",
        "3: 'round:'",
        "4: 'offers:due'",
    ]


def test_every_name_keys_builds_starts_with_a_known_prefix() -> None:
    """So that the rule above knows every prefix `keys.py` uses (`in-consult` and `in-round` are
    the keys without one: they are caught whole)."""
    built = [
        keys.user_room("u1"),
        keys.user_room(keys.round_audience("s1")),
        keys.consult_room("c1"),
        keys.round_room("r1"),
        keys.board_room("province:hanoi"),
        keys.queue("surgery"),
        keys.named_queue("u2"),
        keys.offer_slot("u2"),
        keys.offer("c1"),
        keys.offer_to("c1"),
        keys.offers_to("u2"),
        keys.declined("c1"),
        keys.room_peers("consult:c1"),
        keys.room_quality("consult:c1"),
        keys.room_invited("consult:c1"),
        keys.sid_peers("abc"),
        keys.presence("u1"),
        keys.presence_conns("u1"),
        keys.revoked("u1"),
        keys.authz("u1"),
        keys.ratelimit(keys.user_events("u1")),
        keys.user_events("u1"),
        keys.login_by_username("Ba.Vi", "10.0.0.1"),
        keys.login_by_address("10.0.0.1"),
        keys.requesting("u1"),
        keys.precall_lease("u1"),
        keys.recording_of_call("consult:c1"),
        keys.recording_claim("rec1"),
        keys.recording_auto("consult:c1"),
        keys.recording_commands("rec1"),
        keys.recording_sid("rec1"),
        keys.round_starting("r1", "2026-12-08"),
        keys.round_patient_op("s1", "p1"),
        *(FIXED - {keys.IN_CONSULT, keys.IN_ROUND, keys.ROUND_AUDIENCE}),
    ]
    assert [name for name in built if not name.startswith(PREFIXES)] == []


def test_the_names_are_spelled_as_running_instances_expect() -> None:
    """Byte for byte as before they moved here: instances of an older build share the same Redis."""
    assert keys.user_room("u1") == "user:u1"
    assert keys.user_room(keys.round_audience("s1")) == "user:round-session:s1"
    assert keys.round_audience_of("user:round-session:s1") == "s1"
    assert keys.round_audience_of("user:u1") is None
    assert keys.consult_room("c1") == "consult:c1"
    assert keys.round_room("r1") == "round:r1"
    assert keys.call_of("consult:c1") == ("consult", "c1")
    assert keys.call_of("round:r1") == ("round", "r1")
    assert keys.call_of("user:u1") is None
    assert keys.call_of("consult:") is None
    assert keys.board_room("province:hanoi") == "monitor:province:hanoi"
    assert keys.OFFERS_DUE == "offers:due"
    assert keys.IN_CONSULT == "in-consult"
    assert keys.IN_ROUND == "in-round"
    assert keys.queue("surgery") == "queue:surgery"
    assert keys.named_queue("u2") == "queue:named:u2"
    assert keys.offer_slot("u2") == "offer:slot:u2"
    assert keys.offer("c1") == "offer:c1"
    assert keys.offer_to("c1") == "offer:c1:to"
    assert keys.offers_to("u2") == "offers:to:u2"
    assert keys.declined("c1") == "consult:c1:declined"
    assert keys.ROOMS_DROPPED == "rooms:dropped"
    assert keys.room_peers("consult:c1") == "room:consult:c1:peers"
    assert keys.room_quality("round:r1") == "room:round:r1:quality"
    assert keys.room_invited("consult:c1") == "room:consult:c1:invited"
    assert keys.sid_peers("abc") == "sid:abc:peers"
    assert keys.PRESENCE_SOCKETS == "presence:sockets"
    assert keys.presence("u1") == "presence:u1"
    assert keys.presence_conns("u1") == "presence:conns:u1"
    assert keys.revoked("u1") == "revoked:u1"
    assert keys.authz("u1") == "authz:u1"
    assert keys.ratelimit("events:u1") == "ratelimit:events:u1"
    assert keys.user_events("u1") == "events:u1"
    assert keys.login_by_username("Ba.Vi", "10.0.0.1") == "login:user:ba.vi:10.0.0.1"
    assert keys.login_by_address("10.0.0.1") == "login:addr:10.0.0.1"
    assert keys.requesting("u1") == "caps:requesting:u1"
    assert keys.precall_lease("u1") == "precall:user:u1"
    assert keys.round_starting("r1", "2026-12-08") == "round:starting:r1:2026-12-08"
    assert keys.round_patient_op("s1", "p1") == "round:s1:p1"
    assert keys.MONITOR_WATCHERS == "monitor:watchers"
    assert keys.LIVE_EPOCH == "live:epoch"
    assert keys.LIVE_REBUILDING == "live:rebuilding"
