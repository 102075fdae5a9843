"""Accounts and security: passwords, login and its rate limit, sessions, CSRF, API tokens,
administrators, and the user/token commands."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from closeloop.app import App
from closeloop.models import api_tokens, login_attempts, people, web_sessions
from closeloop.tickets import Invalid, NotFound
from closeloop.web import auth
from tests import cli_support
from tests.conftest import NOW
from tests.webtools import PASSWORD, Web, csrf, login, make_web, with_config, with_password


class TestPasswords:
    def test_argon2_hash_verifies_and_never_stores_the_password(self, web: Web) -> None:
        with_password(web)
        with web.app.engine.connect() as conn:
            stored = conn.execute(
                select(people.c.password_hash).where(people.c.handle == "yantou.g3")
            ).scalar_one()
        assert stored.startswith("$argon2id$") and PASSWORD not in stored
        assert auth.verify_password(stored, PASSWORD)
        assert not auth.verify_password(stored, PASSWORD + "x")
        assert not auth.verify_password(None, PASSWORD)
        assert not auth.verify_password("not a hash", PASSWORD)

    def test_rules(self, web: Web) -> None:
        with pytest.raises(Invalid, match="at least 8"):
            auth.set_password(web.app, "yantou.g3", "short")
        with pytest.raises(NotFound, match="unknown person 'nobody'"):
            auth.set_password(web.app, "nobody", PASSWORD)


class TestLogin:
    def test_login_sets_a_safe_session_cookie(self, web: Web) -> None:
        handle = with_password(web)
        r = login(web, handle, next="/inbox")
        assert r.status_code == 303 and r.headers["location"] == "/inbox"
        cookie = next(c for c in r.headers.get_list("set-cookie") if "closeloop_session" in c)
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
        me = web.client.get("/api/me")
        assert me.status_code == 200 and me.json()["handle"] == handle
        assert me.json()["via"] == "session"
        # Only the hash of the cookie value is stored.
        value = web.client.cookies["closeloop_session"]
        with web.app.engine.connect() as conn:
            stored = conn.execute(select(web_sessions.c.token_hash)).scalar_one()
        assert stored == hashlib.sha256(value.encode()).hexdigest()

    def test_secure_behind_tls(self, web: Web) -> None:
        handle = with_password(web)
        token = csrf(web)
        # X-Forwarded-Proto from the client itself is not believed (issue 10, item 5) ...
        r = web.client.post(
            "/login",
            data={"handle": handle, "password": PASSWORD, "csrf_token": token},
            headers={"X-Forwarded-Proto": "https"},
            follow_redirects=False,
        )
        assert r.status_code == 303
        assert "Secure" not in r.headers["set-cookie"]
        # ... the scheme is, as uvicorn sets it (from a configured proxy's header).
        r = web.client.post(
            "https://testserver/login",
            data={"handle": handle, "password": PASSWORD, "csrf_token": csrf(web)},
            follow_redirects=False,
        )
        assert r.status_code == 303
        assert "Secure" in r.headers["set-cookie"]

    def test_secure_cookies_from_config(self, app: App) -> None:
        for web in make_web(with_config(app, "web", secure_cookies=True)):
            r = web.client.get("/api/csrf")
            assert "Secure" in r.headers["set-cookie"]

    def test_next_never_leaves_the_site(self, web: Web) -> None:
        handle = with_password(web)
        for target in ("https://evil.example/", "//evil.example/x", "/\\evil", "inbox"):
            r = login(web, handle, next=target)
            assert r.headers["location"] == "/", target

    def test_wrong_password_and_unknown_handle_look_alike(self, web: Web) -> None:
        handle = with_password(web)
        a, b = login(web, handle, "wrong password"), login(web, "nobody", "wrong password")
        assert a.status_code == b.status_code == 401
        assert (
            a.json()
            == b.json()
            == {"error": {"code": "auth.login_failed", "message": "wrong handle or password"}}
        )
        assert "closeloop_session" not in web.client.cookies

    def test_a_person_without_a_password_cannot_log_in(self, web: Web) -> None:
        assert login(web, "yantou.lead", "anything at all").status_code == 401

    def test_logout_ends_the_session_everywhere(self, web: Web) -> None:
        handle = with_password(web)
        login(web, handle)
        value = web.client.cookies["closeloop_session"]
        r = web.client.post("/logout", data={"csrf_token": csrf(web)}, follow_redirects=False)
        assert r.status_code == 303
        # The old cookie value is dead on the server, not only forgotten by this browser.
        web.client.cookies.clear()
        web.client.cookies.set("closeloop_session", value)
        assert web.client.get("/api/me").status_code == 401

    def test_sessions_expire_when_idle(self, web: Web) -> None:
        handle = with_password(web)
        login(web, handle)
        web.clock.advance(timedelta(hours=11))
        assert web.client.get("/api/me").status_code == 200  # and slides the expiry on
        web.clock.advance(timedelta(hours=11))
        assert web.client.get("/api/me").status_code == 200
        web.clock.advance(timedelta(hours=12, minutes=1))
        assert web.client.get("/api/me").status_code == 401

    def test_sessions_end_after_the_maximum_anyway(self, web: Web) -> None:
        handle = with_password(web)
        login(web, handle)
        for _ in range(15):
            web.clock.advance(timedelta(hours=11))
            assert web.client.get("/api/me").status_code == 200
        web.clock.advance(timedelta(hours=11))  # 176 h > 168 h
        assert web.client.get("/api/me").status_code == 401

    def test_ended_sessions_are_swept_at_the_next_login(self, web: Web) -> None:
        login(web, with_password(web))
        web.clock.advance(timedelta(hours=13))
        login(web, with_password(web, "yantou.lead"))
        with web.app.engine.connect() as conn:
            owners = conn.execute(select(web_sessions.c.person_id)).scalars().all()
            lead = conn.execute(
                select(people.c.id).where(people.c.handle == "yantou.lead")
            ).scalar_one()
        assert owners == [lead]

    def test_a_new_password_ends_old_sessions(self, web: Web) -> None:
        handle = with_password(web)
        login(web, handle)
        auth.set_password(web.app, handle, "another password")
        assert web.client.get("/api/me").status_code == 401


class TestRateLimit:
    def test_five_failures_lock_that_handle_from_that_address(self, web: Web) -> None:
        handle = with_password(web)
        for _ in range(5):
            assert login(web, handle, "wrong password").status_code == 401
        r = login(web, handle)  # even the right password now
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) == 15 * 60 + 1
        assert "too many failed logins" in r.json()["error"]["message"]
        # Another handle from the same address is not locked out.
        other = with_password(web, "yantou.lead")
        assert login(web, other).status_code == 303

    def test_the_lock_holds_across_workers(self, app: App) -> None:
        webs = [make_web(app), make_web(app)]
        first, second = (next(w) for w in webs)
        handle = with_password(first)
        for _ in range(5):
            login(first, handle, "wrong password")
        assert login(second, handle).status_code == 429
        for w in webs:
            w.close()

    def test_the_window_passes(self, web: Web) -> None:
        handle = with_password(web)
        for _ in range(5):
            login(web, handle, "wrong password")
        web.clock.advance(timedelta(minutes=15, seconds=1))
        assert login(web, handle).status_code == 303
        with web.app.engine.connect() as conn:
            assert conn.execute(select(login_attempts)).all() == []

    def test_old_failures_are_swept_whoever_they_were_for(self, web: Web) -> None:
        for handle in ("guess1", "guess2", "guess3"):
            login(web, handle, "wrong password")
        web.clock.advance(timedelta(minutes=16))
        login(web, "guess4", "wrong password")
        with web.app.engine.connect() as conn:
            left = conn.execute(select(login_attempts.c.handle)).scalars().all()
        assert left == ["guess4"]

    def test_limit_from_config(self, app: App) -> None:
        for web in make_web(with_config(app, "web", login_max_failures=2)):
            handle = with_password(web)
            login(web, handle, "nope nope")
            login(web, handle, "nope nope")
            assert login(web, handle).status_code == 429


class TestCsrf:
    def test_login_form_without_token_is_refused(self, web: Web) -> None:
        handle = with_password(web)
        r = web.client.post(
            "/login", data={"handle": handle, "password": PASSWORD}, follow_redirects=False
        )
        assert r.status_code == 403
        assert "CSRF" in r.json()["error"]["message"]

    def test_a_token_not_matching_the_cookie_is_refused(self, web: Web) -> None:
        handle = with_password(web)
        token = csrf(web)
        web.client.cookies.clear()
        web.client.cookies.set("closeloop_csrf", "x" * 32)  # e.g. planted by another site
        r = web.client.post(
            "/login",
            data={"handle": handle, "password": PASSWORD, "csrf_token": token},
            follow_redirects=False,
        )
        assert r.status_code == 403

    def test_a_forged_token_is_refused(self, web: Web) -> None:
        handle = with_password(web)
        csrf(web)
        cookie = web.client.cookies["closeloop_csrf"]
        r = web.client.post(
            "/login",
            data={"handle": handle, "password": PASSWORD, "csrf_token": cookie},
            follow_redirects=False,
        )
        assert r.status_code == 403

    def test_cookie_sessions_need_the_token_for_unsafe_requests(self, web: Web) -> None:
        handle = with_password(web)
        login(web, handle)
        ref = web.submit()["ref"]
        r = web.client.post(f"/api/tickets/{ref}/steps/fix", json={"note": "x"})
        assert r.status_code == 403 and "CSRF" in r.json()["error"]["message"]
        assert web.state(ref) == "assigned"
        r = web.client.post(
            f"/api/tickets/{ref}/steps/fix",
            json={"note": "x"},
            headers={"X-CSRF-Token": csrf(web)},
        )
        assert r.status_code == 200 and r.json()["state"] == "fixed"

    def test_the_token_is_stable_for_a_browser(self, web: Web) -> None:
        assert csrf(web) == csrf(web)

    def test_the_signing_key_is_shared_through_the_database(self, app: App) -> None:
        first = make_web(app)
        a = next(first)
        token = csrf(a)
        cookie = a.client.cookies["closeloop_csrf"]
        for b in make_web(app):  # another worker, same database
            with_password(b)
            b.client.cookies.clear()
            b.client.cookies.set("closeloop_csrf", cookie)
            r = b.client.post(
                "/login",
                data={"handle": "yantou.g3", "password": PASSWORD, "csrf_token": token},
                follow_redirects=False,
            )
            assert r.status_code == 303
        first.close()


class TestTokens:
    def test_shown_once_stored_hashed_and_used(self, web: Web) -> None:
        made = auth.create_token(web.app, "yantou.g3", "hotline", NOW)
        assert made.token.startswith("cl_") and len(made.token) > 40
        with web.app.engine.connect() as conn:
            row = conn.execute(select(api_tokens)).one()
        assert row.token_hash == hashlib.sha256(made.token.encode()).hexdigest()
        assert row.last_used_at is None and row.label == "hotline"
        web.clock.advance(timedelta(minutes=5))
        r = web.client.get("/api/me", headers={"Authorization": f"Bearer {made.token}"})
        assert r.status_code == 200 and r.json()["handle"] == "yantou.g3"
        listed = auth.list_tokens(web.app, "yantou.g3")
        assert listed[0]["last_used_at"] == NOW + timedelta(minutes=5)

    def test_revoked_tokens_stop_working(self, web: Web) -> None:
        token = web.token("yantou.g3")
        mine = web.get("/api/tokens", "yantou.g3").json()["items"]
        assert [t["label"] for t in mine] == ["test"]
        r = web.client.delete(
            f"/api/tokens/{mine[0]['id']}", headers={"Authorization": f"Bearer {token}"}
        )
        assert r.status_code == 200 and r.json()["revoked_at"] is not None
        r = web.client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401 and r.json() == {
            "error": {"code": "auth.bad_token", "message": "unknown or revoked API token"}
        }

    def test_bad_authorization_headers(self, web: Web) -> None:
        for header in ("Bearer nope", "Bearer cl_nope", "Basic eDp5", "Bearer "):
            r = web.client.get("/api/me", headers={"Authorization": header})
            assert r.status_code == 401, header
            assert "error" in r.json()

    def test_one_may_not_revoke_anothers_token(self, web: Web) -> None:
        web.token("yantou.g3")
        other = web.get("/api/tokens", "yantou.g3").json()["items"][0]["id"]
        r = web.client.delete(f"/api/tokens/{other}", headers=web.auth("caoyuan.g1"))
        assert r.status_code == 404
        r = web.client.delete(f"/api/tokens/{other}", headers=web.auth("admin"))
        assert r.status_code == 200

    def test_create_over_the_api(self, app: App) -> None:
        # Tokens are made by a logged-in person (a token cannot mint tokens: issue 10, item 7).
        def as_(handle: str) -> Iterator[Web]:
            for web in make_web(app):
                auth.set_password(app, handle, PASSWORD)
                assert login(web, handle).status_code == 303
                yield web

        def post(web: Web, body: dict[str, str]):  # type: ignore[no-untyped-def]
            return web.client.post("/api/tokens", json=body, headers={"X-CSRF-Token": csrf(web)})

        for web in as_("yantou.g3"):
            r = post(web, {"label": "phone"})
            assert r.status_code == 201
            made = r.json()
            me = web.client.get("/api/me", headers={"Authorization": f"Bearer {made['token']}"})
            assert me.json()["handle"] == "yantou.g3"
            assert post(web, {"handle": "admin"}).status_code == 403
        for web in as_("admin"):
            r = post(web, {"handle": "yantou.lead", "label": "for him"})
            assert r.status_code == 201 and r.json()["handle"] == "yantou.lead"
            assert post(web, {"handle": "nobody"}).status_code == 404

    def test_listing_everyone_is_for_administrators(self, web: Web) -> None:
        web.token("yantou.g3")
        assert web.get("/api/tokens", "yantou.g3", params={"all": "true"}).status_code == 403
        everyone = web.get("/api/tokens", "admin", params={"all": "true"}).json()["items"]
        assert {t["handle"] for t in everyone} == {"yantou.g3", "admin"}


class TestAdministrators:
    def test_people_list_and_password_reset(self, web: Web) -> None:
        assert web.get("/api/users", "duban.wang").status_code == 403
        people_ = web.get("/api/users", "admin").json()["items"]
        lead = next(p for p in people_ if p["handle"] == "yantou.lead")
        assert lead["leads"] == ["JS-A1-V01"] and lead["has_password"] is False
        r = web.post("/api/users/yantou.lead/password", "admin", json={"password": "brand new pw"})
        assert r.status_code == 200
        assert login(web, "yantou.lead", "brand new pw").status_code == 303
        r = web.post("/api/users/yantou.lead/password", "admin", json={"password": "short"})
        assert r.status_code == 422
        r = web.post("/api/users/yantou.lead/password", "duban.wang", json={"password": "x" * 9})
        assert r.status_code == 403
        assert (
            web.post("/api/users/nobody/password", "admin", json={"password": "x" * 9}).status_code
            == 404
        )

    def test_own_password_change(self, web: Web) -> None:
        handle = with_password(web)
        body = {"current_password": "wrong", "new_password": "a new password"}
        assert web.post("/api/me/password", handle, json=body).status_code == 403
        body["current_password"] = PASSWORD
        assert web.post("/api/me/password", handle, json=body).status_code == 200
        assert login(web, handle, "a new password").status_code == 303


# --- the commands --------------------------------------------------------------------------------


def run_cli(db: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """In this process (tests/cli_support.run_cli); test_cli_module_runs starts a real one."""
    return cli_support.run_cli(["--db", db, *args], input=stdin)


@pytest.fixture
def db_url(sqlite_app: App) -> str:
    return sqlite_app.settings.database_url


class TestCommands:
    def test_set_password_from_stdin(self, db_url: str, sqlite_app: App) -> None:
        r = run_cli(
            db_url, "user", "set-password", "yantou.g3", "--password-stdin", stdin=PASSWORD + "\n"
        )
        assert r.returncode == 0, r.stderr
        assert "yantou.g3: password set" in r.stdout
        with sqlite_app.engine.connect() as conn:
            stored = conn.execute(
                select(people.c.password_hash).where(people.c.handle == "yantou.g3")
            ).scalar_one()
        assert auth.verify_password(stored, PASSWORD)

    def test_set_password_prompts_twice(self, db_url: str) -> None:
        r = run_cli(db_url, "user", "set-password", "yantou.g3", stdin=f"{PASSWORD}\n{PASSWORD}\n")
        assert r.returncode == 0, r.stderr
        r = run_cli(db_url, "user", "set-password", "yantou.g3", stdin=f"{PASSWORD}\nother pw 2\n")
        assert r.returncode == 2 and "differ" in r.stderr

    def test_set_password_errors(self, db_url: str) -> None:
        r = run_cli(
            db_url, "user", "set-password", "yantou.g3", "--password-stdin", stdin="short\n"
        )
        assert r.returncode == 2 and "error: a password needs at least 8 characters" in r.stderr
        r = run_cli(db_url, "user", "set-password", "nobody", "--password-stdin", stdin=PASSWORD)
        assert r.returncode == 2 and "error: unknown person 'nobody'" in r.stderr

    def test_user_list(self, db_url: str) -> None:
        run_cli(db_url, "user", "set-password", "admin", "--password-stdin", stdin=PASSWORD)
        r = run_cli(db_url, "user", "list")
        assert r.returncode == 0
        admin = next(line for line in r.stdout.splitlines() if line.startswith("admin "))
        assert "password" in admin and "admin,supervisor" in admin

    def test_tokens(self, db_url: str, sqlite_app: App) -> None:
        r = run_cli(db_url, "token", "create", "yantou.g3", "--label", "12345 热线")
        assert r.returncode == 0, r.stderr
        token = r.stdout.strip()
        assert token.startswith("cl_") and "shown once" in r.stderr
        assert auth.token_principal(sqlite_app, token, NOW) is not None
        r = run_cli(db_url, "token", "list")
        assert "12345 热线" in r.stdout and "active" in r.stdout and token not in r.stdout
        r = run_cli(db_url, "token", "revoke", "1")
        assert r.returncode == 0 and "revoked" in r.stdout
        assert auth.token_principal(sqlite_app, token, NOW) is None
        assert run_cli(db_url, "token", "revoke", "99").returncode == 2
        assert run_cli(db_url, "token", "create", "nobody").returncode == 2

    def test_serve_refuses_workers_on_sqlite(self, db_url: str) -> None:
        r = run_cli(db_url, "serve", "--workers", "2")
        assert r.returncode == 2 and "--workers needs PostgreSQL" in r.stderr


def test_cli_module_runs(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "closeloop", "token", "--help"], capture_output=True, text=True
    )
    assert r.returncode == 0 and "create" in r.stdout
