"""Passwords (argon2), access tokens and playback tickets (JWT, HS256 pinned, `iss`/`aud`/`exp` checked)."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from server.contract.errors import AppError

ISSUER = "telerounds"
AUDIENCE = "telerounds"
ALGORITHM = "HS256"

_hasher = PasswordHasher()
# Verified when the username is unknown, so a wrong username costs as much time as a wrong password.
_DUMMY_HASH = _hasher.hash("telerounds-no-such-user")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def issue_token(secret: str, user_id: str, ttl_s: int, now: float | None = None, generation: int = 0) -> str:
    """A token for `user_id`, in the account's current `generation` (see `Token`), with an id of
    its own (`jti`) by which signing out ends this token alone (`server.actions.sessions`)."""
    issued = int(time.time() if now is None else now)
    claims = {
        "sub": user_id,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": issued,
        "exp": issued + ttl_s,
        "gen": generation,
        "jti": secrets.token_urlsafe(16),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


@dataclass(frozen=True)
class Token:
    """What a valid token says: whose it is, and the account's token generation when it was
    issued (`gen`; 0 if it does not say). A new password or a re-activation moves the account
    to the next generation, which ends every earlier token (`server.records.users.load_account`).
    `id` (`jti`) names this one token, ended alone by signing out; None in tokens issued before
    tokens had ids. `expires`: its `exp`, in seconds since the epoch."""

    user_id: str
    generation: int
    id: str | None = None
    expires: int = 0


def _decode(secret: str, raw: str, audience: str, required: tuple[str, ...], expired: str, what: str) -> dict[str, Any]:
    """The claims of a JWT of ours for `audience`, with `required` present; `unauthorized` with
    `expired` once it has expired, or saying `what` is not valid."""
    try:
        claims: dict[str, Any] = jwt.decode(
            raw,
            secret,
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=ISSUER,
            options={"require": [*required, "iss", "aud"]},
        )
    except jwt.ExpiredSignatureError:
        raise AppError("unauthorized", expired) from None
    except jwt.InvalidTokenError:
        raise AppError("unauthorized", f"{what} is not valid") from None
    return claims


def read_token(secret: str, token: Any) -> Token:
    """What a valid token says; `AppError("unauthorized")` for anything else."""
    if not isinstance(token, str) or not token:
        raise AppError("unauthorized", "a valid token is required")
    claims = _decode(secret, token, AUDIENCE, ("exp", "sub"), "the token has expired; log in again", "the token")
    subject = claims.get("sub")
    if not isinstance(subject, str):
        raise AppError("unauthorized", "the token is not valid")
    generation = claims.get("gen")
    token_id = claims.get("jti")
    expires = claims.get("exp")
    return Token(
        subject,
        generation if isinstance(generation, int) else 0,
        token_id if isinstance(token_id, str) and token_id else None,
        expires if isinstance(expires, int) else 0,
    )


# A playback link's ticket: a `<video src>` cannot send the bearer token, so the player asks for a
# link naming one recording and one user (POST /api/recordings/{id}/playback). Its own audience, so
# a ticket is never a bearer token and a bearer token never a ticket. A few minutes: long enough to
# load a player's first ranges, short enough that a copied link soon ends; the page asks for a new
# one when it has (static/ui/record.js).
PLAYBACK_AUDIENCE = "telerounds-playback"
PLAYBACK_TICKET_TTL_S = 300


@dataclass(frozen=True)
class PlaybackTicket:
    """What a valid ticket says: the recording, and the sign-in (`Token`) that asked for it."""

    recording_id: str
    token: Token


def issue_playback_ticket(secret: str, recording_id: str, token: Token, now: float | None = None) -> tuple[str, int]:
    """A ticket to play `recording_id` as the holder of `token`, and when it expires (seconds since
    the epoch): it carries the token's user, generation and id, so a new password, a deactivation
    or signing out ends it too."""
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "sub": token.user_id,
        "rec": recording_id,
        "iss": ISSUER,
        "aud": PLAYBACK_AUDIENCE,
        "iat": issued,
        "exp": issued + PLAYBACK_TICKET_TTL_S,
        "gen": token.generation,
    }
    if token.id is not None:
        claims["sid"] = token.id
    return jwt.encode(claims, secret, algorithm=ALGORITHM), issued + PLAYBACK_TICKET_TTL_S


def read_playback_ticket(secret: str, ticket: str, recording_id: str) -> PlaybackTicket:
    """What a valid ticket for `recording_id` says; `unauthorized` for an expired or invalid one,
    `forbidden` for a ticket of another recording."""
    expired = "the playback link has expired; ask for a new one"
    claims = _decode(secret, ticket, PLAYBACK_AUDIENCE, ("exp", "sub", "rec"), expired, "the playback link")
    subject, recording, generation, token_id = (claims.get(k) for k in ("sub", "rec", "gen", "sid"))
    if not isinstance(subject, str) or not isinstance(recording, str):
        raise AppError("unauthorized", "the playback link is not valid")
    if recording != recording_id:
        raise AppError("forbidden", "this playback link is for another recording")
    token = Token(
        subject,
        generation if isinstance(generation, int) else 0,
        token_id if isinstance(token_id, str) and token_id else None,
        int(claims["exp"]),
    )
    return PlaybackTicket(recording, token)
