"""The call stage in real Chromium (Debian's), fake camera and microphone, two pages on two
instances: who is on each tile, their muted badge, the self-view inset, the phone's call bar,
a dropped peer's tile, an inline amendment, and the attachments uploaded before joining."""

from __future__ import annotations

import aiohttp
from playwright.async_api import Browser, FloatRect, Page

from tests.conftest import StartInstance, login
from tests.system.browsing import REMOTE_VIDEO_PLAYS, give_consent, shot, signed_in, video_plays
from tests.system.test_record import PNG

CLINICIAN = "BS. Nguyễn Văn Hùng"  # a clinician at Ba Vì
SPECIALIST = "BS. Lê Minh Đức"  # a specialist at Xanh Pôn
REMOTE = '.stage-tiles .tile:not([data-peer="self"])'


async def box(page: Page, selector: str) -> FloatRect:
    found = await page.locator(selector).first.bounding_box()
    assert found is not None, selector
    return found


async def test_the_call_stage_shows_who_is_there_and_what_they_do(
    start_instance: StartInstance, browser: Browser
) -> None:
    a = await start_instance()
    b = await start_instance()
    clinician = await signed_in(browser, a, "bavi.clinician")
    specialist = await signed_in(browser, b, "xanhpon.surgeon")
    await clinician.fill("input[name=ref]", "BV-2026-211")
    await give_consent(clinician)
    await clinician.click("form button[type=submit]")
    await specialist.click(".card.offer button.accept")
    await clinician.wait_for_selector(".card[data-consult] button.join")
    consult_id = await clinician.get_attribute(".card[data-consult]:has(button.join)", "data-consult")
    assert consult_id

    # Before anyone joins, the clinician uploads an X-ray: the room lists it for whoever joins.
    token = await login(a.url, "bavi.clinician")
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        form = aiohttp.FormData()
        form.add_field("file", PNG, filename="x-quang-nguc.png", content_type="image/png")
        async with http.post(f"{a.url}/api/consults/{consult_id}/attachments", data=form) as response:
            assert response.status == 201, await response.text()

    await clinician.click(".card button.join")
    await clinician.wait_for_selector("section.prejoin video.prejoin-preview")
    await clinician.wait_for_function("() => document.querySelector('select[name=camera]').options.length > 0")
    await shot(clinician, "prejoin")
    for page in (clinician, specialist):
        await page.click("button.prejoin-join")
    await video_plays([clinician, specialist], REMOTE_VIDEO_PLAYS.replace(".tile", ".stage-tiles .tile"))

    # Each side sees the other's tile, named.
    await clinician.wait_for_selector(f"{REMOTE} .badge-name:text-is('{SPECIALIST}')")
    await specialist.wait_for_selector(f"{REMOTE} .badge-name:text-is('{CLINICIAN}')")
    # The earlier upload is listed on joining, with who uploaded it and its size.
    listed = specialist.locator(".files li[data-file]:has-text('x-quang-nguc.png')")
    await listed.wait_for()
    assert CLINICIAN in await listed.inner_text() and "byte" in await listed.inner_text()

    # The self-view is a small inset; the other person takes the stage.
    mine, theirs = await box(clinician, '.stage .tile.self[data-peer="self"]'), await box(clinician, REMOTE)
    assert mine["width"] * mine["height"] * 4 < theirs["width"] * theirs["height"], (mine, theirs)

    # Muting on one side shows a muted badge on the other; the control turns red and says so.
    await clinician.click(".call-bar .control-mic")
    await clinician.wait_for_selector(".call-bar .control-mic.off[aria-pressed=true]")
    assert "(phím M)" in (await clinician.get_attribute(".call-bar .control-mic", "title") or "")
    await specialist.wait_for_selector(f"{REMOTE}[data-audio=off] .badge-muted", state="visible")
    await shot(specialist, "stage-muted-badge")
    await clinician.keyboard.press("m")  # the shortcut unmutes
    await specialist.wait_for_selector(f"{REMOTE}[data-audio=on] .badge-muted", state="hidden")

    # A note is amended inline, by its author, in a multi-line editor; both see the original too.
    await clinician.select_option("select[name=section]", "assessment")
    await clinician.fill("textarea[name=note]", "Nghi viêm ruột thừa")
    await clinician.click(".notes + form button[type=submit]")
    note = '.note[data-section="assessment"]'
    await specialist.wait_for_selector(f"{note}:has-text('Nghi viêm ruột thừa')")
    assert await specialist.locator(f"{note} button.amend").count() == 0  # not theirs to amend
    await clinician.click(f"{note} button.amend")
    await clinician.fill(f"{note} textarea[name=amend]", "Viêm ruột thừa cấp\nChỉ định mổ nội soi")
    await clinician.click(f"{note} .amend-editor button[type=submit]")
    for page in (clinician, specialist):
        amended = page.locator(f"{note}:has-text('Chỉ định mổ nội soi')")
        await amended.wait_for()
        assert "Chỉ định mổ nội soi" in await amended.inner_text()
        assert "Nghi viêm ruột thừa" in await page.locator(f"{note} del.note-old").inner_text()
        assert await page.locator(note).count() == 1  # one note, its current version
    assert clinician.errors == [] and specialist.errors == []  # type: ignore[attr-defined]

    # On a phone the call bar is on screen without scrolling, each control a 44 px target.
    await clinician.set_viewport_size({"width": 390, "height": 844})
    await clinician.evaluate("() => window.scrollTo(0, 0)")
    bar = await box(clinician, ".call-bar")
    assert bar["y"] >= 0 and bar["y"] + bar["height"] <= 844, bar
    for control in await clinician.locator(".call-bar button").all():
        shape = await control.bounding_box()
        assert shape and shape["width"] >= 44 and shape["height"] >= 44 and shape["x"] + shape["width"] <= 390, shape
    # Nothing in the room is wider than the phone (the header is the app shell's).
    wide = await clinician.evaluate(
        """() => [...document.querySelectorAll('.room *')].filter(el => el.getBoundingClientRect().right > 391)
            .map(el => el.tagName + '.' + el.className)"""
    )
    assert wide == [], wide
    await shot(clinician, "stage-phone")
    await clinician.set_viewport_size({"width": 1280, "height": 800})

    # The clinician's instance goes away: their tile says it is reconnecting, then they are back.
    port = int(a.url.rsplit(":", 1)[1])
    await a.stop()
    await specialist.wait_for_selector(f"{REMOTE}[data-state=reconnecting] .tile-overlay:has-text('kết nối lại')")
    await shot(specialist, "stage-reconnecting")
    await start_instance(port=port)
    await specialist.wait_for_selector(f"{REMOTE}[data-state=connected]")
    await specialist.wait_for_selector(f"{REMOTE}[data-state=reconnecting]", state="detached")
    await video_plays([clinician, specialist], REMOTE_VIDEO_PLAYS.replace(".tile", ".stage-tiles .tile"))
    await specialist.wait_for_selector(f"{REMOTE} .badge-name:text-is('{CLINICIAN}')")

    # The clinician leaves: the specialist sees them leaving, then the tile goes.
    await clinician.click(".call-bar .control.leave")
    await specialist.wait_for_selector(f"{REMOTE}[data-state=leaving]")
    await specialist.wait_for_selector(REMOTE, state="detached")
    await specialist.wait_for_selector(".stage-waiting:not([hidden])")
    for page in (clinician, specialist):
        assert page.errors == [], page.errors  # type: ignore[attr-defined]
