"""Property-based fuzzing of every Socket.IO event and every HTTP route (issue 10, bad input).

The targets come from the code, never from a list kept by hand: every event of the routers in
`signaling.server.ROUTERS` and of `signaling.monitor.router` (each `Router.handlers` maps an
event to its payload model), the unknown-event handler of each namespace, the connect handler,
and every route of the running aiohttp app (`app.router.routes()`). A new event or route is
fuzzed as soon as it is registered.

What must hold for every case: an event sent with an ack gets `{"ok": true, ...}` or
`{"ok": false, "error": {"code": <contract code>, "message": str}}` in time; an HTTP request gets
2xx-4xx, and a 4xx carries `{"error": {code, message}}`; afterwards every client still works and
nothing was logged at ERROR (an unhandled exception) by the server, Socket.IO, aiohttp or asyncio.

Speed: cases run against live instances (one for most cases, a second one for the cross-instance
path) from long-lived signed-in clients, several cases at a time. Hypothesis runs in a worker
thread (a plain `@given` function) and hands each batch to the event loop of the test with
`asyncio.run_coroutine_threadsafe`: the servers and clients keep running in that loop.

Long mode: `FUZZ_EXAMPLES` is the number of generated cases in a run (default 10,400, split
between the Socket.IO and the HTTP test), e.g. `FUZZ_EXAMPLES=100000 .venv/bin/pytest -q
tests/system/test_fuzz.py`. Each target gets its share; the cases run per target are logged at the end
(`-s` or `-o log_cli=true` shows them).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import math
import os
import re
import uuid
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, get_args
from urllib.parse import quote

import aiohttp
import jwt
import pytest
import socketio
from aiohttp import web
from hypothesis import HealthCheck, Phase, assume, given, seed, settings
from hypothesis import strategies as st
from yarl import URL

from server.contract.errors import ErrorCode
from server.contract.validation import Payload
from server.policy import matching
from server.policy.auth import issue_token
from server.runtime.looplag import LoopLag
from signaling import monitor
from signaling.router import Router
from signaling.server import MAX_MESSAGE_BYTES, ROUTERS
from tests.conftest import CONSENT, LOOP_LAG_BOUND_S, SECRET, Client, Instance, StartInstance, login, loop_held_under

log = logging.getLogger("tests.fuzz")

CODES = set(get_args(ErrorCode))
TOTAL_CASES = int(os.environ.get("FUZZ_EXAMPLES", "10400"))
EVENT_SHARE = 0.6  # of TOTAL_CASES; the rest goes to HTTP
BATCH = 32  # cases sent at once: each hypothesis example is one batch
ACK_TIMEOUT_S = 15.0  # a hang, not slowness: generous on a loaded machine
# Larger Socket.IO messages close the connection by design (tested on its own below).
MAX_EVENT_CHARS = MAX_MESSAGE_BYTES - 16 * 1024
# aiohttp refuses request lines over 8190 bytes before the app sees them (tested on its own below).
MAX_URL_CHARS = 7000

USERS = {
    "clinician": "bavi.clinician",
    "specialist": "xanhpon.surgeon",
    "supervisor": "soyte.supervisor",
    "admin": "admin",
}
ROLES = tuple(USERS)
UNKNOWN = "<unknown event>"
CONNECT = "<connect>"
T = TypeVar("T")


# ---------------------------------------------------------------------------------------------
# Targets, from the code.


@dataclass(frozen=True)
class EventTarget:
    namespace: str
    event: str  # UNKNOWN: the catch-all handler; CONNECT: the connect handler
    model: type[Payload] | None

    @property
    def name(self) -> str:
        return f"sio {self.namespace} {self.event}"


def all_routers() -> list[Router]:
    return [*ROUTERS, monitor.router]


def event_targets() -> list[EventTarget]:
    targets = [
        EventTarget(router.namespace, event, registration.model)
        for router in all_routers()
        for event, registration in router.handlers.items()
    ]
    for namespace in sorted({router.namespace for router in all_routers()}):
        targets.append(EventTarget(namespace, UNKNOWN, None))
        targets.append(EventTarget(namespace, CONNECT, None))
    return targets


@dataclass(frozen=True)
class RouteTarget:
    method: str
    path: str  # canonical, with {params}
    kind: Literal["api", "static", "engineio"]
    model: type[Payload] | None  # the body model its handler reads, if any
    query_names: tuple[str, ...]  # the query parameters its handler reads

    @property
    def name(self) -> str:
        return f"http {self.method} {self.path}"


def _source(handler: Any) -> str:
    try:
        return inspect.getsource(handler)
    except (OSError, TypeError):
        return ""


def _body_model(handler: Any, source: str) -> type[Payload] | None:
    """The model a handler passes to `read_json(request, Model)`, looked up in its module."""
    found = re.search(r"read_json\(request, ([\w.]+)\)", source)
    if found is None:
        return None
    value: Any = getattr(handler, "__globals__", {})
    for part in found.group(1).split("."):
        value = value.get(part) if isinstance(value, dict) else getattr(value, part, None)
    return value if isinstance(value, type) and issubclass(value, Payload) else None


def route_targets(app: web.Application) -> list[RouteTarget]:
    targets = []
    for route in app.router.routes():
        resource = route.resource
        if resource is None:
            continue
        source = _source(route.handler)
        names = re.findall(r'query\.get\("(\w+)"\)|\(request, "(\w+)"\)', source)
        query_names = tuple(sorted({a or b for a, b in names}))
        if isinstance(resource, web.StaticResource):
            kind: Literal["api", "static", "engineio"] = "static"
            path = resource.canonical + "/{filename}"
        elif resource.canonical.startswith("/socket.io"):
            kind, path = "engineio", resource.canonical
        else:
            kind, path = "api", resource.canonical
        targets.append(RouteTarget(route.method, path, kind, _body_model(route.handler, source), query_names))
    return targets


# ---------------------------------------------------------------------------------------------
# Strategies.

ODD_CHARS = st.one_of(
    st.characters(),
    st.characters(codec="ascii"),
    st.characters(categories=["Cs"]),  # lone surrogates: valid JSON escapes, not encodable text
    st.sampled_from(["\x00", "\u202e", "\u200f", "\ufeff", "\u0301", "\U0001fa7a", "ệ", "\u2028", "\uffff", "\x7f"]),
)
SPECIAL_STRINGS = [
    "", " ", "null", "None", "true", "0", "-1", "1e309", "NaN", "..", ".", "../../etc/passwd",
    "..\\..\\windows\\win.ini", "%00", "%2e%2e%2f", "' OR '1'='1", "\"; DROP TABLE users; --",
    "<script>alert(1)</script>", "{{7*7}}", "${jndi:ldap://x/a}", "\x00", "\ud800", "\udfff", "\ud83d",
    "\u202egnp.exe", "Bệnh viện Ba Vì", "\U0001d518\U0001d52b", "\U0001fa7a" * 40, "\r\n", "consult:", "round:",
    "user:", "*", "x" * 64, "x" * 65, "x" * 101, "2025-03-01", "9999-12-31T23:59:59", "0001-01-01",
    "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "2025-13-45", "9999-12", "0001-01", "0000-00",
]  # fmt: skip
FLOATS = [0.0, -0.0, 1e308, -1e308, 5e-324, math.inf, -math.inf, math.nan, 0.1, 1 / 3]
INTS = [0, -1, 1, 2**31, 2**31 - 1, 2**53 + 1, 2**63, -(2**63) - 1, 2**64, 10**30, -(10**30)]

small_text = st.text(ODD_CHARS, max_size=24)


def huge_text(budget: int) -> st.SearchStrategy[str]:
    """A long string whose JSON encoding (ASCII-escaped) stays near `budget` characters."""
    piece = st.text(ODD_CHARS, min_size=1, max_size=3)
    return st.builds(
        lambda p, n: p * max(1, n // len(json.dumps(p))),
        piece,
        st.integers(min_value=budget // 20, max_value=budget),
    )


def strings(pool: tuple[str, ...], budget: int) -> st.SearchStrategy[str]:
    # Huge ones are the rarer kind: they cost the most to send, and a few suffice.
    return st.one_of(small_text, st.sampled_from(SPECIAL_STRINGS), st.sampled_from(pool), small_text, huge_text(budget))


def numbers() -> st.SearchStrategy[int | float]:
    return st.one_of(
        st.integers(),
        st.sampled_from(INTS),
        st.integers(min_value=-(2**80), max_value=2**80),
        st.floats(),
        st.sampled_from(FLOATS),
    )


def json_values(pool: tuple[str, ...], budget: int, binary: bool = False) -> st.SearchStrategy[Any]:
    """Arbitrary JSON (NaN and infinities included, as Python's json writes them), bytes if `binary`."""
    leaves: list[st.SearchStrategy[Any]] = [st.none(), st.booleans(), numbers(), strings(pool, budget)]
    if binary:
        leaves.append(st.binary(max_size=2048))
    return st.recursive(
        st.one_of(leaves),
        lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(small_text, inner, max_size=4)),
        max_leaves=6,  # small: generating is a good part of the run's time
    )


