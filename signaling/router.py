"""Event registration with the contract's ack: validate, call, answer `{ok, ...}` or `{ok: false, error}`.

Every client→server event goes through `Router.on`, so there is one place that checks who may
send it (the role gate of `server.policy.permissions`), counts it against the sender's rate limit, parses
payloads, turns refusals into error acks and never lets an exception escape to the client.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import redis.asyncio as aioredis
import socketio
from redis.commands.core import AsyncScript

from server.contract.errors import AppError
from server.contract.validation import Payload, parse
from server.live import ratelimit, revocation
from server.policy import permissions
from server.policy.auth import read_token
from server.records.users import Account, load_account
from server.runtime.services import Services
from server.runtime.storage import storage_unavailable

log = logging.getLogger("telerounds.signaling")

P = TypeVar("P", bound=Payload)


@dataclass(frozen=True)
class Caller:
    """Who sent an event: their account, their socket and where from; and, for an event
    registered with `reads`, the Redis hash it names, read within the event's admission."""

    services: Services
    sid: str
    namespace: str
    account: Account
    address: str
    read: dict[str, str] | None = None


EventHandler = Callable[[Caller, Any], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Registration:
    """An event's payload model, its handler, and the Redis hash it reads first (see `Router.on`)."""

    model: type[Payload]
    handler: EventHandler
    reads: Callable[[Any], str] | None = None


class Router:
    """The events of one namespace, each with its payload model."""

    def __init__(self, namespace: str = "/") -> None:
        self.namespace = namespace
        self.handlers: dict[str, Registration] = {}

    def on(
        self, event: str, model: type[P], reads: Callable[[P], str] | None = None
    ) -> Callable[[Callable[[Caller, P], Awaitable[dict[str, Any]]]], Any]:
        """Register `event`'s handler. With `reads`, the Redis hash it names from the payload
        comes to the handler as `Caller.read`, read in the round trip that admits the event
        (the hot path of a call: one round trip per relayed signal, not two)."""

        def register(fn: Callable[[Caller, P], Awaitable[dict[str, Any]]]) -> Any:
            self.handlers[event] = Registration(model, fn, reads)
            return fn

        return register

    def attach(self, sio: socketio.AsyncServer, services: Services) -> None:
        for event, registration in self.handlers.items():
            handler = _ack_handler(sio, services, self.namespace, event, registration)
            sio.on(event, namespace=self.namespace)(handler)
        sio.on("*", namespace=self.namespace)(_unknown_handler(services))


class Revoked(AppError):
    """The caller's account was deactivated after they connected."""


async def caller_of(sio: socketio.AsyncServer, services: Services, sid: str, namespace: str) -> Caller:
    session = await sio.get_session(sid, namespace=namespace)
    account = session.get("account")
    if account is None:
        raise AppError("unauthorized", "connect with a valid token first")
    return Caller(services, sid, namespace, account, session.get("address", ""))


def refusal(error: AppError) -> socketio.exceptions.ConnectionRefusedError:
    """A refused connect whose error carries `{code, message}` as its `data`, where clients look.

    With one argument python-socketio sends `{message: str(argument)}` and no `data`: the browser
    would find no code and, told `unauthorized`, never go back to the login."""
    return socketio.exceptions.ConnectionRefusedError(error.message, {"code": error.code, "message": error.message})


async def authenticate(services: Services, auth: Any) -> Account:
    """The account a connect's `auth.token` names; refuses the connection otherwise."""
    token = auth.get("token") if isinstance(auth, dict) else None
    try:
        claims = read_token(services.settings.secret_key, token)
    except AppError as error:
        raise refusal(error) from None
    # The stamp first, the account after (see server/live/revocation.py): a change made in between
    # leaves an older stamp with the newer account, never the reverse.
    stamp = await revocation.stamp_of(services.redis, claims.user_id)
    try:
        account = await load_account(services, claims.user_id, claims.generation, claims.id)
    except AppError as error:
        raise refusal(error) from None
    return replace(account, stamp=stamp)


def token_id(services: Services, auth: Any) -> str | None:
    """The id of the token an admitted connect presented, kept in its socket's session so that
    signing out closes the sockets of that token alone (`server.actions.sessions.sign_out`)."""
    try:
        return read_token(services.settings.secret_key, auth.get("token") if isinstance(auth, dict) else None).id
    except AppError:
        return None


async def admit(services: Services, auth: Any, namespace: str) -> Account:
    """`authenticate`, then the namespace's connect rule in `server.policy.permissions`."""
    account = await authenticate(services, auth)
    try:
        permissions.check_role(permissions.event_rule(namespace, "connect"), account.role, f"namespace {namespace}")
    except AppError as error:
        raise refusal(error) from None
    return account


@asynccontextmanager
async def refused_while_storage_down() -> AsyncIterator[None]:
    """Around a connect handler: with Redis or the database down the client is refused with
    `unavailable` (and its reconnection tries again later) instead of waiting for no answer."""
    try:
        yield
    except Exception as exc:
        if not storage_unavailable(exc):
            raise
        log.warning("connect refused, storage unavailable: %s", type(exc).__name__)
        raise refusal(AppError("unavailable", "the service cannot reach its storage now; try again")) from None


# KEYS[1]: the user's event bucket; KEYS[2]: their revocation key; KEYS[3]: their authorization
# stamp; KEYS[4], optional: a hash to return with an admitted event. ARGV: burst, refill per
# second, now (s), the stamp the socket's account was read at.
# Returns {-1} when revoked, {-2} when the stamp is another (both take no token), else
# {allowed, wait[, the hash's fields and values]}: the revocation, the account's version, the rate
# limit and the event's first read in one round trip.
_ADMIT = (
    ratelimit.BUCKET
    + """
if redis.call('EXISTS', KEYS[2]) == 1 then
  return {-1}
end
if redis.call('GET', KEYS[3]) ~= ARGV[4] then
  return {-2}
end
local allowed, wait = take(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), 1)
if allowed == 1 and KEYS[4] then
  return {allowed, wait, redis.call('HGETALL', KEYS[4])}
end
return {allowed, wait}
"""
)


class Stale(Exception):
    """The account an event's socket holds is of an older version (`server.live.revocation` stamps)."""


@functools.lru_cache(maxsize=8)  # one per client: a service has one
def _admit_script(redis: aioredis.Redis) -> AsyncScript:
    return redis.register_script(_ADMIT)


async def admit_event(services: Services, account: Account, read: str | None = None) -> dict[str, str] | None:
    """`Revoked` if the account was deactivated, else `Stale` if the socket's copy of the account
    is older than its authorization's version, else one token of the user's event bucket (shared
    by all their sockets on every instance), else `rate_limited`; returns the hash `read` names,
    if one is. All in one Redis round trip.

    A deactivated account is refused here, on every event: the disconnect an admin's
    deactivation sends to every instance may be lost, and the session's account was read at
    connect (see server/live/revocation.py). A revoked or stale event takes no token."""
    settings = services.settings
    keys = [
        ratelimit.key(ratelimit.user_events(account.id)),
        revocation.key(account.id),
        revocation.stamp_key(account.id),
        *([read] if read else []),
    ]
    args: list[float | str] = [
        settings.rate_events_burst,
        settings.rate_events_per_s,
        repr(ratelimit.clock()),
        account.stamp,
    ]
    allowed, *rest = await _admit_script(services.redis)(keys=keys, args=args)
    if allowed == -1:
        raise Revoked("unauthorized", "this account is not active; log in again")
    if allowed == -2:
        raise Stale()
    wait, *found = rest
    if allowed != 1:
        raise ratelimit.refusal("too many events; slow down", float(wait))
    if read is None:
        return None
    fields = found[0] if found else []
    return dict(zip(fields[::2], fields[1::2], strict=True))


# Re-reads in a row before an event is refused: each is a change of the user's access made
# while the previous re-read ran, which does not go on.
MAX_REFRESHES = 3


async def admit_current(
    sio: socketio.AsyncServer, caller: Caller, read: str | None
) -> tuple[Caller, dict[str, str] | None]:
    """`admit_event` for the caller as their account is now: when the socket's copy is stale it
    is read again, the socket leaves the rooms it may no longer be in, and the event is admitted
    for the account as read (`signaling.reauthorize.refresh`). Only a stale event costs more than
    one round trip."""
    for _ in range(MAX_REFRESHES):
        try:
            return caller, await admit_event(caller.services, caller.account, read)
        except Stale:
            # Imported here, off the hot path: signaling.reauthorize leaves calls through
            # signaling.rtc, which imports this module.
            from signaling import reauthorize

            caller = await reauthorize.refresh(sio, caller)
    raise AppError("unavailable", "your access is being changed; try again")


def _ack_handler(
    sio: socketio.AsyncServer,
    services: Services,
    namespace: str,
    event: str,
    registration: Registration,
) -> Callable[..., Awaitable[dict[str, Any]]]:
    model, fn, reads = registration.model, registration.handler, registration.reads
    rule = permissions.event_rule(namespace, event)
    if not rule.roles:
        log.error("event without a permission rule; it is refused", extra={"event": event})

    async def handle(sid: str, data: Any = None, *extra: Any) -> dict[str, Any]:
        result = "ok"
        try:
            caller = await caller_of(sio, services, sid, namespace)
            # The payload is parsed first, for the hash it names, but a bad one is refused only
            # in its turn. The order of refusals: a deactivated account, then the rate limit (so
            # refused events count too; both one round trip), then the role gate, then the payload.
            # The account is the current one: re-read first when it changed since the last event.
            payload: Any = None
            invalid: AppError | None = None
            read_key = None
            try:
                if extra:
                    raise AppError("invalid", "send one payload object per event")
                payload = parse(model, data)
                read_key = reads(payload) if reads is not None else None
            except AppError as error:
                invalid = error
            caller, read = await admit_current(sio, caller, read_key)
            permissions.check_role(rule, caller.account.role, event)
            if invalid is not None:
                raise invalid
            if read is not None:
                caller = replace(caller, read=read)
            answer = {"ok": True, **await fn(caller, payload)}
        except Revoked as error:
            result = error.code
            answer = error.as_ack()
            # The refusal is acked first (the ack is queued before this task runs), then the
            # socket is closed here, on the instance that holds it.
            sio.start_background_task(sio.disconnect, sid, namespace)
        except AppError as error:
            result = error.code
            answer = error.as_ack()
        except Exception as exc:
            if storage_unavailable(exc):
                # Redis or the database is down: expected while it lasts, so no traceback per event.
                log.warning("storage unavailable: %s", type(exc).__name__, extra={"event": event, "sid": sid})
                answer = AppError("unavailable", "the service cannot reach its storage now; try again").as_ack()
            else:
                log.exception("event failed", extra={"event": event, "sid": sid})
                answer = AppError("unavailable", "the server could not complete this; try again").as_ack()
            result = "error"
        services.metrics.events.labels(event, result).inc()
        return answer

    return handle


def client_event(sio: socketio.AsyncServer, sid: str, namespace: str, event: str) -> dict[str, Any] | None:
    """An error ack when a connect or disconnect handler runs for a client's event of that name.

    python-socketio hands a client's event named "connect" or "disconnect" to those handlers,
    with the payload as their arguments: a connected client could re-run the handshake or fake
    its own disconnect. Only then is the socket fully connected: during the real connect it is
    still pending, during the real disconnect already leaving.
    """
    if not sio.manager.is_connected(sid, namespace):
        return None
    return AppError("invalid", f"unknown event {event!r}").as_ack()


def _unknown_handler(services: Services) -> Callable[..., Awaitable[dict[str, Any]]]:
    # Called as (event, sid, *data); but for an event named "*" itself python-socketio calls it
    # as that event's own handler, (sid, *data): with no payload `sid` is missing. Defaults, so
    # that too gets its error ack.
    async def unknown(event: Any = None, sid: Any = None, *data: Any) -> dict[str, Any]:
        services.metrics.events.labels("unknown", "invalid").inc()
        name = event if isinstance(event, str) and len(event) <= 64 else "?"
        return AppError("invalid", f"unknown event {name!r}").as_ack()

    return unknown
