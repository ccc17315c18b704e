"""Classic XSS payloads in every free-text field, rendered by the real browser app in Chromium:
not one script may run, and the text must show as text.

The fields: the patient reference and summary, notes, the decline reason, the outcome summary,
and a user's name set by an admin. The screens: the specialist's offer card, both sides of the
consult room, the clinician's list, the supervisor's board, the admin's user list and the
printable minutes.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from playwright.async_api import Browser, Page

from tests.conftest import CONSENT, Client, Instance, add_user, login
from tests.system.browsing import signed_in

# Each calls `alert` or the page's `__xss` hook if it ever runs.
PAYLOADS = [
    "<script>alert('xss-1')</script>",
    "<img src=x onerror=\"alert('xss-2')\">",
    "<svg onload=alert('xss-3')>",
    '"><script>__xss("xss-4")</script>',
    "'><img src=x onerror=__xss('xss-5')>",
    "</textarea><script>__xss('xss-6')</script>",
    "<iframe src=\"javascript:__xss('xss-7')\"></iframe>",
    "<a href=\"javascript:__xss('xss-8')\">bấm vào đây</a>",
    "<details open ontoggle=__xss('xss-9')>",
    "<body onload=__xss('xss-10')>",
    "javascript:__xss('xss-11')",
    "{{constructor.constructor(\"__xss('xss-12')\")()}}",
    "${__xss('xss-13')}",
    "<math><mtext><table><mglyph><style><img src=x onerror=__xss('xss-14')>",
]
CORPUS = "\n".join(PAYLOADS)
SHORT = "<img src=x onerror=alert(1)>"  # a patient reference is at most 64 characters

# Before any of the page's scripts: count every way a payload could show it ran.
HOOK = """
window.__xss_hits = [];
window.__xss = (what) => window.__xss_hits.push(String(what));
for (const name of ["alert", "confirm", "prompt"]) window[name] = (what) => window.__xss(name + ":" + what);
document.addEventListener("securitypolicyviolation",
  (e) => window.__xss("csp:" + e.violatedDirective + ":" + (e.sample || "")), true);
"""


async def watched(page: Page) -> Page:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.dialogs = dialogs  # type: ignore[attr-defined]
    return page


async def hooked(chromium: Browser, instance: Instance, username: str) -> Page:
    """Signed in with the hook installed in every document the page loads."""
    page = await signed_in(chromium, instance, username)
    await page.context.add_init_script(HOOK)
    await watched(page)
    await page.reload()  # the hook runs before the app's scripts from here on
    await page.wait_for_selector("#logout:not([hidden])")
    return page


async def assert_nothing_ran(page: Page, where: str) -> None:
    hits = await page.evaluate("window.__xss_hits")
    assert hits == [], f"{where}: script ran: {hits}"
    assert page.dialogs == [], f"{where}: dialogs: {page.dialogs}"  # type: ignore[attr-defined]
    assert page.errors == [], f"{where}: page errors: {page.errors}"  # type: ignore[attr-defined]


async def call(client: Client, event: str, payload: dict[str, Any]) -> dict[str, Any]:
    ack = await client.call(event, payload)
    assert ack["ok"], (event, ack)
    return ack


async def test_no_payload_runs_on_any_screen(
    instance: Instance,
    browser: Browser,
    clients,
    database_url: str,
) -> None:
    # An admin gives a clinician at Ba Vì a name made of payloads.
    await add_user(database_url, "bavi.xss", "clinician", "bavi-dgh")
    admin_token = await login(instance.url, "admin")
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {admin_token}"}) as http:
        async with http.get(f"{instance.url}/api/admin/users", params={"role": "clinician"}) as resp:
            user_id = next(u["id"] for u in (await resp.json())["users"] if u["username"] == "bavi.xss")
        name = " ".join(PAYLOADS[:5])[:200]
        async with http.patch(f"{instance.url}/api/admin/users/{user_id}", json={"name": name}) as resp:
            assert resp.status == 200, await resp.text()

    specialist = await hooked(browser, instance, "xanhpon.surgeon")
    clinician_page = await hooked(browser, instance, "bavi.xss")
    supervisor = await hooked(browser, instance, "soyte.supervisor")

    # A consult whose patient is all payloads: the specialist's offer card shows it.
    clinician = await clients(instance, "bavi.xss")
    patient = {"ref": SHORT, "summary": CORPUS[:2000]}
    request = {"op_id": "xss-1", "specialty": "surgery", "urgency": "urgent", "patient": patient, "consent": CONSENT}
    consult = (await call(clinician, "consult:request", request))["consult"]
    offer = await specialist.wait_for_selector(f'.card.offer:has-text("{PAYLOADS[0]}")')
    assert SHORT in await offer.inner_text()
    await assert_nothing_ran(specialist, "offer card")

    # Accepted and joined on both sides; notes of payloads arrive in both rooms.
    await specialist.click(".card.offer button.accept")  # the specialist goes into the room
    await specialist.click("button.prejoin-join")  # through the pre-join screen
    await clinician_page.click(".card button.join")
    await clinician_page.click("button.prejoin-join")
    for n, text in enumerate(PAYLOADS):
        note = {"consult_id": consult["id"], "op_id": f"x{n}", "section": "plan", "text": text}
        await call(clinician, "note:add", note)
    for page in (specialist, clinician_page):
        await page.wait_for_selector(f'.note:has-text("{PAYLOADS[-1]}")')
        shown = await page.inner_text(".notes")
        assert all(text in shown for text in PAYLOADS), shown
        await assert_nothing_ran(page, "consult room")
    await supervisor.wait_for_selector("[data-table=sessions] tr[data-session]")
    await assert_nothing_ran(supervisor, "supervisor board")

    # Ended with an outcome summary of payloads; a second request is declined with one as reason.
    surgeon = await clients(instance, "xanhpon.surgeon")
    end = {"consult_id": consult["id"], "outcome": "follow_up", "summary": CORPUS}
    await call(surgeon, "consult:end", end)
    second = (await call(clinician, "consult:request", {**request, "op_id": "xss-2"}))["consult"]
    await surgeon.next("consult:offer")
    await call(surgeon, "consult:decline", {"consult_id": second["id"], "reason": CORPUS[:500]})
    await clinician_page.wait_for_selector("text=" + SHORT)  # the clinician's list shows the waiting one
    await assert_nothing_ran(clinician_page, "clinician's list")

    # The printable minutes of both, in the browser.
    token = await login(instance.url, "bavi.xss")
    minutes = await watched(await clinician_page.context.new_page())
    await minutes.set_extra_http_headers({"Authorization": f"Bearer {token}"})
    minutes.errors = []  # type: ignore[attr-defined]
    minutes.on("pageerror", lambda error: minutes.errors.append(str(error)))  # type: ignore[attr-defined]
    for cid in (consult["id"], second["id"]):
        await minutes.goto(f"{instance.url}/api/consults/{cid}/minutes")
        assert PAYLOADS[1] in await minutes.inner_text("body")
        await assert_nothing_ran(minutes, "minutes")

    # The admin's list of users shows the name as text.
    admin = await hooked(browser, instance, "admin")
    await admin.wait_for_selector(f"text={PAYLOADS[0]}")
    await assert_nothing_ran(admin, "admin users")
    for page in (specialist, clinician_page, supervisor, admin):
        await assert_nothing_ran(page, "at the end")
