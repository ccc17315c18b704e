"""The python-socketio internals the service builds on are still there, with the same signatures.

signaling/redis_manager.py overrides some methods of `socketio.AsyncRedisManager` (and calls
others), and signaling/packets.py overrides `AsyncServer._handle_eio_message`. Private methods
may change in any release; pyproject.toml keeps the major version, and this test says which one
moved when an upgrade within it changes them. When it fails, read the new upstream method and
adapt the override, then record the new signature here.
"""

from __future__ import annotations

import inspect

import pytest
import socketio
from socketio import packet

from signaling.packets import CheckedPacket, Server
from signaling.redis_manager import RedisManager

# (upstream class, method name): its signature as recorded, without annotations.
EXPECTED: dict[tuple[type, str], str] = {
    # Overridden in signaling/redis_manager.py.
    (socketio.AsyncRedisManager, "__init__"): (
        "(self, url='redis://localhost:6379/0', channel='socketio', write_only=False, logger=None, json=None,"
        " redis_options=None)"
    ),
    (socketio.AsyncRedisManager, "initialize"): "(self)",
    (socketio.AsyncRedisManager, "pre_connect"): "(self, eio_sid, namespace)",
    (socketio.AsyncRedisManager, "_publish"): "(self, data)",
    (socketio.AsyncRedisManager, "_listen"): "(self)",
    (socketio.AsyncRedisManager, "_handle_disconnect"): "(self, message)",
    # Called by the overrides or relied on for the routing in `_publish`.
    (socketio.AsyncRedisManager, "emit"): (
        "(self, event, data, namespace=None, room=None, skip_sid=None, callback=None, to=None, **kwargs)"
    ),
    (socketio.AsyncRedisManager, "_handle_emit"): "(self, message)",
    (socketio.AsyncRedisManager, "basic_enter_room"): "(self, sid, namespace, room, eio_sid=None)",
    (socketio.AsyncRedisManager, "get_participants"): "(self, namespace, room)",
    # Overridden in signaling/packets.py.
    (socketio.AsyncServer, "_handle_eio_message"): "(self, eio_sid, data)",
    (socketio.AsyncServer, "_send_packet"): "(self, eio_sid, pkt)",
    (packet.Packet, "decode"): "(self, encoded_packet)",
}

OVERRIDDEN = {
    RedisManager: ("__init__", "initialize", "pre_connect", "_publish", "_listen", "_handle_disconnect"),
    Server: ("__init__", "_handle_eio_message"),
    CheckedPacket: ("decode",),
}


def bare(method: object) -> str:
    """A signature without annotations: what a caller of the method depends on."""
    signature = inspect.signature(method)  # type: ignore[arg-type]
    return str(
        signature.replace(
            parameters=[p.replace(annotation=inspect.Parameter.empty) for p in signature.parameters.values()],
            return_annotation=inspect.Signature.empty,
        )
    )


@pytest.mark.parametrize(("owner", "name"), list(EXPECTED), ids=[f"{c.__name__}.{n}" for c, n in EXPECTED])
def test_the_upstream_method_is_there_with_its_recorded_signature(owner: type, name: str) -> None:
    method = getattr(owner, name, None)
    assert method is not None, f"python-socketio no longer has {owner.__name__}.{name}"
    assert bare(method) == EXPECTED[owner, name], f"{owner.__name__}.{name} changed its signature"


def test_every_override_is_of_a_method_upstream_has_and_is_recorded() -> None:
    recorded = {name for _, name in EXPECTED}
    for cls, names in OVERRIDDEN.items():
        for name in names:
            assert name in vars(cls), f"{cls.__name__} no longer overrides {name}: update this list"
            assert any(hasattr(base, name) for base in cls.__mro__[1:]), f"upstream dropped {name}"
            assert name in recorded or name == "__init__", f"{name}'s upstream signature is not recorded"


def test_the_overrides_take_what_upstream_callers_pass() -> None:
    """Each override accepts the upstream signature's parameters, so the library's calls still fit."""
    for cls, names in OVERRIDDEN.items():
        for name in names:
            if name == "__init__":
                continue
            ours = inspect.signature(getattr(cls, name)).parameters
            upstream = inspect.signature(getattr(cls.__mro__[1], name)).parameters
            assert list(ours) == list(upstream), f"{cls.__name__}.{name} takes {list(ours)}, upstream {list(upstream)}"


def test_nothing_else_of_the_manager_is_overridden_unnoticed() -> None:
    """A method of ours that shadows an upstream one must be in OVERRIDDEN (with its reason in the
    module's notes); our own helpers must not take upstream names by accident."""
    upstream = set(dir(socketio.AsyncRedisManager))
    shadowing = {
        name
        for name, value in vars(RedisManager).items()
        if callable(value) and name in upstream and not name.startswith("__")
    }
    assert shadowing == set(OVERRIDDEN[RedisManager]) - {"__init__"}


def test_publish_routes_a_one_socket_emit_to_its_instance_only() -> None:
    """The routing kept inside `_publish`: the stock `emit` message, read for where it goes."""
    manager = RedisManager("redis://127.0.0.1:1/0")  # never connects: only the routing is asked
    other = "0123456789ab"
    here_sid, there_sid = f"{manager.tag}~AAAA", f"{other}~BBBB"

    def emit(room: object, **changes: object) -> dict[str, object]:
        message = {"method": "emit", "event": "consult:updated", "data": [{}], "binary": False, "namespace": "/"}
        return {**message, "room": room, "skip_sid": None, "callback": None, "host_id": manager.host_id, **changes}

    assert manager._route(emit(there_sid)) == f"{manager.channel}~{other}"  # to its instance only
    assert manager._route(emit(here_sid)) is None  # delivered here by the stock emit already
    for shared in [
        emit("user:42"),  # a room
        emit(None),  # everyone
        emit(["user:1", "user:2"]),  # several rooms
        emit(there_sid, callback=(there_sid, "/", 1)),  # an ack comes back through the shared channel
        emit(there_sid, skip_sid=here_sid),
        emit(there_sid, binary=True),
        {"method": "disconnect", "sid": there_sid, "namespace": "/", "host_id": manager.host_id},
        b"telerounds-reauthorize:{}",
    ]:
        assert manager._route(shared) == manager.channel, shared
