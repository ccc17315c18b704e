"""Snapshots: everything one screen needs, so a (re)connecting client rebuilds its view."""

from __future__ import annotations

from datetime import UTC, datetime

from server.actions import dispatch, rounds
from server.contract.views import SessionState
from server.live import presence
from server.records.users import Account
from server.runtime.services import Services


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


async def session_state(services: Services, account: Account) -> SessionState:
    """`session:state`: `{user, presence, consults, offers, rounds, server_time}`.

    A round patient's consult is not in `consults`: it belongs to its round, in `rounds` (the
    user's rounds with an occurrence or a session today, so a reconnecting client rejoins)."""
    open_consults, offers = await dispatch.open_for(services, account)
    return {
        "user": account.public(),
        "presence": await presence.of(services.redis, account.id),
        "consults": [c for c in open_consults if c["kind"] != "round"],
        "offers": offers,
        "rounds": await rounds.today_for(services.db, account, datetime.now(UTC)),
        "server_time": now_iso(),
    }
