"""Where a request comes from: the one answer that sign-in throttling, the audit log and Socket.IO use.

Behind a reverse proxy (deploy/nginx.conf) every connection comes from the proxy, which names
the client in `X-Forwarded-For`, appending the address it got the request from to what the
client sent. Anyone can send that header, so it is believed only hop by hop from the right: the
direct peer must be a trusted proxy (`TRUSTED_PROXIES`) for the last entry to count, that entry
must be trusted too for the one before it, and so on. The first address that is not a trusted
proxy is the client. Without trusted proxies the header is ignored.

(`aiohttp-remotes` does this as a middleware, but its filtered mode believes the header from any
peer, so a direct client could name any address it likes and dodge the sign-in throttle, and its
strict mode answers 400 to every request that did not come through the proxy, health checks and
local scrapers among them.)
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from server.runtime.settings import Network

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# An IPv6 user may pick any address of their /64 (privacy addresses); throttle the block, not one.
IPV6_THROTTLE_PREFIX = 64


def parse(text: str | None) -> Address | None:
    """An address as a proxy or the socket gives it: plain, `a.b.c.d:port` or `[v6]:port`; None if not one."""
    text = (text or "").strip()
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # IPv4 with a port; a bare IPv6 address has two colons at least
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    # An IPv4 client on a dual-stack socket shows as ::ffff:a.b.c.d; it is the IPv4 client.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Address, proxies: Sequence[Network]) -> bool:
    return any(address.version == proxy.version and address in proxy for proxy in proxies)


def client_address(peer: str | None, forwarded_for: Iterable[str], proxies: Sequence[Network]) -> str:
    """The client's address, given the direct peer's, the `X-Forwarded-For` headers (in the order
    received) and the trusted proxies. A malformed entry stops the walk at the last proxy that
    vouched for it: better to count a proxy's address than an address a client made up."""
    current = parse(peer)
    if current is None:
        return peer or ""  # not an IP peer (a Unix socket): nothing to walk from
    if not proxies:
        return str(current)
    hops = [part for header in forwarded_for for part in header.split(",")]
    while hops and _trusted(current, proxies):
        previous = parse(hops.pop())
        if previous is None:
            break
        current = previous
    return str(current)


def throttle_key(address: str) -> str:
    """What sign-in throttling counts by: the address, or for IPv6 its /64 block."""
    parsed = parse(address)
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((parsed, IPV6_THROTTLE_PREFIX), strict=False))
    return str(parsed) if parsed is not None else address
