"""The patrol, meeting and campaign pages through HTTP (both backends): who may see them, the
forms, and refused forms shown again with the reason and nothing written."""

from __future__ import annotations

import re

from httpx2 import Response
from sqlalchemy import select

from closeloop import service, views
from closeloop.campaigns import service as campaigns
from closeloop.models import meetings, patrol_visits, tickets
from tests.factories import count
from tests.webtools import Browser, Web, browser, flash


def post(b: Browser, url: str, data: dict[str, str]) -> Response:
    """A form posted with the CSRF token of a page the signed-in person may see."""
    return b.post(url, data, token=b.csrf("/tickets"))


def test_a_patrol_on_the_pages(web: Web) -> None:
    leader = browser(web, "yantou.lead")
    assert leader.get("/patrols").status_code == 200
    r = post(leader, "/patrols", {})
    assert r.status_code == 303 and r.headers["location"] == "/patrols/1?done=patrol_started"
    page = leader.get("/patrols/1")
    assert "堰头村第1户组" in page.text and "签到" in page.text
    r = post(
        leader, "/patrols/1/checkins", {"grid": "JS-A1-V01-G01", "lat": "29.1", "lon": "119.6"}
    )
    assert r.status_code == 303
    r = post(leader, "/patrols/1/checkins", {"grid": "JS-A1-V01-G01"})
    assert r.status_code == 422 and "JS-A1-V01-G01" in flash(r)
    r = post(leader, "/patrols/1/checkins", {"grid": "JS-A1-V01-G02", "lat": "north"})
    assert r.status_code == 422
    assert count(web.app, patrol_visits) == 1
    r = post(leader, "/patrols/1/problems", {"grid": "JS-A1-V01-G01", "category": "sanitation",
                                            "title": "水塘边垃圾"})  # fmt: skip
    assert r.status_code == 303
    page = leader.get("/patrols/1")
    ref = re.search(r"(EP-2026-\d{6})", page.text)
    assert ref is not None and "水塘边垃圾" in page.text
    assert views.show(web.app, ref.group(1))["assignee"] == "yantou.g1"
    # Someone else's patrol: readable, but no forms; checking in on it is refused.
    other = browser(web, "caoyuan.lead")
    assert 'id="checkin"' not in other.get("/patrols/1").text
    r = post(other, "/patrols/1/checkins", {"grid": "JS-A1-V02"})
    assert r.status_code == 403
    assert browser(web).get("/patrols").status_code == 303  # to the login page


def test_meetings_are_for_supervisors(web: Web) -> None:
    sup = browser(web, "duban.wang")
    assert sup.get("/meetings").status_code == 200
    r = post(sup, "/meetings", {"kind": "party", "at": "2026-04-01T08:00", "place": "NOPE",
                               "attendees": "nobody"})  # fmt: skip
    assert r.status_code == 422
    for part in ("party", "NOPE", "nobody"):
        assert part in flash(r), flash(r)
    assert count(web.app, meetings) == 0
    r = post(sup, "/meetings", {"kind": "example", "at": "2026-04-01T08:00", "place": "JS-A3-V15",
                               "attendees": "duban.wang, yantou.lead"})  # fmt: skip
    assert r.status_code == 303 and r.headers["location"].startswith("/meetings/1")
    decision = {"grid": "JS-A1-V01", "title": "清理河道", "due": "2026-04-03T17:30"}
    r = post(sup, "/meetings/1/decisions", {**decision, "category": "other"})
    assert r.status_code == 303
    with web.app.engine.connect() as conn:
        assert conn.execute(select(tickets.c.source)).scalars().all() == ["meeting"]
    r = post(
        sup, "/meetings/1/decisions", {"grid": "JS-A1-V01", "title": "x", "due": "2020-01-01T08:00"}
    )
    assert r.status_code == 422 and count(web.app, tickets) == 1
    page = sup.get("/meetings/1").text
    assert "清理河道" in page and "荆山夏村" in page
    assert sup.get("/meetings/1/minutes.md").text.startswith("# 会议纪要")
    assert post(sup, "/meetings/1/minutes", {}).status_code == 303
    leader = browser(web, "yantou.lead")
    assert leader.get("/meetings").status_code == 403
    assert leader.get("/meetings/1").status_code == 403


def test_the_campaign_board_and_its_phone_form(web: Web) -> None:
    c = campaigns.add_campaign(
        web.app, day="2026-04-01", grid_codes=["JS-A1-V01"], theme="四月大会战",
        actions=["clean-up"], teams=["一组:yantou.lead"], now=web.clock(),
    )  # fmt: skip
    b: Browser = browser(web, "yantou.lead")
    page = b.get(f"/campaigns/{c.id}").text
    assert "四月大会战" in page and "一组" in page
    r = post(b, f"/campaigns/{c.id}/findings", {"grid": "JS-A1-V02-G01", "category": "sanitation",
                                               "title": "别村的"})  # fmt: skip
    assert r.status_code == 422 and "JS-A1-V02-G01" in flash(r)
    r = post(b, f"/campaigns/{c.id}/findings", {"grid": "JS-A1-V01-G02", "category": "sanitation",
                                               "title": "墙角垃圾"})  # fmt: skip
    assert r.status_code == 303
    shown = campaigns.show_campaign(web.app, c.id, web.clock())
    assert shown["found"] == 1 and len(shown["tagged"]) == 1
    assert "墙角垃圾" not in b.get("/campaigns").text and "四月大会战" in b.get("/campaigns").text


def test_a_member_sees_the_grids_inbox_and_fixes_on_the_page(web: Web) -> None:
    from closeloop import members

    members.import_members_text(
        web.app, "grid_code,handle,name,role\nJS-A1-V01,yantou.fs,林第一,第一书记\n", web.clock()
    )
    ref = service.submit(
        web.app,
        service.NewProblem(grid="JS-A1-V01", category="sanitation", title="村委会后墙垃圾"),
        web.clock(),
    )
    member = browser(web, "yantou.fs")
    assert ref in member.get("/inbox").text  # the grid's inbox
    assert 'id="step-fix"' in member.get(f"/tickets/{ref}").text
    r = post(member, f"/tickets/{ref}/steps/fix", {"note": "已清理"})
    assert r.status_code == 303 and web.state(ref) == "fixed"
    # Another village's ticket stays invisible to them.
    other = service.submit(
        web.app,
        service.NewProblem(grid="JS-A1-V02", category="sanitation", title="曹园"),
        web.clock(),
    )
    assert member.get(f"/tickets/{other}").status_code == 404
