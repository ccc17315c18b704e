"""Checks any screen of the browser app can be put through: axe-core's WCAG 2.1 AA rules, Vietnamese
left on screen after switching to English, and content wider than the viewport.

Each returns a list of readable findings (empty when the screen passes), so a test can collect them
over screens, languages and sizes and fail once with the whole list."""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

from playwright.async_api import Page

from tests.system.browsing import ROOT

AXE = ROOT / "tests" / "vendor" / "axe.min.js"
WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@cache
def _axe_source() -> str:
    return AXE.read_text(encoding="utf-8")


async def _inject_axe(page: Page) -> None:
    """Puts axe-core into the page as it is served, CSP included.

    The app's CSP (script-src 'self') refuses what `page.add_script_tag(content=…)` adds (an
    inline <script>) and what `add_init_script` would add after a navigation is as inline. The
    page's own CSP is kept, so a refused script or style still shows as a console error to the
    tests. What works under it: Playwright's `page.evaluate`, which runs through the DevTools
    protocol (Runtime.evaluate), outside the page's CSP. axe's bundle is a UMD script: evaluated
    with no `module` or `define` in scope, it sets `window.axe`."""
    if await page.evaluate("() => typeof window.axe === 'object'"):
        return
    await page.evaluate(_axe_source() + "\n;undefined")  # the script's value is not sent back
    assert await page.evaluate("() => typeof window.axe === 'object'"), "axe-core did not load into the page"


