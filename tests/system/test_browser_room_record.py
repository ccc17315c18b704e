"""The consult room's record controls in real Chromium, on a 360 px phone: the requesting
clinician names the chair and the secretary of the minutes among the participants, and withdraws
then records the patient's consent (to recording too) through the outbox; labelled, in Vietnamese
and in English, nothing wider than the screen."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Browser

from tests.conftest import Instance
from tests.system.accessibility import horizontal_overflow, untranslated
from tests.system.browsing import signed_in
from tests.system.screens import switch_language
from tests.system.test_consent import BY_DAUGHTER, IDENTITY
from tests.system.test_consults import ask
from tests.system.test_record import http


async def record_of(instance: Instance, consult_id: str) -> dict[str, Any]:
    async with await http(instance, "bavi.clinician") as client:
        async with client.get(f"/api/consults/{consult_id}") as resp:
            assert resp.status == 200
            body: dict[str, Any] = await resp.json()
    return body


async def test_the_room_names_the_chair_and_secretary_and_takes_consent_on_a_phone(
    instance: Instance, clients, browser: Browser
) -> None:
    surgeon = await clients(instance, "xanhpon.surgeon")
    await surgeon.next("session:state")
    consult = await ask(await clients(instance, "bavi.clinician"), patient=IDENTITY, consent=BY_DAUGHTER)
    cid = consult["id"]
    await surgeon.next("consult:offer")
    accepted = await surgeon.call("consult:accept", {"consult_id": cid})
    assert accepted["ok"] is True, accepted

    page = await signed_in(browser, instance, "bavi.clinician")
    await page.set_viewport_size({"width": 360, "height": 740})
    await page.click(f".card[data-consult='{cid}'] button.join")
    await page.click("button.prejoin-join")
    room = page.locator(f".consult-room[data-consult='{cid}']")
    await room.locator(".room-consent").wait_for()
    assert "con gái" in await room.locator(".room-consent").inner_text()

    # Chair and secretary: the choices are the participants; saved through the route.
    await room.locator(".minutes-roles summary").click()
    await room.locator("#room-chair option[value]:not([value=''])").first.wait_for(state="attached")
    chairs = await room.locator("#room-chair option").all_inner_texts()
    assert chairs[1:] == ["BS. Nguyễn Văn Hùng", "BS. Lê Minh Đức"]  # the requester, the specialist
    await page.get_by_label("Chủ trì", exact=True).select_option(label="BS. Lê Minh Đức")
    await page.get_by_label("Thư ký", exact=True).select_option(label="BS. Nguyễn Văn Hùng")
    await room.locator("button.save-roles").click()
    await room.locator(".minutes-roles .saved").wait_for()
    roles = (await record_of(instance, cid))["minutes"]
    assert roles["chair_id"] == accepted["consult"]["specialist"]["id"]
    assert roles["secretary_id"] == consult["requester"]["id"]

    # Consent: withdrawn, then given again to the consult and its recording.
    form = room.locator(".consent-form")
    if not await form.evaluate("d => d.open"):
        await form.locator("summary").click()
    await form.locator("button.withdraw-consent").click()
    await room.locator(".room-consent:has-text('Đã rút đồng ý')").wait_for()
    assert await form.locator("button.withdraw-consent").is_hidden()
    await page.get_by_label("Đồng ý cả ghi hình buổi hội chẩn").check()
    await form.locator("button.save-consent").click()
    await room.locator(".room-consent:has-text('ghi hình')").wait_for()
    given = (await record_of(instance, cid))["consult"]["consent"]
    assert given["scopes"] == ["consult", "recording"] and given["relation"] == "con gái"
    assert given["method"] == "written" and given["recorded_by"]["name"] == "BS. Nguyễn Văn Hùng"

    assert await horizontal_overflow(page) == []
    await switch_language(page, "en")
    assert await untranslated(page) == []
    await page.get_by_label("Chair", exact=True).wait_for()
    await page.get_by_label("Also agreed to the consult being recorded").wait_for()
    assert await horizontal_overflow(page) == []
    assert page.errors == []  # type: ignore[attr-defined]
