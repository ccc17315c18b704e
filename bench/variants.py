"""`python -m bench.variants [--loop asyncio] [--gc default] [--events separate]
[--routing broadcast] [--websocket deflate] [--redis-write timed]`: telerounds
(`python -m server`) with one optimization taken back, so the bench measures each step against
the current code in the same run.

--loop asyncio       the standard event loop instead of uvloop
--gc default         the collector as Python sets it: no `gc.freeze()` after startup, so every
                     full collection walks the ~150k objects of the modules and the app (the
                     stall of issue 9), and the young generation collected after 700 objects
--gc frozen          startup frozen, but the young generation at Python's 700 objects
--events separate    every event checks the revocation (EXISTS) and then its rate limit (EVAL
                     with the script's text), and a signal then reads its room: three round trips
--events one         the revocation and the rate limit in one EVALSHA, then a signal reads its
                     room: two round trips, instead of one EVALSHA that also returns the room
--routing broadcast  an emit to one socket id goes through the shared channel to every instance
                     (the stock manager), instead of straight to its socket or its instance
--websocket deflate  the WebSocket accepts per-message compression, as aiohttp does by default
                     (a zlib context per connection), instead of declining it
--redis-write timed  redis-py's own connections: each command's write runs in `asyncio.wait_for`
                     under the socket timeout, instead of writing with no timer armed
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys

import server.__main__ as server_main
from server.contract.errors import AppError
from server.live import ratelimit, revocation
from server.records.users import Account
from server.runtime import services
from server.runtime.services import Services
from signaling import redis_manager
from signaling import router as signaling_router
from signaling import server as signaling_server

admit_event = signaling_router.admit_event  # the current one, before a variant replaces it

# ---- revocation and rate limit before issue 9 ----------------------------------------------------


async def separate_admit_event(services: Services, account: Account, read: str | None = None) -> dict[str, str] | None:
    if await services.redis.exists(revocation.key(account.id)):
        raise signaling_router.Revoked("unauthorized", "this account is not active; log in again")
    settings = services.settings
    allowed, wait = await services.redis.eval(
        ratelimit._TAKE,
        1,
        f"ratelimit:events:{account.id}",
        settings.rate_events_burst,
        settings.rate_events_per_s,
        repr(ratelimit.clock()),
        1,
    )
    if int(allowed) != 1:
        raise AppError("rate_limited", f"too many events; slow down; try again in {float(wait):.0f} s")
    return await services.redis.hgetall(read) if read else None


async def admit_event_then_read(services: Services, account: Account, read: str | None = None) -> dict[str, str] | None:
    await admit_event(services, account)
    return await services.redis.hgetall(read) if read else None


def freeze_only() -> None:
    gc.collect()
    gc.freeze()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.variants")
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    parser.add_argument("--gc", choices=["tuned", "frozen", "default"], default="tuned")
    parser.add_argument("--events", choices=["read", "one", "separate"], default="read")
    parser.add_argument("--routing", choices=["targeted", "broadcast"], default="targeted")
    parser.add_argument("--websocket", choices=["plain", "deflate"], default="plain")
    parser.add_argument("--redis-write", choices=["untimed", "timed"], default="untimed")
    args = parser.parse_args(argv)
    if args.loop == "asyncio":
        server_main.new_event_loop = asyncio.new_event_loop  # type: ignore[assignment]
    if args.gc == "default":
        server_main.tune_collector = lambda: None
    elif args.gc == "frozen":
        server_main.tune_collector = freeze_only
    if args.events == "separate":
        signaling_router.admit_event = separate_admit_event
    elif args.events == "one":
        signaling_router.admit_event = admit_event_then_read
    if args.routing == "broadcast":
        # No socket id names an instance: every emit takes the stock way.
        redis_manager.RedisManager.owner = lambda self, to: None  # type: ignore[method-assign]
    if args.websocket == "deflate":
        signaling_server.use_uncompressed_websocket = lambda sio: None
    if args.redis_write == "timed":
        services.UNTIMED_WRITE.update({stock: stock for stock in services.UNTIMED_WRITE})
    return server_main.main()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
