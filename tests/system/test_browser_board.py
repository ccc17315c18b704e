"""The supervisor board and the admin screen in real Chromium: a live session opens its record,
the charts follow the board, the CSV speaks the page's language, the monthly report opens inside
the app, the board follows a change of scope, and the audit viewer speaks in words and names."""

from __future__ import annotations

import ast
import asyncio
import csv
import io
import json
import re
from pathlib import Path

import aiohttp
from playwright.async_api import Browser, Page

from server.records import chain
from tests.conftest import Instance, login
from tests.system.browsing import ROOT, shot, signed_in
from tests.system.test_consults import ask
from tests.system.test_rtc import join

AUDIT_CALLS = {"record", "entry", "record_listing", "_audit", "_readable"}
NOT_ACTIONS = re.compile(r"^(telerounds|aiohttp)\.|\.id$")
ACTION = re.compile(r"[a-z_]+(\.[a-z_]+)+")
VIETNAMESE = re.compile(r"[ăâđêôơưàáảãạèéẻẽẹìíỉĩịòóỏõọùúủũụỳýỷỹỵ]", re.IGNORECASE)


def audit_actions_in_the_server() -> set[str]:
    """Every action name the server writes to the audit log: the dotted string constants in the
    calls that write it (`audit.record`, `audit.entry`, `audit.record_listing` and the handlers'
    own wrappers), and those assigned to a variable passed to them (`action = "..." if ...`)."""
    found: set[str] = set()
    for path in [*(ROOT / "server").rglob("*.py"), *(ROOT / "signaling").rglob("*.py")]:
        source = path.read_text(encoding="utf-8")
        if "audit" not in source:
            continue
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Call):
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                if name not in AUDIT_CALLS:
                    continue
                values = node.args
            elif isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "action" for t in node.targets):
                values = [node.value]
            else:
                continue
            for value in values:
                for constant in ast.walk(value):
                    text = getattr(constant, "value", None)
                    if isinstance(text, str) and ACTION.fullmatch(text) and not NOT_ACTIONS.search(text):
                        found.add(text)
    return found | {action for witness in chain.WITNESSES for action in witness.actions}  # clinical writes


def strings(language: str) -> dict[str, str]:
    return dict(json.loads((ROOT / "static" / "i18n" / f"{language}.json").read_text(encoding="utf-8")))


def test_every_action_the_audit_log_records_has_words_in_both_languages_and_a_place_in_the_filter() -> None:
    actions = audit_actions_in_the_server()
    assert {"consult.read", "admin.user.create", "auth.logout", "stats.report"} <= actions  # the scan finds them
    listed = set(
        re.findall(
            r'"([a-z_.]+)"', (ROOT / "static" / "admin.js").read_text().split("AUDIT_ACTIONS = [")[1].split("]")[0]
        )
    )
    assert actions <= listed, f"not in the audit viewer's filter: {sorted(actions - listed)}"
    vi, en = strings("vi"), strings("en")
    for action in sorted(actions):
        key = f"audit.action.{action}"
        assert key in vi and key in en, key
        assert vi[key] != en[key], key


async def csv_download(page: Page) -> str:
    async with page.expect_download() as downloading:
        await page.click("[data-export=csv]")
    download = await downloading.value
    path = await download.path()
    assert path is not None
    return await asyncio.to_thread(lambda: Path(path).read_bytes().decode("utf-8"))


async def on_a_phone(page: Page, screen: str) -> None:
    """At 360 px nothing scrolls sideways (the tables scroll inside their own box) and every
    control of the screen is at least 44 px high."""
    await page.set_viewport_size({"width": 360, "height": 740})
    overflow = await page.evaluate("document.querySelector('main').scrollWidth - window.innerWidth")
    assert overflow <= 0, overflow
    small = await page.evaluate(
        """(screen) => [...document.querySelectorAll(`${screen} :is(button, input, select, summary, a[href])`)]
            .filter(el => el.offsetParent !== null && el.getBoundingClientRect().height < 44)
            .map(el => el.outerHTML.slice(0, 80))""",
        screen,
    )
    assert small == [], small


def numbers(rows: list[list[str]]) -> list[str]:
    return [cell for row in rows[1:] for cell in row if re.fullmatch(r"\d+([.,]\d+)?", cell)]


