"""What the browser tests share: Debian's Chromium through Playwright with a fake camera and
microphone, a signed-in page that records its errors and console, waiting for remote video, and
screenshots (`make screenshots` writes them to docs/screenshots/)."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

from playwright.async_api import Browser, Page, async_playwright
from playwright.async_api import TimeoutError as PlaywrightTimeout

from tests.conftest import PASSWORD, Instance

TIMEOUT_MS = 20_000
ROOT = Path(__file__).resolve().parent.parent.parent
# Screenshots of each screen go with the test output; `make screenshots` points this at
# docs/screenshots/ to refresh the README's pictures.
SCREENSHOTS = Path(os.environ.get("SCREENSHOTS_DIR") or ROOT / "var" / "test-output" / "screenshots")


async def shot(page: Page, name: str) -> None:
    os.makedirs(SCREENSHOTS, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def chromium_path() -> str:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "the browser tests need Chromium: `make test` installs it (scripts/ensure-chromium)"
    return path


# How Chromium runs for the browser tests and the browser bench (bench/browser_calls.py): a fake
# camera and microphone granted without a prompt, nothing fetched in the background.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]


async def launched_browser() -> AsyncIterator[Browser]:
    """Debian's Chromium with a fake camera and microphone that need no permission prompt."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium_path(),
            args=CHROMIUM_ARGS,
        )
        yield browser
        await browser.close()


async def signed_in(browser: Browser, instance: Instance, username: str) -> Page:
    context = await browser.new_context(permissions=["camera", "microphone"])
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    console: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    await page.goto(instance.url)
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_selector("#logout:not([hidden])")
    page.errors = errors  # type: ignore[attr-defined]
    page.console = console  # type: ignore[attr-defined]
    return page


REMOTE_VIDEO_PLAYS = """() => [...document.querySelectorAll('.tile:not([data-peer="self"]) video')]
    .some(v => v.videoWidth > 0 && v.readyState >= 2)"""


async def video_plays(pages: list[Page], condition: str = REMOTE_VIDEO_PLAYS) -> None:
    """Wait until each page shows a playing remote video; on a timeout, fail with what the calls logged."""
    for page in pages:
        try:
            await page.wait_for_function(condition)
        except PlaywrightTimeout:
            logs = "\n\n".join(
                f"{p.url}:\n" + "\n".join(p.console[-40:])  # type: ignore[attr-defined]
                for p in pages
            )
            raise AssertionError(f"no remote video within {TIMEOUT_MS} ms; the pages logged:\n{logs}") from None


async def give_consent(page: Page, given_by: str = "patient", relation: str = "", recording: bool = False) -> None:
    """On the request form: the patient (or a relative) agreed to the remote consult, as a
    clinician ticks it before asking (a routine or urgent request is refused without it)."""
    await page.check("input[name=consent]")
    await page.select_option("select[name=given_by]", given_by)
    if relation:
        await page.fill("input[name=relation]", relation)
    if recording:
        await page.check("input[name=consent_recording]")


async def in_a_call(clinician: Page, specialist: Page, ref: str) -> None:
    """The whole way into a call from the browser: the clinician at Ba Vì asks (with the patient's
    consent) for patient `ref`, the specialist at Xanh Pôn accepts, both pass the pre-join screen,
    and each sees the other's video."""
    await clinician.fill("input[name=ref]", ref)
    await give_consent(clinician)
    await clinician.click("form button[type=submit]")
    await specialist.click(".card.offer button.accept")
    await clinician.click(".card button.join")
    for page in (clinician, specialist):
        await page.click("button.prejoin-join")
    await video_plays([clinician, specialist])
