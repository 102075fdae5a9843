"""The pages in a real browser: Debian's Chromium driven by Playwright, against the service
running under uvicorn on a test clock.

The story of issue 6: a reporter submits with a photo; the micro-grid leader finds it in the
inbox and fixes it with a photo; the fixer cannot verify (no button, and a forged POST is
refused); the village (small-grid) leader verifies and closes it; the reporter's page shows it
closed; a supervisor sees an overdue ticket climb a rung after the clock moves and the sweep runs.
Every page is photographed at phone (375 x 812) and desktop (1280 x 800) width into
test-artifacts/screenshots/, and checked for horizontal scrolling at phone width.

Outside CI these tests skip when /usr/bin/chromium is missing; in CI (env CI set) they fail.
"""

from __future__ import annotations

import re
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import select

from closeloop import escalation, service
from closeloop.app import App, ManualClock
from closeloop.models import tickets
from closeloop.web import auth
from closeloop.web.app import create_app
from tests.conftest import NOW, REPO, skip_or_fail
from tests.livetools import loopback_socket

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SHOTS = REPO / "test-artifacts" / "screenshots"
PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1280, "height": 800}
PASSWORD = "browser-pass-1"
PEOPLE = ("yantou.g3", "yantou.lead", "duban.wang", "admin")
MICRO, MICRO_NAME, VILLAGE, VILLAGE_NAME = "JS-A1-V01-G03", "堰头村第3户组", "JS-A1-V01", "堰头村"


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A real PNG of one colour with a darker band, small enough to write by hand."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    dark = bytes(c // 2 for c in rgb)
    rows = b"".join(
        b"\x00" + (dark if height // 3 <= y < height // 2 else bytes(rgb)) * width
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@dataclass
class Live:
    app: App
    clock: ManualClock
    url: str


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not CHROMIUM.exists():
        skip_or_fail(
            f"browser tests must run in CI: {CHROMIUM} is missing (Debian package chromium)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def live(sqlite_app: App) -> Iterator[Live]:
    """The service under uvicorn in a thread, on a free loopback port, on a test clock."""
    for handle in PEOPLE:
        auth.set_password(sqlite_app, handle, PASSWORD)
    clock = ManualClock(NOW)
    sock = loopback_socket()  # TCP_NODELAY on its connections (tests/livetools.py)
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(sqlite_app, clock=clock),
        log_level="warning",
        access_log=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped while starting"
        assert time.monotonic() < deadline, "uvicorn did not start within 15 s"
        time.sleep(0.02)
    try:
        yield Live(sqlite_app, clock, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()
        assert not thread.is_alive(), "uvicorn did not stop"


class Person:
    """One browser context (own cookies) at phone width, with the page's script errors."""

    def __init__(self, chromium: Any, live: Live, viewport: dict[str, int] = PHONE) -> None:
        self.live = live
        self.context = chromium.new_context(viewport=viewport, locale="zh-CN")
        self.page = self.context.new_page()
        self.page.set_default_timeout(15_000)
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def go(self, path: str) -> Any:
        self.page.goto(self.live.url + path)
        return self.page

    def login(self, handle: str) -> Person:
        page = self.go("/login")
        page.fill("input[name=handle]", handle)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit] >> text=登录")
        page.wait_for_load_state()
        assert "/login" not in page.url, page.content()
        return self

    def text(self, selector: str = "main") -> str:
        return str(self.page.inner_text(selector))

    def flash(self) -> str:
        return str(self.page.inner_text(".flash"))

    def close(self) -> None:
        assert not self.errors, f"script errors on the page: {self.errors}"
        self.context.close()


# Controls a thumb must hit: buttons, fields, menus, folding headers, cards and stand-alone
# links (a link inside a sentence is text, not a target).
TOO_SMALL_TO_TAP = """() => {
    const out = [];
    const sel = 'button, select, textarea, summary, a.btn, a.card, .menu a, .lang a, .tabs a,'
        + ' .tally a, label.chip, label.check, input:not([type=hidden]):not([type=checkbox])'
        + ':not([type=radio]), p > a:only-child, a.card-title';
    for (const el of document.querySelectorAll(sel)) {
        const r = el.getBoundingClientRect();
        if (r.width === 0 || r.height === 0) continue;  // not shown
        const what = `${el.tagName}.${el.className} "${el.textContent.trim().slice(0, 20)}"`;
        if (r.height < 44) out.push(`${what} ${Math.round(r.height)}px`);
    }
    return out;
}"""


def shoot(person: Person, name: str) -> None:
    """Photograph the page at phone and desktop width; at phone width nothing may stick out."""
    page = person.page
    SHOTS.mkdir(parents=True, exist_ok=True)
    before = page.viewport_size
    for label, size in (("phone", PHONE), ("desktop", DESKTOP)):
        page.set_viewport_size(size)
        widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        assert widths[0] <= widths[1], f"{name} scrolls sideways at {label} width: {widths}"
        if size is PHONE:
            small = page.evaluate(TOO_SMALL_TO_TAP)
            assert not small, f"{name}: touch targets under 44 px at phone width: {small}"
        page.screenshot(path=str(SHOTS / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(before)


def state_of(app: App, ref: str) -> str:
    with app.engine.connect() as conn:
        return str(conn.execute(select(tickets.c.state).where(tickets.c.ref == ref)).scalar_one())


def test_the_loop_in_a_browser(chromium: Any, live: Live) -> None:
    # A resident reports a pile of rubbish with a photo, on a phone.
    reporter = Person(chromium, live)
    reporter.go("/")
    shoot(reporter, "00-home")
    page = reporter.go("/report")
    assert page.is_visible("#village"), "the village picker needs the script to show"
    shoot(reporter, "01-report")
    page.click("label.chip >> text=乱堆乱放")
    page.select_option("#village", VILLAGE)
    assert page.locator("#grid option").count() == 6  # placeholder, village, its four groups
    page.select_option("#grid", MICRO)
    page.fill("input[name=title]", "河边堆了大量建筑垃圾")
    page.fill("input[name=address]", "村口石桥东侧 50 米")
    page.fill("textarea[name=description]", "已经堆了一周，堵住了排水沟。")
    page.set_input_files(
        "input[name=photos]",
        {"name": "rubbish.png", "mimeType": "image/png", "buffer": png(64, 48, (150, 120, 90))},
    )
    page.fill("input[name=reporter_name]", "李大伯")
    page.click("button[type=submit] >> text=提交上报")
    page.wait_for_url(re.compile(r"/track/EP-2026-\d{6}\?secret=.+&new=1"))
    assert "请保存此链接" in reporter.text()
    ref = page.inner_text("#ref").strip()
    link = page.get_attribute("#track-link", "href")
    assert link and link.startswith(live.url + f"/track/{ref}?secret=")
    assert page.locator(".gallery img").count() == 1
    photo = page.locator(".gallery img")
    photo.scroll_into_view_if_needed()  # lazy images load near the viewport
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=photo.element_handle()
    )
    assert page.evaluate("img => img.naturalWidth", photo.element_handle()) == 64
    shoot(reporter, "02-report-done")

    # The micro-grid leader finds it at the top of the inbox and fixes it with a photo.
    leader = Person(chromium, live).login("yantou.g3")
    assert leader.page.url.endswith("/inbox")
    assert ref in leader.text("#todo") and "剩 1天" in leader.text("#todo")
    shoot(leader, "03-inbox")
    leader.page.click(f"a.card[href='/tickets/{ref}']")
    leader.page.wait_for_url(f"**/tickets/{ref}")
    assert leader.page.locator("#step-fix").is_visible()
    assert leader.page.locator("#step-verify").count() == 0
    shoot(leader, "04-ticket-to-fix")
    leader.page.fill("#step-fix textarea[name=note]", "已清运，并围挡绿化防止回潮。")
    leader.page.set_input_files(
        "#step-fix input[name=evidence]",
        {"name": "after.png", "mimeType": "image/png", "buffer": png(64, 48, (60, 160, 90))},
    )
    leader.page.click("#step-fix button[type=submit]")
    leader.page.wait_for_url(f"**/tickets/{ref}?done=fix")
    assert "已提交整改" in leader.flash()
    assert state_of(live.app, ref) == "fixed"

    # The fixer has no verify button, and a forged request is refused.
    assert leader.page.locator("#step-verify").count() == 0
    token = leader.page.get_attribute("form.logout input[name=csrf_token]", "value")
    forged = leader.page.request.post(
        f"{live.url}/tickets/{ref}/steps/verify",
        multipart={"csrf_token": token or "", "note": "自己核查"},
        headers={"Accept": "text/html"},
        max_redirects=0,
    )
    assert forged.status == 403 and "您无权" in forged.text()
    assert state_of(live.app, ref) == "fixed"
    shoot(leader, "05-ticket-fixed")

    # The village (small-grid) leader verifies on site and closes it.
    village = Person(chromium, live).login("yantou.lead")
    assert ref in village.text("#check")
    village.go(f"/tickets/{ref}")
    assert village.page.locator(".timeline .gallery img").count() == 2
    shoot(village, "06-ticket-to-verify")
    village.page.fill("#step-verify textarea[name=note]", "现场核实，已清理干净。")
    village.page.click("#step-verify button[type=submit]")
    village.page.wait_for_url(f"**/tickets/{ref}?done=verify")
    assert "核查通过" in village.flash()
    village.page.click("#step-close button[type=submit]")
    village.page.wait_for_url(f"**/tickets/{ref}?done=close")
    assert "已销号" in village.flash() and state_of(live.app, ref) == "closed"
    assert village.page.locator("#no-actions").is_visible()
    shoot(village, "07-ticket-closed")

    # The reporter's saved link shows it closed.
    reporter.page.goto(link)
    assert "已销号" in reporter.text() and "感谢您的监督" in reporter.text("#closed-text")
    shoot(reporter, "08-track-closed")

    # A supervisor watches a parking problem (two hours to fix) run late and climb a rung.
    late = service.submit(
        live.app,
        service.NewProblem(grid=MICRO, category="random_parking", title="货车占道停放"),
        live.clock(),
    )
    supervisor = Person(chromium, live, DESKTOP).login("duban.wang")
    assert supervisor.page.url.endswith("/board")
    assert late not in supervisor.text()
    live.clock.advance(timedelta(hours=3))
    supervisor.page.reload()
    card = supervisor.text("#board")
    assert late in card and "超时 1小时" in card and "未升级" in card
    escalation.sweep(live.app, live.clock())
    supervisor.page.reload()
    card = supervisor.text("#board")
    assert late in card and "升级 1 级" in card and f"{VILLAGE_NAME}督办（小网格）" in card
    shoot(supervisor, "09-board")
    supervisor.page.select_option("select[name=level]", "0")
    supervisor.page.click("form.filters button[type=submit]")
    supervisor.page.wait_for_url("**/board?*level=0*")
    assert late not in supervisor.text()

    for person in (reporter, leader, village, supervisor):
        person.close()


def test_every_page_at_phone_and_desktop_width(chromium: Any, live: Live) -> None:
    """The remaining pages photographed, in both languages where it matters."""
    ref = service.submit(
        live.app,
        service.NewProblem(
            grid=MICRO, category="illegal_construction", title="院墙外私搭彩钢棚", address="堰头村"
        ),
        live.clock(),
    )
    leader = Person(chromium, live).login("yantou.g3")
    page = leader.go(f"/tickets/{ref}")
    until = page.locator("#step-request_extension select[name=until] option").first
    page.click("details.more >> text=申请延期")
    page.fill("#step-request_extension textarea[name=reason]", "需要协调拆除队伍")
    page.select_option(
        "#step-request_extension select[name=until]", until.get_attribute("value") or ""
    )
    page.click("#step-request_extension button[type=submit]")
    page.wait_for_url(f"**/tickets/{ref}?done=request_extension")
    leader.go("/tickets")
    shoot(leader, "10-tickets")
    leader.go("/inbox?lang=en")
    assert "My inbox" in leader.text()
    shoot(leader, "11-inbox-en")
    leader.go(f"/tickets/{ref}")
    shoot(leader, "12-ticket-en")
    leader.go("/?lang=zh")

    anonymous = Person(chromium, live)
    anonymous.go("/login")
    shoot(anonymous, "13-login")
    anonymous.go("/track")
    shoot(anonymous, "14-track")

    admin = Person(chromium, live).login("admin")
    admin.go("/extensions")
    assert ref in admin.text("#extensions")
    shoot(admin, "15-extensions")
    admin.go(f"/tickets/{ref}")
    page = admin.page
    page.click("details.more >> text=缓办挂账")
    page.fill("#step-defer textarea[name=reason]", "等待土地征收")
    page.click("#step-defer button[type=submit]")
    page.wait_for_url(f"**/tickets/{ref}?done=defer")
    admin.go("/deferred")
    assert ref in admin.text("#deferred")
    shoot(admin, "16-deferred")
    admin.go("/reports")
    assert admin.page.locator("iframe.report-frame").count() == 1
    shoot(admin, "17-reports")
    admin.go("/admin")
    shoot(admin, "18-admin")
    admin.go("/admin/people/yantou.g3")
    shoot(admin, "19-admin-person")
    admin.go(f"/admin/grids/{VILLAGE}")
    shoot(admin, "20-admin-grid")
    admin.go("/admin/import")
    admin.page.fill("textarea[name=text]", "code,name\nX,Y\n")
    admin.page.click("button[type=submit] >> text=检查并导入")
    admin.page.wait_for_load_state()
    assert admin.page.locator("#problems li").count() >= 1
    shoot(admin, "21-admin-import")
    for person in (leader, anonymous, admin):
        person.close()
