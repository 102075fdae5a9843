"""Issue 10, items 5, 6 and 7: the login limit, CSRF bound to the session, and tokens.

5. `forwarded_allow_ips = "127.0.0.1"` trusted X-Forwarded-For from any local client: a made-up
   header escaped the lockout. No forwarding header is trusted unless a proxy is configured,
   and failures count per handle from all addresses as well as per handle and address.
6. A victim's session with an attacker's own CSRF cookie/token pair was accepted. The token is
   bound to the session now.
7. A token could create tokens; a password reset left the person's tokens working. Tokens cannot
   mint tokens; a password reset or disabling a person revokes their tokens, audit-logged.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from sqlalchemy import select

from closeloop.bootstrap import App
from closeloop.models import api_tokens
from closeloop.web import audit, auth
from closeloop.web.serve import proxy_options
from closeloop.web.settings import WebSettings
from tests.livetools import head, live_server, read_response
from tests.webtools import PASSWORD, Web, csrf, login, make_web, with_config, with_password

# --- 5. the login limit -------------------------------------------------------------------------


def _login_over_socket(port: int, handle: str, password: str, forwarded: str) -> int:
    """A login from a fresh connection with a made-up X-Forwarded-For; the status."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(head("GET", "/api/csrf", {"X-Forwarded-For": forwarded}))
        _, headers, body = read_response(conn)
        cookie = headers["set-cookie"].split(";")[0]
        token = body.decode().split('"csrf_token":"')[1].split('"')[0]
        form = urlencode({"handle": handle, "password": password, "csrf_token": token}).encode()
        conn.sendall(
            head(
                "POST",
                "/login",
                {
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Content-Length": str(len(form)),
                    "Cookie": cookie,
                    "X-Forwarded-For": forwarded,
                },
            )
            + form
        )
        status, _, _ = read_response(conn)
    return status


def test_a_made_up_forwarded_for_does_not_escape_the_lockout(app: App) -> None:
    """The service as `closeloop serve` runs it, with the default configuration."""
    handle = "yantou.g3"
    auth.set_password(app, handle, PASSWORD)
    options = proxy_options(WebSettings.from_settings(app.settings))
    assert options["proxy_headers"] is False
    with live_server(app, **options) as live:
        for i in range(5):
            assert _login_over_socket(live.port, handle, "wrong!!!!", f"10.9.0.{i}") == 401
        # Right password, a new made-up address each time: still locked.
        for i in range(3):
            assert _login_over_socket(live.port, handle, PASSWORD, f"10.8.0.{i}") == 429


def test_a_configured_proxy_is_trusted(app: App) -> None:
    settings = WebSettings.from_settings(
        with_config(app, "web", forwarded_allow_ips="10.0.0.5").settings
    )
    assert proxy_options(settings) == {
        "access_log": False,
        "proxy_headers": True,
        "forwarded_allow_ips": "10.0.0.5",
    }


def test_failures_count_per_handle_from_every_address(web: Web) -> None:
    handle = with_password(web)
    cfg = WebSettings.from_settings(web.app.settings)
    now = web.clock()
    for i in range(cfg.login_max_failures_per_handle):
        with pytest.raises(auth.LoginFailed):
            auth.authenticate(web.app, cfg, handle, "wrong!!!!", f"10.1.{i}.1", now)
    with pytest.raises(auth.TooManyAttempts, match=r"too many failed logins for 'yantou\.g3';"):
        auth.authenticate(web.app, cfg, handle, PASSWORD, "10.2.0.1", now)
    # Another person is not affected, and the window passes.
    with_password(web, "yantou.lead")
    auth.authenticate(web.app, cfg, "yantou.lead", PASSWORD, "10.2.0.1", now)
    later = now + timedelta(minutes=cfg.login_window_minutes, seconds=1)
    assert auth.authenticate(web.app, cfg, handle, PASSWORD, "10.2.0.1", later).handle == handle


# --- 6. CSRF bound to the session -------------------------------------------------------------


def test_a_planted_csrf_pair_fails_in_the_victims_session(app: App) -> None:
    webs, attacker_webs = make_web(app), make_web(app)
    try:
        victim, attacker = next(webs), next(attacker_webs)
        planted_pair_is_refused(victim, attacker)
    finally:
        webs.close()
        attacker_webs.close()


