"""`GET /api/ice-servers`: fresh TURN credentials for a call that outlives the ones its join gave.

A call can last longer than `TURN_TTL_S`; coturn then refuses to refresh the allocation with the
old username. The browser fetches new ones here and restarts ICE with them (static/call.js).
"""

from __future__ import annotations

from aiohttp import web

from server.http.common import require_account, services_of
from server.runtime.ice import call_network

routes = web.RouteTableDef()


@routes.get("/api/ice-servers")
async def fresh_ice_servers(request: web.Request) -> web.Response:
    account = await require_account(request)
    return web.json_response(call_network(services_of(request).settings, account.id))
