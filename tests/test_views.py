"""The views (server/contract/views.py): each builder writes the keys its TypedDict declares, in
the declared order (the JSON the clients read), and reads only what its row protocol names, so
a database row and any object with those attributes build the same view."""

from __future__ import annotations

import ast
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from server.contract import views

AT = datetime(2026, 12, 8, 6, 30, tzinfo=UTC)
HANOI = timezone(timedelta(hours=7))
BAVI = views.hospital_ref("h-bavi", "Bệnh viện Đa khoa Ba Vì", "district")
CLINICIAN = views.person("u-lan", "BS. Nguyễn Thị Lan", "clinician", BAVI)
SPECIALIST = views.person(
    "u-binh", "BS. Trần Văn Bình", "specialist", views.hospital_ref("h-xanhpon", "Bệnh viện Xanh Pôn", "city")
)
WHO = {CLINICIAN["id"]: CLINICIAN, SPECIALIST["id"]: SPECIALIST}

CONSULT = SimpleNamespace(
    id="c-1",
    kind="consult",
    status="active",
    specialty="surgery",
    urgency="urgent",
    patient={"ref": "BV-0012"},
    requester_id="u-lan",
    specialist_id="u-binh",
    named_specialist_id=None,
    named_answer=None,
    created_at=AT,
    started_at=AT + timedelta(minutes=2),
    ended_at=None,
    outcome=None,
    summary=None,
    ended_by_id=None,
    result=None,
    result_note=None,
    result_by_id=None,
    result_at=None,
    version=3,
    round_session_id=None,
    round_patient_id=None,
    consent={
        "given_by": "relative",
        "relation": "con gái",
        "method": "verbal",
        "scopes": ["consult"],
        "note": None,
        "recorded_by": "u-lan",
        "recorded_at": AT.isoformat(),
    },
    consent_waived_reason=None,
)
NOTE = SimpleNamespace(
    id="n-1",
    seq=1,
    consult_id="c-1",
    section="plan",
    text="Chuyển tuyến",
    author_id="u-binh",
    created_at=AT,
    amends=None,
    addendum=False,
)
ATTACHMENT = SimpleNamespace(
    id="a-1",
    consult_id="c-1",
    filename="xquang.png",
    content_type="image/png",
    size=1024,
    sha256="0" * 64,
    uploader_id="u-lan",
    created_at=AT,
)
ROUND = SimpleNamespace(
    id="r-1",
    title="Đi buồng khoa Nội",
    ward="Nội",
    starts_at=AT,
    duration_min=60,
    recurrence="weekly",
    until=date(2027, 1, 31),
    skipped=["2026-12-22", "2026-12-15"],
    lead_specialist_id="u-binh",
    lead_status="accepted",
    participant_ids=["u-lan", "u-gone"],
    created_by="u-lan",
    created_at=AT,
    cancelled_at=None,
    version=2,
)
PATIENT = SimpleNamespace(
    id="p-1", position=1, bed="12", ref="BV-0013", summary="", identity={"name": "Nguyễn Văn Hùng"}, consent=None
)
SESSION = SimpleNamespace(
    id="s-1", day=date(2026, 12, 8), status="active", started_at=AT, ended_at=None, focus_patient_id="p-1", version=1
)

PATIENT_VIEW = views.round_patient_view(PATIENT, None, {})
BAVI_NAME = views.hospital_name("h-bavi", "Ba Vì")
SESSION_VIEW = views.round_session_view(SESSION)

