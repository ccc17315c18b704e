"""Every screen of the browser app and how a user reaches it, for the checks that walk them all
(tests/system/test_browser_a11y.py: accessibility, language, overflow, and the screenshots).

A screen is added by writing how to reach it (an async function from the two instances to the
pages showing it) and appending it to SCREENS. The selectors of today's pages are kept together in
UI, so a screen that is redrawn needs its selectors changed here only."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from playwright.async_api import Browser, Page

from server.records import migrate
from server.records.models import Database
from server.runtime import demo
from server.runtime.settings import normalize_database_url
from tests.conftest import PASSWORD, Instance
from tests.system.browsing import TIMEOUT_MS, give_consent, signed_in, video_plays

# The controls the walk uses, one place for all of them.
UI = {
    "language": "#language",  # the language toggle, on every screen, the login included
    "login_form": "input[name=username]",
    "clinician_home": "main section h2",
    "specialist_home": "select[name=presence]",
    "board": '[data-empty="sessions"]',
    "board_charts": ".board-charts [data-chart]",
    "admin": 'tr[data-hospital="bavi-dgh"]',
    "request_ref": "input[name=ref]",
    "request_summary": "textarea[name=summary]",
    "request_submit": "form button[type=submit]",
    "request_sent": ".card [data-status]",
    "request_cancel": ".card button.cancel",
    "offer_dialog": "dialog.offer-dialog[open] .card.offer",
    "offer_accept": ".card.offer button.accept",
    "consult_join": ".card button.join",
    "prejoin_join": "button.prejoin-join:not([disabled])",  # the pre-join screen's Join, once the devices are open
    "consult_room": ".room .tile",
    "history": ".history-items .card:has([data-status=ended]) .record-link",
    "record": ".record-page .record-summary",
    "record_minutes": ".record-page .minutes main, .record-page .minutes article, .record-page .minutes h1",
    "report": ".report-view .report-content:not([aria-busy]) h1",
    "round_join": '.card.round[data-round="{round}"] button.join-round',
    "round_room": '.round-room[data-round="{round}"] .round-patient',
}

VIEWPORTS = {
    "desktop": {"width": 1280, "height": 800},
    "tablet": {"width": 800, "height": 1280},  # a 10-inch tablet upright
    "phone": {"width": 390, "height": 844},
}
NARROWEST = {"width": 360, "height": 740}  # no sideways scrolling down to this width


@dataclass
class World:
    """What a screen is reached with: Chromium and two instances on one Redis and one database."""

    browser: Browser
    a: Instance  # where the clinician at Ba Vì signs in
    b: Instance  # where the specialist at Xanh Pôn, the supervisor and the admin sign in


# The pages showing a screen, each named for whose view it is; the first is the one photographed.
Views = list[tuple[str, Page]]


# How a user changes the language of one of a screen's pages: (the screen's pages, that page, language).
Switch = Callable[[Views, Page, str], Awaitable[None]]


@dataclass(frozen=True)
class Screen:
    name: str
    reach: Callable[[World], Awaitable[Views]]
    # Where the toggle is out of reach on the screen itself (a modal dialog makes the page under it
    # inert): how the user gets the screen in the other language. None: the toggle (switch_language).
    switch: Switch | None = None

    async def language(self, views: Views, page: Page, language: str) -> None:
        if self.switch is None:
            await switch_language(page, language)
        else:
            await self.switch(views, page, language)


async def login_page(world: World) -> Views:
    context = await world.browser.new_context()
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors  # type: ignore[attr-defined]  # as signed_in's pages have them
    await page.goto(world.a.url)
    await page.wait_for_selector(UI["login_form"])
    return [("visitor", page)]


def home(username: str, instance: Callable[[World], Instance], ready: str) -> Callable[[World], Awaitable[Views]]:
    async def reach(world: World) -> Views:
        page = await signed_in(world.browser, instance(world), username)
        await page.wait_for_selector(UI[ready])
        return [(username, page)]

    return reach


async def supervisor_board(world: World) -> Views:
    page = await signed_in(world.browser, world.b, "soyte.supervisor")
    await page.wait_for_selector(UI["board"])
    await page.wait_for_selector(UI["board_charts"])  # the demo history's figures
    return [("soyte.supervisor", page)]


async def offered(world: World) -> tuple[Page, Page]:
    """A clinician at Ba Vì has asked for a surgeon; the offer is open on the specialist's screen."""
    clinician = await signed_in(world.browser, world.a, "bavi.clinician")
    specialist = await signed_in(world.browser, world.b, "xanhpon.surgeon")
    await request(clinician, specialist)
    return clinician, specialist


async def request(clinician: Page, specialist: Page) -> None:
    await clinician.fill(UI["request_ref"], "BV-2026-117")
    await clinician.fill(UI["request_summary"], "Nam 45 tuổi, đau bụng hố chậu phải")
    await give_consent(clinician)
    await clinician.click(UI["request_submit"])
    await clinician.wait_for_selector(UI["request_sent"])
    await specialist.wait_for_selector(UI["offer_dialog"])