async def test_a_supervisor_opens_a_live_sessions_record_exports_and_reads_the_monthly_report(
    instance: Instance, browser: Browser, clients
) -> None:
    supervisor = await signed_in(browser, instance, "soyte.supervisor")
    await supervisor.wait_for_selector('[data-empty="sessions"]')
    await supervisor.wait_for_selector("[data-scope]:has-text('Hà Nội')")

    # A clinician at Ba Vì asks; a specialist at Xanh Pôn accepts a moment later (a wait with tenths of a second).
    clinician = await clients(instance, "bavi.clinician")
    consult = await ask(clinician)
    surgeon = await clients(instance, "xanhpon.surgeon")
    await surgeon.next("consult:offer", within=10)
    await asyncio.sleep(1.55)
    assert (await surgeon.call("consult:accept", {"consult_id": consult["id"]}))["ok"]
    await join(clinician, consult["id"])

    # The live session's row links to its record; following it reaches the record's route.
    link = f'[data-table=sessions] tr[data-session="{consult["id"]}"] a[data-record]'
    await supervisor.wait_for_selector(link)
    # The charts follow the board: the request is counted without reloading the page.
    await supervisor.wait_for_selector("[data-totals]:has-text('1 đề nghị')", timeout=25_000)
    resolved = await supervisor.inner_text("[data-figure=resolved_at_district]")
    assert resolved.startswith("Giải quyết tại tuyến huyện"), resolved  # nothing ended yet: said in words
    median = await supervisor.inner_text("[data-wait=median]")
    assert re.search(r"\d+ giây", median), median
    p90 = await supervisor.inner_text("[data-wait=p90]")
    assert p90.startswith("9 trên 10 ca được nhận trong vòng"), p90
    await shot(supervisor, "board-live-session")
    await supervisor.click(link)
    await supervisor.wait_for_function(f"location.hash === '#/record/{consult['id']}'")
    await supervisor.evaluate("location.hash = '#/'")

    # The CSV in Vietnamese: a BOM, `;` between cells, Vietnamese headers, decimal commas.
    await supervisor.wait_for_selector("[data-export=csv]")
    text = await csv_download(supervisor)
    assert text.startswith("\ufeff"), text[:40]
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=";"))
    header = " ".join(rows[0])
    assert "requests" not in header and VIETNAMESE.search(header), rows[0]
    assert any("," in n for n in numbers(rows)) and not any("." in n for n in numbers(rows)), rows

    # The monthly report opens inside the app, styled by the app's own stylesheet: no new tab,
    # nothing refused by the CSP, Print and Back.
    pages_before = len(supervisor.context.pages)
    await supervisor.click("[data-export=report]")
    await supervisor.wait_for_selector(".report-view .report-body h1")
    assert len(supervisor.context.pages) == pages_before
    border = await supervisor.eval_on_selector(".report-body td", "td => getComputedStyle(td).borderTopStyle")
    assert border == "solid"
    assert await supervisor.is_visible("[data-report=print]")
    assert await supervisor.locator(".report-view main, .report-view style, .report-view [style]").count() == 0
    await shot(supervisor, "board-monthly-report")
    await supervisor.click("[data-report=back]")
    await supervisor.wait_for_selector(".report-view", state="detached")
    assert await supervisor.is_visible("[data-export=csv]")

    # The CSV in English once the page is: English headers, `,` between cells, decimal points.
    await supervisor.click("#language")
    await supervisor.wait_for_selector("[data-export=csv]:has-text('Download CSV')")
    rows = list(csv.reader(io.StringIO((await csv_download(supervisor)).lstrip("\ufeff"))))
    assert any("requests" in cell.lower() for cell in rows[0]), rows[0]
    assert not any("," in n for n in numbers(rows)), rows

    await on_a_phone(supervisor, ".board")
    errors = [line for line in supervisor.console if line.startswith("error")]  # type: ignore[attr-defined]
    assert supervisor.errors == [] and errors == [], (supervisor.errors, errors)  # type: ignore[attr-defined]


