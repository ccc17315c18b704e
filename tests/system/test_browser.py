"""The browser app in real Chromium (Debian's), with fake camera and microphone: two pages on two
instances go from request to a connected WebRTC call with shared notes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import Browser

from server.runtime.redis_process import RedisProcess
from tests.conftest import PASSWORD, Instance, StartInstance, login
from tests.system.browsing import (
    REMOTE_VIDEO_PLAYS,
    ROOT,
    TIMEOUT_MS,
    give_consent,
    in_a_call,
    shot,
    signed_in,
    video_plays,
)


async def test_request_accept_call_and_notes_across_two_instances(two_instances, browser: Browser) -> None:
    a, b = two_instances
    clinician = await signed_in(browser, a, "bavi.clinician")
    specialist = await signed_in(browser, b, "xanhpon.surgeon")
    supervisor = await signed_in(browser, b, "soyte.supervisor")
    await supervisor.wait_for_selector('[data-empty="sessions"]')
    await clinician.wait_for_selector("text=Đề nghị hội chẩn")  # Vietnamese by default

    await clinician.fill("input[name=ref]", "BV-2026-117")
    await clinician.fill("textarea[name=summary]", "Nam 45 tuổi, đau bụng hố chậu phải")
    await give_consent(clinician)
    await shot(clinician, "clinician-request")
    await clinician.click("form button[type=submit]")
    await clinician.wait_for_selector(".card [data-status]")

    offer = await specialist.wait_for_selector(".card.offer.knocking")  # the knock is seen, not only heard
    assert "BV-2026-117" in await offer.inner_text()
    await shot(specialist, "specialist-offer")
    await specialist.click(".card.offer button.accept")
    await clinician.click(".card button.join")
    for page in (clinician, specialist):  # the pre-join screen: camera, devices, then Join
        await page.click("button.prejoin-join")

    await video_plays([clinician, specialist])
    # The supervisor's board shows the live session with both people in it, and no clinical text.
    row = await supervisor.wait_for_selector("[data-table=sessions] tr[data-session]:has-text('BS. Nguyễn Văn Hùng')")
    assert "BS. Lê Minh Đức" in await row.inner_text()
    await shot(supervisor, "supervisor-board")
    assert "BV-2026-117" not in await supervisor.inner_text("main")

    await clinician.select_option("select[name=section]", "examination")
    await clinician.fill("textarea[name=note]", "<b>Mạch 90</b>, HA 120/80")
    await clinician.click(".notes + form button[type=submit]")
    seen = await specialist.wait_for_selector('.note[data-section="examination"]')
    assert "<b>Mạch 90</b>, HA 120/80" in await seen.inner_text()  # shown as text, not markup
    assert await specialist.query_selector(".note b") is None
    assert await seen.query_selector("button") is None  # only its author is offered to amend it
    own = await clinician.wait_for_selector('.note[data-section="examination"]')
    assert await own.query_selector("button") is not None
    await shot(clinician, "consult-room")

    await specialist.click("button.end-consult")  # the outcome is chosen in a dialog that confirms
    await specialist.select_option("select[name=outcome]", "treated_locally")
    await specialist.click("form:has(select[name=outcome]) button[type=submit]")
    await specialist.wait_for_selector("select[name=presence]")
    await clinician.wait_for_selector("text=Chưa có ca nào đang mở")
    # Afterwards the board counts it: one request, one ended, one referral avoided today.
    await supervisor.wait_for_selector('[data-empty="sessions"]')
    await supervisor.wait_for_selector('[data-figure="referrals_avoided"] strong:text-is("1")')
    for page in (clinician, specialist, supervisor):
        assert page.errors == [], page.errors  # type: ignore[attr-defined]
        # No console errors either: a script or style refused by the CSP would show here.
        assert [m for m in page.console if m.startswith("error")] == [], page.console  # type: ignore[attr-defined]


def vietnamese_only_strings() -> set[str]:
    """The app's Vietnamese strings that differ from their English translation."""
    vi = json.loads((ROOT / "static" / "i18n" / "vi.json").read_text())
    en = json.loads((ROOT / "static" / "i18n" / "en.json").read_text())
    # Whole strings without placeholders, so a match means an untranslated piece of the screen.
    return {text for key, text in vi.items() if text != en[key] and "{" not in text and len(text) > 3}