def deep(pool: tuple[str, ...]) -> st.SearchStrategy[Any]:
    """Nesting a few hundred levels deep (the Python client cannot encode ~1000; raw text goes deeper)."""

    def nest(leaf: Any, depth: int, as_dict: bool) -> Any:
        value = leaf
        for _ in range(depth):
            value = {"a": value} if as_dict else [value]
        return value

    return st.builds(nest, st.one_of(st.none(), strings(pool, 200)), st.integers(20, 600), st.booleans())


def from_schema(schema: dict[str, Any], defs: dict[str, Any], pool: tuple[str, ...]) -> st.SearchStrategy[Any]:
    """Valid-looking values for a pydantic JSON schema (validators beyond the schema may still refuse)."""
    if "$ref" in schema:
        return from_schema(defs[schema["$ref"].rsplit("/", 1)[-1]], defs, pool)
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of([from_schema(option, defs, pool) for option in schema[key]])
    if "allOf" in schema:
        return from_schema(schema["allOf"][0], defs, pool)
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties", {})
        required = set(schema.get("required", ()))
        if not properties:
            return st.dictionaries(small_text, json_values(pool, 100), max_size=3)
        return st.fixed_dictionaries(
            {k: from_schema(v, defs, pool) for k, v in properties.items() if k in required},
            optional={k: from_schema(v, defs, pool) for k, v in properties.items() if k not in required},
        )
    if kind == "string":
        low, high = schema.get("minLength", 0), schema.get("maxLength", 40)
        fitting = [p for p in pool if low <= len(p) <= high] or ["x" * max(low, 1)]
        return st.one_of(
            st.sampled_from(fitting),
            st.text(st.characters(codec="utf-8"), min_size=low, max_size=min(high, low + 30)),
        )
    if kind == "integer":
        low = schema.get("minimum", schema.get("exclusiveMinimum", -(2**40) - 1) + 1)
        high = schema.get("maximum", schema.get("exclusiveMaximum", 2**40 + 1) - 1)
        return st.integers(min_value=low, max_value=high)
    if kind == "number":
        return st.floats(
            min_value=schema.get("minimum", schema.get("exclusiveMinimum")),
            max_value=schema.get("maximum", schema.get("exclusiveMaximum")),
            exclude_min="exclusiveMinimum" in schema,
            exclude_max="exclusiveMaximum" in schema,
            allow_nan=False,
            allow_infinity=False,
        )
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        items = from_schema(schema.get("items", {}), defs, pool)
        return st.lists(items, min_size=schema.get("minItems", 0), max_size=min(schema.get("maxItems", 4), 4))
    return json_values(pool, 100)


