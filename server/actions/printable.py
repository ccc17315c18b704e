"""The frame of the pages the server renders for printing (the minutes, the monthly report).

Styles come from `/static/print.css` and the Print button is wired by `/static/print.js`: the
pages' policy (server/http/common.py `printable_page`) allows no inline style or script. The
content is in one `<main>`, so the app can show it inside its own page; the button is outside it.
"""

from __future__ import annotations

from html import escape

PRINT_LABEL = "In"  # the pages are Vietnamese documents


def document(title: str, content: str) -> str:
    """A whole page around `content` (HTML already escaped by its builder); `title` is text."""
    return f"""<!doctype html>
<html lang="vi"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<link rel="stylesheet" href="/static/print.css">
<script type="module" src="/static/print.js"></script>
</head>
<body>
<nav class="printable-bar" aria-label="{escape(title)}"><button type="button" data-print>{PRINT_LABEL}</button></nav>
<main class="printable">
{content}
</main>
</body></html>
"""