@pytest.mark.parametrize("username", ["soyte.supervisor", "bavi.clinician", "xanhpon.surgeon", "admin"])
async def test_the_english_toggle_switches_every_visible_string(
    instance: Instance, browser: Browser, username: str
) -> None:
    page = await signed_in(browser, instance, username)
    await page.wait_for_selector("main section h2")
    await page.click("#language")
    await page.wait_for_selector("#language:text-is('Tiếng Việt')")
    await page.wait_for_load_state("networkidle")
    # Every piece of text the app put on screen; data (names of people and hospitals, the
    # signed-in user, table cells, choices in lists) stays as it is.
    pieces = await page.evaluate(
        """() => [...document.querySelectorAll('body *:not(#who):not(td):not(option)')]
            .filter(el => el.offsetParent !== null)
            .flatMap(el => [...el.childNodes].filter(n => n.nodeType === 3).map(n => n.textContent.trim())
            .concat(el.placeholder ? [el.placeholder] : []))"""
    )
    left = sorted(set(pieces) & vietnamese_only_strings())
    assert left == [], f"still in Vietnamese after the toggle: {left}"
    await page.click("#language")  # and back
    await page.wait_for_selector("#language:text-is('English')")
    await page.click("#logout")
    await page.wait_for_selector("input[name=username]")


async def test_a_dropped_clinician_is_back_in_the_call_with_the_notes_written_meanwhile(
    start_instance, browser: Browser
) -> None:
    a = await start_instance()
    b = await start_instance()
    clinician = await signed_in(browser, a, "bavi.clinician")
    specialist = await signed_in(browser, b, "xanhpon.surgeon")
    await in_a_call(clinician, specialist, "BV-2026-118")

    mark_old = """() => document.querySelectorAll('.tile:not([data-peer="self"])').forEach(t => t.dataset.old = '1')"""
    await clinician.evaluate(mark_old)
    await specialist.evaluate(mark_old)
    port = int(a.url.rsplit(":", 1)[1])
    await a.stop()  # the clinician's instance goes away: their network is down
    await clinician.wait_for_selector("#banner:has-text('đang kết nối lại')")
    await shot(clinician, "reconnecting")
    await specialist.select_option("select[name=section]", "plan")
    await specialist.fill("textarea[name=note]", "Truyền dịch, theo dõi sát")
    await specialist.click(".notes + form button[type=submit]")

    await start_instance(port=port)  # back, with no action from the user
    await clinician.wait_for_selector("#banner:has-text('Đã kết nối lại')")
    await clinician.wait_for_selector('.note[data-section="plan"]:has-text("Truyền dịch, theo dõi sát")')
    # A new connection was negotiated on both sides (new tiles), and its video plays.
    renegotiated = REMOTE_VIDEO_PLAYS.replace(
        '.tile:not([data-peer="self"])', '.tile:not([data-peer="self"]):not([data-old])'
    )
    await video_plays([clinician, specialist], renegotiated)


async def test_the_precall_check_shows_the_camera_coming_back(instance: Instance, browser: Browser) -> None:
    page = await signed_in(browser, instance, "bavi.clinician")
    await page.click("a.precall")  # the pre-join screen, without Join
    await page.click("button.echo-start")
    await page.wait_for_selector(".echo-status[data-state=connected]")
    await page.wait_for_function("() => document.querySelector('video.echo').videoWidth > 0")
    await page.wait_for_selector(".echo-figures:has-text('connected')")
    await shot(page, "precall-check")