async def offer_in(views: Views, page: Page, language: str) -> None:
    """The offer dialog is modal: the toggle under it is inert while it is open (an offer lasts
    seconds; it is answered, not read in another language). So the clinician withdraws the request,
    the specialist switches language, and the clinician asks again: a new offer, in that language."""
    pages = dict(views)
    clinician, specialist = pages["bavi.clinician"], pages["xanhpon.surgeon"]
    if page is not specialist or await page.evaluate("() => document.documentElement.lang") == language:
        await switch_language(page, language)
        return
    await clinician.click(UI["request_cancel"])
    await specialist.wait_for_selector(UI["offer_dialog"], state="detached")
    await switch_language(specialist, language)
    await request(clinician, specialist)


async def offer_dialog(world: World) -> Views:
    """The offer over the specialist's home screen, and the clinician's waiting request."""
    clinician, specialist = await offered(world)
    return [("xanhpon.surgeon", specialist), ("bavi.clinician", clinician)]


async def prejoin_screen(world: World) -> Views:
    """The specialist has accepted: the pre-join screen (camera, microphone, speaker, echo test)."""
    _, specialist = await offered(world)
    await specialist.click(UI["offer_accept"])
    await specialist.wait_for_selector(UI["prejoin_join"])
    return [("xanhpon.surgeon", specialist)]


async def consult_room(world: World) -> Views:
    """A clinician at Ba Vì and a specialist at Xanh Pôn in a call, on two instances."""
    clinician, specialist = await offered(world)
    await specialist.click(UI["offer_accept"])
    await specialist.click(UI["prejoin_join"])
    await clinician.click(UI["consult_join"])
    await clinician.click(UI["prejoin_join"])
    await video_plays([clinician, specialist])
    return [("bavi.clinician", clinician), ("xanhpon.surgeon", specialist)]


async def round_room(world: World) -> Views:
    """Today's ward round at Ba Vì, led by a specialist at Xanh Pôn, both on its call."""
    from tests.system.test_rounds import new_round

    rid = (await new_round(world.a))["id"]
    clinician = await signed_in(world.browser, world.a, "bavi.clinician")
    lead = await signed_in(world.browser, world.b, "xanhpon.icu")
    for page in (clinician, lead):
        await page.click(UI["round_join"].format(round=rid))
        await page.click(UI["prejoin_join"])
        await page.wait_for_selector(UI["round_room"].format(round=rid))
    await video_plays([clinician, lead])
    return [("xanhpon.icu", lead), ("bavi.clinician", clinician)]


async def history(world: World) -> Views:
    """The clinician's ended consults, from the demo history."""
    page = await signed_in(world.browser, world.a, "bavi.clinician")
    await page.goto(f"{world.a.url}/#/history")
    await page.wait_for_selector(UI["history"])
    return [("bavi.clinician", page)]


async def record(world: World) -> Views:
    """One ended consult's record, opened from the history: facts, notes, files and the minutes."""
    (_, page), *_ = await history(world)
    await page.click(UI["history"])
    await page.wait_for_selector(UI["record"])
    await page.wait_for_selector(UI["record_minutes"])
    return [("bavi.clinician", page)]


async def report(world: World) -> Views:
    """Last month's report (the demo history fills it), in the supervisor's app."""
    page = await signed_in(world.browser, world.b, "soyte.supervisor")
    month = (date.today().replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    await page.goto(f"{world.b.url}/#/report/{month}")
    await page.wait_for_selector(UI["report"])
    return [("soyte.supervisor", page)]


SCREENS = [
    Screen("login", login_page),
    Screen("clinician-home", home("bavi.clinician", lambda w: w.a, "clinician_home")),
    Screen("specialist-home", home("xanhpon.surgeon", lambda w: w.b, "specialist_home")),
    Screen("history", history),
    Screen("record", record),
    Screen("supervisor-board", supervisor_board),
    Screen("report", report),
    Screen("admin", home("admin", lambda w: w.b, "admin")),
    Screen("offer-dialog", offer_dialog, offer_in),
    Screen("pre-join", prejoin_screen),
    Screen("consult-room", consult_room),
    Screen("round-room", round_room),
]


async def switch_language(page: Page, language: str) -> None:
    """Switch as a user does, with the toggle, and wait for the page to have redrawn."""
    if await page.evaluate("() => document.documentElement.lang") == language:
        return
    await page.click(UI["language"])
    await page.wait_for_function(f"() => document.documentElement.lang === {language!r}")
    await page.wait_for_load_state("networkidle")
    await settle(page)


async def resize(page: Page, size: dict[str, int]) -> None:
    await page.set_viewport_size({"width": size["width"], "height": size["height"]})
    await settle(page)


async def settle(page: Page) -> None:
    """Two animation frames: styles and layout of the last change applied."""
    await page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def demo_history_database(path: Path) -> str:
    """A migrated SQLite database with the demo data and the demo history (about three months of
    ended consults, server/runtime/demo.py), so the board's charts and the reports have figures."""

    async def build() -> None:
        db = Database(normalize_database_url(f"sqlite:///{path}"))
        await migrate.upgrade(db)
        await demo.seed(db, PASSWORD, history=True)
        await db.close()

    asyncio.run(build())
    return str(path)


def copy_database(template: str, target: Path) -> str:
    shutil.copy(template, target)
    return normalize_database_url(f"sqlite:///{target}")
