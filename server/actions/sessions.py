"""Signing out: the token ends at once, for HTTP and Socket.IO, on every instance.

Each token has an id (`jti`, `server.policy.auth.issue_token`). Signing out stores that id in the
database (`revoked_tokens`), which every HTTP request and every connect reads together with the
account (`server.records.users.load_account`, one query), so the token is refused from then on, even if a
copy of it was taken. The sockets connected with it are closed on every instance. The row is kept
until the token would have expired anyway, then removed by a later sign-out.

The other endings, for every token of an account at once, are the account's token generation
(a new password, a re-activation: `server.actions.admin`) and deactivation (`server.live.revocation`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError

from server.policy.auth import Token
from server.records import audit
from server.records.models import RevokedToken, User, utcnow
from server.runtime.services import Services


async def sign_out(services: Services, token: Token, address: str) -> None:
    """End this token (already checked valid). A token from before tokens had ids cannot be
    named alone: signing it out ends every sign-in of the account (its next generation)."""
    now = utcnow()
    try:
        async with services.db.session() as session, session.begin():
            # Rows of tokens that have expired anyway: their tokens are refused by `exp`.
            await session.execute(delete(RevokedToken).where(RevokedToken.expires_at < now))
            if token.id is not None:
                expires = datetime.fromtimestamp(token.expires, UTC)
                session.add(RevokedToken(id=token.id, user_id=token.user_id, expires_at=expires))
            else:
                await session.execute(
                    update(User).where(User.id == token.user_id).values(token_generation=User.token_generation + 1)
                )
            session.add(audit.entry(token.user_id, "auth.logout", "user", token.user_id, address))
    except IntegrityError:
        pass  # signed out twice at once (two tabs): the first one stands
    if services.sio is not None:
        # signaling.redis_manager.RedisManager: this instance's sockets, then a message to the others.
        await services.sio.manager.disconnect_user(token.user_id, token.id)