async def test_an_admin_creates_a_clinician_who_can_then_sign_in(instance: Instance, browser: Browser) -> None:
    admin = await signed_in(browser, instance, "admin")
    await admin.wait_for_selector('tr[data-hospital="bavi-dgh"]')
    await admin.fill(".admin-users input[name=username]", "bavi.resident")
    await admin.fill(".admin-users input[name=name]", "BS. Đặng Văn Khoa")
    await admin.select_option(".admin-users select[name=hospital_id]", "bavi-dgh")
    await admin.fill(".admin-users input[name=password]", "mat-khau-moi-2026")
    await admin.click(".admin-users form.admin-form button[type=submit]")
    await admin.wait_for_selector("tr[data-user]:has-text('bavi.resident')")
    await admin.click(".admin-audit form button[type=submit]")  # the creation is in the audit log
    await admin.wait_for_selector(".admin-audit tr[data-entry]")
    await shot(admin, "admin")
    assert admin.errors == [], admin.errors  # type: ignore[attr-defined]

    context = await browser.new_context()
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    await page.goto(instance.url)
    await page.fill("input[name=username]", "bavi.resident")
    await page.fill("input[name=password]", "mat-khau-moi-2026")
    await page.click("button[type=submit]")
    await page.wait_for_selector("text=Đề nghị hội chẩn")


async def test_the_admin_screen_says_which_hospitals_no_department_sees_and_sets_their_province(
    instance: Instance, browser: Browser
) -> None:
    token = await login(instance.url, "admin")
    new = {"id": "tyt-vatlai", "name": "Trạm Y tế xã Vật Lại", "level": "commune"}
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        async with http.post(f"{instance.url}/api/admin/hospitals", json=new) as response:
            assert response.status == 201
    admin = await signed_in(browser, instance, "admin")
    row = 'tr[data-hospital="tyt-vatlai"]'
    await admin.wait_for_selector(f'{row} [data-no-province="tyt-vatlai"]')
    assert await admin.locator('[data-no-province="bavi-dgh"]').count() == 0  # Hà Nội's: seen by its Department
    await admin.fill(f"{row} input[name=province]", "hanoi")
    await admin.fill(f"{row} input[name=province_name]", "Hà Nội")
    await admin.click(f"{row} button[type=submit]")
    await admin.wait_for_selector(f'{row} [data-no-province="tyt-vatlai"]', state="detached")
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        async with http.get(f"{instance.url}/api/admin/hospitals") as response:
            listed = {x["id"]: x for x in (await response.json())["hospitals"]}
    assert (listed["tyt-vatlai"]["province"], listed["tyt-vatlai"]["province_name"]) == ("hanoi", "Hà Nội")
    assert listed["tyt-vatlai"]["record_consults"] is False
    # Its consults recorded by themselves: one labelled box.
    await admin.get_by_label("Tự động ghi hình", exact=False).and_(admin.locator(f"{row} input")).check()
    await admin.wait_for_selector(f"{row} >> text=Đã lưu cài đặt ghi hình")
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        async with http.get(f"{instance.url}/api/admin/hospitals") as response:
            listed = {x["id"]: x for x in (await response.json())["hospitals"]}
    assert listed["tyt-vatlai"]["record_consults"] is True
    assert admin.errors == [], admin.errors  # type: ignore[attr-defined]


async def test_a_password_changed_by_an_admin_brings_every_open_page_back_to_the_login(
    two_instances, browser: Browser
) -> None:
    a, b = two_instances
    clinician = await signed_in(browser, a, "bavi.clinician")
    await clinician.wait_for_selector("text=Đề nghị hội chẩn")
    token = await login(b.url, "admin")
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        async with http.get(f"{b.url}/api/admin/users") as response:
            users = (await response.json())["users"]
        user_id = next(u["id"] for u in users if u["username"] == "bavi.clinician")
        async with http.post(f"{b.url}/api/admin/users/{user_id}/password", json={"password": "mat-khau-moi-2026"}):
            pass
    # Disconnected by the other instance, the page connects again, is refused, and asks to log in.
    await clinician.wait_for_selector("input[name=password]")
    assert await clinician.is_hidden("#logout")
    assert clinician.errors == [], clinician.errors  # type: ignore[attr-defined]


