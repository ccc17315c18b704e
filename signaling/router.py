"""Event registration with the contract's ack: validate, call, answer `{ok, ...}` or `{ok: false, error}`.

Every client→server event goes through `Router.on`, so there is one place that parses
payloads, turns refusals into error acks and never lets an exception escape to the client.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import socketio

from server import revocation
from server.auth import read_token
from server.errors import AppError
from server.services import Services
from server.users import Account, load_account
from server.validation import Payload, parse

log = logging.getLogger("telerounds.signaling")

P = TypeVar("P", bound=Payload)


@dataclass(frozen=True)
class Caller:
    """Who sent an event: their account, their socket and where from."""

    services: Services
    sid: str
    namespace: str
    account: Account
    address: str


EventHandler = Callable[[Caller, Any], Awaitable[dict[str, Any]]]


class Router:
    """The events of one namespace, each with its payload model."""

    def __init__(self, namespace: str = "/") -> None:
        self.namespace = namespace
        self.handlers: dict[str, tuple[type[Payload], EventHandler]] = {}

    def on(self, event: str, model: type[P]) -> Callable[[Callable[[Caller, P], Awaitable[dict[str, Any]]]], Any]:
        def register(fn: Callable[[Caller, P], Awaitable[dict[str, Any]]]) -> Any:
            self.handlers[event] = (model, fn)
            return fn

        return register

    def attach(self, sio: socketio.AsyncServer, services: Services) -> None:
        for event, (model, fn) in self.handlers.items():
            handler = _ack_handler(sio, services, self.namespace, event, model, fn)
            sio.on(event, namespace=self.namespace)(handler)
        sio.on("*", namespace=self.namespace)(_unknown_handler(services))


class Revoked(AppError):
    """The caller's account was deactivated after they connected."""


async def caller_of(sio: socketio.AsyncServer, services: Services, sid: str, namespace: str) -> Caller:
    session = await sio.get_session(sid, namespace=namespace)
    account = session.get("account")
    if account is None:
        raise AppError("unauthorized", "connect with a valid token first")
    # A deactivated account is refused here, on every event: the disconnect an admin's
    # deactivation sends to every instance may be lost, and the session's account was
    # read at connect. One Redis round trip; see server/revocation.py.
    if await revocation.is_revoked(services.redis, account.id):
        raise Revoked("unauthorized", "this account is not active; log in again")
    return Caller(services, sid, namespace, account, session.get("address", ""))


async def authenticate(services: Services, auth: Any) -> Account:
    """The account a connect's `auth.token` names; refuses the connection otherwise."""
    token = auth.get("token") if isinstance(auth, dict) else None
    try:
        user_id = read_token(services.settings.secret_key, token)
        return await load_account(services, user_id)
    except AppError as error:
        raise socketio.exceptions.ConnectionRefusedError({"code": error.code, "message": error.message}) from None


def _ack_handler(
    sio: socketio.AsyncServer,
    services: Services,
    namespace: str,
    event: str,
    model: type[Payload],
    fn: EventHandler,
) -> Callable[..., Awaitable[dict[str, Any]]]:
    async def handle(sid: str, data: Any = None, *extra: Any) -> dict[str, Any]:
        result = "ok"
        try:
            # Who first, so a deactivated account is refused whatever it sends.
            caller = await caller_of(sio, services, sid, namespace)
            if extra:
                raise AppError("invalid", "send one payload object per event")
            payload = parse(model, data)
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
        except Exception:
            log.exception("event failed", extra={"event": event, "sid": sid})
            result = "error"
            answer = AppError("unavailable", "the server could not complete this; try again").as_ack()
        services.metrics.events.labels(event, result).inc()
        return answer

    return handle


def _unknown_handler(services: Services) -> Callable[..., Awaitable[dict[str, Any]]]:
    async def unknown(event: str, sid: str, *data: Any) -> dict[str, Any]:
        services.metrics.events.labels("unknown", "invalid").inc()
        name = event if isinstance(event, str) and len(event) <= 64 else "?"
        return AppError("invalid", f"unknown event {name!r}").as_ack()

    return unknown
