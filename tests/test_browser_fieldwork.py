"""Field work in a real browser (Debian Chromium via Playwright, the service under uvicorn on a
test clock): a village leader's patrol on a 375-px phone, checking in at two micro grids and
reporting one problem; a supervisor records an example meeting and hands a decision to a
village, which lands in its leader's inbox; the next meeting's agenda lists it as still open.
Pages are photographed into test-artifacts/screenshots/ and checked for sideways scrolling and
touch targets at phone width (`tests.test_browser.shoot`).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from closeloop import views
from closeloop.patrols import service as patrols
from tests.test_browser import (  # noqa: F401  (fixtures)
    DESKTOP,
    Live,
    Person,
    chromium,
    live,
    shoot,
)

pytestmark = pytest.mark.browser


def test_a_village_leaders_patrol_on_a_phone(chromium: Any, live: Live) -> None:  # noqa: F811
    leader = Person(chromium, live).login("yantou.lead")
    page = leader.go("/patrols")
    shoot(leader, "20-patrols")
    page.click("#patrol-start button[type=submit]")
    page.wait_for_url(re.compile(r"/patrols/1\?done=patrol_started"))
    assert "巡查已开始" in leader.flash()
    shoot(leader, "21-patrol-started")
    for grid, coords in (("JS-A1-V01-G01", ("29.12", "119.65")), ("JS-A1-V01-G02", None)):
        page.select_option("#checkin select[name=grid]", grid)
        if coords:
            page.click("#checkin summary")
            page.fill("#checkin input[name=lat]", coords[0])
            page.fill("#checkin input[name=lon]", coords[1])
        page.click("#checkin button[type=submit]")
        page.wait_for_url(re.compile(r"/patrols/1\?done=checked_in"))
    assert leader.text("#visits").count("✔") == 2
    assert "29.12, 119.65" in leader.text("#visits")
    page.select_option("#patrol-report select[name=grid]", "JS-A1-V01-G02")
    page.select_option("#patrol-report select[name=category]", "random_piling")
    page.fill("#patrol-report input[name=title]", "巷口堆放建筑垃圾")
    page.fill("#patrol-report input[name=address]", "2组巷口")
    page.click("#patrol-report button[type=submit]")
    page.wait_for_url(re.compile(r"/patrols/1\?done=problem_reported"))
    found = leader.text("#found")
    ref = re.search(r"EP-2026-\d{6}", found)
    assert ref is not None and "巷口堆放建筑垃圾" in found
    shoot(leader, "22-patrol-reported")
    leader.close()

    p = patrols.show_patrol(live.app, 1)
    assert [v["grid"] for v in p["visits"]] == ["JS-A1-V01-G01", "JS-A1-V01-G02"]
    assert [f["ref"] for f in p["found"]] == [ref.group(0)]
    ticket = views.show(live.app, ref.group(0))
    assert (ticket["grid"], ticket["assignee"], ticket["reporter"]) == (
        "JS-A1-V01-G02", "yantou.g2", "陈霞桂",
    )  # fmt: skip


def test_a_meeting_its_decision_in_the_inbox_and_on_the_next_agenda(
    chromium: Any,  # noqa: F811
    live: Live,  # noqa: F811
) -> None:
    secretary = Person(chromium, live, DESKTOP).login("duban.wang")
    page = secretary.go("/meetings")

    def record(kind: str, at: str, place: str) -> None:
        page.select_option("#meeting-new select[name=kind]", kind)
        page.fill("#meeting-new input[name=at]", at)
        page.select_option("#meeting-new select[name=place]", place)
        page.fill("#meeting-new input[name=attendees]", "duban.wang, yantou.lead, zone.lead")
        page.click("#meeting-new button[type=submit]")
        page.wait_for_url(re.compile(r"/meetings/\d+\?done=meeting_added"))

    record("example", "2026-04-01T08:00", "JS-A3-V15")
    assert "示范例会" in secretary.text("h1") and "荆山夏村" in secretary.text()
    page.select_option("#decide select[name=grid]", "JS-A1-V01")
    page.fill("#decide input[name=title]", "村口垃圾点三天内清零并绿化")
    page.select_option("#decide select[name=category]", "random_piling")
    page.fill("#decide input[name=due]", "2026-04-03T17:30")
    page.click("#decide button[type=submit]")
    page.wait_for_url(re.compile(r"/meetings/1\?done=decided"))
    decided = secretary.text("#decisions")
    ref = re.search(r"EP-2026-\d{6}", decided)
    assert ref is not None and "村口垃圾点三天内清零并绿化" in decided
    shoot(secretary, "23-meeting")

    # The decision is in the village leader's inbox, like any ticket of the village.
    leader = Person(chromium, live).login("yantou.lead")
    page_l = leader.go("/inbox")
    assert "村口垃圾点三天内清零并绿化" in leader.text("#todo")
    assert page_l.locator(f"a.card[href='/tickets/{ref.group(0)}']").count() == 1
    leader.close()

    # The next meeting's agenda lists it as still open.
    page = secretary.go("/meetings")
    record("site", "2026-04-01T10:00", "JS-A1-V01")
    still = secretary.text("#open-decisions")
    assert ref.group(0) in still and "村口垃圾点三天内清零并绿化" in still
    shoot(secretary, "24-next-meeting")
    secretary.close()
