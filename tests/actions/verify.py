"""`verify_action`: what a screen makes of an action's events equals a fresh snapshot.

For each screen watched (a user's, from `session:state`; a supervisor's board, from
`monitor:snapshot`): take its state, run the action, collect the events the screen's socket
receives until all is quiet, apply them with `apply`, and compare with the state a new socket
is given. A screen whose state did not change fails too, unless the test says it should not.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from tests.actions.apply import State, apply
from tests.conftest import Client, Instance, login

# The action tests' instances send the board at most once every BOARD_UPDATE_S
# (BOARD_UPDATE_INTERVAL_S; 0.5 s in service, where this wait was 1.2 s): that and 0.7 s more
# without an event means the action's consequences have all been sent.
BOARD_UPDATE_S = 0.1
QUIET_S = BOARD_UPDATE_S + 0.7
# How long an action's events may take to agree with the snapshot before the test fails.
WITHIN_S = 10.0

# Fields that change with the clock, not with events.
VOLATILE = frozenset({"server_time", "waiting_s", "duration_s"})


class Recorder(Client):
    """A client that also keeps every event in the order it came."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple[str, Any]] = []
        self.last_event_at = float("-inf")  # the event loop's clock when the last event came

    async def _record(self, event: str, *args: Any) -> None:
        payload = args[0] if len(args) == 1 else list(args)
        self.log.append((event, payload))
        self.last_event_at = asyncio.get_running_loop().time()
        self.queue(event).put_nowait(payload)


@dataclass
class Screen:
    """One user's screen (or a supervisor's board) on one instance, watched through `socket`."""

    name: str
    instance: Instance
    token: str
    namespace: str
    socket: Recorder
    notes_of: list[str] = field(default_factory=list)

    async def fresh(self) -> State:
        """The state a newly connected socket is given."""
        client = Recorder()
        await client.connect(self.instance.url, self.token, self.namespace)
        try:
            if self.namespace == "/monitor":
                return dict(await client.next("monitor:snapshot"))
            state = dict(await client.next("session:state"))
            state["notes"] = {consult_id: await note_line(client, consult_id) for consult_id in self.notes_of}
            return state
        finally:
            await asyncio.wait_for(client.close(), 15)

    def learn(self, event: str, payload: Any) -> None:
        """What this screen's own socket learns from an ack rather than an event (the server
        tells the others; the one who acted reads the answer), applied like an event."""
        self.socket.log.append((event, payload))

    async def close(self) -> None:
        await asyncio.wait_for(self.socket.close(), 15)


async def note_line(client: Client, consult_id: str) -> list[dict[str, Any]]:
    """Every note of a consult, page after page."""
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        ask: dict[str, Any] = {"consult_id": consult_id}
        if cursor is not None:
            ask["cursor"] = cursor
        ack = await client.call("note:list", ask)
        assert ack["ok"] is True, ack
        found.extend(ack["notes"])
        cursor = ack["next_cursor"]
        if cursor is None:
            return found


# The screens watched in the running test: closed after it (tests/actions/conftest.py), so the
# instances stop at once instead of waiting out their shutdown timeout for open sockets.
WATCHING: list[Screen] = []


async def watch(instance: Instance, username: str, namespace: str = "/", notes_of: Iterable[str] = ()) -> Screen:
    """A screen of `username` on `instance`: a socket of its own that only listens."""
    token = await login(instance.url, username)
    socket = Recorder()
    await socket.connect(instance.url, token, namespace)
    await socket.next("monitor:snapshot" if namespace == "/monitor" else "session:state")
    name = username if namespace == "/" else f"{username} board"
    screen = Screen(name, instance, token, namespace, socket, list(notes_of))
    WATCHING.append(screen)
    return screen


def normal(state: State) -> Any:
    """The state without what moves with the clock, in a form two states compare in."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in VOLATILE}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    cleaned = strip(copy.deepcopy(state))
    cleaned.pop("seen", None)  # the screen's memory of versions, not part of a snapshot
    if "offers" in cleaned:  # kept in Redis as a set: no order to compare
        cleaned["offers"].sort(key=lambda o: o["consult"]["id"])
    return cleaned


async def settle(screens: Iterable[Screen], quiet_s: float = QUIET_S) -> None:
    """Wait until no screen has received anything for `quiet_s`, counted from now or from the
    last event, whichever is later: an event in the middle of a quiet spell restarts it from that
    event, not from the end of the spell."""
    screens = list(screens)
    loop = asyncio.get_running_loop()
    start = loop.time()
    while True:
        quiet_until = max(start, *(s.socket.last_event_at for s in screens)) + quiet_s
        if loop.time() >= quiet_until:
            return
        await asyncio.sleep(quiet_until - loop.time())


async def snapshots(screens: list[Screen]) -> dict[str, State]:
    """A fresh state for every screen, all taken at once: each from a socket of its own that
    only reads, so none of them changes what another is given."""
    states = await asyncio.gather(*(s.fresh() for s in screens))
    return {s.name: state for s, state in zip(screens, states, strict=True)}


@dataclass
class Outcome:
    """What each screen received, and its state before and after."""

    events: dict[str, list[tuple[str, Any]]]
    before: dict[str, State]
    after: dict[str, State]

    def names(self, screen: str) -> list[str]:
        return [event for event, _ in self.events[screen]]


async def verify_action(
    screens: list[Screen],
    action: Callable[[], Awaitable[Any]],
    *,
    unchanged: Iterable[Screen] = (),
    within: float = WITHIN_S,
) -> Outcome:
    """Run `action` and check every screen: its old state with the events it received applied
    equals a fresh snapshot, and it changed, unless it is among `unchanged` (then it must not)."""
    still = {s.name for s in unchanged}
    await settle(screens)
    for screen in screens:
        screen.socket.log.clear()
    before = await snapshots(screens)
    await action()
    deadline = asyncio.get_running_loop().time() + within
    while True:
        await settle(screens)
        events = {s.name: list(s.socket.log) for s in screens}
        applied: dict[str, State] = {}
        for screen in screens:
            state = before[screen.name]
            for event, payload in events[screen.name]:
                state = apply(state, event, payload)
            applied[screen.name] = state
        after = await snapshots(screens)
        wrong = [s.name for s in screens if normal(applied[s.name]) != normal(after[s.name])]
        if not wrong or asyncio.get_running_loop().time() > deadline:
            break
    for name in wrong:
        raise AssertionError(
            f"{name}: the events disagree with a fresh snapshot\n"
            f"events: {json.dumps(events[name], ensure_ascii=False, default=str)[:3000]}\n"
            f"applied: {json.dumps(normal(applied[name]), ensure_ascii=False, sort_keys=True)[:4000]}\n"
            f"fresh:   {json.dumps(normal(after[name]), ensure_ascii=False, sort_keys=True)[:4000]}"
        )
    for screen in screens:
        changed = normal(before[screen.name]) != normal(after[screen.name])
        if screen.name in still:
            assert not changed, f"{screen.name}: the state changed though the test expected it not to"
        else:
            assert changed, f"{screen.name}: nothing changed (name it in `unchanged` if that is right)"
    return Outcome(events, before, after)