def _objects(value: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object inside `value`, itself included."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def near_valid(model: type[Payload], pool: tuple[str, ...], junk: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A valid-looking payload with one thing broken in one of its objects: the most useful case,
    as it gets past the first checks. Now and then nothing is broken (the handler runs for real)."""
    schema = model.model_json_schema()
    valid = from_schema(schema, schema.get("$defs", {}), pool)

    @st.composite
    def build(draw: st.DrawFn) -> Any:
        value = draw(valid)
        objects = list(_objects(value))
        if not objects:
            return value
        target = draw(st.sampled_from(objects))
        how = draw(st.sampled_from(["drop", "junk", "junk", "junk", "extra", "keep"]))
        keys = sorted(target)
        if how == "drop" and keys:
            del target[draw(st.sampled_from(keys))]
        elif how == "junk" and keys:
            target[draw(st.sampled_from(keys))] = draw(junk)
        elif how == "extra":
            target[draw(small_text)] = draw(junk)
        return value

    return build()


# ---------------------------------------------------------------------------------------------
# The world: live instances, signed-in clients, ids that exist.


@dataclass
class World:
    a: Instance
    b: Instance
    tokens: dict[str, str]
    ids: dict[str, str]  # user ids by role
    clients: dict[tuple[str, int], Client]  # (role, instance 0|1) -> client on "/"
    monitors: dict[int, Client]  # instance -> supervisor on "/monitor"
    http: aiohttp.ClientSession
    pool: list[str] = field(default_factory=list)  # ids and codes that exist: they get past lookups
    consult_id: str | None = None
    counts: Counter[str] = field(default_factory=Counter)

    def url(self, which: int) -> str:
        return (self.a, self.b)[which].url

    def client(self, namespace: str, role: str, which: int) -> Client:
        return self.monitors[which] if namespace == monitor.NAMESPACE else self.clients[(role, which)]


async def open_world(a: Instance, b: Instance) -> World:
    # argon2 is slow on purpose: one login per role, the token serves every client.
    tokens = dict(zip(ROLES, await asyncio.gather(*(login(a.url, USERS[r]) for r in ROLES)), strict=True))
    clients: dict[tuple[str, int], Client] = {}
    monitors: dict[int, Client] = {}
    for which, instance in enumerate((a, b)):
        for role in ROLES:
            client = Client()
            await client.connect(instance.url, tokens[role])
            clients[(role, which)] = client
        client = Client()
        await client.connect(instance.url, tokens["supervisor"], monitor.NAMESPACE)
        monitors[which] = client
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=BATCH * 2))
    ids = {}
    for role in ROLES:
        async with http.get(f"{a.url}/api/me", headers={"Authorization": f"Bearer {tokens[role]}"}) as resp:
            me = await resp.json()
            ids[role] = me["id"]
    async with http.get(f"{a.url}/api/admin/users", headers={"Authorization": f"Bearer {tokens['admin']}"}) as resp:
        users = (await resp.json())["users"]
    # Ids that exist get past the first lookups. The fuzzing clients' own user ids stay out:
    # an admin route could deactivate them, and the run would then test only `unauthorized`.
    others = [u["id"] for u in users if u["id"] not in ids.values()]
    hospitals = sorted({u["hospital"]["id"] for u in users})
    world = World(a, b, tokens, ids, clients, monitors, http)
    world.pool = [*others, *hospitals, *matching.SPECIALTIES]
    return world


async def close_world(world: World) -> None:
    await world.http.close()
    for client in [*world.clients.values(), *world.monitors.values()]:
        await asyncio.wait_for(client.close(), 15)


async def fresh_consult(world: World) -> None:
    """An active consult with both sides in its call, so fuzzed ids reach the deep paths.

    Best effort: the fuzzing before may have changed presence or state; the cases stay valid
    cases without it, only shallower."""
    clinician, specialist = world.clients[("clinician", 0)], world.clients[("specialist", 0)]
    if world.consult_id is not None:
        await specialist.call("consult:end", {"consult_id": world.consult_id, "outcome": "follow_up"})
    await specialist.call("presence:set", {"status": "available"})
    ack = await clinician.call(
        "consult:request",
        {
            "op_id": uuid.uuid4().hex,
            "specialty": "surgery",
            "urgency": "emergency",
            "patient": {"ref": "FUZZ-1", "summary": "fuzz"},
            "consent": CONSENT,
            "specialist_id": world.ids["specialist"],
        },
    )
    if not ack.get("ok"):
        return
    consult_id = ack["consult"]["id"]
    for _ in range(20):
        if (await specialist.call("consult:accept", {"consult_id": consult_id})).get("ok"):
            break
        await asyncio.sleep(0.05)
    world.consult_id = consult_id
    world.pool.append(consult_id)
    for client in (clinician, specialist):
        joined = await client.call("consult:join", {"consult_id": consult_id})
        if joined.get("ok"):
            world.pool.append(joined["peer_id"])


# ---------------------------------------------------------------------------------------------
# Checks.


def ack_problem(ack: Any) -> str | None:
    """What is wrong with an acknowledgement, or None."""
    if not isinstance(ack, dict) or not isinstance(ack.get("ok"), bool):
        return f"not an ack: {ack!r:.200}"
    if ack["ok"]:
        return None
    error = ack.get("error")
    if not isinstance(error, dict) or error.get("code") not in CODES or not isinstance(error.get("message"), str):
        return f"malformed error ack: {ack!r:.300}"
    if error["code"] == "unavailable":
        return f"the handler failed: {ack!r:.300}"  # the router's answer to an unexpected exception
    return None


def http_problem(target: RouteTarget, method: str, status: int, body: bytes) -> str | None:
    if status >= 500:
        return f"{status}: {body[:300]!r}"
    if status < 400 or method == "HEAD" or target.kind != "api":
        # Engine.IO's transport errors are plain text, by the library; a missing static file is a
        # plain 404 (aiohttp finds out when it sends the file, past the error middleware).
        return None
    try:
        error = json.loads(body)["error"]
        ok = error["code"] in CODES and isinstance(error["message"], str)
    except (ValueError, TypeError, KeyError):
        ok = False
    return None if ok else f"{status} without a JSON error: {body[:300]!r}"


class ErrorRecords(logging.Handler):
    """Every record at ERROR or above, from any logger: an unhandled exception is a failure."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    # Engine.IO reports a client speaking another protocol version at ERROR, once per process:
    # the client's mistake, not an exception of the server.
    EXPECTED = ("The client is using an unsupported version of the Socket.IO or Engine.IO protocols",)

    def emit(self, record: logging.LogRecord) -> None:
        if not (record.exc_info is None and record.getMessage().startswith(self.EXPECTED)):
            self.records.append(record)

    def describe(self) -> str:
        lines = []
        for record in self.records[:5]:
            text = f"{record.name}: {record.getMessage()}"
            if record.exc_info and record.exc_info[1] is not None:
                text += f" ({type(record.exc_info[1]).__name__}: {record.exc_info[1]})"
            lines.append(text[:500])
        return "\n".join(lines)


@contextmanager
def logged_errors() -> Iterator[ErrorRecords]:
    handler = ErrorRecords()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


# ---------------------------------------------------------------------------------------------
# Running hypothesis in a worker thread, the cases in the test's event loop.


class Bridge:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def run(self, work: Coroutine[Any, Any, T], timeout: float = 120) -> T:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout)


