"""Signed tokens (server/policy/auth.py), without a server: what is signed is read back, and an
expired, forged, altered or otherwise signed token is `unauthorized`."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from server.contract.errors import AppError
from server.policy import auth

SECRET = "a-secret-of-the-department-of-health-" + "0123456789abcdef" * 2  # 64 bytes: long enough for HS512
USER = "u-clinician-bavi"


def _unauthorized(token: Any, message: str) -> None:
    with pytest.raises(AppError, match=message) as raised:
        auth.read_token(SECRET, token)
    assert raised.value.code == "unauthorized"


def _claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"sub": USER, "iss": auth.ISSUER, "aud": auth.AUDIENCE, "iat": now, "exp": now + 600, "gen": 0}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def test_a_signed_token_reads_back() -> None:
    now = time.time()
    token = auth.issue_token(SECRET, USER, 600, now=now, generation=3)
    read = auth.read_token(SECRET, token)
    assert read.user_id == USER
    assert read.generation == 3
    assert read.expires == int(now) + 600
    assert read.id  # its own id, by which signing out ends it alone


def test_each_token_has_its_own_id() -> None:
    first = auth.read_token(SECRET, auth.issue_token(SECRET, USER, 600))
    second = auth.read_token(SECRET, auth.issue_token(SECRET, USER, 600))
    assert first.id != second.id


def test_an_expired_token_is_refused() -> None:
    token = auth.issue_token(SECRET, USER, 60, now=time.time() - 3600)
    _unauthorized(token, "expired")


def test_a_token_signed_with_another_secret_is_refused() -> None:
    _unauthorized(auth.issue_token("another-secret-not-ours-0123456789abcdef", USER, 600), "not valid")


def test_an_altered_token_is_refused() -> None:
    header, _ours, signature = auth.issue_token(SECRET, USER, 600).split(".")
    other = jwt.encode(_claims(sub="u-admin"), SECRET, algorithm="HS256").split(".")[1]
    _unauthorized(f"{header}.{other}.{signature}", "not valid")


@pytest.mark.parametrize("algorithm", ["none", "HS512", "HS384"])
def test_a_token_of_another_algorithm_is_refused(algorithm: str) -> None:
    # HS256 is pinned: neither an unsigned token nor one signed otherwise (even with our secret).
    token = jwt.encode(_claims(), SECRET if algorithm != "none" else None, algorithm=algorithm)
    _unauthorized(token, "not valid")


@pytest.mark.parametrize(
    "changes",
    [
        {"iss": "someone-else"},
        {"aud": "another-service"},
        {"exp": None},  # a token that never expires
        {"sub": None},
        {"iss": None},
        {"aud": None},
        {"sub": 42},  # a subject that is no user id
    ],
    ids=["issuer", "audience", "no-exp", "no-sub", "no-iss", "no-aud", "sub-not-text"],
)
def test_a_token_with_wrong_or_missing_claims_is_refused(changes: dict[str, Any]) -> None:
    _unauthorized(jwt.encode(_claims(**changes), SECRET, algorithm="HS256"), "not valid")


@pytest.mark.parametrize("token", [None, "", 42, "not-a-token", "a.b.c", ["x"]])
def test_what_is_not_a_token_is_refused(token: Any) -> None:
    _unauthorized(token, "token")


def test_an_old_token_without_generation_or_id_reads_as_generation_zero() -> None:
    read = auth.read_token(SECRET, jwt.encode(_claims(gen=None), SECRET, algorithm="HS256"))
    assert read.generation == 0 and read.id is None


def test_passwords_hash_and_verify() -> None:
    stored = auth.hash_password("lúa chín vàng trên đồi Ba Vì")
    assert stored != "lúa chín vàng trên đồi Ba Vì"
    assert auth.verify_password(stored, "lúa chín vàng trên đồi Ba Vì")
    assert not auth.verify_password(stored, "lúa chín vàng trên đồi Ba Vi")
    assert not auth.verify_password(None, "anything")  # an unknown username: never true
    assert not auth.verify_password("not-a-hash", "anything")


def test_a_playback_ticket_names_one_recording_and_the_sign_in_it_was_asked_with() -> None:
    token = auth.read_token(SECRET, auth.issue_token(SECRET, USER, 3600, generation=2))
    ticket, expires = auth.issue_playback_ticket(SECRET, "rec-1", token)
    assert expires - time.time() <= auth.PLAYBACK_TICKET_TTL_S
    held = auth.read_playback_ticket(SECRET, ticket, "rec-1")
    assert held.recording_id == "rec-1"
    assert (held.token.user_id, held.token.generation, held.token.id) == (USER, 2, token.id)
    with pytest.raises(AppError, match="another recording") as raised:
        auth.read_playback_ticket(SECRET, ticket, "rec-2")
    assert raised.value.code == "forbidden"
    _unauthorized(ticket, "not valid")  # a ticket is not a bearer token ...
    with pytest.raises(AppError, match="not valid"):  # ... nor a bearer token a ticket
        auth.read_playback_ticket(SECRET, auth.issue_token(SECRET, USER, 3600), "rec-1")
    old, _ = auth.issue_playback_ticket(SECRET, "rec-1", token, now=time.time() - auth.PLAYBACK_TICKET_TTL_S - 1)
    with pytest.raises(AppError, match="expired"):
        auth.read_playback_ticket(SECRET, old, "rec-1")