BUILT: list[tuple[str, Any, type]] = [
    ("hospital_ref", BAVI, views.HospitalRef),
    ("hospital_name", views.hospital_name("h-bavi", "Ba Vì"), views.HospitalName),
    (
        "hospital_detail",
        views.hospital_detail("h-bavi", "Ba Vì", "district", "hanoi", "Hà Nội", False),
        views.HospitalDetail,
    ),
    ("sister_link", views.sister_link(SPECIALIST["hospital"], BAVI), views.SisterLinkView),
    ("person", CLINICIAN, views.Person),
    ("account_view", views.account_view("u-binh", "Bình", "specialist", BAVI, ["surgery"]), views.AccountView),
    (
        "board_person",
        views.board_person("u-lan", "Lan", "clinician", BAVI_NAME),
        views.BoardPerson,
    ),
    (
        "admin_user_view",
        views.admin_user_view("u-lan", "lan.nguyen", "Lan", "clinician", BAVI, [], True, AT),
        views.AdminUserView,
    ),
    ("consult_view", views.consult_view(CONSULT, WHO, 4), views.ConsultView),
    ("consent_view", views.consent_view(CONSULT.consent, WHO), views.ConsentView),
    ("note_view", views.note_view(NOTE, WHO), views.NoteView),
    ("attachment_view", views.attachment_view(ATTACHMENT), views.AttachmentView),
    ("round_patient_view", PATIENT_VIEW, views.RoundPatientView),
    ("round_session_view", SESSION_VIEW, views.RoundSessionView),
    ("round_view", views.round_view(ROUND, BAVI, WHO, AT, [PATIENT_VIEW], SESSION_VIEW), views.RoundView),
    ("audit_actor", views.audit_actor("u-admin", "admin", "Quản trị"), views.AuditActor),
    (
        "audit_entry_view",
        views.audit_entry_view(
            SimpleNamespace(
                id="e-1",
                at=AT,
                actor_id=None,
                action="consult.read",
                target_type="consult",
                target_id="c-1",
                address="10.0.0.1",
                detail="",
            ),
            None,
        ),
        views.AuditEntryView,
    ),
    ("roster_entry", views.roster_entry("u-binh", "Bình", BAVI, ["surgery"], {"online": True}), views.RosterEntry),
    (
        "admin_roster_entry",
        views.admin_roster_entry("u-binh", "binh.tran", "Bình", BAVI, [], False, {"online": False}),
        views.AdminRosterEntry,
    ),
    ("offer_view", views.offer_view(views.consult_view(CONSULT, WHO), AT.timestamp()), views.OfferView),
    ("round_start", views.round_start(views.round_view(ROUND, BAVI, WHO, AT, [], None), AT), views.RoundStart),
    ("signature_view", views.signature_view(SPECIALIST, "chair", AT, True, True, False), views.SignatureView),
    ("minutes_version_view", views.minutes_version_view(1, True, False, ["u-binh"]), views.MinutesVersionView),
    (
        "certificate_view",
        views.certificate_view(
            SimpleNamespace(
                user_id="u-binh", subject="CN=Bình", issuer="CN=CA", fingerprint="ab" * 32, not_after=AT, uploaded_at=AT
            )
        ),
        views.CertificateView,
    ),
    (
        "signatures_view",
        views.signatures_view(1, [], [views.minutes_version_view(1, False, False, [])]),
        views.SignaturesView,
    ),
    (
        "lead_request_view",
        views.lead_request_view(ROUND, BAVI_NAME, WHO),
        views.LeadRequestView,
    ),
    (
        "recording_view",
        views.recording_view(
            SimpleNamespace(
                id="rec-1",
                consult_id="c-1",
                round_id=None,
                segment=1,
                state="stopped",
                started_at=AT,
                stopped_at=AT,
                started_by="u-binh",
                duration_s=10.0,
                bytes=1000,
                sha256="0" * 64,
                retain_until=AT,
            )
        ),
        views.RecordingView,
    ),
    ("playback_view", views.playback_view("rec-1", "a.b.c", 1796711400), views.PlaybackView),
]


@pytest.mark.parametrize(("name", "built", "typed"), BUILT, ids=[name for name, _, _ in BUILT])
def test_a_view_has_the_keys_of_its_type_in_their_order(name: str, built: dict[str, Any], typed: type) -> None:
    assert list(built) == list(typed.__annotations__), name


def test_instants_are_written_in_utc() -> None:
    assert views.iso(datetime(2026, 12, 8, 13, 30, tzinfo=HANOI)) == "2026-12-08T06:30:00+00:00"
    assert views.iso(None) is None


def test_the_consult_view_names_its_people_and_its_queue_place_only_while_queued() -> None:
    active = views.consult_view(CONSULT, WHO, 4)
    assert active["requester"] == CLINICIAN and active["specialist"] == SPECIALIST
    assert active["named_specialist"] is None
    assert active["queue_position"] is None  # active: no longer waiting
    queued = views.consult_view(SimpleNamespace(**{**vars(CONSULT), "status": "queued", "specialist_id": None}), WHO, 4)
    assert queued["queue_position"] == 4 and queued["specialist"] is None


