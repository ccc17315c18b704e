"""The browser app's shell in real Chromium: the sign-in page, the clinician's request form and
cards, the offer dialog over every screen, "Bạn còn trực không?" after a lapsed offer, the end of
a consult told to both sides, the history of ended consults and the record page with its minutes."""

from __future__ import annotations

import asyncio
import json

from playwright.async_api import Browser, Page

from tests.conftest import Instance, StartInstance, login
from tests.system.browsing import ROOT, TIMEOUT_MS, give_consent, shot, signed_in

NO_OVERFLOW = "() => document.documentElement.scrollWidth <= window.innerWidth"


def console_errors(page: Page) -> list[str]:
    return [m for m in page.console if m.startswith("error")]  # type: ignore[attr-defined]


async def roster_names(instance: Instance, specialty: str) -> set[str]:
    import aiohttp

    token = await login(instance.url, "bavi.clinician")
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        async with http.get(f"{instance.url}/api/roster?specialty={specialty}") as response:
            return {s["name"] for s in (await response.json())["specialists"]}


async def request_from_form(
    page: Page, ref: str, specialty: str = "surgery", urgency: str = "routine", named: str = ""
) -> None:
    await page.select_option("select[name=specialty]", specialty)
    await page.select_option("select[name=urgency]", urgency)
    await page.fill("input[name=ref]", ref)
    await page.fill("textarea[name=summary]", f"Bệnh nhân {ref}")
    await give_consent(page)
    if named:
        await page.wait_for_selector(f"select[name=specialist] option[value='{named}']", state="attached")
        await page.select_option("select[name=specialist]", named)
    await page.click(".request-form button[type=submit]")
    await page.wait_for_selector(f".card[data-consult]:has-text('{ref}')")


