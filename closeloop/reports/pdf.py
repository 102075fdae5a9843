"""The weekly report as a printable handout (PDF): its HTML printed by headless Chromium.

The HTML is the same document as `report weekly --format html` (one structure, the `@page` A4
print CSS in `templates/_style.css.j2`); Chromium lays it out for print and embeds the subsets
of the fonts it used, so the Chinese of a zone (Debian: fonts-noto-cjk) is in the file and its
text can be extracted. Chromium is the Debian package at /usr/bin/chromium, driven by Playwright.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from closeloop.tickets import Invalid

CHROMIUM = Path(os.environ.get("CLOSELOOP_CHROMIUM", "/usr/bin/chromium"))
ARGS = (
    "--no-sandbox",  # as root in a container; the page is our own HTML, with no script
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def html_to_pdf(html: bytes, *, chromium: Path = CHROMIUM) -> bytes:
    """Print ``html`` (a self-contained page) to an A4 PDF with its backgrounds.

    In a thread of its own: Playwright's sync API refuses a thread that runs an asyncio loop
    (a web handler, or another Playwright session)."""
    if not chromium.exists():
        raise Invalid("report.no_chromium", chromium=chromium)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(_print, html, chromium).result()


def _print(html: bytes, chromium: Path) -> bytes:
    from playwright.sync_api import sync_playwright  # loaded only when a PDF is asked for

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), headless=True, args=ARGS)
        try:
            page = browser.new_page()
            page.set_content(html.decode("utf-8"), wait_until="load")
            page.emulate_media(media="print")
            return page.pdf(format="A4", print_background=True, prefer_css_page_size=True)
        finally:
            browser.close()