def fuzz(name: str, cases: st.SearchStrategy[T], execute: Callable[[list[T]], list[str]], count: int) -> int:
    """Run at least `count` generated cases, BATCH at a time; returns how many ran."""
    ran = 0

    @seed(zlib.crc32(name.encode()))  # deterministic, and different for each target
    @settings(
        max_examples=max(1, math.ceil(count / BATCH)),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],  # no shrinking: a hang costs a timeout per try
        print_blob=False,
    )
    @given(st.lists(cases, min_size=BATCH, max_size=BATCH))
    def one_batch(batch: list[T]) -> None:
        nonlocal ran
        ran += len(batch)
        problems = execute(batch)
        assert not problems, f"{name}:\n" + "\n".join(problems)

    one_batch()
    return ran


def shares(total: int, names: list[str]) -> dict[str, int]:
    each = math.ceil(total / max(1, len(names)))
    return {n: each for n in names}


def log_counts(counts: Counter[str]) -> None:
    for name, n in sorted(counts.items()):
        log.warning("fuzz cases %6d  %s", n, name)
    log.warning("fuzz cases %6d  in all", sum(counts.values()))


# ---------------------------------------------------------------------------------------------
# Socket.IO events.


@dataclass(frozen=True)
class EventCase:
    role: str
    which: int  # 0: the first instance; 1: the second (the cross-instance path)
    mode: Literal["ack", "args", "noack"]
    event: str
    payload: Any  # for "args": a tuple, sent as that many arguments (none for an empty one)

    def __str__(self) -> str:
        return f"{self.role}@{self.which} {self.mode} {self.event!r:.80} {self.payload!r:.300}"


def _encoded_size(value: Any) -> int:
    """About what the Python client sends: ASCII-escaped JSON; bytes travel as separate frames."""
    return len(json.dumps(value, default=lambda b: "x" * min(len(b), 100)))


RESERVED_NAMES = ["connect", "disconnect", "message", "connect_error", "session:state", "consult:offer",
                  "monitor:update", "monitor:snapshot", "*", "", " ", "__disconnect_final"]  # fmt: skip


def event_names(registered: set[str], pool: tuple[str, ...]) -> st.SearchStrategy[str]:
    """Events nobody handles: odd strings, reserved names, near misses of real ones."""
    near_miss = st.sampled_from(sorted(registered)).flatmap(
        lambda name: st.sampled_from(
            [name.upper(), name + " ", " " + name, name + "\x00", name.replace(":", "."), name[:-1]]
        )
    )
    names = st.one_of(strings(pool, 300), st.sampled_from(RESERVED_NAMES), near_miss)
    return names.filter(lambda name: name not in registered)


def event_cases(target: EventTarget, pool: tuple[str, ...], registered: set[str]) -> st.SearchStrategy[EventCase]:
    junk = json_values(pool, 2000, binary=True)
    payloads = [json_values(pool, 30_000), deep(pool), json_values(pool, 200, binary=True)]
    if target.model is not None:
        payloads += [near_valid(target.model, pool, junk)] * 5  # the most useful kind: weighted
    payload = st.one_of(payloads)
    extra_args = st.lists(payload, max_size=3).filter(lambda args: len(args) != 1).map(tuple)
    event = event_names(registered, pool) if target.event == UNKNOWN else st.just(target.event)

    @st.composite
    def build(draw: st.DrawFn) -> EventCase:
        mode = draw(st.sampled_from(["ack"] * 6 + ["args", "noack"]))
        data = draw(extra_args) if mode == "args" else draw(payload)
        assume(_encoded_size(data) <= MAX_EVENT_CHARS)
        which = draw(st.sampled_from([0, 0, 0, 1]))
        return EventCase(draw(st.sampled_from(ROLES)), which, mode, draw(event), data)

    return build()


