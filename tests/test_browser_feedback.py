"""The reporter rates a closed ticket on a 375-pixel phone (issue 16), in Debian's Chromium
driven by Playwright against the service under uvicorn (the fixtures of tests/test_browser.py):
the follow-up page offers "solved? yes/no", three levels of satisfaction and a comment once the
ticket is closed; the answer is kept, the form goes, and a "not solved" lists the ticket for
the supervisors without reopening it. The page is photographed at phone and desktop width and
checked for sideways scrolling and small touch targets."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from closeloop import feedback, service, views
from closeloop.models import ticket_feedback
from closeloop.service import NewProblem
from closeloop.tickets import StepInput
from closeloop.web import access
from tests.conftest import NOW
from tests.test_browser import MICRO, Live, Person, chromium, live, shoot  # noqa: F401

pytestmark = pytest.mark.browser


def test_a_reporter_rates_a_closed_ticket_on_a_phone(chromium: Any, live: Live) -> None:  # noqa: F811
    app = live.app
    secret, digest = access.new_reporter_secret()
    ref = service.submit(
        app, NewProblem(MICRO, "random_piling", "河边垃圾堆", reporter_secret_hash=digest), NOW
    )
    for minutes, (name, who) in enumerate(
        (("fix", "yantou.g3"), ("verify", "yantou.lead"), ("close", "yantou.lead")), start=1
    ):
        service.run_step(
            app, ref, name, who, StepInput(note="已清理"), NOW + timedelta(minutes=10 * minutes)
        )
    live.clock.set(NOW + timedelta(hours=2))

    reporter = Person(chromium, live)
    page = reporter.go(f"/track/{ref}?secret={secret}")
    assert page.viewport_size == {"width": 375, "height": 812}
    form = page.locator("#rate")
    assert form.is_visible() and "问题解决了吗" in form.inner_text()
    shoot(reporter, "track-rate")
    page.get_by_label("未解决").check()
    page.get_by_label("不满意").check()
    page.fill("#comment", "垃圾又堆上了")
    page.click("#rate button[type=submit]")
    page.wait_for_load_state()
    assert "谢谢您的评价" in reporter.flash()
    assert page.locator("#rate").count() == 0
    assert "未解决 · 不满意 — 垃圾又堆上了" in reporter.text("#rated")
    shoot(reporter, "track-rated")
    reporter.close()

    with app.engine.connect() as conn:
        row = conn.execute(select(ticket_feedback)).one()
    assert (row.channel, row.solved, row.satisfaction, row.comment) == (
        "reporter",
        False,
        "dissatisfied",
        "垃圾又堆上了",
    )
    assert views.show(app, ref)["state"] == "closed"  # nothing reopened
    assert [u["ref"] for u in feedback.unsolved(app)] == [ref]
