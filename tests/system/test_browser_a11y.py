"""Every screen of the browser app (tests/system/screens.py), in Vietnamese and in English, on a
desktop (1280×800), a 10-inch tablet (800×1280) and a phone (390×844): axe-core finds no WCAG 2.1
AA violation, nothing Vietnamese is left after switching to English, nothing is wider than a
360 px screen, and on a phone a call's controls are on screen without scrolling. Also the pictures
of every screen at the three sizes (`make screenshots`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page

from tests.conftest import StartInstance
from tests.system.accessibility import (
    axe_violations,
    controls_out_of_view,
    format_violations,
    horizontal_overflow,
    untranslated,
)
from tests.system.browsing import ROOT, SCREENSHOTS, signed_in, video_plays
from tests.system.screens import (
    NARROWEST,
    SCREENS,
    UI,
    VIEWPORTS,
    Screen,
    Views,
    World,
    copy_database,
    demo_history_database,
    request,
    resize,
)

# Each screen's findings as JSON too, for handing to whoever redraws that screen.
FINDINGS = ROOT / "var" / "test-output" / "accessibility"


@pytest.fixture(scope="session")
def history_template(tmp_path_factory: pytest.TempPathFactory) -> str:
    return demo_history_database(tmp_path_factory.mktemp("history") / "template.db")


@pytest.fixture
async def world(start_instance: StartInstance, browser: Browser, history_template: str, tmp_path: Path) -> World:
    database = copy_database(history_template, tmp_path / "history.db")
    # An offer stays open while its dialog is checked (a routine one lapses after 30 s by default).
    slow = {"OFFER_TIMEOUT_ROUTINE_S": "600"}
    return World(
        browser, await start_instance(database=database, **slow), await start_instance(database=database, **slow)
    )


async def check(screen: Screen, views: Views, page: Page, language: str) -> dict[str, list[str]]:
    """Every finding on one view in one language: axe at each size, leftover Vietnamese, overflow."""
    found: dict[str, list[str]] = {}
    await screen.language(views, page, language)
    if language == "en":
        found["untranslated"] = await untranslated(page)
    for viewport, size in VIEWPORTS.items():
        await resize(page, size)
        violations = await axe_violations(page)
        found[f"axe {viewport}"] = format_violations(violations).splitlines()
        if viewport == "phone":
            found["call controls below the fold on a phone"] = await controls_out_of_view(page)
    await resize(page, NARROWEST)
    found[f"overflow at {NARROWEST['width']} px"] = await horizontal_overflow(page)
    return {what: lines for what, lines in found.items() if lines}


@pytest.mark.parametrize("screen", SCREENS, ids=[s.name for s in SCREENS])
async def test_every_screen_is_accessible_translated_and_fits_a_phone(world: World, screen: Screen) -> None:
    views = await screen.reach(world)
    findings: dict[str, dict[str, list[str]]] = {}
    for who, page in views:
        for language in ("vi", "en"):
            found = await check(screen, views, page, language)
            if found:
                findings[f"{screen.name} as {who}, {language}"] = found
        await screen.language(views, page, "vi")
    await photograph(screen, views)
    os.makedirs(FINDINGS, exist_ok=True)
    (FINDINGS / f"{screen.name}.json").write_text(json.dumps(findings, ensure_ascii=False, indent=1))
    report = "\n".join(
        f"{view}\n"
        + "\n".join(f"  {what}:\n" + "\n".join(f"    {line}" for line in lines) for what, lines in found.items())
        for view, found in findings.items()
    )
    if findings:  # the whole list, readable, rather than a diff of dictionaries
        pytest.fail(f"{screen.name}: what is to be fixed\n{report}", pytrace=False)
    for _, page in views:
        assert page.errors == [], page.errors  # type: ignore[attr-defined]
        await page.context.close()


async def photograph(screen: Screen, views: Views) -> None:
    """The screen at each size, in Vietnamese, from the demo history: into SCREENSHOTS_DIR (`make
    screenshots` sets docs/screenshots) as <viewport>/<screen>.png, else with the test output. Taken
    on the walk itself, which has the screen on hand (reaching every screen again would double the
    time, and a specialist still in the pre-join's consult would not be offered the next one)."""
    _, page = views[0]
    for viewport, size in VIEWPORTS.items():
        await resize(page, size)
        os.makedirs(SCREENSHOTS / viewport, exist_ok=True)
        path = SCREENSHOTS / viewport / f"{screen.name}.png"
        await page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 0


# Every text the page's one live region (#announcer) is given, kept as it is read out.
HEARD = """() => {
    window.heard = [];
    new MutationObserver(() => {
        const text = document.getElementById('announcer').textContent.trim();
        if (text) window.heard.push(text);
    }).observe(document.getElementById('announcer'), { childList: true, characterData: true, subtree: true });
}"""


async def test_call_events_are_announced(world: World) -> None:
    """A screen reader hears the offer, and in the call who joins and who leaves (the stage speaks
    through the shell's one aria-live region)."""
    clinician = await signed_in(world.browser, world.a, "bavi.clinician")
    specialist = await signed_in(world.browser, world.b, "xanhpon.surgeon")
    await specialist.evaluate(HEARD)
    await request(clinician, specialist)
    await specialist.wait_for_function("() => window.heard.some(t => t.includes('BV-2026-117'))")
    await specialist.click(UI["offer_accept"])
    await specialist.click(UI["prejoin_join"])
    await clinician.click(UI["consult_join"])
    await clinician.click(UI["prejoin_join"])
    await video_plays([clinician, specialist])
    await specialist.wait_for_function("() => window.heard.some(t => t.endsWith('đã vào cuộc gọi'))")
    await clinician.click(".call-bar .control-leave")
    await specialist.wait_for_function("() => window.heard.some(t => t.endsWith('đã rời cuộc gọi'))")
    heard = await specialist.evaluate("() => window.heard")
    assert any(text.startswith("BS.") and text.endswith("đã vào cuộc gọi") for text in heard), heard
    for page in (clinician, specialist):
        assert page.errors == [], page.errors  # type: ignore[attr-defined]
        await page.context.close()
