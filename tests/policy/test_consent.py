"""The consent rules (server/policy/consent.py) and the patient identity checks
(server/contract/validation.py): pure functions, no service."""

from __future__ import annotations

from datetime import date

import pytest

from server.contract import validation
from server.policy import consent


@pytest.mark.parametrize(
    ("urgency", "scopes", "waived", "refused"),
    [
        ("routine", ["consult"], None, None),
        ("urgent", ["consult", "recording"], None, None),
        ("routine", None, None, "must carry the patient's consent"),
        ("urgent", None, "unconscious", "must carry the patient's consent"),  # only emergencies waive
        ("routine", [], None, "must include the scope consult"),
        ("emergency", None, "Bất tỉnh, không có người nhà", None),
        ("emergency", None, None, "must carry consent_waived_reason"),
        ("emergency", ["consult"], None, None),
        ("emergency", ["consult"], "both", "not both"),
    ],
)
def test_what_a_request_must_carry(
    urgency: str, scopes: list[str] | None, waived: str | None, refused: str | None
) -> None:
    found = consent.request_refusal(urgency, scopes, waived)
    assert (found is None) if refused is None else (found is not None and refused in found), found


@pytest.mark.parametrize(
    ("urgency", "scopes", "waived", "refused"),
    [
        ("routine", ["consult"], None, None),
        ("routine", [], None, "withdrawn"),
        ("urgent", None, None, "missing"),
        ("emergency", None, "Bất tỉnh", None),
        ("emergency", [], "Bất tỉnh", None),  # withdrawn after an emergency started without it
        ("emergency", None, None, "missing"),
    ],
)
def test_what_acceptance_needs(urgency: str, scopes: list[str] | None, waived: str | None, refused: str | None) -> None:
    found = consent.acceptance_refusal(urgency, scopes, waived)
    assert (found is None) if refused is None else (found is not None and refused in found), found


def test_the_requesting_side_is_the_requester_or_a_clinician_of_the_requesting_hospital() -> None:
    assert consent.requesting_side("clinician", "u1", "bavi", "u1", "bavi")
    assert consent.requesting_side("clinician", "u2", "bavi", "u1", "bavi")
    assert not consent.requesting_side("clinician", "u3", "batrai", "u1", "bavi")
    assert not consent.requesting_side("specialist", "u4", "bavi", "u1", "bavi")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("001099012345", None),  # Hà Nội, a man born in 1999
        ("096305000001", None),  # Cà Mau, a woman born in 2005
        ("00109901234", "exactly 12 digits"),
        ("0010990123456", "exactly 12 digits"),
        ("00109901234a", "exactly 12 digits"),
        ("００１０９９０１２３４５", "exactly 12 digits"),  # full-width digits are not ASCII
        ("000099012345", "province code"),
        ("097099012345", "province code"),
    ],
)
def test_citizen_ids(value: str, problem: str | None) -> None:
    found = validation.national_id_problem(value)
    assert (found is None) if problem is None else (found is not None and problem in found), found
    assert found is None or value not in found  # never echoes patient data


def test_a_citizen_id_encodes_the_year_of_birth() -> None:
    assert validation.national_id_birth_year("001099012345") == 1999
    assert validation.national_id_birth_year("001305012345") == 2005
    assert validation.identity_problem("001099012345", "1999-04-30") is None
    assert "year" in (validation.identity_problem("001099012345", "1989-04-30") or "")
    assert validation.identity_problem(None, "1989-04-30") is None


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("DN4010123456789", True),
        ("GD4797931234567", True),
        ("0123456789", True),  # the 10-digit social insurance number
        ("dn4010123456789", False),
        ("DN401012345678", False),
        ("D14010123456789", False),
        ("DN401012345678X", False),
        ("012345678", False),
        ("", False),
    ],
)
def test_health_insurance_numbers(value: str, valid: bool) -> None:
    found = validation.insurance_id_problem(value)
    assert (found is None) is valid, found
    if found:
        assert "2 capital letters and 13 digits" in found and "10-digit" in found


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("1990-02-28", None),
        ("1900-01-01", None),
        ("2026-05-01", None),  # today
        ("2026-05-02", "between 1900-01-01 and today"),
        ("1899-12-31", "between 1900-01-01 and today"),
        ("1990-02-30", "YYYY-MM-DD"),
        ("19900228", "YYYY-MM-DD"),
        ("28/02/1990", "YYYY-MM-DD"),
    ],
)
def test_dates_of_birth(value: str, problem: str | None) -> None:
    found = validation.birth_date_problem(value, date(2026, 5, 1))
    assert (found is None) if problem is None else (found is not None and problem in found), found


def test_sex_takes_the_words_and_the_hl7_codes() -> None:
    assert [validation.sex_word(v) for v in ("M", "F", "O", "U", "female")] == [
        "male",
        "female",
        "other",
        "unknown",
        "female",
    ]