def planted_pair_is_refused(victim: Web, attacker: Web) -> None:
    handle = with_password(victim)
    # The attacker's own pair, made by the service for the attacker (without a session).
    pair_token = csrf(attacker)
    pair_cookie = attacker.client.cookies["closeloop_csrf"]

    assert login(victim, handle).status_code == 303
    ref = victim.submit()["ref"]
    # The victim's browser carries the planted CSRF cookie; the forged request sends its token.
    session = victim.client.cookies["closeloop_session"]
    victim.client.cookies.clear()
    victim.client.cookies.set("closeloop_session", session)
    victim.client.cookies.set("closeloop_csrf", pair_cookie)
    r = victim.client.post(
        f"/api/tickets/{ref}/steps/fix", json={"note": "x"}, headers={"X-CSRF-Token": pair_token}
    )
    assert r.status_code == 403, r.text
    assert "CSRF" in r.json()["error"]["message"]
    # The token the service gives this session (for the cookie it now holds) works.
    r = victim.client.post(
        f"/api/tickets/{ref}/steps/fix", json={"note": "x"}, headers={"X-CSRF-Token": csrf(victim)}
    )
    assert r.status_code == 200, r.text


def test_a_token_from_before_login_does_not_hold_after_it(web: Web) -> None:
    handle = with_password(web)
    before = csrf(web)
    assert login(web, handle).status_code == 303
    after = csrf(web)
    assert after != before
    r = web.client.post("/logout", data={"csrf_token": before}, follow_redirects=False)
    assert r.status_code == 403
    r = web.client.post("/logout", data={"csrf_token": after}, follow_redirects=False)
    assert r.status_code == 303


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- 7. tokens ---------------------------------------------------------------------------------


def test_a_token_cannot_mint_tokens(web: Web) -> None:
    r = web.post("/api/tokens", "admin", json={"label": "child"})
    assert r.status_code == 403, r.text
    assert "cannot create tokens" in r.json()["error"]["message"]
    with web.app.engine.connect() as conn:
        labels = list(conn.execute(select(api_tokens.c.label)).scalars())
    assert "child" not in labels
    # A logged-in person can (with the CSRF token of the session).
    handle = with_password(web)
    assert login(web, handle).status_code == 303
    r = web.client.post("/api/tokens", json={"label": "mine"}, headers={"X-CSRF-Token": csrf(web)})
    assert r.status_code == 201, r.text


def test_a_password_reset_revokes_the_persons_tokens_with_an_audit_line(web: Web) -> None:
    token = web.token("yantou.g3")
    assert web.get("/api/me", "yantou.g3").status_code == 200
    r = web.post("/api/users/yantou.g3/password", "admin", json={"password": "new password 1"})
    assert r.status_code == 200, r.text
    r = web.client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
    lines = audit.lines(web.app.engine, "yantou.g3")
    assert [(x["actor"], x["action"]) for x in lines][-1] == ("admin", "password.reset")
    assert "1 token(s) revoked" in lines[-1]["detail"]


def test_disabling_a_person_revokes_tokens_ends_sessions_and_refuses_login(web: Web) -> None:
    handle = with_password(web)
    token = web.token(handle)
    r = web.post(f"/api/users/{handle}/disable", "admin")
    assert r.status_code == 200, r.text
    assert (
        web.client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    )
    assert login(web, handle).status_code == 401
    actions = [x["action"] for x in audit.lines(web.app.engine, handle)]
    assert actions[-1] == "person.disable"
    digest = hashlib.sha256(token.encode()).hexdigest()
    with web.app.engine.connect() as conn:
        revoked = conn.execute(
            select(api_tokens.c.revoked_at).where(api_tokens.c.token_hash == digest)
        ).scalar_one()
    assert revoked is not None
    # Enabled again: the password works, the old token stays revoked.
    assert web.post(f"/api/users/{handle}/enable", "admin").status_code == 200
    assert login(web, handle).status_code == 303
    assert (
        web.client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    )
    assert audit.lines(web.app.engine, handle)[-1]["action"] == "person.enable"


def test_token_creation_and_revocation_are_audit_logged(web: Web) -> None:
    made = auth.create_token(web.app, "yantou.g3", "hotline", web.clock())
    auth.revoke_token(web.app, made.id, web.clock())
    lines = audit.lines(web.app.engine, "yantou.g3")
    assert [(x["actor"], x["action"]) for x in lines] == [
        ("cli", "token.create"),
        ("cli", "token.revoke"),
    ]