async def test_a_named_request_is_offered_accepted_from_the_dialog_and_its_end_and_record_follow(
    two_instances: tuple[Instance, Instance], browser: Browser, clients
) -> None:
    a, b = two_instances
    clinician = await signed_in(browser, a, "bavi.clinician")
    specialist = await signed_in(browser, b, "xanhpon.surgeon")
    await specialist.wait_for_selector("select[name=presence]")

    # The named-specialist list offers every surgeon of the roster (it was always empty).
    surgeons = await roster_names(a, "surgery")
    assert "BS. Lê Minh Đức" in surgeons
    await clinician.select_option("select[name=specialty]", "surgery")
    for name in surgeons:
        await clinician.wait_for_selector(f"select[name=specialist] option:has-text('{name}')", state="attached")
    surgeon_id = await clinician.eval_on_selector(
        "select[name=specialist]", "(s) => [...s.options].find(o => o.text.startsWith('BS. Lê Minh Đức')).value"
    )

    await request_from_form(clinician, "BV-2026-501", named=surgeon_id)
    card = ".card[data-consult]:has-text('BV-2026-501')"
    # The wait ticks on the card.
    waited = await clinician.inner_text(f"{card} .waited")
    await clinician.wait_for_function(
        "([sel, before]) => document.querySelector(sel + ' .waited')?.textContent !== before",
        arg=[".card[data-consult]", waited],
    )

    # The offer opens as a dialog over the specialist's screen, with its countdown, announced.
    dialog = await specialist.wait_for_selector("dialog.offer-dialog[open] .card.offer")
    text = await dialog.inner_text()
    assert "BV-2026-501" in text and "Bệnh nhân BV-2026-501" in text
    assert await specialist.is_visible("dialog.offer-dialog .countdown")
    await specialist.wait_for_selector("#announcer:has-text('BV-2026-501')")
    await shot(specialist, "offer-dialog")
    consult_id = await dialog.get_attribute("data-consult")
    await specialist.click("dialog.offer-dialog button.accept")
    await specialist.wait_for_selector("dialog.offer-dialog", state="hidden")
    await specialist.click("button.prejoin-join")  # the call stage's pre-join screen
    await specialist.wait_for_selector(f".room[data-consult='{consult_id}']")

    # The clinician hears it and the tab's title flashes.
    await clinician.wait_for_selector(f"{card} .status[data-status=active]")
    await clinician.wait_for_function("() => document.title.startsWith('●')")

    # Ended (by the specialist, from another device): both sides are told by whom and how, with
    # the record a click away.
    surgeon = await clients(b, "xanhpon.surgeon")
    ack = await surgeon.call("consult:end", {"consult_id": consult_id, "outcome": "treated_locally"})
    assert ack["ok"] is True, ack
    for page in (specialist, clinician):
        notice = await page.wait_for_selector(f".ended-notice[data-consult='{consult_id}']")
        said = await notice.inner_text()
        assert "Ca đã kết thúc" in said and "Điều trị tại chỗ theo hướng dẫn" in said, said
        assert "BS. Lê Minh Đức" in said, said  # ended by
    await shot(clinician, "consult-ended")

    # The history lists it; its record shows the minutes, styled by /static/print.css, in the page.
    await clinician.click(f".ended-notice[data-consult='{consult_id}'] a.record-link")
    await clinician.wait_for_selector(f".record-page[data-consult='{consult_id}'] .minutes-doc")
    await clinician.click("#nav a[href='#/history']")
    item = await clinician.wait_for_selector(f".history-items li[data-consult='{consult_id}']")
    assert "BV-2026-501" in await item.inner_text()
    await clinician.fill("input[name=ref]", "không-có")
    await clinician.click(".history-filters button[type=submit]")
    await clinician.wait_for_selector(f".history-items li[data-consult='{consult_id}']", state="detached")
    await clinician.fill("input[name=ref]", "2026-501")
    await clinician.click(".history-filters button[type=submit]")
    await clinician.click(f".history-items li[data-consult='{consult_id}'] a.record-link")
    minutes = await clinician.wait_for_selector(".minutes-doc")
    assert "BV-2026-501" in await minutes.inner_text()
    assert await clinician.query_selector(".minutes-doc script, .minutes-doc style, .minutes-doc [style]") is None
    styled = await clinician.evaluate(
        """() => {
          const sheet = [...document.styleSheets].find(s => (s.href || '').endsWith('/static/print.css'));
          if (!sheet) return 'print.css not linked';
          const rules = [...sheet.cssRules].filter(r => r.selectorText);
          return rules.some(r => { try { return document.querySelector('.minutes-doc')
            .querySelector(r.selectorText) !== null || document.querySelector('.minutes-doc').matches(r.selectorText); }
            catch (e) { return false; } }) ? 'styled' : 'no rule of print.css applies to the minutes';
        }"""
    )
    assert styled == "styled", styled
    assert await clinician.is_visible("button.print")
    # Printing shows the minutes alone: the app's header is hidden by the print styles.
    await clinician.emulate_media(media="print")
    assert await clinician.is_hidden("header.app-header")
    assert await clinician.is_visible(".minutes-doc")
    await clinician.emulate_media(media="screen")
    await shot(clinician, "record-page")

    # A phone: no horizontal overflow on the record, the history and the home screen.
    await clinician.set_viewport_size({"width": 360, "height": 740})
    for route in (f"#/record/{consult_id}", "#/history", "#/"):
        await clinician.evaluate("(r) => { location.hash = r; }", route)
        await clinician.wait_for_selector(".record-page .minutes-doc, .history-items, .request-form")
        await clinician.wait_for_timeout(200)
        assert await clinician.evaluate(NO_OVERFLOW), f"horizontal overflow at 360 px on {route}"
    small = await clinician.evaluate(
        """() => [...document.querySelectorAll('button, select, input:not([type=hidden])')]
            .filter(el => el.offsetParent !== null)
            .map(el => el.getBoundingClientRect()).filter(r => r.height < 44).length"""
    )
    assert small == 0, f"{small} controls under 44 px high on the phone"
    await shot(clinician, "phone-home")
    for page in (clinician, specialist):
        assert page.errors == [], page.errors  # type: ignore[attr-defined]
        assert console_errors(page) == [], page.console  # type: ignore[attr-defined]


