"""The browser app's files: translations complete in both languages, vendored code recorded."""

from __future__ import annotations

import json
import re
from pathlib import Path

import aiohttp

from tests.conftest import Instance

STATIC = Path(__file__).resolve().parent.parent.parent / "static"


def test_both_languages_have_every_string_the_app_uses() -> None:
    vi = json.loads((STATIC / "i18n" / "vi.json").read_text())
    en = json.loads((STATIC / "i18n" / "en.json").read_text())
    assert set(vi) == set(en)
    used = set()
    for path in STATIC.glob("*.js"):
        used |= set(re.findall(r"""\bt\(\s*["']([a-z_.]+)["']""", path.read_text()))
    for path in STATIC.glob("*.html"):
        used |= set(re.findall(r'data-t="([a-z_.]+)"', path.read_text()))
    missing = sorted(key for key in used if key not in vi)
    assert not missing, f"add to static/i18n/*.json: {missing}"


def test_no_html_is_ever_built_from_strings() -> None:
    for path in STATIC.glob("*.js"):
        assert "innerHTML" not in path.read_text(), path.name


def test_vendored_files_are_recorded_with_version_and_licence() -> None:
    readme = (STATIC / "vendor" / "README.md").read_text()
    for path in (STATIC / "vendor").glob("*.js"):
        assert f"`{path.name}`" in readme and "MIT" in readme
        # Its row names a version and a licence text that lies beside it.
        row = next(line for line in readme.splitlines() if line.startswith(f"| `{path.name}`"))
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert len(cells) == 5 and cells[2][0].isdigit() and cells[3] == "MIT", row
        licence = STATIC / "vendor" / cells[4].strip("`")
        assert licence.is_file() and "Permission is hereby granted" in licence.read_text(), licence


async def test_the_app_pages_forbid_inline_script_and_framing(instance: Instance) -> None:
    async with aiohttp.ClientSession() as http:
        for path in ("/",):
            async with http.get(instance.url + path) as response:
                policy = response.headers["Content-Security-Policy"]
                assert "script-src 'self'" in policy and "unsafe-inline" not in policy, policy
                assert "frame-ancestors 'none'" in policy
                assert response.headers["X-Content-Type-Options"] == "nosniff"
    for path in STATIC.glob("*.html"):
        text = path.read_text()
        assert "style=" not in text and not re.search(r"<script(?![^>]*\bsrc=)", text), path.name
