"""Nothing a clinician writes is lost: notes written in the browser while the network is down
are shown "not sent yet", warned about before the page closes, and delivered exactly once when
the network returns, also after the page was reloaded meanwhile (then the clinician lands back in
the consult's room). Real Chromium, two instances; the clinician's network goes down by their
instance stopping (as for a dropped link: Chromium's offline emulation leaves an open WebSocket
alone), and comes back by it starting again on the same address."""

from __future__ import annotations

from typing import Any

import aiohttp
from playwright.async_api import Browser, Dialog, Page

from tests.conftest import Instance, StartInstance, login
from tests.system.browsing import in_a_call, shot, signed_in, video_plays

PENDING = "chưa gửi — sẽ gửi lại"


async def record_notes(instance: Instance, consult_id: str) -> list[dict[str, Any]]:
    """The consult's notes as its record has them (GET /api/consults/{id}), read by the specialist."""
    token = await login(instance.url, "xanhpon.surgeon")
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{instance.url}/api/consults/{consult_id}", headers={"Authorization": f"Bearer {token}"}) as resp,
    ):
        assert resp.status == 200, await resp.text()
        return list((await resp.json())["notes"])


async def write_note(page: Page, section: str, text: str) -> None:
    await page.select_option("select[name=section]", section)
    await page.fill("textarea[name=note]", text)
    await page.click(".notes + form button[type=submit]")


async def delivered_once(clinician: Page, specialist: Page, record: Instance, consult_id: str, text: str) -> None:
    """On both pages as a sent note (not pending), and once in the record."""
    sent = f'.note:not(.pending):has-text("{text}")'
    await specialist.wait_for_selector(sent)
    await clinician.wait_for_selector(sent)
    await clinician.wait_for_selector(f'.note.pending:has-text("{text}")', state="detached")
    assert await specialist.locator(sent).count() == 1
    assert await clinician.locator(sent).count() == 1
    texts = [n["text"] for n in await record_notes(record, consult_id)]
    assert texts.count(text) == 1, texts


async def test_notes_written_offline_are_delivered_once_when_the_network_returns_and_after_a_reload(
    start_instance: StartInstance, browser: Browser
) -> None:
    a = await start_instance()
    b = await start_instance()
    port = int(a.url.rsplit(":", 1)[1])
    clinician = await signed_in(browser, a, "bavi.clinician")
    specialist = await signed_in(browser, b, "xanhpon.surgeon")
    await in_a_call(clinician, specialist, "BV-2026-130")
    consult_id = await clinician.get_attribute(".consult-room", "data-consult")
    assert consult_id
    warnings: list[str] = []

    def leave_anyway(dialog: Dialog) -> Any:
        warnings.append(dialog.type)
        return dialog.accept()

    clinician.on("dialog", leave_anyway)

    # The network goes down; the clinician writes a note all the same.
    await a.stop()
    await clinician.wait_for_selector("#banner:has-text('đang kết nối lại')")
    first = "Khám lại: bụng mềm, ấn đau hố chậu phải"
    await write_note(clinician, "examination", first)
    pending = await clinician.wait_for_selector(f'.note.pending:has-text("{first}")')
    assert PENDING in await pending.inner_text()
    assert await clinician.input_value("textarea[name=note]") == ""  # kept in the outbox, not the box
    await shot(clinician, "note-not-sent")
    # Closing the page now would warn: the handler is armed, and cancels the unload.
    armed = await clinician.evaluate(
        """() => { const e = new Event('beforeunload', { cancelable: true });
                   window.dispatchEvent(e); return e.defaultPrevented; }"""
    )
    assert armed is True

    # The network returns: delivered once, on both pages and in the record.
    a = await start_instance(port=port)
    await delivered_once(clinician, specialist, b, consult_id, first)
    assert not await clinician.evaluate(
        """() => { const e = new Event('beforeunload', { cancelable: true });
                   window.dispatchEvent(e); return e.defaultPrevented; }"""
    ), "nothing unsent: no warning"

    # Down again; a note, then the page is reloaded while the network is still down. The reload
    # asks first (the warning), and the page comes from the app's cached shell.
    await a.stop()
    await clinician.wait_for_selector("#banner:has-text('đang kết nối lại')")
    second = "Chỉ định siêu âm ổ bụng, xét nghiệm công thức máu"
    await write_note(clinician, "investigations", second)
    await clinician.wait_for_selector(f'.note.pending:has-text("{second}")')
    await clinician.reload(wait_until="domcontentloaded")
    assert warnings == ["beforeunload"]
    kept = await clinician.evaluate(
        "() => Object.keys(localStorage).filter(k => k.startsWith('telerounds.outbox.'))"
        ".map(k => JSON.parse(localStorage.getItem(k))).flat().map(e => e.payload?.text)"
    )
    assert second in kept, kept

    # The network returns: the reloaded page sends the note once, and the clinician is back in
    # the consult's room (through the pre-join screen), in the call again.
    a = await start_instance(port=port)
    await clinician.click("button.prejoin-join")
    await clinician.wait_for_selector(f'.consult-room[data-consult="{consult_id}"]')
    await delivered_once(clinician, specialist, b, consult_id, second)
    await video_plays([clinician, specialist])
    texts = [n["text"] for n in await record_notes(b, consult_id)]
    assert texts.count(first) == 1 and texts.count(second) == 1, texts
    await shot(clinician, "back-in-the-room-after-reload")
    assert clinician.errors == [], clinician.errors  # type: ignore[attr-defined]
    assert specialist.errors == [], specialist.errors  # type: ignore[attr-defined]
