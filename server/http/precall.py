"""`POST /api/precall/offer`: answer a browser's offer with the echoing pre-call peer."""

from __future__ import annotations

from typing import Annotated, Literal

from aiohttp import web
from pydantic import StringConstraints

from server.contract.validation import Payload
from server.http.common import read_json, require_account, services_of

routes = web.RouteTableDef()


class Offer(Payload):
    type: Literal["offer"]
    sdp: Annotated[str, StringConstraints(min_length=1, max_length=64 * 1024)]


@routes.post("/api/precall/offer")
async def precall_offer(request: web.Request) -> web.Response:
    account = await require_account(request)
    body = await read_json(request, Offer)
    answer = await services_of(request).precall.answer(account.id, body.sdp)
    return web.json_response({"type": answer.type, "sdp": answer.sdp})