async def test_the_board_follows_its_supervisor_to_another_province(instance: Instance, browser: Browser) -> None:
    supervisor = await signed_in(browser, instance, "soyte.supervisor")
    await supervisor.wait_for_selector("[data-table=presence] tr:has-text('BS. Lê Minh Đức')")
    await supervisor.wait_for_selector("[data-scope]:has-text('Hà Nội')")
    # An admin moves the supervisor's Department of Health to Quảng Ninh: the server closes the
    # board (its scope changed); the board connects again and shows Quảng Ninh's.
    token = await login(instance.url, "admin")
    change = {"province": "quangninh", "province_name": "Quảng Ninh"}
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        async with http.patch(f"{instance.url}/api/admin/hospitals/soyte-hanoi", json=change) as response:
            assert response.status == 200, await response.text()
    await supervisor.wait_for_selector("[data-table=presence] tr:has-text('BS. Hoàng Văn Nam')")
    await supervisor.wait_for_selector("[data-scope]:has-text('Quảng Ninh')")
    assert await supervisor.locator("[data-table=presence] tr:has-text('BS. Lê Minh Đức')").count() == 0
    assert await supervisor.is_visible("#logout")
    assert supervisor.errors == [], supervisor.errors  # type: ignore[attr-defined]


async def test_the_audit_viewer_speaks_in_words_and_names_and_filters_by_patient(
    instance: Instance, browser: Browser, clients
) -> None:
    # A clinician at Ba Vì asks about one patient and reads the record; another consult is about another.
    clinician = await clients(instance, "bavi.clinician")
    first = await ask(clinician, patient={"ref": "BV-2026-117", "summary": "Đau bụng", "age": 34, "sex": "male"})
    await ask(clinician, patient={"ref": "BV-2026-200", "summary": "Sốt cao", "age": 5, "sex": "female"})
    token = await login(instance.url, "bavi.clinician")
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        async with http.get(f"{instance.url}/api/consults/{first['id']}") as response:
            assert response.status == 200

    admin = await signed_in(browser, instance, "admin")
    await admin.wait_for_selector(".admin-audit tr[data-entry]")
    # Actions in words, people by name, times in Vietnam time.
    read = admin.locator('.admin-audit tr[data-action="consult.read"]')
    await read.first.wait_for()
    assert "Xem hồ sơ ca hội chẩn" in await read.first.inner_text()
    assert "BS. Nguyễn Văn Hùng" in await read.first.inner_text()
    assert "(giờ Việt Nam)" in await admin.inner_text(".admin-audit thead")

    # Filtered by the patient's reference: only what concerns that patient's consult.
    await admin.fill("#audit-patient", "BV-2026-117")
    await admin.click(".admin-audit form button[type=submit]")
    await admin.wait_for_function(
        """(id) => { const rows = [...document.querySelectorAll('.admin-audit tr[data-entry]')];
            // about its consult, or a list that showed it (its id among the detail's `ids=`)
            const about = (r) => r.querySelector('[data-target]').dataset.target === id;
            return rows.some(r => r.dataset.action === 'consult.read' && about(r))
                && rows.every(r => about(r) || r.textContent.includes(id)); }""",
        arg=first["id"],
    )
    # And by action, chosen by its name.
    await admin.fill("#audit-patient", "")
    await admin.select_option("#audit-action", label="Xem hồ sơ ca hội chẩn")
    await admin.click(".admin-audit form button[type=submit]")
    await admin.wait_for_function(
        """() => { const rows = [...document.querySelectorAll('.admin-audit tr[data-entry]')];
            return rows.length > 0 && rows.every(r => r.dataset.action === 'consult.read'); }"""
    )

    # An error shows next to the form that caused it, in view: a username already taken.
    await admin.fill(".admin-users input[name=username]", "bavi.clinician")
    await admin.fill(".admin-users input[name=name]", "BS. Trùng Tên")
    await admin.select_option(".admin-users select[name=hospital_id]", "bavi-dgh")
    await admin.fill(".admin-users input[name=password]", "mat-khau-moi-2026")
    await admin.click(".admin-users form.admin-form button[type=submit]")
    status = admin.locator(".admin-users form.admin-form .admin-form-status.error")
    await status.wait_for()
    await admin.wait_for_function(
        """() => { const r = document.querySelector('.admin-users form.admin-form .admin-form-status.error')
            .getBoundingClientRect(); return r.top >= 0 && r.bottom <= window.innerHeight; }"""
    )
    await shot(admin, "admin-audit")
    await on_a_phone(admin, ".admin")
    assert admin.errors == [], admin.errors  # type: ignore[attr-defined]
