"""What a new password must be (server/policy/passwords.py), without a server: long enough, not
the username, not a common or easily guessed one, and a long uncommon one passes."""

from __future__ import annotations

import pytest

from server.contract.errors import AppError
from server.policy import passwords

USERNAME = "binh.tran"
NAME = "BS. Trần Văn Bình"


@pytest.mark.parametrize(
    ("password", "username", "name", "reason"),
    [
        ("short1!", USERNAME, NAME, "at least 10 characters"),
        ("x" * (passwords.MAX_LENGTH + 1), USERNAME, NAME, "at most 200 characters"),
        ("binh.tran.", "binh.tran.", NAME, "must not be the username"),
        ("  Khoa.Noi.Bavi  ", "khoa.noi.bavi", "", "must not be the username"),  # case and spaces aside
        ("password123", USERNAME, NAME, "too common"),
        ("qwertyuiop", USERNAME, NAME, "too common"),
        ("aaaaaaaaaaaa", USERNAME, NAME, "too common"),
        ("1234567890", USERNAME, NAME, "too common"),
        # The account's own name, without its diacritics, as people type it.
        ("tranvanbinh1", USERNAME, NAME, "too common"),
        ("telerounds2026", "lan.nguyen", "", "too common"),  # the service's own name
    ],
)
def test_a_weak_password_is_refused_with_its_reason(password: str, username: str, name: str, reason: str) -> None:
    found = passwords.problem(password, username, name)
    assert found is not None and reason in found, found
    with pytest.raises(AppError, match=f"password: .*{reason}") as raised:
        passwords.check(password, username, name)
    assert raised.value.code == "invalid"


@pytest.mark.parametrize(
    "password",
    [
        "lúa chín vàng trên đồi Ba Vì",  # a few words, Vietnamese with its diacritics
        "correct-horse-battery-staple-Xanh-Pon",
        "mưa phùn tháng hai ở Hà Nội 7",
        "q8#Lv2!pWz@r",  # short but random: no composition rule, no length beyond the minimum
    ],
)
def test_a_long_uncommon_password_passes(password: str) -> None:
    assert passwords.problem(password, USERNAME, NAME) is None
    passwords.check(password, USERNAME, NAME)


def test_the_bounds_are_inclusive() -> None:
    at_least = "r7#Kq!vZ2m"
    assert len(at_least) == passwords.MIN_LENGTH
    assert passwords.problem(at_least, USERNAME) is None
    at_most = "đồi chè Phú Thọ " * 20
    at_most = at_most[: passwords.MAX_LENGTH]
    assert passwords.problem(at_most, USERNAME) is None


def test_no_composition_rule() -> None:
    # NIST SP 800-63B: no "a digit and a capital": lower-case words pass when long and uncommon.
    assert passwords.problem("những cánh cò trắng bay qua sông hồng", USERNAME, NAME) is None
