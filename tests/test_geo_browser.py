"""Where the problem is, in a real browser (Debian's Chromium through Playwright): "use my
location" on a 375-pixel phone with a mocked geolocation, and the supervisors' map, whose
screenshots land in test-artifacts/screenshots/ (map-phone.png, map-desktop.png)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from shapely.geometry import shape
from sqlalchemy import select

from closeloop import service
from closeloop.geo import service as geo
from closeloop.models import grids, tickets
from tests import test_browser
from tests.test_browser import PHONE, SHOTS, Live, Person, shoot

# The browser and the live service of the page tests, shared under their fixture names.
chromium = test_browser.chromium
live = test_browser.live

pytestmark = pytest.mark.browser
MICRO, MICRO_NAME, VILLAGE = "JS-A1-V02-G03", "曹园村第3户组", "JS-A1-V02"


def point_in(live: Live, code: str) -> dict[str, float]:
    g = geo.geometry_of(live.app, code)
    assert g is not None
    p = shape(g).representative_point()
    return {"latitude": p.y, "longitude": p.x}


def phone_at(chromium: Any, live: Live, where: dict[str, float]) -> Person:
    """A reporter's phone that says it is at `where`, with location allowed."""
    person = Person.__new__(Person)
    person.live = live
    person.context = chromium.new_context(
        viewport=PHONE,
        locale="zh-CN",
        geolocation={**where, "accuracy": 10},
        permissions=["geolocation"],
        is_mobile=True,
        has_touch=True,
    )
    person.page = person.context.new_page()
    person.page.set_default_timeout(15_000)
    person.errors = []
    person.page.on("pageerror", lambda exc: person.errors.append(str(exc)))
    return person


def test_use_my_location_on_a_phone(chromium: Any, live: Live) -> None:
    reporter = phone_at(chromium, live, point_in(live, MICRO))
    page = reporter.go("/report")
    assert page.evaluate("() => window.innerWidth") == 375
    assert page.input_value("#grid") == ""
    page.click("#locate")
    page.wait_for_selector("#located:not([hidden])")
    said = reporter.text("#located")
    assert "曹园村" in said and MICRO_NAME in said and "请确认" in said
    assert page.get_attribute("#located", "data-code") == MICRO
    # The pickers now show the grid found, for the reporter to confirm or change.
    assert page.input_value("#village") == VILLAGE
    assert page.input_value("#grid") == MICRO
    assert page.input_value("#lat") and page.input_value("#lon")
    shoot(reporter, "report-located")
    page.click("label.chip:has-text('乱堆乱放')")
    page.fill("input[name=title]", "村口堆放建筑垃圾")
    page.click("button[type=submit] >> text=提交上报")
    page.wait_for_url("**/track/**")
    ref = page.url.split("/track/")[1].split("?")[0]
    with live.app.engine.connect() as conn:
        code = conn.execute(
            select(grids.c.code)
            .select_from(tickets.join(grids, grids.c.id == tickets.c.grid_id))
            .where(tickets.c.ref == ref)
        ).scalar()
        lat = conn.execute(select(tickets.c.lat).where(tickets.c.ref == ref)).scalar()
    assert code == MICRO and lat is not None
    reporter.close()


def test_use_my_location_outside_the_zone_keeps_the_pickers(chromium: Any, live: Live) -> None:
    reporter = phone_at(chromium, live, {"latitude": 31.23, "longitude": 121.47})
    page = reporter.go("/report")
    page.click("#locate")
    page.wait_for_selector("#located.outside:not([hidden])")
    assert "不在本区任何网格内" in reporter.text("#located")
    assert page.input_value("#grid") == "" and page.input_value("#village") == ""
    # The pickers still work as before.
    page.select_option("#village", VILLAGE)
    page.select_option("#grid", MICRO)
    assert page.input_value("#grid") == MICRO
    reporter.close()


def test_supervisors_map_screenshot(chromium: Any, live: Live) -> None:
    where = point_in(live, MICRO)
    late = service.submit(
        live.app,
        service.NewProblem(
            grid=MICRO,
            category="random_parking",
            title="货车占道停放",
            lat=where["latitude"],
            lon=where["longitude"],
        ),
        live.clock(),
    )
    live.clock.advance(timedelta(hours=5))  # random parking: 2 h to fix
    supervisor = Person(chromium, live).login("duban.wang")
    page = supervisor.go("/map")
    page.wait_for_selector("svg.grid-map")
    assert page.locator("svg.grid-map path.area").count() == 117
    pin = page.locator(f"svg.grid-map circle.pin[data-ref='{late}']")
    assert pin.count() == 1
    box = pin.bounding_box()
    assert box is not None and 0 <= box["x"] <= 375 and box["width"] > 0
    shoot(supervisor, "map")
    assert (SHOTS / "map-phone.png").stat().st_size > 10_000
    assert (SHOTS / "map-desktop.png").stat().st_size > 10_000
    supervisor.close()
