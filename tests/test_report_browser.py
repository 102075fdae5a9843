"""The weekly report and the exam board in headless Chromium (Debian's package, driven by
Playwright): a PNG for a person to look at, and the print layout fits A4 portrait.

Outside CI these tests skip when /usr/bin/chromium is missing; in CI (env CI set) they fail.
Chinese text needs a CJK font on the machine (Debian: fonts-noto-cjk), not in the report.
"""

from __future__ import annotations

import io
import re
import shutil
import struct
import subprocess
import unicodedata
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from typer.testing import CliRunner

from closeloop import service
from closeloop.app import App
from closeloop.cli import app as cli_app
from closeloop.cli.common import State
from closeloop.evidence import store_bytes
from closeloop.exam import service as store
from closeloop.exam.render import render_board
from closeloop.models import metadata
from closeloop.reports.render import render_weekly
from closeloop.reports.weekly import build_weekly
from closeloop.tickets import StepInput
from tests.conftest import CONFIG, REPO, skip_or_fail
from tests.exam_data import APRIL
from tests.factories import step
from tests.report_data import REAL_NOW, build_week14, z
from tests.test_weekly_report import build_history

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = REPO / "test-artifacts"
A4_WIDTH_PX = 794  # 210 mm at 96 CSS px per inch
MARGIN_PX = 38  # the report's @page side margins: 10 mm
PRINTABLE_PX = A4_WIDTH_PX - 2 * MARGIN_PX


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        skip_or_fail(
            f"browser tests must run in CI: {CHROMIUM} is missing (Debian package chromium)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield b
        b.close()


def pdf_pages(pdf: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page(?![s\w])", pdf))


def check_page(browser: Any, html: Path, png: Path) -> dict[str, Any]:
    page = browser.new_page(viewport={"width": A4_WIDTH_PX, "height": 1123})
    try:
        page.goto(html.as_uri())
        page.screenshot(path=str(png), full_page=True)
        # Print: lay the page out in the printable width and look for anything sticking out.
        page.emulate_media(media="print")
        page.set_viewport_size({"width": PRINTABLE_PX, "height": 1000})
        widths = page.evaluate(
            """() => {
                let right = 0, worst = '';
                for (const el of document.querySelectorAll('body *')) {
                    const r = el.getBoundingClientRect();
                    if (r.width > 0 && r.right > right) { right = r.right; worst = el.tagName; }
                }
                return {scroll: document.documentElement.scrollWidth, right, worst};
            }"""
        )
        pdf = page.pdf(format="A4", print_background=True)
    finally:
        page.close()
    return {**widths, "pages": pdf_pages(pdf), "pdf": pdf}


def test_weekly_report_in_chromium(sqlite_app: App, browser: Any, tmp_path: Path) -> None:
    metadata.create_all(sqlite_app.engine)
    build_week14(sqlite_app)
    report = build_weekly(sqlite_app, now=REAL_NOW, week="2026-W14")
    html = tmp_path / "weekly.html"
    html.write_bytes(render_weekly(report, "html", locale="zh_CN", workflow=sqlite_app.workflow))
    ARTIFACTS.mkdir(exist_ok=True)
    png = ARTIFACTS / "weekly-report-2026-W14.png"
    result = check_page(browser, html, png)
    assert png.stat().st_size > 50_000  # a real picture of several screens, not a blank page
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result["scroll"] <= PRINTABLE_PX, result
    assert result["right"] <= PRINTABLE_PX + 1, result
    assert result["pages"] >= 3, result["pages"]  # 17 grid tables and the appendix
    (ARTIFACTS / "weekly-report-2026-W14.pdf").write_bytes(result["pdf"])


def test_a_cjk_font_is_installed_for_the_screenshots() -> None:
    """Without one, Chromium draws the Chinese as boxes (Debian: apt-get install fonts-noto-cjk)."""
    fc_list = shutil.which("fc-list")
    found = (
        subprocess.run([fc_list, ":lang=zh-cn", "family"], capture_output=True, text=True).stdout
        if fc_list
        else ""
    )
    reason = "no font for Chinese (fc-list :lang=zh-cn is empty); install fonts-noto-cjk"
    if not found.strip():
        skip_or_fail(reason)


def test_english_report_and_board_fit_a4(sqlite_app: App, browser: Any, tmp_path: Path) -> None:
    metadata.create_all(sqlite_app.engine)
    build_week14(sqlite_app)
    report = build_weekly(sqlite_app, now=REAL_NOW, week="2026-W14")
    en = tmp_path / "weekly.en.html"
    en.write_bytes(render_weekly(report, "html", locale="en", workflow=sqlite_app.workflow))
    store.import_exam(sqlite_app, APRIL, REAL_NOW)
    board = tmp_path / "board.html"
    view = store.publish_board(sqlite_app, "2026-04", REAL_NOW)
    board.write_bytes(render_board(view, "html", locale="zh_CN"))
    ARTIFACTS.mkdir(exist_ok=True)
    for source, name in ((en, "weekly-report-2026-W14.en.png"), (board, "exam-board-2026-04.png")):
        result = check_page(browser, source, ARTIFACTS / name)
        assert result["scroll"] <= PRINTABLE_PX, (name, result)
        assert result["right"] <= PRINTABLE_PX + 1, (name, result)
        assert result["pages"] >= 1


def test_weekly_handout_pdf(sqlite_app: App, browser: Any, tmp_path: Path) -> None:
    """`report weekly --format pdf`: A4 pages, the Chinese text extractable (fonts embedded),
    and the PDF's first page drawn to a PNG kept under test-artifacts/."""
    from pypdf import PdfReader

    metadata.create_all(sqlite_app.engine)
    build_week14(sqlite_app)
    build_history(sqlite_app)  # 苏溪村 is the example
    # a problem it cleared, with the reporter's photo and the fixer's photo
    evidence_dir = sqlite_app.settings.evidence_dir
    before = store_bytes(evidence_dir, png_bytes(solid(120, 80, (150, 110, 60))), "before.png")
    after = store_bytes(evidence_dir, png_bytes(solid(120, 80, (60, 160, 80))), "after.png")
    ref = service.submit(
        sqlite_app,
        service.NewProblem(grid="JS-A2-V08", category="sanitation", title="河边垃圾"),
        REAL_NOW,
        at=z(4, 1, 9),
        uploads=[before],
    )
    service.run_step(
        sqlite_app, ref, "fix", "suxi.lead", StepInput(note="已清理"), REAL_NOW,
        at=z(4, 1, 11), uploads=[after],
    )  # fmt: skip
    step(sqlite_app, ref, "verify", "duban.wang", z(4, 1, 11, 30), now=REAL_NOW)
    step(sqlite_app, ref, "close", "duban.wang", z(4, 1, 12), now=REAL_NOW)
    target = tmp_path / "weekly-2026-W14.pdf"
    with patch.object(State, "app", lambda _self: sqlite_app):
        result = CliRunner().invoke(
            cli_app,
            ["--config", str(CONFIG), "report", "weekly", "--week", "2026-W14",
             "--format", "pdf", "--out", str(target)],
        )  # fmt: skip
    assert result.exit_code == 0, (result.output, result.exception)
    pdf = target.read_bytes()
    assert pdf[:5] == b"%PDF-"
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) >= 3  # summary and boards, 17 grid tables, the appendix
    for page in reader.pages:
        # A4 is 595.28 x 841.89 pt; Chromium writes whole points and a bit
        assert abs(float(page.mediabox.width) - 595.3) < 1.5, page.mediabox
        assert abs(float(page.mediabox.height) - 841.9) < 1.5, page.mediabox
    # Noto CJK maps some glyphs to the Kangxi radicals (⼯ U+2F2F for 工) in its ToUnicode
    # tables; NFKC folds those back to the ideographs, as a reader's search does.
    first = unicodedata.normalize("NFKC", reader.pages[0].extract_text())
    for text in ("金山经济开发区环境整治工作周报", "一、全区概况", "二、红榜与", "按期结案率"):
        assert text in first, first[:300]
    everything = unicodedata.normalize("NFKC", "".join(p.extract_text() for p in reader.pages))
    # NFKC: the full-width colon too; the appendices come after the sections
    assert "附录一:各网格指标" in everything and "附录二:本周应结案件清单" in everything
    # the example with why and its before/after photos (two images drawn in the PDF)
    assert "苏溪村(JS-A2-V08)本周按期结案率由前4周的25.0%升至100.0%" in everything
    assert f"{ref} 河边垃圾" in everything
    assert len(re.findall(rb"/Subtype\s*/Image", pdf)) >= 2
    pages = [unicodedata.normalize("NFKC", p.extract_text()) for p in reader.pages]
    first_appendix = next(i for i, text in enumerate(pages) if "附录一:各网格指标" in text)
    assert any("九、考核指标" in text for text in pages[:first_appendix])
    assert "九、" not in pages[first_appendix]  # the appendices begin on a page of their own
    # Every font's glyphs are in the file: Chromium (Skia) writes Noto CJK's glyphs as Type3
    # fonts (outlines in /CharProcs) and others with a font file; each has a ToUnicode map.
    fonts = [f.get_object() for p in reader.pages for f in p["/Resources"]["/Font"].values()]
    assert fonts
    for font in fonts:
        descriptor = font.get("/FontDescriptor")
        has_file = descriptor is not None and any(
            k in descriptor.get_object() for k in ("/FontFile", "/FontFile2", "/FontFile3")
        )
        assert "/CharProcs" in font or has_file, font
        assert "/ToUnicode" in font, font

    # page 1 of the PDF itself as a picture, drawn by PDFium (the PDF engine of Chromium)
    ARTIFACTS.mkdir(exist_ok=True)
    png = ARTIFACTS / "weekly-handout-2026-W14-page1.png"
    pixels = first_page_png(pdf, png, dpi=110)
    height, width, _ = pixels.shape
    assert abs(width - 595.3 * 110 / 72) < 2 and abs(height - 841.9 * 110 / 72) < 2  # A4
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 30_000
    inked = (pixels.min(axis=2) < 128).mean()  # dark pixels: text, rules, the chart's lines
    assert 0.01 < inked < 0.5, inked  # a page of text, neither blank nor a black square
    (ARTIFACTS / "weekly-handout-2026-W14.pdf").write_bytes(pdf)


def first_page_png(pdf: bytes, target: Path, *, dpi: int) -> Any:
    """Draw the first page of ``pdf`` with PDFium and write it to ``target`` as an RGB PNG;
    the pixels (height x width x 3) are returned to be looked at."""
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(pdf)
    try:
        bitmap = doc[0].render(scale=dpi / 72, rev_byteorder=True)  # RGB, not PDFium's BGR
        pixels = bitmap.to_numpy()[:, :, :3].copy()
    finally:
        doc.close()
    target.write_bytes(png_bytes(pixels))
    return pixels


def solid(width: int, height: int, rgb: tuple[int, int, int]) -> Any:
    import numpy as np

    return np.full((height, width, 3), rgb, dtype=np.uint8)


def png_bytes(pixels: Any) -> bytes:
    """An RGB PNG of ``pixels`` (height x width x 3, 8 bits)."""
    height, width, _ = pixels.shape

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    # each row of a PNG starts with its filter type (0: none)
    rows = b"".join(b"\x00" + pixels[y].tobytes() for y in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows, 6))
        + chunk(b"IEND", b"")
    )
