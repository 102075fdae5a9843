"""The JSON API end to end, on SQLite and PostgreSQL: every endpoint, every role, the walls."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
from sqlalchemy import select

from closeloop.models import evidence, tickets
from tests.conftest import NOW
from tests.factories import count
from tests.webtools import JPEG, MICRO, OTHER_MICRO, PNG, VILLAGE, Web, make_web, with_config

LEADER, VILLAGE_LEADER, OTHER_LEADER, SUPERVISOR = (
    "yantou.g3",
    "yantou.lead",
    "caoyuan.g1",
    "duban.wang",
)


class TestReporter:
    def test_submit_then_follow_with_the_secret(self, web: Web) -> None:
        made = web.submit(reporter_name="李大伯", reporter_phone="13900000000")
        assert made["ref"] == "EP-2026-000001" and made["state"] == "assigned"
        assert len(made["secret"]) >= 20
        r = web.client.get(made["url"])
        assert r.status_code == 200
        seen = r.json()
        assert (seen["ref"], seen["state"], seen["closed"]) == (made["ref"], "assigned", False)
        assert seen["events"][0]["step"] == "submit"
        # The reporter's view carries no staff details.
        assert "assignee" not in seen and "allowed_steps" not in seen
        with web.app.engine.connect() as conn:
            stored = conn.execute(select(tickets.c.reporter_secret_hash)).scalar_one()
        assert stored and made["secret"] not in stored and len(stored) == 64

    def test_the_secret_also_works_as_a_header(self, web: Web) -> None:
        made = web.submit()
        r = web.client.get(
            f"/api/tickets/{made['ref']}", headers={"X-Reporter-Secret": made["secret"]}
        )
        assert r.status_code == 200 and r.json()["ref"] == made["ref"]

    def test_a_wrong_secret_is_not_found(self, web: Web) -> None:
        made = web.submit()
        for secret in ("nope", made["secret"] + "x"):
            r = web.client.get(f"/api/tickets/{made['ref']}", params={"secret": secret})
            assert r.status_code == 404
            assert r.json() == {
                "error": {"code": "ticket.not_found", "message": f"no ticket {made['ref']}"}
            }

    def test_a_secret_opens_only_its_own_ticket(self, web: Web) -> None:
        first, second = web.submit(), web.submit()
        r = web.client.get(f"/api/tickets/{second['ref']}", params={"secret": first["secret"]})
        assert r.status_code == 404

    def test_without_secret_or_login_it_is_401(self, web: Web) -> None:
        made = web.submit()
        r = web.client.get(f"/api/tickets/{made['ref']}")
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith("Bearer")

    def test_submit_with_photos_as_a_form(self, web: Web) -> None:
        r = web.client.post(
            "/api/tickets",
            data={
                "grid": MICRO,
                "category": "sanitation",
                "title": "墙角垃圾",
                "lat": "29.1",
                "lon": "119.6",
                "address": "",
            },
            files=[
                ("photos", ("../../etc/passwd.png", PNG, "image/png")),
                ("photos", ("b.jpg", JPEG, "image/jpeg")),
            ],
        )
        assert r.status_code == 201, r.text
        made = r.json()
        seen = web.client.get(made["url"]).json()
        assert [e["content_type"] for e in seen["evidence"]] == ["image/png", "image/jpeg"]
        # The given name is a label only; the file is stored under its content hash.
        assert seen["evidence"][0]["name"] == "passwd.png"
        stored = sorted(p.name for p in web.app.settings.evidence_dir.iterdir())
        assert all(len(n.split(".")[0]) == 64 for n in stored) and len(stored) == 2
        photo = web.client.get(seen["evidence"][0]["url"])
        assert photo.status_code == 200 and photo.content == PNG
        assert photo.headers["content-type"] == "image/png"
        assert photo.headers["x-content-type-options"] == "nosniff"

    def test_an_empty_file_input_is_no_photo(self, web: Web) -> None:
        r = web.client.post(
            "/api/tickets",
            data={"grid": MICRO, "category": "sanitation", "title": "t"},
            files=[("photos", ("", b"", "application/octet-stream"))],
        )
        assert r.status_code == 201, r.text
        assert count(web.app, evidence) == 0

    def test_photos_are_checked_by_their_bytes(self, web: Web) -> None:
        r = web.client.post(
            "/api/tickets",
            data={"grid": MICRO, "category": "sanitation", "title": "t"},
            files=[("photos", ("x.png", b"<script>alert(1)</script>", "image/png"))],
        )
        assert r.status_code == 422
        assert "must be a photo" in r.json()["error"]["message"]
        assert count(web.app, tickets) == 0
        assert not web.app.settings.evidence_dir.exists() or not any(
            web.app.settings.evidence_dir.iterdir()
        )

    def test_too_many_photos(self, web: Web) -> None:
        files = [("photos", (f"{i}.png", PNG + bytes([i]), "image/png")) for i in range(7)]
        r = web.client.post(
            "/api/tickets",
            data={"grid": MICRO, "category": "sanitation", "title": "t"},
            files=files,
        )
        assert r.status_code in (400, 422)
        assert "6" in r.json()["error"]["message"]
        assert count(web.app, tickets) == 0

    def test_a_photo_over_the_size_limit(self, app) -> None:  # type: ignore[no-untyped-def]
        small = with_config(app, "web", max_upload_bytes=1000)
        for web in make_web(small):
            r = web.client.post(
                "/api/tickets",
                data={"grid": MICRO, "category": "sanitation", "title": "t"},
                files=[("photos", ("big.png", PNG + b"\x00" * 1000, "image/png"))],
            )
            assert r.status_code == 413
            assert "1000 bytes" in r.json()["error"]["message"]
            # A declared body far over the limit is refused before it is read.
            r = web.client.post(
                "/api/tickets",
                content=b"x" * 10_000,
                headers={"content-type": "application/json", "content-length": "9000000"},
            )
            assert r.status_code == 413

    @pytest.mark.parametrize(
        ("body", "status", "words"),
        [
            ({"category": "random_piling", "title": "t"}, 422, "name a grid, or give both"),
            ({"grid": MICRO, "category": "noise", "title": "t"}, 422, "unknown category 'noise'"),
            ({"grid": "NOPE", "category": "sanitation", "title": "t"}, 422, "unknown grid 'NOPE'"),
            ({"grid": MICRO, "category": "sanitation", "title": ""}, 422, "title"),
            ({"grid": MICRO, "category": "sanitation", "title": "a\x00b"}, 422, "NUL"),
            ({"grid": MICRO, "category": "sanitation", "title": "t", "lat": 95}, 422, "lat"),
            ({"grid": MICRO, "category": "sanitation", "title": "t", "lat": 30}, 422, "--lon"),
            ({"grid": MICRO, "category": "sanitation", "title": "t", "x": 1}, 422, "x: unknown"),
            (["not", "an", "object"], 422, "valid dictionary"),
        ],
    )
    def test_bad_reports_are_refused_with_a_reason(
        self, web: Web, body: object, status: int, words: str
    ) -> None:
        r = web.client.post("/api/tickets", json=body)
        assert r.status_code == status, r.text
        assert words in r.json()["error"]["message"]
        assert count(web.app, tickets) == 0

    def test_bad_json_is_400(self, web: Web) -> None:
        r = web.client.post(
            "/api/tickets", content=b'{"grid": ', headers={"content-type": "application/json"}
        )
        assert r.status_code == 400
        assert r.json()["error"]["message"].startswith("the body is not valid JSON")

    def test_an_unknown_body_type_is_415(self, web: Web) -> None:
        r = web.client.post(
            "/api/tickets", content=b"grid=x", headers={"content-type": "text/plain"}
        )
        assert r.status_code == 415


class TestLeader:
    def test_inbox_lists_the_new_ticket_with_time_left(self, web: Web) -> None:
        made = web.submit()
        items = web.get("/api/inbox", LEADER).json()["items"]
        assert [i["ref"] for i in items] == [made["ref"]]
        assert items[0]["seconds_left"] == 24 * 3600  # random piling: 24 h to fix
        web.clock.advance(timedelta(hours=25))
        assert web.get("/api/inbox", LEADER).json()["items"][0]["seconds_left"] == -3600
        assert web.get("/api/inbox", OTHER_LEADER).json()["items"] == []

    def test_the_whole_loop_with_photos(self, web: Web) -> None:
        made = web.submit()
        ref = made["ref"]
        detail = web.get(f"/api/tickets/{ref}", LEADER).json()
        assert detail["assignee"] == LEADER
        assert set(detail["allowed_steps"]) >= {"fix", "reassign", "request_extension"}
        assert "verify" not in detail["allowed_steps"]

        web.clock.advance(timedelta(hours=2))
        r = web.post(
            f"/api/tickets/{ref}/steps/fix",
            LEADER,
            data={"note": "已清理"},
            files=[("evidence", ("after.jpg", JPEG, "image/jpeg"))],
        )
        assert r.status_code == 200, r.text
        done = r.json()
        assert (done["state"], done["ticket"]["state"]) == ("fixed", "fixed")
        assert done["ticket"]["evidence"][0]["event"] is not None

        # The fixer cannot verify; the village leader above can.
        r = web.step(ref, "verify", LEADER)
        assert r.status_code == 403
        assert web.get(f"/api/tickets/{ref}", VILLAGE_LEADER).json()["allowed_steps"] == [
            "reject",
            "verify",
            "dismiss",
            "request_extension",
        ]
        assert web.step(ref, "verify", VILLAGE_LEADER).status_code == 200
        assert web.step(ref, "close", VILLAGE_LEADER).json()["state"] == "closed"

        followed = web.client.get(made["url"]).json()
        assert (followed["state"], followed["closed"]) == ("closed", True)
        assert [e["step"] for e in followed["events"]] == ["submit", "fix", "verify", "close"]
        # The reporter sees the fix photo too, through the secret.
        photo = web.client.get(followed["evidence"][0]["url"])
        assert photo.status_code == 200 and photo.content == JPEG

    def test_an_ancestor_who_fixed_never_verifies(self, web: Web) -> None:
        ref = web.submit()["ref"]
        assert web.step(ref, "fix", VILLAGE_LEADER, note="村里清理了").status_code == 200
        r = web.step(ref, "verify", VILLAGE_LEADER)
        assert r.status_code == 403
        assert "must be checked by someone else" in r.json()["error"]["message"]
        assert web.state(ref) == "fixed"

    def test_another_grid_is_404_not_403(self, web: Web) -> None:
        ref = web.submit()["ref"]
        assert web.get(f"/api/tickets/{ref}", OTHER_LEADER).status_code == 404
        r = web.step(ref, "fix", OTHER_LEADER, note="x")
        assert r.status_code == 404 and r.json() == {
            "error": {"code": "ticket.not_found", "message": f"no ticket {ref}"}
        }
        assert web.get("/api/tickets", OTHER_LEADER).json()["items"] == []
        assert web.state(ref) == "assigned"

    def test_wrong_state_is_409(self, web: Web) -> None:
        ref = web.submit()["ref"]
        r = web.step(ref, "close", VILLAGE_LEADER)
        assert r.status_code == 409
        assert "may run only from: verified" in r.json()["error"]["message"]

    def test_an_error_has_its_code_and_a_message_in_the_caller_s_language(self, web: Web) -> None:
        ref = web.submit()["ref"]
        english = {"code": "step.needs", "message": "'fix' needs --note"}
        assert web.step(ref, "fix", LEADER).json() == {"error": english}
        url = f"/api/tickets/{ref}/steps/fix"
        for asked in ({"params": {"lang": "zh_CN"}}, {"headers": {"accept-language": "zh-CN"}}):
            r = web.post(url, LEADER, json={}, **asked)  # type: ignore[arg-type]
            assert r.status_code == 422
            assert r.json() == {"error": {"code": "step.needs", "message": "请填写：说明。"}}
        # Steps and states by the workflow's Chinese labels; a language we lack reads English.
        r = web.post(f"/api/tickets/{ref}/steps/close?lang=zh_CN", VILLAGE_LEADER, json={})
        assert r.status_code == 409 and r.json()["error"]["code"] == "step.wrong_state"
        assert r.json()["error"]["message"].startswith("这个问题现在是“待整改”，不能执行“销号”")
        r = web.post(url, LEADER, json={}, headers={"accept-language": "fr-FR"})
        assert r.json() == {"error": english}

    def test_missing_field_is_422(self, web: Web) -> None:
        ref = web.submit()["ref"]
        r = web.step(ref, "fix", LEADER)
        assert r.status_code == 422 and "'fix' needs --note" in r.json()["error"]["message"]
        r = web.step(ref, "fix", LEADER, note="x", until="2026-04-03T10:00:00")
        assert r.status_code == 422 and "until" in r.json()["error"]["message"]

    def test_unknown_step_and_bad_json(self, web: Web) -> None:
        ref = web.submit()["ref"]
        r = web.step(ref, "explode", LEADER)
        assert r.status_code == 422 and "unknown step 'explode'" in r.json()["error"]["message"]
        r = web.post(
            f"/api/tickets/{ref}/steps/fix",
            LEADER,
            content=b"{nope",
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 400

    def test_unauthenticated_step_is_401(self, web: Web) -> None:
        ref = web.submit()["ref"]
        r = web.client.post(f"/api/tickets/{ref}/steps/fix", json={"note": "x"})
        assert r.status_code == 401

    def test_reassign_out_of_sight(self, web: Web) -> None:
        ref = web.submit()["ref"]
        r = web.step(ref, "reassign", LEADER, to_grid=OTHER_MICRO)
        assert r.status_code == 200
        assert r.json()["ticket"] is None and r.json()["state"] == "assigned"
        assert web.get(f"/api/tickets/{ref}", LEADER).status_code == 404
        assert [i["ref"] for i in web.get("/api/inbox", OTHER_LEADER).json()["items"]] == [ref]

    def test_reject_and_reopen(self, web: Web) -> None:
        ref = web.submit()["ref"]
        web.step(ref, "fix", LEADER, note="done")
        assert web.step(ref, "reject", VILLAGE_LEADER).status_code == 422
        r = web.step(ref, "reject", VILLAGE_LEADER, reason="还有残留")
        assert r.json()["state"] == "assigned"
        assert r.json()["ticket"]["rework_count"] == 1
        web.step(ref, "fix", LEADER, note="again")
        web.step(ref, "verify", VILLAGE_LEADER)
        web.step(ref, "close", VILLAGE_LEADER)
        r = web.step(ref, "reopen", LEADER, reason="又堆上了")
        assert r.status_code == 200 and r.json()["state"] == "assigned"

    def test_list_filters_and_paging(self, web: Web) -> None:
        refs = [web.submit()["ref"] for _ in range(3)]
        web.submit(grid=OTHER_MICRO)
        web.step(refs[0], "fix", LEADER, note="x")
        mine = web.get("/api/tickets", VILLAGE_LEADER).json()
        assert [i["ref"] for i in mine["items"]] == refs[::-1]
        fixed = web.get("/api/tickets", VILLAGE_LEADER, params={"state": "fixed"}).json()
        assert [i["ref"] for i in fixed["items"]] == [refs[0]]
        page = web.get("/api/tickets", VILLAGE_LEADER, params={"limit": 1, "offset": 1}).json()
        assert [i["ref"] for i in page["items"]] == [refs[1]]
        everything = web.get("/api/tickets", SUPERVISOR, params={"grid": "JS-A1-V02"}).json()
        assert len(everything["items"]) == 1
        assert web.get("/api/tickets", SUPERVISOR, params={"state": "bogus"}).status_code == 422
        # A filter naming no grid finds nothing: 404 (issue 10, item 8: what the schema says)
        assert web.get("/api/tickets", SUPERVISOR, params={"grid": "NOPE"}).status_code == 404
        assert web.get("/api/tickets", SUPERVISOR, params={"limit": 0}).status_code == 422


class TestSupervisor:
    def test_sees_everything(self, web: Web) -> None:
        a, b = web.submit()["ref"], web.submit(grid=OTHER_MICRO)["ref"]
        items = web.get("/api/tickets", SUPERVISOR).json()["items"]
        assert {i["ref"] for i in items} == {a, b}
        assert web.get(f"/api/tickets/{b}", SUPERVISOR).status_code == 200

    def test_overdue_after_the_clock_moves(self, web: Web) -> None:
        late = web.submit(category="random_parking")["ref"]  # 2 h to fix
        web.submit(grid=OTHER_MICRO)
        assert web.get("/api/overdue", SUPERVISOR).json()["items"] == []
        web.clock.advance(timedelta(hours=3))
        items = web.get("/api/overdue", SUPERVISOR).json()["items"]
        assert [(i["ref"], i["overdue_hours"]) for i in items] == [(late, 1.0)]
        # A leader sees the overdue tickets of their own grids only.
        assert [i["ref"] for i in web.get("/api/overdue", VILLAGE_LEADER).json()["items"]] == [late]
        assert web.get("/api/overdue", OTHER_LEADER).json()["items"] == []
        assert web.get("/api/overdue", SUPERVISOR, params={"grid": "NOPE"}).status_code == 404
        only = web.get("/api/overdue", SUPERVISOR, params={"grid": "JS-A1-V02"}).json()
        assert only["items"] == []

    def test_extension_requested_listed_and_approved(self, web: Web) -> None:
        ref = web.submit()["ref"]
        until = (NOW + timedelta(days=3)).isoformat()
        r = web.step(ref, "request_extension", LEADER, reason="需要铲车", until=until)
        assert r.status_code == 200, r.text
        pending = web.get("/api/extensions", SUPERVISOR).json()["items"]
        assert [(x["ticket"]["ref"], x["status"], x["requested_by"]) for x in pending] == [
            (ref, "pending", LEADER)
        ]
        assert web.get("/api/extensions", OTHER_LEADER).json()["items"] == []
        assert web.step(ref, "approve_extension", LEADER).status_code == 403
        r = web.step(ref, "approve-extension", SUPERVISOR)
        assert r.status_code == 200, r.text
        assert web.get("/api/extensions", SUPERVISOR).json()["items"] == []
        approved = web.get("/api/extensions", SUPERVISOR, params={"status": "approved"}).json()
        assert approved["items"][0]["decided_by"] == SUPERVISOR
        assert web.get("/api/extensions", SUPERVISOR, params={"status": "x"}).status_code == 422

    def test_refuse_extension(self, web: Web) -> None:
        ref = web.submit()["ref"]
        until = (NOW + timedelta(days=3)).isoformat()
        web.step(ref, "request_extension", LEADER, reason="r", until=until)
        assert web.step(ref, "refuse_extension", SUPERVISOR).status_code == 422
        assert web.step(ref, "refuse_extension", SUPERVISOR, reason="不行").status_code == 200
        refused = web.get("/api/extensions", SUPERVISOR, params={"status": "all"}).json()
        assert [x["status"] for x in refused["items"]] == ["refused"]

    def test_defer_and_resume(self, web: Web) -> None:
        ref = web.submit()["ref"]
        review = (NOW + timedelta(days=30)).isoformat()
        assert web.step(ref, "defer", LEADER, reason="r", review_on=review).status_code == 403
        r = web.step(ref, "defer", SUPERVISOR, reason="待规划", review_on=review)
        assert r.status_code == 200 and r.json()["state"] == "deferred"
        register = web.get("/api/deferred", SUPERVISOR).json()["items"]
        assert [(d["ticket"]["ref"], d["by"], d["review_due"]) for d in register] == [
            (ref, SUPERVISOR, False)
        ]
        assert [d["ticket"]["ref"] for d in web.get("/api/deferred", LEADER).json()["items"]] == [
            ref
        ]
        assert web.get("/api/deferred", OTHER_LEADER).json()["items"] == []
        assert web.step(ref, "resume", SUPERVISOR).json()["state"] == "assigned"
        assert web.get("/api/deferred", SUPERVISOR).json()["items"] == []

    def test_dismiss(self, web: Web) -> None:
        ref = web.submit()["ref"]
        r = web.step(ref, "dismiss", SUPERVISOR, reason="重复上报")
        assert r.json()["state"] == "dismissed"
        assert web.step(ref, "fix", LEADER, note="x").status_code == 409


class TestEvidenceAccess:
    def test_only_people_who_see_the_ticket_get_its_photos(self, web: Web) -> None:
        r = web.client.post(
            "/api/tickets",
            data={"grid": MICRO, "category": "sanitation", "title": "t"},
            files=[("photos", ("a.png", PNG, "image/png"))],
        )
        made = r.json()
        with web.app.engine.connect() as conn:
            eid = conn.execute(select(evidence.c.id)).scalar_one()
        url = f"/api/evidence/{eid}"
        assert web.get(url, LEADER).status_code == 200
        assert web.get(url, SUPERVISOR).status_code == 200
        assert web.get(url, OTHER_LEADER).status_code == 404
        assert web.client.get(url).status_code == 404
        assert web.client.get(url, params={"secret": "wrong"}).status_code == 404
        assert web.client.get(url, params={"secret": made["secret"]}).status_code == 200
        assert web.get("/api/evidence/999", SUPERVISOR).status_code == 404
        assert web.get("/api/evidence/0", SUPERVISOR).status_code == 422


class TestZone:
    def test_grids_are_public_and_filterable(self, web: Web) -> None:
        villages = web.client.get("/api/grids", params={"parent": "JS-A1"}).json()["items"]
        assert VILLAGE in [g["code"] for g in villages]
        assert all(g["level"] == 3 and g["parent"] == "JS-A1" for g in villages)
        micro = web.client.get("/api/grids", params={"parent": VILLAGE}).json()["items"]
        assert MICRO in [g["code"] for g in micro]
        assert web.client.get("/api/grids", params={"parent": "NOPE"}).status_code == 404
        zone = web.client.get("/api/grids", params={"level": 1}).json()["items"]
        assert [g["code"] for g in zone] == ["JS"]

    def test_grid_detail_needs_a_login(self, web: Web) -> None:
        assert web.client.get(f"/api/grids/{VILLAGE}").status_code == 401
        g = web.get(f"/api/grids/{VILLAGE}", LEADER).json()
        assert g["leader"]["handle"] == VILLAGE_LEADER
        assert web.get("/api/grids/NOPE", LEADER).status_code == 404

    def test_categories(self, web: Web) -> None:
        items = web.client.get("/api/categories").json()["items"]
        piling = next(c for c in items if c["key"] == "random_piling")
        assert piling["name"] == "乱堆乱放" and piling["limits"]["fix"] == "24h natural"

    def test_me(self, web: Web) -> None:
        me = web.get("/api/me", VILLAGE_LEADER).json()
        assert me["handle"] == VILLAGE_LEADER and me["via"] == "token"
        assert [g["code"] for g in me["leads"]] == [VILLAGE]
        assert web.client.get("/api/me").status_code == 401


class TestService:
    def test_health(self, web: Web) -> None:
        r = web.client.get("/healthz")
        assert r.status_code == 200
        assert r.json()["status"] == "ok"
        assert r.json()["database"] in ("sqlite", "postgresql")

    def test_health_reports_a_dead_database(self, web: Web) -> None:
        from dataclasses import replace

        from sqlalchemy import create_engine

        dead = create_engine("sqlite:////nonexistent/dir/x.db")
        web.client.app.state.closeloop = replace(web.app, engine=dead)  # type: ignore[attr-defined]
        r = web.client.get("/healthz")
        assert r.status_code == 503 and r.json()["status"] == "error"

    def test_unknown_route_and_method_are_json(self, web: Web) -> None:
        r = web.client.get("/api/nothing")
        assert r.status_code == 404 and r.json() == {
            "error": {"code": "http.404", "message": "Not Found"}
        }
        r = web.client.delete("/api/tickets")
        assert r.status_code == 405 and "error" in r.json()

    def test_nul_in_a_url_is_refused_not_a_crash(self, web: Web) -> None:
        for url in (
            "/api/tickets/EP%00",
            "/api/tickets?grid=JS%00",
            "/open311/v2/requests.json?x=%00",
        ):
            r = web.get(url, SUPERVISOR)
            assert r.status_code == 400
        assert r.json() == [{"code": 400, "description": "the URL must not contain NUL characters"}]

    def test_one_json_log_line_per_request(
        self, web: Web, caplog: pytest.LogCaptureFixture
    ) -> None:
        web.token(LEADER)
        with caplog.at_level(logging.INFO, logger="closeloop.web.access"):
            web.get("/api/inbox", LEADER)
            web.client.get("/api/tickets/EP-2026-000009", params={"secret": "s3cret"})
        lines = [json.loads(r.getMessage()) for r in caplog.records]
        assert lines[0]["method"] == "GET" and lines[0]["path"] == "/api/inbox"
        assert (lines[0]["status"], lines[0]["user"]) == (200, LEADER)
        assert isinstance(lines[0]["ms"], float)
        # Query strings (the reporter's secret) never reach the log.
        assert lines[1]["path"] == "/api/tickets/EP-2026-000009" and lines[1]["status"] == 404
        assert "s3cret" not in caplog.text


class TestReports:
    def test_weekly_report_in_every_format(self, web: Web) -> None:
        web.submit()
        r = web.get("/api/reports/weekly", SUPERVISOR)
        assert r.status_code == 200, r.text
        assert r.json()["week"] == "2026-W13"  # the last full week before Wed 1 April
        html = web.get("/api/reports/weekly", SUPERVISOR, params={"format": "html"})
        assert html.headers["content-type"].startswith("text/html") and b"<table" in html.content
        md = web.get("/api/reports/weekly", SUPERVISOR, params={"format": "md", "locale": "en"})
        assert md.headers["content-type"].startswith("text/markdown")
        xlsx = web.get("/api/reports/weekly", SUPERVISOR, params={"format": "xlsx"})
        assert xlsx.content[:2] == b"PK"
        assert 'filename="weekly-2026-W13.xlsx"' in xlsx.headers["content-disposition"]
        week = web.get("/api/reports/weekly", SUPERVISOR, params={"week": "2026-W10"}).json()
        assert week["week"] == "2026-W10"

    def test_weekly_report_refusals(self, web: Web) -> None:
        assert web.get("/api/reports/weekly", LEADER).status_code == 403
        assert web.client.get("/api/reports/weekly").status_code == 401
        for week, status, words in (
            ("2026-W14", 422, "has not ended"),
            ("2026-W60", 422, "should match pattern"),  # the schema's week pattern
            ("2027-W53", 404, "does not exist"),  # a week 53 in a year of 52
        ):
            r = web.get("/api/reports/weekly", SUPERVISOR, params={"week": week})
            assert r.status_code == status and words in r.json()["error"]["message"], r.text
        assert web.get("/api/reports/weekly", SUPERVISOR, params={"week": "W14"}).status_code == 422
        r = web.get("/api/reports/weekly", SUPERVISOR, params={"format": "pdf"})
        assert r.status_code == 422

    def test_exam_board(self, web: Web) -> None:
        from closeloop.exam import service as store

        lines = ["month,inspector_grid,grid,sheet,item,score,max_score,note"]
        for grid, inspector, score in (
            ("JS-A1-V01", "JS-A2", 9),
            ("JS-A1-V02", "JS-A3", 5),
        ):
            lines.append(f"2026-03,{inspector},{grid},basic,道路路面,{score},10,")
        store.import_exam(web.app, "\n".join(lines) + "\n", NOW)
        assert (
            web.get("/api/exam/board", SUPERVISOR, params={"month": "2026-03"}).status_code == 404
        )
        store.publish_board(web.app, "2026-03", NOW)
        board = web.get("/api/exam/board", SUPERVISOR, params={"month": "2026-03"}).json()
        assert board["month"] == "2026-03"
        assert board["red"] == ["JS-A1-V01"] and board["yellow"] == ["JS-A1-V02"]
        html = web.get("/api/exam/board", SUPERVISOR, params={"month": "2026-03", "format": "html"})
        assert html.status_code == 200 and "堰头村" in html.text
        assert web.get("/api/exam/board", LEADER, params={"month": "2026-03"}).status_code == 403
        assert (
            web.get("/api/exam/board", SUPERVISOR, params={"month": "2026-13"}).status_code == 422
        )
        assert web.get("/api/exam/board", SUPERVISOR).status_code == 422
