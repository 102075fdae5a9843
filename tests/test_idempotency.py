"""Idempotency-Key on the POSTs of the JSON API and Open311, on SQLite and PostgreSQL: a retry
answers what the first request answered and changes nothing; the same key with another body is
422; keys are the caller's; concurrent claims of one key have one winner."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from closeloop.app import App
from closeloop.models import idempotency_keys, ticket_events, tickets
from closeloop.web import idempotency
from tests.conftest import NOW
from tests.factories import count
from tests.webtools import MICRO, Web, csrf, login, with_password

BASE = "/open311/v2"
LEADER, VILLAGE_LEADER = "yantou.g3", "yantou.lead"
REPORT = {"grid": MICRO, "category": "random_piling", "title": "河边垃圾堆"}


def key(value: str) -> dict[str, str]:
    return {"Idempotency-Key": value}


class TestSubmit:
    def test_the_same_key_twice_makes_one_ticket_and_the_same_answer(self, web: Web) -> None:
        first = web.client.post("/api/tickets", json=REPORT, headers=key("k-1"))
        again = web.client.post("/api/tickets", json=REPORT, headers=key("k-1"))
        assert first.status_code == again.status_code == 201
        assert again.json() == first.json()  # the same ref and the same reporter's secret
        assert again.headers["Idempotent-Replayed"] == "true"
        assert "Idempotent-Replayed" not in first.headers
        assert count(web.app, tickets) == 1
        # The secret of the replayed answer opens the ticket.
        follow = web.client.get(again.json()["url"])
        assert follow.status_code == 200 and follow.json()["ref"] == first.json()["ref"]

    def test_a_new_key_is_a_new_ticket_and_no_key_is_as_before(self, web: Web) -> None:
        web.client.post("/api/tickets", json=REPORT, headers=key("k-1"))
        web.client.post("/api/tickets", json=REPORT, headers=key("k-2"))
        web.submit()
        web.submit()
        assert count(web.app, tickets) == 4

    def test_the_same_key_with_another_body_is_422(self, web: Web) -> None:
        assert web.client.post("/api/tickets", json=REPORT, headers=key("k-1")).status_code == 201
        other = web.client.post(
            "/api/tickets", json={**REPORT, "title": "另一处垃圾"}, headers=key("k-1")
        )
        assert other.status_code == 422
        assert "Idempotency-Key" in other.json()["error"]["message"]
        assert count(web.app, tickets) == 1

    def test_keys_are_the_callers_own(self, web: Web) -> None:
        mine = web.post("/api/tickets", LEADER, json=REPORT, headers=key("same"))
        theirs = web.post("/api/tickets", VILLAGE_LEADER, json=REPORT, headers=key("same"))
        anonymous = web.client.post("/api/tickets", json=REPORT, headers=key("same"))
        assert {r.status_code for r in (mine, theirs, anonymous)} == {201}
        assert len({r.json()["ref"] for r in (mine, theirs, anonymous)}) == 3
        with web.app.engine.connect() as conn:
            scopes = set(conn.execute(select(idempotency_keys.c.scope)).scalars())
        assert len(scopes) == 3 and any(s.startswith("anon:") for s in scopes)

    def test_a_failed_request_is_not_kept(self, web: Web) -> None:
        bad = {**REPORT, "grid": "NO-SUCH-GRID"}
        assert web.client.post("/api/tickets", json=bad, headers=key("k-1")).status_code == 422
        assert count(web.app, idempotency_keys) == 0
        # Corrected, the same key is used for the request that succeeds.
        assert web.client.post("/api/tickets", json=REPORT, headers=key("k-1")).status_code == 201
        assert count(web.app, tickets) == 1

    def test_answers_are_kept_24_hours_then_the_key_is_free(self, web: Web) -> None:
        first = web.client.post("/api/tickets", json=REPORT, headers=key("k-1")).json()
        web.clock.advance(timedelta(hours=23, minutes=59))
        assert web.client.post("/api/tickets", json=REPORT, headers=key("k-1")).json() == first
        web.clock.advance(timedelta(minutes=2))
        later = web.client.post("/api/tickets", json=REPORT, headers=key("k-1"))
        assert later.status_code == 201 and later.json()["ref"] != first["ref"]
        assert count(web.app, tickets) == 2
        assert count(web.app, idempotency_keys) == 1  # the expired row was swept

    def test_an_expired_answer_is_never_replayed_however_many_expired(self, web: Web) -> None:
        # As a token's owner: 105 anonymous reports from one address would meet the anonymous
        # limit per address (issue 10, item 9) before the point of this test.
        who = web.auth(LEADER)
        for i in range(idempotency.PRUNE + 5):  # more expired rows than one claim sweeps
            web.client.post("/api/tickets", json=REPORT, headers={**key(f"other-{i}"), **who})
        first = web.client.post("/api/tickets", json=REPORT, headers={**key("mine"), **who}).json()
        web.clock.advance(timedelta(hours=25))
        again = web.client.post("/api/tickets", json=REPORT, headers={**key("mine"), **who})
        assert again.status_code == 201 and again.json()["ref"] != first["ref"]
        assert "Idempotent-Replayed" not in again.headers

    def test_the_stored_answer_is_not_readable_without_the_key(self, web: Web) -> None:
        made = web.client.post("/api/tickets", json=REPORT, headers=key("k-secret-1")).json()
        with web.app.engine.connect() as conn:
            row = conn.execute(select(idempotency_keys)).one()
        assert made["secret"].encode() not in row.body
        assert b"k-secret-1" not in row.key_hash.encode()
        assert (row.status, row.content_type) == (201, "application/json")

    def test_a_bad_key_is_400(self, web: Web) -> None:
        r = web.client.post("/api/tickets", json=REPORT, headers=key("x" * 256))
        assert r.status_code == 400
        assert count(web.app, tickets) == 0


class TestSteps:
    def test_a_retried_step_gives_the_first_answer_not_409(self, web: Web) -> None:
        ref = web.submit()["ref"]
        url = f"/api/tickets/{ref}/steps/fix"
        first = web.post(url, LEADER, json={"note": "已清运"}, headers=key("fix-1"))
        events = count(web.app, ticket_events)
        again = web.post(url, LEADER, json={"note": "已清运"}, headers=key("fix-1"))
        assert first.status_code == again.status_code == 200
        assert again.json() == first.json()
        assert again.json()["state"] == "fixed"
        assert count(web.app, ticket_events) == events  # nothing run twice
        # Without the key the same step is another person's conflict, as before.
        assert web.post(url, LEADER, json={"note": "已清运"}).status_code == 409

    def test_the_same_key_on_another_step_is_422(self, web: Web) -> None:
        ref = web.submit()["ref"]
        web.post(f"/api/tickets/{ref}/steps/fix", LEADER, json={"note": "a"}, headers=key("s"))
        other = web.post(
            f"/api/tickets/{ref}/steps/fix", LEADER, json={"note": "b"}, headers=key("s")
        )
        assert other.status_code == 422
        path = web.post(
            f"/api/tickets/{ref}/steps/verify", LEADER, json={"note": "a"}, headers=key("s")
        )
        assert path.status_code == 422

    def test_a_multipart_retry_with_a_new_boundary_is_the_same_request(self, web: Web) -> None:
        ref = web.submit()["ref"]
        url = f"/api/tickets/{ref}/steps/fix"
        photo = {"evidence": ("a.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "image/png")}
        first = web.post(url, LEADER, data={"note": "见照片"}, files=photo, headers=key("m"))
        again = web.post(url, LEADER, data={"note": "见照片"}, files=photo, headers=key("m"))
        assert first.status_code == again.status_code == 200, again.text
        assert again.headers["Idempotent-Replayed"] == "true"


class TestOtherPosts:
    def test_a_retried_token_creation_makes_one_token(self, web: Web) -> None:
        # Tokens are made by a logged-in person, not by tokens (issue 10, item 7).
        assert login(web, with_password(web, LEADER)).status_code == 303
        body = {"label": "script"}
        headers = {**key("t-1"), "X-CSRF-Token": csrf(web)}
        first = web.client.post("/api/tokens", json=body, headers=headers)
        again = web.client.post("/api/tokens", json=body, headers=headers)
        assert first.status_code == again.status_code == 201
        assert again.json() == first.json()
        listed = web.get("/api/tokens", LEADER).json()["items"]
        assert [t["label"] for t in listed].count("script") == 1


class TestOpen311:
    def form(self, web: Web, **extra: str) -> dict[str, str]:
        return {
            "api_key": web.token("admin"),
            "service_code": "sanitation",
            "lat": "29.1",
            "long": "119.6",
            "attribute[grid]": MICRO,
            "description": "墙角堆满垃圾",
            **extra,
        }

    def test_the_same_key_twice_makes_one_request(self, web: Web) -> None:
        form = self.form(web)
        first = web.client.post(f"{BASE}/requests.json", data=form, headers=key("o-1"))
        again = web.client.post(f"{BASE}/requests.json", data=form, headers=key("o-1"))
        assert first.status_code == again.status_code == 200
        assert again.content == first.content
        assert again.headers["content-type"] == first.headers["content-type"]
        assert count(web.app, tickets) == 1

    def test_xml_is_replayed_as_xml_and_another_body_is_422(self, web: Web) -> None:
        form = self.form(web)
        first = web.client.post(f"{BASE}/requests.xml", data=form, headers=key("o-2"))
        again = web.client.post(f"{BASE}/requests.xml", data=form, headers=key("o-2"))
        assert again.content == first.content and again.headers["content-type"].startswith(
            "text/xml"
        )
        other = web.client.post(
            f"{BASE}/requests.json", data=self.form(web, description="别处"), headers=key("o-2")
        )
        assert other.status_code == 422
        assert other.json()[0]["code"] == 422
        assert count(web.app, tickets) == 1


class TestClaims:
    """The claim itself, under the API: the unique pair has one winner, a running request is
    waited for, a dead one is taken over, and a late writer whose claim was taken rolls back."""

    def test_concurrent_claims_of_one_key_have_one_winner(self, app: App) -> None:
        barrier = threading.Barrier(6)
        got: list[Any] = []
        lock = threading.Lock()

        def one() -> None:
            barrier.wait()
            result = idempotency._try_claim(app, "token:1", "k", "fp", NOW, timedelta(hours=24))
            with lock:
                got.append(result)

        threads = [threading.Thread(target=one) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        winners = [g for g in got if isinstance(g, idempotency.Claim)]
        assert len(winners) == 1
        assert got.count(None) == 5  # still running: the API waits, then answers 409

    def test_a_dead_claim_is_taken_over_and_its_late_answer_rolls_back(self, app: App) -> None:
        keep = timedelta(hours=24)
        dead = idempotency._try_claim(app, "token:1", "k", "fp", NOW, keep)
        assert isinstance(dead, idempotency.Claim)
        assert idempotency._try_claim(app, "token:1", "k", "fp", NOW, keep) is None
        later = NOW + idempotency.LOCK + timedelta(seconds=1)
        heir = idempotency._try_claim(app, "token:1", "k", "fp", later, keep)
        assert isinstance(heir, idempotency.Claim) and heir.id == dead.id
        with pytest.raises(idempotency.StillRunning), app.engine.begin() as conn:
            dead.record(conn, 201, "application/json", b"{}")
        heir.finish(201, "application/json", b'{"ok":true}')
        stored = idempotency._try_claim(app, "token:1", "k", "fp", later, keep)
        assert isinstance(stored, idempotency.Stored)
        assert (stored.status, stored.body) == (201, b'{"ok":true}')
        with pytest.raises(idempotency.KeyReused):
            idempotency._try_claim(app, "token:1", "k", "other", later, keep)

    def test_an_answer_committed_with_the_ticket_survives_a_crash_before_the_reply(
        self, web: Web, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # The worker dies after the ticket committed and before it answered: the answer was
        # written in the ticket's transaction, so the retry finds it.
        def die(*args: Any, **kwargs: Any) -> None:
            raise RuntimeError("killed")  # stands for the SIGKILL between commit and reply

        monkeypatch.setattr(idempotency.Claim, "finish", die)
        monkeypatch.setattr(idempotency.Claim, "release", lambda self: None)  # dead: no cleanup
        with pytest.raises(RuntimeError, match="killed"):
            web.client.post("/api/tickets", json=REPORT, headers=key("crash"))
        monkeypatch.undo()
        assert count(web.app, tickets) == 1
        again = web.client.post("/api/tickets", json=REPORT, headers=key("crash"))
        assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
        assert count(web.app, tickets) == 1
        with web.app.engine.connect() as conn:
            ref = conn.execute(select(tickets.c.ref)).scalar_one()
        assert again.json()["ref"] == ref


def test_every_post_of_the_api_and_open311_documents_the_header(web: Web) -> None:
    schema = web.client.get("/openapi.json").json()
    posts = {
        path: op["post"]
        for path, op in schema["paths"].items()
        if "post" in op and path.startswith(("/api/", "/open311/"))
    }
    assert len(posts) >= 6
    for path, op in posts.items():
        names = [(p["name"], p["in"]) for p in op.get("parameters", [])]
        assert ("Idempotency-Key", "header") in names, path