async def send_event(world: World, target: EventTarget, case: EventCase) -> str | None:
    client = world.client(target.namespace, case.role, case.which)
    world.counts[target.name] += 1
    try:
        if case.mode == "noack":
            await client.sio.emit(case.event, case.payload, namespace=target.namespace)
            return None
        ack = await client.sio.call(case.event, case.payload, namespace=target.namespace, timeout=ACK_TIMEOUT_S)
    except socketio.exceptions.TimeoutError:
        return f"no ack within {ACK_TIMEOUT_S} s: {case}"
    except socketio.exceptions.SocketIOError as error:
        return f"{type(error).__name__} {error}: {case}"
    problem = ack_problem(ack)
    return f"{problem}: {case}" if problem else None


@dataclass(frozen=True)
class ConnectCase:
    which: int
    auth: Any


def forged_tokens() -> list[str]:
    now = 1_700_000_000
    claims = {"sub": "nobody", "iss": "telerounds", "aud": "telerounds", "iat": now, "exp": now + 60}
    return [
        jwt.encode(claims, "another-secret-0123456789abcdef-x", algorithm="HS256"),  # wrong key
        jwt.encode(claims, SECRET, algorithm="HS256"),  # expired
        jwt.encode({**claims, "exp": 2**40}, SECRET, algorithm="HS256"),  # no such user
        jwt.encode({**claims, "exp": 2**40, "sub": 5}, SECRET, algorithm="HS256"),  # not a string
        jwt.encode({**claims, "exp": 2**40, "aud": "other"}, SECRET, algorithm="HS256"),
        "eyJhbGciOiJub25lIn0.e30.",  # alg none
    ]


def connect_cases(world: World, pool: tuple[str, ...]) -> st.SearchStrategy[ConnectCase]:
    tokens = st.sampled_from([*world.tokens.values(), *forged_tokens()])
    token_like = st.one_of(tokens, strings(pool, 5000), json_values(pool, 200))
    # Objects only: the protocol's CONNECT payload is an object, and the Python client would
    # write a number as the packet's id (a malformed packet, which is not what is tested here).
    auth = st.one_of(
        st.fixed_dictionaries({"token": token_like}),
        st.fixed_dictionaries({"token": tokens}, optional={"extra": json_values(pool, 200)}),
        st.dictionaries(small_text, json_values(pool, 20_000), max_size=3),
    )
    return st.builds(ConnectCase, st.sampled_from([0, 1]), auth)


async def try_connect(world: World, namespace: str, case: ConnectCase) -> str | None:
    world.counts[f"sio {namespace} {CONNECT}"] += 1
    sio = socketio.AsyncClient(reconnection=False)
    refusals: list[Any] = []
    sio.on("connect_error", refusals.append, namespace=namespace)
    try:
        await sio.connect(
            world.url(case.which),
            auth=case.auth,
            namespaces=[namespace],
            transports=["websocket"],
            wait_timeout=ACK_TIMEOUT_S,
        )
    except socketio.exceptions.ConnectionError as error:
        await sio.eio.disconnect(abort=True)
        # The browser's client reads the refusal's `data` (error.data.code): it must be {code, message}.
        packet = refusals[0] if refusals else None
        data = packet.get("data") if isinstance(packet, dict) else None
        if not (isinstance(data, dict) and data.get("code") in CODES and isinstance(data.get("message"), str)):
            return f"connect neither accepted nor refused with a code ({error}; {packet!r:.200}): {case.auth!r:.300}"
        return None
    await sio.disconnect()
    return None


async def check_alive(world: World) -> list[str]:
    """Every fuzzing client still gets a proper answer to a normal event (a refusal for some roles)."""
    problems = []
    probes = [(f"{role}@{which}", client, "/") for (role, which), client in world.clients.items()]
    probes += [(f"monitor@{which}", client, monitor.NAMESPACE) for which, client in world.monitors.items()]
    for name, client, namespace in probes:
        try:
            ack = await client.call("consult:leave", {"consult_id": "no-such-consult"}, namespace=namespace)
        except socketio.exceptions.SocketIOError as error:
            ack = repr(error)
        if (problem := ack_problem(ack)) is not None:
            problems.append(f"{name} no longer answers: {problem}")
    return problems


@pytest.fixture
async def fuzz_instances(start_instance: StartInstance) -> tuple[Instance, Instance]:
    """Two instances without the per-user event rate limit: the fuzzing clients send thousands."""
    env = {"RATE_EVENTS_BURST": "1000000", "RATE_EVENTS_PER_S": "1000000"}
    return await start_instance(**env), await start_instance(**env)


