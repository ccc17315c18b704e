"""ICE servers for a call: STUN URLs, and TURN with short-lived credentials (coturn's REST-API scheme).

coturn with `use-auth-secret` accepts username `<expiry>:<user_id>` and the password
base64(HMAC-SHA1(secret, username)), so no TURN account is stored anywhere.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

from aiortc import RTCConfiguration, RTCIceServer, RTCIceTransportPolicy

from server.runtime.settings import Settings


def turn_credentials(secret: str, user_id: str, ttl_s: int, now: float | None = None) -> tuple[str, str]:
    expiry = int((now if now is not None else time.time()) + ttl_s)
    username = f"{expiry}:{user_id}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def ice_servers(settings: Settings, user_id: str) -> list[dict[str, Any]]:
    """The `iceServers` a client should use; empty when none are configured."""
    servers: list[dict[str, Any]] = []
    if settings.stun_urls:
        servers.append({"urls": list(settings.stun_urls)})
    if settings.turn_urls and settings.turn_secret:
        username, credential = turn_credentials(settings.turn_secret, user_id, settings.turn_ttl_s)
        servers.append({"urls": list(settings.turn_urls), "username": username, "credential": credential})
    return servers


def call_network(settings: Settings, user_id: str) -> dict[str, Any]:
    """What a client's `RTCPeerConnection` is configured with: fresh TURN credentials and the policy
    (`"relay"`: TURN only). Sent in the join acks, and again by `GET /api/ice-servers` when a call
    outlives its credentials."""
    return {
        "ice_servers": ice_servers(settings, user_id),
        "ice_transport_policy": settings.ice_transport_policy,
        "ice_ttl_s": settings.turn_ttl_s,
    }


def server_peer_configuration(settings: Settings, user_id: str) -> RTCConfiguration:
    """The configuration of a peer the server itself runs (the pre-call echo, the recorder): the
    ICE servers and the transport policy the calls use, so it takes the path they take (TURN)."""
    servers = [
        RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
        for s in ice_servers(settings, user_id)
    ]
    policy = RTCIceTransportPolicy(settings.ice_transport_policy)
    return RTCConfiguration(iceServers=servers, iceTransportPolicy=policy)