async def axe_violations(page: Page, *, context: Any = None) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.1 A and AA violations on the page (or within `context`, an axe context:
    a selector or {include, exclude}), each as {id, impact, help, targets, url}."""
    await _inject_axe(page)
    results = await page.evaluate(
        """async ([context, tags]) => {
            const options = { runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'] };
            const r = context === null ? await axe.run(document, options) : await axe.run(context, options);
            return r.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help, url: v.helpUrl,
                targets: v.nodes.map(n => n.target.map(t => Array.isArray(t) ? t.join(' >>> ') : t).join(' ')),
            }));
        }""",
        [context, WCAG_21_AA],
    )
    return list(results)


def format_violations(violations: list[dict[str, Any]], limit: int = 6) -> str:
    """One line per rule: id, impact, how many elements, the first few of them, and the help text."""
    lines = []
    for v in violations:
        targets = v["targets"]
        shown = ", ".join(targets[:limit]) + (f", … {len(targets) - limit} more" if len(targets) > limit else "")
        lines.append(f"{v['id']} ({v['impact']}, {len(targets)}×): {v['help']} — {shown}")
    return "\n".join(lines)


@cache
def _vietnamese_patterns() -> tuple[frozenset[str], tuple[re.Pattern[str], ...]]:
    """The app's Vietnamese strings that differ from their English translation: whole strings, and
    strings with placeholders as patterns (each placeholder any text), so "Đang chờ {n} phút"
    is found as "Đang chờ 3 phút". Strings shorter than 4 letters are left out (too easily data)."""
    vi = json.loads((ROOT / "static" / "i18n" / "vi.json").read_text(encoding="utf-8"))
    en = json.loads((ROOT / "static" / "i18n" / "en.json").read_text(encoding="utf-8"))
    whole: set[str] = set()
    patterns: list[re.Pattern[str]] = []
    for key, text in vi.items():
        if not isinstance(text, str) or text == en.get(key):
            continue
        literal = re.split(r"\{[^}]*\}", text)
        if len("".join(literal).strip()) <= 3:
            continue
        if len(literal) == 1:
            whole.add(text.strip())
        else:
            patterns.append(re.compile("^" + ".+?".join(re.escape(part) for part in literal) + "$", re.S))
    return frozenset(whole), tuple(patterns)


# How an element is named in a finding: tag, id, name and classes (`button#logout`, `select[name=presence]`).
_DESCRIBE = """const where = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
    + (el.getAttribute('name') ? `[name=${el.getAttribute('name')}]` : '')
    + (typeof el.className === 'string' && el.className.trim()
        ? '.' + el.className.trim().split(/\\s+/).join('.') : '');"""

# Everything written on the screen or read out by a screen reader: text nodes of visible elements,
# the choices of visible lists, and the placeholder, aria-label, title, alt and value (of buttons)
# attributes. The signed-in user's own name (#who) is data, not a string of the app; so is what the app
# marks translate="no" (HTML's own "not to be translated": a person's or a hospital's name in a table
# cell), which it does only on elements holding nothing but such names. The demo admin is called
# "Quản trị hệ thống", the same words as the admin page's title, and is the same person in English.
# Nor is a document the page declares to be in another language (an element with its own `lang`, as
# WCAG 3.1.2 "language of parts" asks): the minutes and the monthly report are Vietnamese documents
# by design (server/actions/printable.py), shown as such inside the English app, their words read by
# a screen reader in a Vietnamese voice. The app's own words around them are checked as any.
_PIECES = (
    "() => {"
    + _DESCRIBE
    + """
    const visible = el => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
    const out = [];
    const page = document.documentElement.lang;
    const otherLanguage = el => { const part = el.closest('[lang]'); return part && part.lang !== page; };
    for (const el of document.querySelectorAll('body *')) {
        if (el.closest('#who, [translate=no], script, style') || otherLanguage(el) || !visible(el)) continue;
        for (const n of el.childNodes)
            if (n.nodeType === 3 && n.textContent.trim()) out.push([n.textContent.trim(), where(el)]);
        for (const a of ['placeholder', 'aria-label', 'title', 'alt']) {
            const v = el.getAttribute(a);
            if (v && v.trim()) out.push([v.trim(), `${where(el)} @${a}`]);
        }
        if (el.tagName === 'INPUT' && ['button', 'submit', 'reset'].includes(el.type) && el.value)
            out.push([el.value.trim(), `${where(el)} @value`]);
        // A closed list's choices have no box on screen, yet they are the app's words (specialties, outcomes).
        if (el.tagName === 'SELECT')
            for (const o of el.options) if (o.text.trim()) out.push([o.text.trim(), `${where(el)} option`]);
    }
    out.push([document.title.trim(), 'title']);
    return out;
}"""
)


async def untranslated(page: Page) -> list[str]:
    """The app's Vietnamese-only strings still on the page (meant after switching to English), each
    with where it is: `'Đăng xuất' in button#logout`."""
    whole, patterns = _vietnamese_patterns()
    found = []
    for text, where in await page.evaluate(_PIECES):
        if text in whole or any(p.match(text) for p in patterns):
            found.append(f"{text!r} in {where}")
    return sorted(set(found))


async def horizontal_overflow(page: Page) -> list[str]:
    """What is wider than the viewport at the page's current size: the page itself (it scrolls
    sideways) and each element sticking out past the right edge whose parent fits (where the
    overflow starts, not every ancestor and descendant of it). Elements inside their own sideways
    scroller (overflow-x other than visible: a wide table in a scroll box) are fine and not
    reported; nor are elements moved off screen on purpose to the left."""
    return list(
        await page.evaluate(
            "() => {"
            + _DESCRIBE
            + """
                window.scrollTo(0, window.scrollY);
                const width = document.documentElement.clientWidth;
                const out = [];
                const page = document.scrollingElement.scrollWidth;
                if (page > width) out.push(`the page is ${page} px wide in a ${width} px viewport`);
                const sticksOut = r => r.width > 0 && r.height > 0 && r.right > width + 1 && r.right > 0;
                const inScroller = el => {
                    for (let p = el.parentElement; p && p !== document.body; p = p.parentElement)
                        if (getComputedStyle(p).overflowX !== 'visible') return true;
                    return false;
                };
                for (const el of document.querySelectorAll('body *')) {
                    const r = el.getBoundingClientRect();
                    if (!sticksOut(r) || inScroller(el)) continue;
                    if (el.parentElement && el.parentElement !== document.body
                        && sticksOut(el.parentElement.getBoundingClientRect())) continue;
                    out.push(`${where(el)} reaches ${Math.round(r.right)} px`);
                }
                return out;
            }"""
        )
    )


async def controls_out_of_view(page: Page) -> list[str]:
    """On a call (a page with the call bar), each of its controls that is not wholly on screen with
    the page scrolled to the top: on a phone they are reached without scrolling."""
    return list(
        await page.evaluate(
            "() => {"
            + _DESCRIBE
            + """
                window.scrollTo(0, 0);
                const out = [];
                for (const el of document.querySelectorAll('.call-bar button')) {
                    if (!el.getClientRects().length) continue;
                    const r = el.getBoundingClientRect();
                    if (r.top < 0 || r.left < 0 || r.bottom > innerHeight + 1 || r.right > innerWidth + 1)
                        out.push(`${where(el)} at ${Math.round(r.left)},${Math.round(r.top)}`
                            + ` in a ${innerWidth}×${innerHeight} viewport`);
                }
                return out;
            }"""
        )
    )