async def test_fuzz_socketio_events(fuzz_instances: tuple[Instance, Instance]) -> None:
    bridge = Bridge(asyncio.get_running_loop())
    targets = event_targets()
    registered = {t.event for t in targets if t.model is not None}
    share = shares(int(TOTAL_CASES * EVENT_SHARE), [t.name for t in targets])
    # A new connection per case costs a handshake: connect gets a smaller share.
    planned = {t.name: share[t.name] // 8 if t.event == CONNECT else share[t.name] for t in targets}
    with logged_errors() as errors:
        world = await open_world(*fuzz_instances)
        try:
            for target in targets:
                started = asyncio.get_running_loop().time()
                await fresh_consult(world)
                log.info("setup %s %.2f s", target.name, asyncio.get_running_loop().time() - started)
                pool = tuple(world.pool)
                if target.event == CONNECT:
                    namespace = target.namespace
                    runner: Callable[[list[Any]], list[str]] = _runner(
                        bridge, lambda case, ns=namespace: try_connect(world, ns, case)
                    )
                    await asyncio.to_thread(fuzz, target.name, connect_cases(world, pool), runner, planned[target.name])
                    continue
                await asyncio.to_thread(
                    fuzz,
                    target.name,
                    event_cases(target, pool, registered),
                    _runner(bridge, lambda case, t=target: send_event(world, t, case)),
                    planned[target.name],
                )
                assert not (problems := await check_alive(world)), f"after {target.name}: {problems}"
                log.info("done %s %.2f s", target.name, asyncio.get_running_loop().time() - started)
            await asyncio.sleep(0.5)  # handlers of the last no-ack events finish
            assert not (problems := await check_alive(world)), problems
        finally:
            await close_world(world)
            log_counts(world.counts)
            print(world.counts)
    assert not errors.records, f"errors were logged:\n{errors.describe()}"
    assert all(world.counts[name] >= n for name, n in planned.items()), (planned, world.counts)


async def run_batch(batch: list[T], attempt: Callable[[T], Awaitable[str | None]]) -> list[str]:
    """Run a batch of cases at once on the server's loop; the problems they found, among them a
    case that held the event loop longer than `LOOP_LAG_BOUND_S` (issue 18)."""
    async with LoopLag() as lag:
        found = await asyncio.gather(*(attempt(case) for case in batch))
    problems = [p for p in found if p]
    if lag.worst_s > LOOP_LAG_BOUND_S:
        # Which one: each case again, alone. Many cases at once may add up to more than the bound
        # in one turn of the loop without any of them holding it for long.
        for case in batch:
            async with LoopLag() as alone:
                await attempt(case)
            if alone.worst_s > LOOP_LAG_BOUND_S:
                problems.append(f"held the event loop for {alone.worst_ms} ms: {case}")
        log.info("a batch held the loop %s ms; the cases alone: %d over the bound", lag.worst_ms, len(problems))
    return problems


def _runner(bridge: Bridge, attempt: Callable[[T], Awaitable[str | None]]) -> Callable[[list[T]], list[str]]:
    """Run a batch of cases at once on the server's loop; the problems they found."""

    def run(batch: list[T]) -> list[str]:
        return bridge.run(run_batch(batch, attempt))

    return run


# ---------------------------------------------------------------------------------------------
# HTTP routes.


@dataclass(frozen=True)
class HttpCase:
    which: int
    method: str
    path: str  # percent-encoded path and query, sent as is
    headers: dict[str, str]
    body: bytes | None

    def __str__(self) -> str:
        return f"{self.method} {self.path[:300]} {self.headers} {self.body and self.body[:300]!r}"


# Methods HTTP parsers know: an unknown one ("FOO") is refused by aiohttp's parser with a plain
# 400 before the app sees it, like an over-long request line (tested on its own below).
ODD_METHODS = ["PUT", "DELETE", "PATCH", "POST", "GET", "OPTIONS", "TRACE", "PROPFIND", "LINK"]
TRAVERSAL = ["..", "%2e%2e", "..%2f..%2fetc%2fpasswd", "%2e%2e%2f%2e%2e%2f", "..%5c..%5c", "%00", "%ff%fe", "%",
             "%zz", "%252e%252e", "....%2f%2f", "~root", "%c0%ae%c0%ae", ".", "%20", "a%2fb"]  # fmt: skip
CONTENT_TYPES = ["application/json", "application/json; charset=utf-16", "text/plain", "application/octet-stream",
                 "application/x-www-form-urlencoded", "multipart/form-data", "multipart/form-data; boundary=",
                 "image/png", "", "*/*", "application/fhir+json", "text/csv"]  # fmt: skip
ACCEPTS = ["application/json", "text/csv", "text/csv;q=abc, application/json;q=0.1", "*/*", "text/html", "x/y;q=-1"]
SIGNATURES = [b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"%PDF-", b"GIF89a", b""]


def encode(text: str) -> str:
    """Percent-encoded UTF-8; lone surrogates as their (invalid) UTF-8 bytes."""
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


def segments(pool: tuple[str, ...]) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(TRAVERSAL), st.sampled_from(pool), strings(pool, 600).map(encode))


def query_strings(names: tuple[str, ...], pool: tuple[str, ...]) -> st.SearchStrategy[str]:
    key = st.one_of(st.sampled_from(names or ("q",)), small_text)
    value = st.one_of(strings(pool, 1500), st.sampled_from([str(n) for n in INTS]), numbers().map(str))
    pairs = st.lists(st.tuples(key.map(encode), value.map(encode)), max_size=4)
    plain = pairs.map(lambda items: "&".join(f"{k}={v}" for k, v in items))
    return st.one_of(plain, st.sampled_from(["", "&&&", "=", "a=%zz", "%", "a[]=1&a[]=2", "from=1&from=2", "?"]))


def multipart(pool: tuple[str, ...]) -> st.SearchStrategy[tuple[bytes, str]]:
    """A multipart body (sometimes a broken one) and its content type."""

    def build(name: str, filename: str, head: bytes, data: bytes, close: bool) -> tuple[bytes, str]:
        part = (
            b"--BOUNDARY\r\nContent-Disposition: form-data; name=\"" + name.encode("utf-8", "surrogatepass")
            + b"\"; filename=\"" + filename.encode("utf-8", "surrogatepass") + b"\"\r\n"
            + b"Content-Type: application/octet-stream\r\n\r\n" + head + data + b"\r\n"
        )  # fmt: skip
        return part + (b"--BOUNDARY--\r\n" if close else b""), "multipart/form-data; boundary=BOUNDARY"

    name = st.one_of(st.just("file"), small_text)
    return st.builds(
        build, name, strings(pool, 300), st.sampled_from(SIGNATURES), st.binary(max_size=512), st.booleans()
    )