def test_the_consult_view_names_who_ended_it_and_the_answers_it_had() -> None:
    ended = SimpleNamespace(**{**vars(CONSULT), "status": "ended", "ended_by_id": "u-binh"})
    assert views.consult_view(ended, WHO)["ended_by"] == SPECIALIST
    assert views.consult_view(CONSULT, WHO)["ended_by"] is None
    answers = [
        SimpleNamespace(kind="declined" if i % 2 else "expired", user_id="u-binh", reason=f"r{i}", at=AT + timedelta(i))
        for i in range(30)
    ]
    queued = SimpleNamespace(**{**vars(CONSULT), "status": "queued", "specialist_id": None})
    built = views.consult_view(queued, WHO, answers=answers, online_specialists=3)
    assert [d["reason"] for d in built["declines"]] == [f"r{i}" for i in range(11, 30, 2)]  # the newest 10, newest last
    assert built["declines"][0]["by"] == SPECIALIST
    assert len(built["unanswered"]) == 10 and built["unanswered"][-1]["at"] == views.iso(AT + timedelta(28))
    assert set(built["unanswered"][0]) == {"by", "at"}
    assert built["online_specialists"] == 3
    # How many are online means something only while the request waits for one of them.
    assert views.consult_view(CONSULT, WHO, online_specialists=3)["online_specialists"] is None


def test_the_consult_view_shows_the_result_reported_back_once_there_is_one() -> None:
    assert views.consult_view(CONSULT, WHO)["result"] is None
    reported = SimpleNamespace(
        **{**vars(CONSULT), "status": "ended", "result": "improving", "result_by_id": "u-lan", "result_at": AT}
    )
    assert views.consult_view(reported, WHO)["result"] == {
        "result": "improving",
        "note": "",
        "reported_by": CLINICIAN,
        "reported_at": views.iso(AT),
    }


def test_the_round_view_sorts_skipped_days_and_leaves_out_unknown_people() -> None:
    built = views.round_view(ROUND, BAVI, WHO, None, [], None)
    assert built["skipped"] == ["2026-12-15", "2026-12-22"]
    assert built["participants"] == [CLINICIAN]  # "u-gone" is no longer an account
    assert built["until"] == "2027-01-31" and built["next_starts_at"] is None


def test_the_attachment_view_says_where_to_download_it() -> None:
    assert views.attachment_view(ATTACHMENT)["url"] == "/api/consults/c-1/attachments/a-1"


def test_an_offer_expires_at_an_instant_in_utc() -> None:
    offer = views.offer_view(views.consult_view(CONSULT, WHO), AT.timestamp())
    assert offer["expires_at"] == "2026-12-08T06:30:00+00:00"


# Each view is written in one place: a dict literal with a view's keys anywhere else in the
# service is a second builder, which drifts from the first.
ROOT = Path(__file__).resolve().parent.parent
VIEW_KEYS = {
    "a hospital": {"id", "name", "level"},
    "a person": {"id", "name", "role", "hospital"},
    "a consult": {"id", "status", "specialty", "urgency", "requester"},
    "a note": {"id", "seq", "section", "text", "author"},
    "an attachment": {"id", "filename", "content_type", "sha256"},
    "a round": {"id", "title", "ward", "starts_at", "duration_min"},
    "an audit entry": {"id", "at", "actor", "action", "target_type"},
    "a roster entry": {"id", "name", "hospital", "specialties", "presence"},
}


def _literal_keys(node: ast.Dict) -> set[str]:
    return {k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}


def test_views_are_built_only_in_contract_views() -> None:
    found = []
    for path in sorted([*(ROOT / "server").rglob("*.py"), *(ROOT / "signaling").rglob("*.py")]):
        if path == ROOT / "server" / "contract" / "views.py" or "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Dict):
                keys = _literal_keys(node)
                found += [
                    f"{path.relative_to(ROOT)}:{node.lineno} builds {what}"
                    for what, wanted in VIEW_KEYS.items()
                    if wanted <= keys
                ]
    assert not found, "build these through server/contract/views.py: " + "; ".join(found)
