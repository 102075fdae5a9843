"""Issue 16, the model: where a ticket came from (source), urgent tickets and their limits, the
supervision deadline of each rung, and the reporter's answer after closure (回访), through the
service, the command line's service calls, the JSON API, Open311 and the follow-up page; on
SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import get_args

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from closeloop import escalation, feedback, service, views
from closeloop.app import App
from closeloop.models import escalations, ticket_feedback
from closeloop.service import NewProblem
from closeloop.tickets import Conflict, Invalid, NotFound, NotPermitted
from closeloop.web import access, auth, schemas
from tests.conftest import NOW
from tests.factories import minutes, step
from tests.webtools import CSRF_RE, MICRO, Web

PILE = NewProblem(grid=MICRO, category="random_piling", title="河边垃圾堆")


def closed_ticket(app: App, problem: NewProblem = PILE) -> str:
    ref = service.submit(app, problem, NOW)
    step(app, ref, "fix", "yantou.g3", NOW + minutes(10), note="已清理")
    step(app, ref, "verify", "yantou.lead", NOW + minutes(20))
    step(app, ref, "close", "yantou.lead", NOW + minutes(30))
    return ref


def test_the_api_enums_are_the_domains() -> None:
    assert get_args(schemas.Source) == service.SOURCES
    assert get_args(schemas.Satisfaction) == feedback.SATISFACTION


class TestSource:
    def test_every_source_is_kept_and_shown(self, app: App) -> None:
        for source in service.SOURCES:
            ref = service.submit(app, PILE.__class__(**{**PILE.__dict__, "source": source}), NOW)
            assert views.show(app, ref)["source"] == source

    def test_an_unknown_source_is_refused(self, app: App) -> None:
        with pytest.raises(Invalid, match="unknown source 'radio'; sources: public, patrol"):
            service.submit(app, NewProblem(MICRO, "random_piling", "x", source="radio"), NOW)

    def test_anonymous_reports_are_public_and_may_not_claim_another_source(self, web: Web) -> None:
        made = web.submit()
        assert web.get(f"/api/tickets/{made['ref']}", "duban.wang").json()["source"] == "public"
        r = web.client.post(
            "/api/tickets",
            json={"grid": MICRO, "category": "random_piling", "title": "x", "source": "leader"},
        )
        assert r.status_code == 403 and "source" in r.json()["error"]["message"]
        r = web.client.post(
            "/api/tickets",
            json={"grid": MICRO, "category": "random_piling", "title": "x", "source": "radio"},
        )
        assert r.status_code == 422

    def test_staff_give_a_source_and_a_hotline_key_files_hotline_tickets(self, web: Web) -> None:
        body = {"grid": MICRO, "category": "random_piling", "title": "领导交办", "source": "leader"}
        r = web.post("/api/tickets", "duban.wang", json=body)
        assert r.status_code == 201, r.text
        assert web.get(f"/api/tickets/{r.json()['ref']}", "duban.wang").json()["source"] == "leader"

        hotline = auth.create_token(web.app, "duban.wang", "12345", web.clock(), source="hotline")
        form = {"service_code": "sanitation", "attribute[grid]": MICRO, "lat": "29.1",
                "long": "119.6", "description": "墙角垃圾"}  # fmt: skip
        r = web.client.post("/open311/v2/requests.json", data={**form, "api_key": hotline.token})
        assert r.status_code == 200, r.text
        ref = r.json()[0]["service_request_id"]
        assert views.show(web.app, ref)["source"] == "hotline"
        r = web.client.post(
            "/open311/v2/requests.json", data={**form, "api_key": web.token("duban.wang")}
        )
        assert views.show(web.app, r.json()[0]["service_request_id"])["source"] == "public"
        with pytest.raises(Invalid, match="unknown source"):
            auth.create_token(web.app, "duban.wang", "x", web.clock(), source="radio")


class TestUrgent:
    def test_an_urgent_ticket_takes_the_urgent_limit(self, app: App) -> None:
        plain = views.show(app, service.submit(app, PILE, NOW))
        urgent = views.show(
            app, service.submit(app, NewProblem(MICRO, "random_piling", "急", urgent=True), NOW)
        )
        # random_piling: 24 h to fix, 4 h when urgent (workflows/environmental.toml)
        assert plain["due_at"] == "2026-04-02T09:00:00+08:00" and not plain["urgent"]
        assert urgent["due_at"] == "2026-04-01T13:00:00+08:00" and urgent["urgent"]
        assert urgent["urgent_at"] == "2026-04-01T09:00:00+08:00"

    def test_a_supervisor_marks_it_urgent_and_the_next_stage_is_shorter(self, app: App) -> None:
        ref = service.submit(app, PILE, NOW)
        with pytest.raises(NotPermitted):
            step(app, ref, "mark_urgent", "yantou.g3", NOW + minutes(5), reason="群众反映强烈")
        step(app, ref, "mark_urgent", "duban.wang", NOW + minutes(5), reason="群众反映强烈")
        shown = views.show(app, ref)
        # The deadline running stays; a rejected fix opens a stage with the urgent limit.
        assert shown["urgent"] and shown["due_at"] == "2026-04-02T09:00:00+08:00"
        with pytest.raises(Conflict, match="urgent already"):
            step(app, ref, "mark_urgent", "duban.wang", NOW + minutes(6), reason="again")
        step(app, ref, "fix", "yantou.g3", NOW + minutes(10), note="已清理")
        step(app, ref, "reject", "yantou.lead", NOW + minutes(60), reason="没清干净")
        assert views.show(app, ref)["due_at"] == "2026-04-01T14:00:00+08:00"  # 10:00 + 4 h
        assert [e["step"] for e in views.show(app, ref)["events"]][1] == "mark_urgent"


def test_each_rung_stores_its_supervision_deadline(app: App) -> None:
    ref = service.submit(app, PILE, NOW)
    escalation.sweep(app, NOW + timedelta(hours=25))
    with app.engine.connect() as conn:
        rung = conn.execute(select(escalations)).one()
    # Missed at 2026-04-02 09:00 (+08:00); the next rung one working day later.
    assert rung.deadline == NOW + timedelta(hours=24)
    assert rung.supervision_due == NOW + timedelta(hours=48)
    assert views.show(app, ref)["escalation_level"] == 1


class TestFeedback:
    def test_the_reporter_answers_once_after_closure(self, app: App) -> None:
        _, digest = access.new_reporter_secret()
        problem = NewProblem(MICRO, "random_piling", "垃圾", reporter_secret_hash=digest)
        ref = service.submit(app, problem, NOW)
        answer = feedback.Answer(False, "dissatisfied", "还有垃圾")
        with pytest.raises(Conflict, match="not closed"):
            feedback.reporter_answer(app, ref, digest, answer, NOW + timedelta(minutes=5))
        step(app, ref, "fix", "yantou.g3", NOW + minutes(10), note="已清理")
        step(app, ref, "verify", "yantou.lead", NOW + minutes(20))
        step(app, ref, "close", "yantou.lead", NOW + minutes(30))
        with pytest.raises(NotFound):
            feedback.reporter_answer(app, ref, access.hash_secret("wrong"), answer, NOW)
        feedback.reporter_answer(app, ref, digest, answer, NOW + timedelta(minutes=40))
        with pytest.raises(Conflict, match="has answered"):
            feedback.reporter_answer(app, ref, digest, answer, NOW + timedelta(minutes=41))
        # Not solved: listed for the supervisors, and nothing reopened.
        assert views.show(app, ref)["state"] == "closed"
        assert [r["ref"] for r in feedback.unsolved(app)] == [ref]
        assert views.show(app, ref)["feedback"] == [
            {
                "at": "2026-04-01T09:40:00+08:00",
                "channel": "reporter",
                "by": None,
                "solved": False,
                "satisfaction": "dissatisfied",
                "comment": "还有垃圾",
            }
        ]
        # A supervisor calls back: now solved, so the ticket leaves the list.
        with pytest.raises(NotPermitted):
            feedback.phone_callback(
                app, ref, "yantou.g3", feedback.Answer(True, "basic"), NOW + timedelta(hours=2)
            )
        feedback.phone_callback(
            app, ref, "duban.wang", feedback.Answer(True, "basic"), NOW + timedelta(hours=2)
        )
        assert feedback.unsolved(app) == []
        with pytest.raises(Invalid, match="unknown satisfaction"):
            feedback.phone_callback(
                app, ref, "duban.wang", feedback.Answer(True, "happy"), NOW + timedelta(hours=2)
            )

    def test_a_reopened_ticket_leaves_the_list(self, app: App) -> None:
        ref = closed_ticket(app)
        feedback.phone_callback(
            app, ref, "duban.wang", feedback.Answer(False, "dissatisfied"), NOW + timedelta(hours=1)
        )
        assert [r["ref"] for r in feedback.unsolved(app)] == [ref]
        step(app, ref, "reopen", "duban.wang", NOW + minutes(70), reason="回访未解决")
        assert feedback.unsolved(app) == []


def test_the_follow_up_page_offers_the_rating_once_closed(web: Web) -> None:
    client = TestClient(web.client.app)
    client.headers["accept"] = "text/html"
    page = client.get("/report")
    token = CSRF_RE.search(page.text).group(1)  # type: ignore[union-attr]
    r = client.post(
        "/report",
        data={"category": "random_piling", "grid": MICRO, "title": "河边垃圾", "csrf_token": token},
        follow_redirects=False,
    )
    found = re.fullmatch(r"/track/([^?]+)\?secret=([^&]+)&new=1", r.headers["location"])
    assert found
    ref, secret = found.groups()
    assert 'id="rate"' not in client.get(f"/track/{ref}?secret={secret}").text
    for name, who, m in (("fix", "yantou.g3", 10), ("verify", "yantou.lead", 20)):
        step(web.app, ref, name, who, NOW + minutes(m), note="ok")
    step(web.app, ref, "close", "yantou.lead", NOW + minutes(30))
    web.clock.set(NOW + timedelta(hours=1))
    page = client.get(f"/track/{ref}?secret={secret}")
    assert 'id="rate"' in page.text and "问题解决了吗" in page.text and "基本满意" in page.text
    token = CSRF_RE.search(page.text).group(1)  # type: ignore[union-attr]
    answer = {"secret": secret, "solved": "yes", "satisfaction": "satisfied", "comment": "很快"}
    r = client.post(
        f"/track/{ref}/feedback", data={**answer, "csrf_token": token}, follow_redirects=False
    )
    assert r.status_code == 303, r.text
    page = client.get(r.headers["location"])
    assert 'id="rate"' not in page.text and "谢谢您的评价" in page.text and "很快" in page.text
    with web.app.engine.connect() as conn:
        row = conn.execute(select(ticket_feedback)).one()
    assert (row.channel, row.solved, row.satisfaction) == ("reporter", True, "satisfied")
    r = client.post(
        f"/track/{ref}/feedback",
        data={**answer, "secret": "wrong-secret", "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 404


def test_the_board_lists_tickets_answered_not_solved(web: Web) -> None:
    ref = closed_ticket(web.app)
    feedback.phone_callback(
        web.app,
        ref,
        "duban.wang",
        feedback.Answer(False, "dissatisfied", "又堆上了"),
        NOW + timedelta(hours=1),
    )
    auth.set_password(web.app, "duban.wang", "pass-word-123")
    client = TestClient(web.client.app)
    client.headers["accept"] = "text/html"
    token = CSRF_RE.search(client.get("/login").text).group(1)  # type: ignore[union-attr]
    r = client.post(
        "/login",
        data={
            "handle": "duban.wang",
            "password": "pass-word-123",
            "next": "/",
            "csrf_token": token,
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = client.get("/board").text
    assert 'id="unsolved"' in page and ref in page and "又堆上了" in page and "不满意" in page