def bodies(target: RouteTarget, pool: tuple[str, ...]) -> st.SearchStrategy[tuple[bytes | None, str | None]]:
    """(body, content type): JSON near the route's model, arbitrary or broken JSON, binary, multipart."""
    junk = json_values(pool, 2000)

    def as_json(value: Any, ascii_only: bool) -> bytes:
        return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")

    json_like = st.builds(as_json, json_values(pool, 30_000), st.booleans())
    kinds: list[st.SearchStrategy[tuple[bytes | None, str | None]]] = [
        st.just((None, None)),
        st.tuples(json_like, st.sampled_from(CONTENT_TYPES)),
        st.tuples(json_like.flatmap(lambda b: st.integers(0, len(b)).map(lambda n: b[:n] + b"}{")), st.none()),
        st.tuples(st.binary(max_size=2048), st.sampled_from(CONTENT_TYPES)),
        st.tuples(st.integers(1_500, 20_000).map(lambda n: b"[" * n), st.just("application/json")),  # too deep
        st.tuples(
            st.sampled_from([b'"' + b"a" * (300 * 1024) + b'"', b"\xef\xbb\xbf{}", b"\xff\xfe{\x00}\x00"]),
            st.just("application/json"),
        ),
        multipart(pool),
    ]
    if target.model is not None:
        near = near_valid(target.model, pool, junk)
        kinds += [st.tuples(st.builds(as_json, near, st.booleans()), st.just("application/json"))] * 6
    return st.one_of(kinds)


def http_cases(world: World, target: RouteTarget, pool: tuple[str, ...]) -> st.SearchStrategy[HttpCase]:
    tokens = [*world.tokens.values(), *forged_tokens()]
    # Signing out ends the token it is sent with: give that route valid tokens of its own (a new
    # one each time), or the rest of the run would be refused and its sockets closed.
    fresh = st.builds(lambda role: issue_token(SECRET, world.ids[role], 3600), st.sampled_from(ROLES))
    any_token = (
        st.one_of(fresh, st.sampled_from(forged_tokens())) if target.path == "/api/logout" else st.sampled_from(tokens)
    )
    body = bodies(target, pool)
    query = query_strings(target.query_names, pool)
    seg = segments(pool)
    filename = st.lists(seg, min_size=1, max_size=4).map("/".join)

    @st.composite
    def build(draw: st.DrawFn) -> HttpCase:
        path = re.sub(r"\{filename\}", lambda _: draw(filename), target.path)
        path = re.sub(r"\{\w+(?::[^}]*)?\}", lambda _: draw(seg), path)
        if (q := draw(query)) or draw(st.booleans()):
            path += "?" + q
        headers = {}
        if (token := draw(st.one_of(st.none(), any_token, st.text(st.characters(codec="ascii",
                exclude_categories=["Cc"]), max_size=100)))) is not None:  # fmt: skip
            headers["Authorization"] = draw(st.sampled_from(["Bearer ", "bearer  ", "Basic ", ""])) + token
        data, content_type = draw(body)
        if content_type is not None:
            headers["Content-Type"] = content_type
        if draw(st.booleans()):
            headers["Accept"] = draw(st.sampled_from(ACCEPTS))
        method = draw(st.one_of(st.just(target.method), st.just(target.method), st.sampled_from(ODD_METHODS)))
        return HttpCase(draw(st.sampled_from([0, 0, 0, 1])), method, path[:MAX_URL_CHARS], headers, data)

    return build()


async def send_http(world: World, target: RouteTarget, case: HttpCase) -> str | None:
    world.counts[target.name] += 1
    url = URL(world.url(case.which) + case.path, encoded=True)
    try:
        async with world.http.request(
            case.method,
            url,
            data=case.body,
            headers=case.headers,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=ACK_TIMEOUT_S),
        ) as response:
            body = await response.read()
    except TimeoutError:
        return f"no answer within {ACK_TIMEOUT_S} s: {case}"
    except aiohttp.ClientError as error:
        return f"{type(error).__name__} {error}: {case}"
    problem = http_problem(target, case.method, response.status, body)
    return f"{problem}: {case}" if problem else None


def _http_runner(bridge: Bridge, world: World, target: RouteTarget) -> Callable[[list[HttpCase]], list[str]]:
    return _runner(bridge, lambda case: send_http(world, target, case))


async def test_fuzz_http_routes(fuzz_instances: tuple[Instance, Instance]) -> None:
    bridge = Bridge(asyncio.get_running_loop())
    with logged_errors() as errors:
        world = await open_world(*fuzz_instances)
        try:
            targets = route_targets(world.a.runner.app)
            planned = shares(TOTAL_CASES - int(TOTAL_CASES * EVENT_SHARE), [t.name for t in targets])
            for target in targets:
                await fresh_consult(world)
                cases = http_cases(world, target, tuple(world.pool))
                await asyncio.to_thread(
                    fuzz, target.name, cases, _http_runner(bridge, world, target), planned[target.name]
                )
            async with world.http.get(
                f"{world.a.url}/api/me", headers={"Authorization": f"Bearer {world.tokens['clinician']}"}
            ) as resp:
                assert resp.status == 200, "the server still answers"
            assert not (problems := await check_alive(world)), problems
        finally:
            await close_world(world)
            log_counts(world.counts)
            print(world.counts)
    assert not errors.records, f"errors were logged:\n{errors.describe()}"
    assert all(world.counts[name] >= n for name, n in planned.items()), (planned, world.counts)


# ---------------------------------------------------------------------------------------------
# Regressions: each bug the fuzzing found, as a plain case, and the limits it stays under.


async def _http(instance: Instance, method: str, path: str, token: str | None = None, **kw: Any) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, URL(instance.url + path, encoded=True), headers=headers, **kw) as resp,
    ):
        raw = await resp.read()
        try:
            return resp.status, json.loads(raw)
        except ValueError:
            return resp.status, raw


