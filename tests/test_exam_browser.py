"""The monthly exam in a real browser (Debian's Chromium via Playwright): an inspector scores
two grids on a 375-pixel phone, one with a photo of a deduction and one saved and resumed
before it is submitted; then a supervisor publishes the month's boards.

Every page is photographed into test-artifacts/screenshots/ and checked for sideways scrolling
and touch targets at phone width (`tests.test_browser.shoot`).
"""

from __future__ import annotations

from typing import Any

import pytest

from closeloop.exam import service as exam
from closeloop.web import auth
from tests.conftest import NOW
from tests.test_browser import PASSWORD, Live, Person, chromium, live, png, shoot  # noqa: F401

pytestmark = pytest.mark.browser

MONTH = "2026-04"
FULL = {
    "dead_corners": "15",
    "piling": "15",
    "roads": "10",
    "street_business": "10",
    "illegal_building": "20",
    "parking": "10",
    "tickets_closed": "10",
    "no_rebound": "10",
}


def fill(page: Any, points: dict[str, str], notes: dict[str, str]) -> None:
    for key, value in points.items():
        page.fill(f"input[name='pts.{key}']", value)
    for key, note in notes.items():
        box = page.locator(f"#item-{key} details")
        if box.get_attribute("open") is None:
            page.click(f"#item-{key} summary")
        page.fill(f"textarea[name='note.{key}']", note)


def test_an_inspector_scores_two_grids_on_a_phone_then_the_board_is_published(
    chromium: Any,  # noqa: F811
    live: Live,  # noqa: F811
) -> None:
    app = live.app
    auth.set_password(app, "area2.lead", PASSWORD)
    exam.make_plan(app, MONTH, NOW)
    mine = [x for x in exam.plan_view(app, MONTH).lines if x.inspector_grid == "JS-A2"]
    first, second = mine[0], mine[1]

    inspector = Person(chromium, live).login("area2.lead")
    page = inspector.go("/exam")
    assert page.url.endswith(f"/exam/{MONTH}")
    assert page.locator("#exam-grids li").count() == len(mine)
    shoot(inspector, "exam-01-list")

    # First grid: everything but a muddy road, with a note and a photo of it.
    page.click(f"a[data-grid='{first.grid}']")
    page.wait_for_url(f"**/exam/{MONTH}/{first.grid}")
    assert page.locator("input[inputmode=decimal]").count() == 11
    shoot(inspector, "exam-02-form")
    fill(page, {**FULL, "roads": "6", "fencing": "4"}, {"roads": "村口主路泥泞积水"})
    page.set_input_files(
        "input[name='photo.roads']",
        {"name": "road.png", "mimeType": "image/png", "buffer": png(80, 60, (120, 100, 70))},
    )
    page.click("#submit")
    page.wait_for_url(f"**/exam/{MONTH}/{first.grid}?done=exam_submitted")
    assert "已提交" in inspector.flash()
    assert inspector.text("#grid-status") == "已提交"
    assert "100.00" in inspector.text("#grid-total")  # 96 of 100 + bonus 4
    link = page.locator("a.exam-photo")
    assert "road.png" in link.inner_text()
    shoot(inspector, "exam-03-submitted")
    photo = inspector.context.request.get(live.url + f"/exam/{MONTH}/{first.grid}/photo/roads")
    assert photo.ok and photo.body()[:4] == b"\x89PNG"

    # Second grid: saved half way, resumed later, then submitted with its deductions noted.
    inspector.go(f"/exam/{MONTH}")
    page.click(f"a[data-grid='{second.grid}']")
    fill(page, {"dead_corners": "5", "piling": "4"}, {})
    page.click("#save")
    page.wait_for_url(f"**/exam/{MONTH}/{second.grid}?done=exam_saved")
    inspector.go(f"/exam/{MONTH}")
    assert "打分中" in page.locator(f"a[data-grid='{second.grid}']").inner_text()
    page.click(f"a[data-grid='{second.grid}']")
    assert page.input_value("input[name='pts.piling']") == "4"
    low = {k: "3" for k in FULL if k not in ("dead_corners", "piling")}
    fill(page, low, {k: "整改不到位" for k in FULL})
    page.click("#submit")
    page.wait_for_url(f"**/exam/{MONTH}/{second.grid}?done=exam_submitted")
    shoot(inspector, "exam-04-second")
    inspector.close()

    statuses = {s.grid: s.status for s in exam.exam_status(app, MONTH)}
    assert statuses[first.grid] == statuses[second.grid] == "scored"

    # The supervisor publishes the board: the first grid on the red board.
    supervisor = Person(chromium, live).login("duban.wang")
    page = supervisor.go(f"/exam/{MONTH}")
    assert "已完成 2" in supervisor.text("#tally")
    page.click("#publish")
    page.wait_for_url(f"**/reports?month={MONTH}*")
    red = supervisor.text("#red-board")
    yellow = supervisor.text("#yellow-board")
    assert first.grid_name in red and second.grid_name in yellow
    shoot(supervisor, "exam-05-published")
    supervisor.go("/accountability")
    assert second.grid_name in supervisor.text("#open-cases")
    shoot(supervisor, "exam-06-accountability")
    supervisor.close()