async def test_the_login_page_says_how_long_to_wait_when_throttled(
    start_instance: StartInstance, browser: Browser
) -> None:
    instance = await start_instance(LOGIN_ATTEMPTS_PER_MINUTE="2")
    page = await (await browser.new_context()).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    await page.goto(instance.url)

    async def sign_in(password: str) -> str:
        """Submit the form; the message the page shows once the answer is in."""
        await page.fill("input[name=username]", "bavi.clinician")
        await page.fill("input[name=password]", password)
        async with page.expect_response("**/api/login"):
            await page.click("button[type=submit]")
        # The form is rebuilt with the message, fields empty.
        await page.wait_for_function("() => document.querySelector('input[name=password]').value === ''")
        return await page.inner_text("form p.error")

    assert await sign_in("doan-sai") == "Sai tên đăng nhập hoặc mật khẩu"
    assert await sign_in("doan-sai") == "Sai tên đăng nhập hoặc mật khẩu"
    # Throttled: not "wrong password" but how long to wait (Retry-After: 30 s, so 1 minute).
    assert await sign_in(PASSWORD) == "Quá nhiều lần thử; hãy thử lại sau 1 phút"
    await page.click("#language")
    await page.wait_for_selector("#language:text-is('Tiếng Việt')")
    assert await sign_in(PASSWORD) == "Too many sign-in attempts; try again in 1 min"
    await shot(page, "login-throttled")


async def test_signing_out_in_the_page_ends_the_token_on_the_server(instance: Instance, browser: Browser) -> None:
    page = await signed_in(browser, instance, "bavi.clinician")
    token = await page.evaluate("() => sessionStorage.getItem('telerounds.token')")
    await page.click("#logout")
    await page.wait_for_selector("input[name=username]")
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        for _ in range(50):  # the page does not wait for the answer of its sign-out
            async with http.get(f"{instance.url}/api/me") as response:
                if response.status == 401:
                    break
            await asyncio.sleep(0.1)
        assert response.status == 401
    assert page.errors == [], page.errors  # type: ignore[attr-defined]


async def test_a_page_opened_while_redis_is_down_says_so_and_gets_in_by_itself(
    start_instance: StartInstance, browser: Browser, tmp_path: Path
) -> None:
    redis = RedisProcess(tmp_path / "redis")
    redis.start()
    restarted = RedisProcess(redis.workdir, redis.port)  # the same address, empty
    try:
        instance = await start_instance(redis=redis.url)
        clinician = await signed_in(browser, instance, "bavi.clinician")
        await clinician.wait_for_selector("text=Đề nghị hội chẩn")
        redis.stop()
        # Opened again meanwhile: the connect is refused with `unavailable`. The page says it is
        # reconnecting, keeps the sign-in, and tries again by itself.
        await clinician.reload()
        await clinician.wait_for_selector("#banner:has-text('đang kết nối lại')")
        assert await clinician.is_hidden("input[name=password]")
        restarted.start()
        await clinician.wait_for_selector("#who:not(:empty)")  # filled by session:state
        await clinician.wait_for_selector("text=Đề nghị hội chẩn")
        assert clinician.errors == [], clinician.errors  # type: ignore[attr-defined]
    finally:
        restarted.stop()
        redis.stop()