async def test_regression_http_bad_input(fuzz_instances: tuple[Instance, Instance]) -> None:
    instance = fuzz_instances[0]
    admin, supervisor = await login(instance.url, "admin"), await login(instance.url, "soyte.supervisor")
    with logged_errors() as errors:
        async with loop_held_under():  # not one of these holds the loop (issue 18)
            cases: list[tuple[str, str, str | None, dict[str, Any]]] = [
                # JSON nested deeper than the parser's recursion limit: was a 500 (RecursionError).
                ("POST", "/api/login", None, {"data": b"[" * 100_000}),
                ("POST", "/api/admin/hospitals", admin, {"data": b'{"a":' * 50_000}),
                # Lone surrogates and NUL: valid JSON escapes, not storable text.
                ("POST", "/api/login", None, {"json": {"username": "\ud800", "password": "x"}}),
                ("PATCH", "/api/admin/hospitals/%ED%A0%80", admin, {"json": {"name": "x\ud800"}}),
                ("GET", "/api/admin/users?hospital_id=%ED%A0%80&role=%00", admin, {}),
                ("GET", "/api/admin/audit?from=0001-01-01T00:00:00%2B14:00&before=%ED%A0%80", admin, {}),
                ("GET", "/api/consults/%ED%A0%80", supervisor, {}),
                # Dates at the ends of the calendar.
                ("GET", "/api/stats?from=0001-01-01", supervisor, {}),
                ("GET", "/api/stats?to=9999-12-31T23:59:59-14:00", supervisor, {}),
                ("GET", "/api/stats/report?month=9999-12", supervisor, {}),
                ("GET", "/api/stats/report?month=0001-01", supervisor, {}),
                ("GET", "/api/consults?from=0001-01-01T00:00:00%2B14:00", supervisor, {}),
                # Occurrences were walked day by day to the window: 14 s for this one (issue 18).
                ("GET", "/api/rounds?from=9999-12-29&to=9999-12-31", supervisor, {}),
                ("GET", "/api/rounds?from=0001-01-01&to=0001-03-01", supervisor, {}),
            ]
            for method, path, token, kw in cases:
                status, body = await _http(instance, method, path, token, **kw)
                assert 400 <= status < 500 or status == 200, (path, status, body)
                if status >= 400:
                    assert body["error"]["code"] in CODES, (path, body)
            # A URL longer than aiohttp's request line limit is refused before the app, not a crash.
            status, _ = await _http(instance, "GET", "/api/roster?x=" + "a" * 20_000)
            assert 400 <= status < 500
    assert not errors.records, errors.describe()


async def test_regression_socketio_bad_input(fuzz_instances: tuple[Instance, Instance]) -> None:
    instance = fuzz_instances[0]
    tokens = {role: await login(instance.url, USERS[role]) for role in ("clinician", "specialist")}
    clinician, specialist = Client(), Client()
    await clinician.connect(instance.url, tokens["clinician"])
    await specialist.connect(instance.url, tokens["specialist"])
    with logged_errors() as errors:
        async with loop_held_under():  # not one of these holds the loop (issue 18)
            # A client's event named "connect" or "disconnect" ran the handshake handlers: with no
            # arguments it hung without an ack, and "disconnect" marked a connected user offline.
            for event in ("connect", "disconnect"):
                for args in ((), ({"token": tokens["clinician"]},), (None, None, None)):
                    ack = await clinician.sio.call(event, args, timeout=5)
                    assert ack["error"]["code"] == "invalid", (event, args, ack)
            surgeon_id = await specialist_id(instance, tokens)
            await specialist.sio.call("disconnect", None, timeout=5)
            _, roster = await _http(instance, "GET", "/api/roster", tokens["clinician"])
            surgeon = next(s for s in roster["specialists"] if s["id"] == surgeon_id)
            assert surgeon["presence"]["online"], "a faked disconnect took the specialist offline"
            # Numbers past what the database stores, lone surrogates in ids.
            for event, payload in [
                ("note:list", {"consult_id": "x", "after_seq": 2**70}),
                ("note:list", {"consult_id": "\ud800"}),
                ("consult:join", {"consult_id": "\udfff\x00"}),
                (
                    "consult:request",
                    {
                        "op_id": "\ud800",
                        "specialty": "surgery",
                        "urgency": "routine",
                        "patient": {"ref": "\ud800", "summary": "\x00"},
                    },
                ),
                ("rtc:stats", {"consult_id": "x", "loss_pct": math.nan, "rtt_ms": math.inf}),
            ]:
                ack = await clinician.call(event, payload)
                assert ack_problem(ack) is None, (event, ack)
            # A message over the limit closes that connection, by design; the server carries on.
            big = Client()
            await big.connect(instance.url, tokens["clinician"])
            with contextlib.suppress(socketio.exceptions.SocketIOError):
                await big.sio.call("note:add", {"text": "x" * (MAX_MESSAGE_BYTES + 1)}, timeout=5)
            await asyncio.sleep(0.2)
            assert not big.sio.connected
            assert (await clinician.call("consult:leave", {"consult_id": "x"})) == {"ok": True}
    await clinician.close()
    await specialist.close()
    assert not errors.records, errors.describe()


async def specialist_id(instance: Instance, tokens: dict[str, str]) -> str:
    _, me = await _http(instance, "GET", "/api/me", tokens["specialist"])
    return str(me["id"])


async def test_regression_refused_connect_carries_its_code(fuzz_instances: tuple[Instance, Instance]) -> None:
    """The refusal's `data` is `{code, message}`: the browser reads `error.data.code` (was only a
    stringified dict in `message`, so a client told `unauthorized` never went back to the login)."""
    instance = fuzz_instances[0]
    clinician = await login(instance.url, "bavi.clinician")
    for namespace, token, code in [("/", "forged", "unauthorized"), ("/monitor", clinician, "forbidden")]:
        sio = socketio.AsyncClient(reconnection=False)
        refusals: list[Any] = []
        sio.on("connect_error", refusals.append, namespace=namespace)
        with contextlib.suppress(socketio.exceptions.ConnectionError):
            await sio.connect(instance.url, auth={"token": token}, namespaces=[namespace], transports=["websocket"])
        await sio.eio.disconnect(abort=True)
        assert refusals and refusals[0]["data"]["code"] == code, refusals
        assert isinstance(refusals[0]["data"]["message"], str)
