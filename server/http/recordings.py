"""Recordings over HTTP: a consult's or a round's list, the file (HTTP `Range`), deletion (admin).

A browser plays through a playback link (`POST …/playback`): a `<video src>` cannot send the
bearer token, so the link carries a short-lived ticket naming the recording and the user
(server/policy/auth.py). Asking for the link is the playback, audited once (`recording.play`);
the many range requests the player then makes with it are not each audited. A request for the
file with the bearer token itself is a playback of its own, audited with the range asked."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import web

from server.actions import access, recording
from server.actions import rounds as round_actions
from server.contract.views import playback_view, recording_view
from server.http.common import TICKET, TOKEN, client_address, require_account, services_of
from server.policy.auth import issue_playback_ticket
from server.records import audit, recordings
from server.records.blobs import BlobDamaged, BlobMissing, digest_of_path

routes = web.RouteTableDef()

# Files checked against their SHA-256 on this instance, with the (size, mtime) they had: a
# player's many range requests hash an hours-long file once, not each time.
_checked: dict[str, tuple[int, int]] = {}
CHECKED_KEPT = 1000  # files remembered as checked; beyond, the memory starts again


@routes.get("/api/consults/{consult_id}/recordings")
async def consult_recordings(request: web.Request) -> web.Response:
    account = await require_account(request)
    services = services_of(request)
    consult = await access.consult_for(services, account, request.match_info["consult_id"], write=False)
    found = await recordings.of_call(services.db, consult_id=consult.id)
    return web.json_response({"recordings": [recording_view(r) for r in found]})


@routes.get("/api/rounds/{round_id}/recordings")
async def round_recordings(request: web.Request) -> web.Response:
    account = await require_account(request)
    services = services_of(request)
    item = await round_actions.readable(services.db, account, request.match_info["round_id"])
    found = await recordings.of_call(services.db, round_id=item.id)
    return web.json_response({"recordings": [recording_view(r) for r in found]})


@routes.post("/api/recordings/{recording_id}/playback")
async def recording_playback(request: web.Request) -> web.Response:
    """A playback link for a `<video src>`, for this user and this recording, for a few minutes."""
    account = await require_account(request)
    services = services_of(request)
    row = await recording.readable(services, account, request.match_info["recording_id"])
    recording.media_path(services, row)  # `conflict` while it is being made: nothing to play yet
    ticket, expires = issue_playback_ticket(services.settings.secret_key, row.id, request[TOKEN])
    detail = f"segment={row.segment} link"
    await audit.record(services.db, account.id, "recording.play", "recording", row.id, client_address(request), detail)
    return web.json_response(playback_view(row.id, ticket, expires))


@routes.get("/api/recordings/{recording_id}/media")
async def recording_media(request: web.Request) -> web.FileResponse:
    account = await require_account(request)  # the bearer token, or a playback ticket (`?ticket=`)
    services = services_of(request)
    row = await recording.readable(services, account, request.match_info["recording_id"])
    path = recording.media_path(services, row)
    await _check(path, str(row.sha256))
    if TICKET not in request:  # a ticket's playback was audited when its link was asked for
        asked = request.headers.get("Range", "")[:100]
        detail = " ".join(p for p in (f"segment={row.segment}", f"range={asked}" if asked else "") if p)
        await audit.record(
            services.db, account.id, "recording.play", "recording", row.id, client_address(request), detail
        )
    return web.FileResponse(
        path,
        headers={
            "Content-Type": "video/webm",
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
            "Content-Disposition": f'inline; filename="recording-{row.id}.webm"',
        },
    )


async def _check(path: Path, sha256: str) -> None:
    try:
        stat = await asyncio.to_thread(path.stat)
    except FileNotFoundError:
        raise BlobMissing(sha256) from None
    if _checked.get(sha256) == (stat.st_size, stat.st_mtime_ns):
        return
    if await asyncio.to_thread(digest_of_path, path) != sha256:
        raise BlobDamaged(sha256)
    if len(_checked) >= CHECKED_KEPT:
        _checked.clear()
    _checked[sha256] = (stat.st_size, stat.st_mtime_ns)


@routes.delete("/api/admin/recordings/{recording_id}")
async def delete_recording(request: web.Request) -> web.Response:
    account = await require_account(request)
    services = services_of(request)
    await recording.delete(services, account, request.match_info["recording_id"], client_address(request))
    return web.json_response({"deleted": request.match_info["recording_id"]})