async def test_a_specialist_in_a_round_accepts_an_emergency_from_inside_the_round_room(
    two_instances: tuple[Instance, Instance], browser: Browser
) -> None:
    from tests.system.test_rounds import new_round

    a, b = two_instances
    created = await new_round(a)  # led by xanhpon.icu, today
    clinician = await signed_in(browser, a, "bavi.clinician")
    lead = await signed_in(browser, b, "xanhpon.icu")
    await lead.click(f'.card.round[data-round="{created["id"]}"] button.join-round')
    # The stage's pre-join screen, when there is one, asks to join.
    join = lead.locator(".prejoin button.join, button.prejoin-join")
    room = lead.locator(f'.round-room[data-round="{created["id"]}"]')
    await lead.wait_for_function(
        "(rid) => document.querySelector(`.round-room[data-round='${rid}']`) || "
        "document.querySelector('.prejoin button.join, button.prejoin-join')",
        arg=created["id"],
    )
    if await room.count() == 0:
        await join.first.click()
    await room.wait_for()

    await request_from_form(clinician, "BV-2026-777", specialty="icu", urgency="emergency")
    dialog = await lead.wait_for_selector("dialog.offer-dialog[open] .card.offer.emergency")
    assert "BV-2026-777" in await dialog.inner_text()
    assert await room.count() == 1  # still in the round under the dialog
    await shot(lead, "offer-in-round")
    consult_id = await dialog.get_attribute("data-consult")
    await lead.click("dialog.offer-dialog button.accept")
    # The round's call is left for the consult's room.
    await lead.wait_for_selector(f'.round-room[data-round="{created["id"]}"]', state="detached")
    await lead.wait_for_function(
        "(cid) => document.querySelector(`.room[data-consult='${cid}']`) || "
        "document.querySelector('.prejoin button.join, button.prejoin-join')",
        arg=consult_id,
    )
    await clinician.wait_for_selector(f".card[data-consult='{consult_id}'] .status[data-status=active]")
    for page in (clinician, lead):
        assert page.errors == [], page.errors  # type: ignore[attr-defined]


async def test_a_lapsed_offer_asks_whether_the_specialist_is_still_on_duty(
    start_instance: StartInstance, browser: Browser
) -> None:
    instance = await start_instance(OFFER_TIMEOUT_ROUTINE_S="3")
    clinician = await signed_in(browser, instance, "bavi.clinician")
    specialist = await signed_in(browser, instance, "xanhpon.surgeon")
    await specialist.wait_for_selector("select[name=presence]")
    # Nobody else of the specialty is online: the request waits for them.
    await request_from_form(clinician, "BV-2026-502")
    await specialist.wait_for_selector("dialog.offer-dialog[open]")
    await specialist.wait_for_selector("dialog.offer-dialog", state="hidden", timeout=TIMEOUT_MS)
    duty = await specialist.wait_for_selector("dialog.duty-dialog[open]")
    assert "Bạn còn trực không?" in await duty.inner_text()
    assert await specialist.eval_on_selector("select[name=presence]", "(s) => s.value") == "away"
    await shot(specialist, "still-on-duty")
    # The clinician is told the offer was not answered.
    await clinician.wait_for_selector(
        ".card[data-consult]:has-text('BV-2026-502') .unanswered:has-text('chưa trả lời')"
    )
    await specialist.click("dialog.duty-dialog button.still-here")
    await specialist.wait_for_selector("dialog.duty-dialog", state="hidden")
    await specialist.wait_for_function("() => document.querySelector('select[name=presence]').value === 'available'")
    # Available again, the waiting request is offered again.
    await specialist.wait_for_selector("dialog.offer-dialog[open]:has-text('BV-2026-502')")
    for page in (clinician, specialist):
        assert page.errors == [], page.errors  # type: ignore[attr-defined]


def vietnamese_only() -> set[str]:
    vi = json.loads((ROOT / "static" / "i18n" / "vi.json").read_text())
    en = json.loads((ROOT / "static" / "i18n" / "en.json").read_text())
    return {text for key, text in vi.items() if text != en[key] and "{" not in text and len(text) > 3}