async def test_a_ward_round_walks_through_three_patients_on_one_call(two_instances, browser: Browser) -> None:
    from tests.system.test_consent import BY_DAUGHTER, IDENTITY
    from tests.system.test_rounds import PATIENTS, http, new_round

    a, b = two_instances
    # A daily round at Ba Vì, led by a specialist at Xanh Pôn, three patients; the first listed
    # with their identity and their daughter's consent.
    identity = {k: v for k, v in IDENTITY.items() if k not in ("ref", "summary")}
    first = {**PATIENTS[0], **identity, "consent": BY_DAUGHTER}
    created = await new_round(a, patients=[first, *PATIENTS[1:]])
    rid = created["id"]
    clinician = await signed_in(browser, a, "bavi.clinician")
    lead = await signed_in(browser, b, "xanhpon.icu")
    supervisor = await signed_in(browser, b, "soyte.supervisor")
    for page in (clinician, lead):
        await page.click(f'.card.round[data-round="{rid}"] button.join-round')
        await page.click("button.prejoin-join")
        await page.wait_for_selector(f'.round-room[data-round="{rid}"] .round-patient')
    await video_plays([clinician, lead])
    mark_old = """() => document.querySelectorAll('.tile:not([data-peer="self"])').forEach(t => t.dataset.old = '1')"""
    for page in (clinician, lead):
        await page.evaluate(mark_old)
    offers_before = [sum("offering" in line for line in p.console) for p in (clinician, lead)]  # type: ignore[attr-defined]

    status, body = await http(a, "bavi.clinician", "GET", f"/api/rounds/{rid}")
    assert status == 200
    patients = body["round"]["patients"]
    assert len(patients) == 3 and all(p["consult_id"] for p in patients)
    for number, patient in enumerate(patients, start=1):
        await lead.click(f'.round-patient[data-patient="{patient["id"]}"] button.focus')
        for page in (clinician, lead):  # everyone follows the focus
            await page.wait_for_selector(f'.round-patient.current[data-patient="{patient["id"]}"]')
            await page.wait_for_selector(f'.round-panel [data-patient="{patient["id"]}"]')
        if number == 1:  # whom they are discussing, as the list holds them
            shown = await lead.inner_text(".round-panel .patient-identity")
            assert identity["national_id"] in shown and identity["address"] in shown, shown
            assert "Nam" in shown and "con gái" in shown, shown
        text = f"Giường {patient['bed']}: ghi chú số {number}"
        await clinician.select_option("select[name=round-section]", "examination")
        await clinician.fill("textarea[name=round-note]", text)
        await clinician.click(".round-note-form button[type=submit]")
        await lead.wait_for_selector(f'.round-panel [data-patient="{patient["id"]}"] .note:has-text("{text}")')
        if number == 2:
            await lead.select_option("select[name=round-outcome]", "treated_locally")
            await lead.click(".round-decision button[type=submit]")
            await clinician.wait_for_selector(f'.round-patient[data-patient="{patient["id"]}"][data-status="ended"]')
            # The supervisor's board: the round is one session, with its call and how many are decided.
            row = await supervisor.wait_for_selector(
                "[data-table=sessions] tr[data-kind=round]:has-text('Đi buồng khoa Hồi sức'):has-text('1/3')"
            )
            assert "BS. Nguyễn Văn Hùng" in await row.inner_text() and "BS. Phạm Thu Hà" in await row.inner_text()
            assert await supervisor.locator("[data-table=sessions] tr[data-session]").count() == 1
            assert patient["ref"] not in await supervisor.inner_text("main")
        if number == 1:
            await shot(lead, "round-room")
        # The call did not move: the same connection, still playing, no new offer.
        await video_plays([clinician, lead], REMOTE_VIDEO_PLAYS.replace('not([data-peer="self"])', "is([data-old])"))

    offers_after = [sum("offering" in line for line in p.console) for p in (clinician, lead)]  # type: ignore[attr-defined]
    assert offers_after == offers_before
    for page in (clinician, lead):
        dropped = [m for m in page.console if m.endswith((": disconnected", ": failed", ": closed"))]  # type: ignore[attr-defined]
        assert dropped == [], dropped
    # Each note is on its own patient's record.
    for number, patient in enumerate(patients, start=1):
        status, record = await http(b, "xanhpon.icu", "GET", f"/api/consults/{patient['consult_id']}")
        assert status == 200
        assert [n["text"] for n in record["notes"]] == [f"Giường {patient['bed']}: ghi chú số {number}"]
    assert record["consult"]["kind"] == "round"

    await lead.click("button.end-round")
    await clinician.wait_for_selector(f'.card.round[data-round="{rid}"]')  # back to the rounds list
    await supervisor.wait_for_selector('[data-empty="sessions"]')
    for page in (clinician, lead, supervisor):
        assert page.errors == [], page.errors  # type: ignore[attr-defined]
        assert [m for m in page.console if m.startswith("error")] == [], page.console  # type: ignore[attr-defined]


