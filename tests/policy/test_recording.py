"""When a consult's call is recorded by itself (server/policy/recording.py)."""

from __future__ import annotations

import pytest

from server.policy.recording import InCall, starts_by_itself

CLINICIAN = InCall("u-lan", "h-bavi")  # a clinician at Ba Vì, who asked
COLLEAGUE = InCall("u-hoa", "h-bavi")  # another clinician at Ba Vì
SPECIALIST = InCall("u-binh", "h-xanhpon")  # the accepted specialist at Xanh Pôn
OTHER = InCall("u-tuan", "h-xanhpon")  # someone invited from Xanh Pôn
BOTH = ["consult", "recording"]


@pytest.mark.parametrize(
    ("record_consults", "scopes", "in_call", "recorded_before", "starts"),
    [
        (True, BOTH, [CLINICIAN, SPECIALIST], False, True),
        (True, BOTH, [COLLEAGUE, SPECIALIST], False, True),  # a colleague of the requesting hospital
        (False, BOTH, [CLINICIAN, SPECIALIST], False, False),  # the hospital does not record
        (True, ["consult"], [CLINICIAN, SPECIALIST], False, False),  # no consent to recording
        (True, None, [CLINICIAN, SPECIALIST], False, False),  # an emergency without consent yet
        (True, [], [CLINICIAN, SPECIALIST], False, False),  # consent withdrawn
        (True, BOTH, [CLINICIAN], False, False),  # the specialist is not in yet
        (True, BOTH, [SPECIALIST], False, False),  # nor the requesting side
        (True, BOTH, [SPECIALIST, OTHER], False, False),  # another Xanh Pôn person is not that side
        (True, BOTH, [CLINICIAN, SPECIALIST], True, False),  # once per consult
    ],
)
def test_when_a_consult_is_recorded_by_itself(
    record_consults: bool, scopes: list[str] | None, in_call: list[InCall], recorded_before: bool, starts: bool
) -> None:
    assert starts_by_itself(record_consults, scopes, "h-bavi", "u-binh", in_call, recorded_before) is starts


def test_nothing_starts_before_a_specialist_accepted() -> None:
    assert not starts_by_itself(True, BOTH, "h-bavi", None, [CLINICIAN, SPECIALIST], False)