async def test_the_login_page_in_english_keeps_the_username_and_says_when_the_server_is_down(
    start_instance: StartInstance, browser: Browser
) -> None:
    instance = await start_instance()
    page = await (await browser.new_context()).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(instance.url)
    await page.wait_for_selector("input[name=username]")
    await page.click("#language")
    await page.wait_for_selector("#language:text-is('Tiếng Việt')")
    pieces = await page.evaluate(
        """() => [...document.querySelectorAll('body *')].filter(el => el.offsetParent !== null)
            .flatMap(el => [...el.childNodes].filter(n => n.nodeType === 3).map(n => n.textContent.trim())
            .concat([el.getAttribute('aria-label'), el.placeholder, el.title].filter(Boolean)))"""
    )
    left = sorted(set(pieces) & vietnamese_only())
    assert left == [], f"still in Vietnamese on the login page: {left}"
    assert await page.evaluate("() => document.documentElement.lang") == "en"

    # A wrong password: said so, the username kept, the password cleared.
    await page.fill("input[name=username]", "bavi.clinician")
    await page.fill("input[name=password]", "doan-sai")
    await page.click("button[type=submit]")
    await page.wait_for_selector("form p.error:text-is('Wrong username or password')")
    assert await page.input_value("input[name=username]") == "bavi.clinician"
    assert await page.input_value("input[name=password]") == ""
    # The toggle translates the message too, and still keeps the username.
    await page.click("#language")
    await page.wait_for_selector("form p.error:text-is('Sai tên đăng nhập hoặc mật khẩu')")
    assert await page.input_value("input[name=username]") == "bavi.clinician"

    # The phone: no horizontal overflow on the login page.
    await page.set_viewport_size({"width": 360, "height": 740})
    assert await page.evaluate(NO_OVERFLOW)

    # The server down: the button says so instead of doing nothing.
    await instance.stop()
    await page.fill("input[name=password]", "bat-ky")
    await page.click("button[type=submit]")
    await page.wait_for_selector("form p.error:has-text('Không kết nối được máy chủ')")
    assert await page.input_value("input[name=username]") == "bavi.clinician"
    assert await page.is_enabled("button[type=submit]")
    await shot(page, "login-server-down")
    await asyncio.sleep(0)
    assert errors == [], errors


async def test_the_request_form_takes_identity_and_consent_and_the_record_shows_them(
    two_instances: tuple[Instance, Instance], browser: Browser
) -> None:
    """A clinician at Ba Vì fills the patient's identity and the consent a daughter gave in
    writing; a wrong citizen ID is caught in the page, in Vietnamese. A specialist at Xanh Pôn
    accepts; the record shows the identity and the consent, and the clinician withdraws it there."""
    a, b = two_instances
    clinician = await signed_in(browser, a, "bavi.clinician")
    specialist = await signed_in(browser, b, "xanhpon.surgeon")
    await specialist.wait_for_selector("select[name=presence]")
    await clinician.fill("input[name=ref]", "BV-2026-610")
    await clinician.fill("input[name=name]", "Nguyễn Văn Hùng")
    await clinician.fill("input[name=birth_date]", "1968-03-14")
    await clinician.fill("input[name=national_id]", "001068004217")
    await clinician.fill("input[name=insurance_id]", "ht3010123456789")  # capitals are the page's job
    await clinician.fill("input[name=address]", "Xã Tản Lĩnh, huyện Ba Vì, Hà Nội")
    # Without consent, a routine request is not sent: said in plain Vietnamese.
    await clinician.click(".request-form button[type=submit]")
    await clinician.wait_for_selector(".request-form .error:has-text('Cần có đồng ý của người bệnh')")
    await give_consent(clinician, given_by="relative", relation="con gái", recording=True)
    await clinician.select_option("select[name=method]", "written")
    await clinician.fill("input[name=national_id]", "001086004217")  # born 1986, says the ID
    await clinician.click(".request-form button[type=submit]")
    await clinician.wait_for_selector(".request-form .error:has-text('không khớp với năm sinh')")
    await clinician.fill("input[name=national_id]", "001068004217")
    await shot(clinician, "request-consent")
    await clinician.click(".request-form button[type=submit]")
    card = await clinician.wait_for_selector(".card[data-consult]:has-text('BV-2026-610')")
    consult_id = await card.get_attribute("data-consult")

    await specialist.wait_for_selector(f"dialog.offer-dialog[open] .card.offer[data-consult='{consult_id}']")
    await specialist.click("dialog.offer-dialog button.accept")
    await clinician.wait_for_selector(f".card[data-consult='{consult_id}'] .status[data-status=active]")

    await clinician.goto(f"{a.url}/#/record/{consult_id}")
    facts = await (await clinician.wait_for_selector(".record-summary .facts")).inner_text()
    for shown in ("Nguyễn Văn Hùng", "001068004217", "HT3010123456789", "Xã Tản Lĩnh", "1968-03-14"):
        assert shown in facts, (shown, facts)
    assert "Người nhà (con gái) · Bằng văn bản · hội chẩn, ghi hình" in facts, facts
    await clinician.click(".consent-form summary")
    await clinician.click(".consent-form button.withdraw-consent")
    await clinician.wait_for_selector(".record-summary .facts:has-text('Đã rút đồng ý')")
    await clinician.wait_for_selector(".consent-form")  # given again from the same form, when it is
    await clinician.click(".consent-form button.save-consent")
    await clinician.wait_for_selector(".record-summary .facts:has-text('Người nhà (con gái)')")