async def test_a_clinician_schedules_a_daily_round_from_the_form_and_cancels_today(
    two_instances, browser: Browser
) -> None:
    from datetime import datetime, timedelta

    from server.records.consults import VIETNAM
    from tests.conftest import add_user
    from tests.system.test_rounds import http, user_id

    a, b = two_instances
    await add_user(a.services.settings.database_url, "bavi.clinician2", "clinician", "bavi-dgh")
    lead_id = await user_id(a, "xanhpon.icu")
    surgeon_id = await user_id(a, "xanhpon.surgeon")
    colleague_id = await user_id(a, "bavi.clinician2")
    today = datetime.now(VIETNAM).date()
    clinician = await signed_in(browser, a, "bavi.clinician")

    # A clinician at Ba Vì fills in the form: a daily round at 07:00 Vietnam time for a week,
    # led by a specialist at Xanh Pôn, another one and a colleague at Ba Vì invited, two patients.
    await clinician.click("button.new-round")
    await clinician.fill("input[name=round-title]", "Đi buồng khoa Ngoại")
    await clinician.select_option("select[name=round-hospital]", "bavi-dgh")
    await clinician.fill("input[name=round-ward]", "Ngoại tổng hợp")
    await clinician.fill("input[name=round-date]", today.isoformat())
    await clinician.fill("input[name=round-time]", "07:00")
    await clinician.fill("input[name=round-duration]", "45")
    await clinician.select_option("select[name=round-recurrence]", "daily")
    await clinician.select_option("select[name=round-lead]", lead_id)
    await clinician.select_option("select[name=round-participants]", [surgeon_id, colleague_id])
    for bed, ref, summary in (
        ("4", "BV-2026-301", "Sau mổ ruột thừa ngày 1"),
        ("9", "BV-2026-302", "Gãy xương cẳng chân"),
    ):
        await clinician.click("button.add-patient-row")
        row = clinician.locator(".patient-row").last
        await row.locator("[name=patient-bed]").fill(bed)
        await row.locator("[name=patient-ref]").fill(ref)
        await row.locator("[name=patient-summary]").fill(summary)
    # An end date before the first day: the API's message is shown, and the form keeps what was typed.
    await clinician.fill("input[name=round-until]", (today - timedelta(days=1)).isoformat())
    await clinician.click(".round-form button[type=submit]")
    await clinician.wait_for_selector(".round-form .form-error:has-text('until must not be before')")
    await clinician.fill("input[name=round-until]", (today + timedelta(days=6)).isoformat())
    await shot(clinician, "round-schedule-form")
    await clinician.click(".round-form button[type=submit]")
    await clinician.wait_for_selector(".rounds-notice:has-text('Đã lên lịch đi buồng')")
    card = await clinician.wait_for_selector(f'.day[data-day="{today}"] .card.round:has-text("Đi buồng khoa Ngoại")')
    rid = await card.get_attribute("data-round")
    assert rid
    assert "null" not in await clinician.inner_text("section.rounds")

    status, body = await http(a, "bavi.clinician", "GET", f"/api/rounds/{rid}")
    assert status == 200, body
    created = body["round"]
    start = datetime.combine(today, datetime.min.time().replace(hour=7), VIETNAM)
    assert datetime.fromisoformat(created["starts_at"]) == start  # 07:00 in Vietnam, sent as UTC
    assert (created["hospital"]["id"], created["ward"], created["duration_min"]) == ("bavi-dgh", "Ngoại tổng hợp", 45)
    assert (created["recurrence"], created["until"]) == ("daily", (today + timedelta(days=6)).isoformat())
    assert created["lead_specialist"]["id"] == lead_id
    assert [p["id"] for p in created["participants"]] == [surgeon_id, colleague_id]
    assert [(p["bed"], p["ref"]) for p in created["patients"]] == [("4", "BV-2026-301"), ("9", "BV-2026-302")]

    # The specialist at Xanh Pôn sees it on each day of their week.
    lead = await signed_in(browser, b, "xanhpon.icu")
    await lead.wait_for_selector(f'.day[data-day="{today}"] .card.round[data-round="{rid}"]')
    assert await lead.locator(f'.card.round[data-round="{rid}"]:not(.cancelled)').count() == 7

    # The clinician cancels today's occurrence: it stays on the week, marked, for both of them.
    await clinician.click(f'.card.round[data-round="{rid}"][data-day="{today}"] button.cancel-day')
    await clinician.wait_for_selector(f'.card.round.cancelled[data-round="{rid}"][data-day="{today}"]')
    status, body = await http(a, "bavi.clinician", "GET", f"/api/rounds/{rid}")
    assert body["round"]["skipped"] == [today.isoformat()] and body["round"]["cancelled_at"] is None
    await lead.reload()
    marked = await lead.wait_for_selector(f'.card.round.cancelled[data-round="{rid}"][data-day="{today}"]')
    assert "Buổi này đã huỷ" in await marked.inner_text()
    assert await lead.locator(f'.card.round[data-round="{rid}"]:not(.cancelled)').count() == 6
    assert await lead.query_selector(f'.card.round.cancelled[data-round="{rid}"] button.join-round') is None

    # The lead changes the ward from tomorrow's card, and takes bed 9 first; everyone's week shows it.
    tomorrow = today + timedelta(days=1)
    await lead.click(f'.card.round[data-round="{rid}"][data-day="{tomorrow}"] button.edit-round')
    await lead.fill(".round-form.editing input[name=round-ward]", "Ngoại chấn thương")
    await lead.locator(".round-form.editing .patient-row").nth(1).locator("button.move-up").click()
    await lead.click(".round-form.editing button[type=submit]")
    await lead.wait_for_selector(
        f'.card.round[data-round="{rid}"][data-day="{tomorrow}"]:has-text("Ngoại chấn thương")'
    )
    status, body = await http(a, "xanhpon.icu", "GET", f"/api/rounds/{rid}")
    assert body["round"]["ward"] == "Ngoại chấn thương"
    assert [p["id"] for p in body["round"]["participants"]] == [surgeon_id, colleague_id]  # kept
    assert body["round"]["starts_at"] == created["starts_at"]  # untouched
    assert [p["ref"] for p in body["round"]["patients"]] == ["BV-2026-302", "BV-2026-301"]
    assert {p["id"] for p in body["round"]["patients"]} == {p["id"] for p in created["patients"]}  # the same records
    await shot(lead, "rounds-week")

    # The lead cancels the whole round (a second click confirms): every day stays on the week,
    # marked, for both of them, and none can be entered.
    await lead.click(f'.card.round[data-round="{rid}"][data-day="{tomorrow}"] button.edit-round')
    await lead.click(".round-form.editing button.cancel-round")
    await lead.click(".round-form.editing button.cancel-round")
    await lead.wait_for_selector(".rounds-notice:has-text('Đã huỷ cả lịch đi buồng')")
    await clinician.reload()
    for page in (lead, clinician):
        await page.wait_for_selector(f'.card.round.cancelled[data-round="{rid}"][data-day="{tomorrow}"]')
        assert await page.locator(f'.card.round.cancelled[data-round="{rid}"]').count() == 7
        assert await page.locator(f'.card.round[data-round="{rid}"]:not(.cancelled)').count() == 0
        assert await page.locator(f'.card.round[data-round="{rid}"] button').count() == 0
        label = page.locator(f'.card.round.cancelled[data-round="{rid}"][data-day="{tomorrow}"] .cancelled-label')
        assert await label.inner_text() == "Đã huỷ cả lịch đi buồng"
    for page in (clinician, lead):
        assert page.errors == [], page.errors  # type: ignore[attr-defined]
        # The form's refused attempt is a 400 the console logs as a failed resource; nothing else.
        errors = [m for m in page.console if m.startswith("error") and "400" not in m]  # type: ignore[attr-defined]
        assert errors == [], page.console  # type: ignore[attr-defined]
