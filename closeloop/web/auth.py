"""Who is asking: passwords, sessions, API tokens, login rate limiting and CSRF protection.

- Passwords are hashed with argon2id (argon2-cffi) into `people.password_hash`.
- A browser session is a random cookie value; the database keeps only its sha256, with the
  person and the expiry, so a session can be ended (logout, password change) on every worker.
  The cookie is HttpOnly, SameSite=Lax, and Secure behind TLS.
- An API token ("cl_..." + 43 random characters) is shown once and stored as its sha256, with a
  label, the last time it was used, and a revocation time. Clients send `Authorization: Bearer`;
  Open311 clients send it as `api_key`.
- Failed logins are rows keyed by handle and client address: after `login_max_failures` within
  `login_window_minutes` the login answers 429, whichever worker the next attempt reaches.
- CSRF: a signed double-submit token bound to the session. The browser holds a random value in
  an HttpOnly cookie; forms carry HMAC(key, value, sha256 of the session cookie) as `csrf_token`
  (or scripts send it as `X-CSRF-Token`). A page on another site can make the browser send the
  cookie but can neither read it nor compute the HMAC; a cookie and token pair planted from an
  attacker's own session (or from none) fails once the victim is logged in.
  Every unsafe request authenticated by the session cookie must carry it; so must the login form.

For the pages: `csrf_token(request)` gives the token to put in every form; `require_csrf` is the
dependency that checks it; `optional_principal` / `current_principal` say who is logged in;
`authenticate()` + `open_session()` + `set_session_cookie()` log someone in.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import os
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import Connection, bindparam, delete, func, insert, select, update
from starlette.concurrency import run_in_threadpool

from closeloop.app import App
from closeloop.db import insert_ignoring_duplicates, read_only
from closeloop.grid import with_own_grids
from closeloop.models import api_tokens, grids, login_attempts, people, web_keys, web_sessions
from closeloop.service import SOURCES
from closeloop.tickets import Actor, DomainError, Invalid, NotFound, NotPermitted
from closeloop.web import audit
from closeloop.web.schemas import ERROR_RESPONSES, Text
from closeloop.web.settings import WebSettings
from closeloop.web.writers import one_writer

SESSION_COOKIE = "closeloop_session"
CSRF_COOKIE = "closeloop_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
TOKEN_PREFIX = "cl_"
PASSWORD_MIN = 8
PASSWORD_MAX = 1024  # argon2 would hash a megabyte; nobody types one
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# request.state key: the person `closeloop.web.limits.CredentialsFirst` found before the body
PRE_PRINCIPAL = "pre_principal"
# How stale `seen_at` / `last_used_at` may get before a request writes them again: reading
# requests should not each take the (SQLite) write lock.
TOUCH_EVERY = timedelta(minutes=1)


def _password_hasher() -> PasswordHasher:
    """argon2id at argon2-cffi's production cost (about 0.3 s a hash on a small server), or at
    the lowest cost argon2 allows when CLOSELOOP_PASSWORD_HASH=cheap: the tests' setting (set by
    tests/conftest.py, so the processes tests start inherit it). Never set it in production.
    Each hash records its own cost, and a login rehashes one made at another cost."""
    if os.environ.get("CLOSELOOP_PASSWORD_HASH") == "cheap":
        return PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    return PasswordHasher()


_hasher = _password_hasher()
# Verified when the handle is unknown, so a wrong handle costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("closeloop: no such person")


class NotAuthenticated(DomainError):
    status = 401


class LoginFailed(DomainError):
    status = 401


class TooManyAttempts(DomainError):
    status = 429

    def __init__(self, code: str, retry_after: int, /, **params: Any) -> None:
        super().__init__(code, **params)
        self.retry_after = retry_after


class CsrfFailed(DomainError):
    status = 403


# --- who ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Principal:
    """A person making a request, and how they proved it."""

    person_id: int
    handle: str
    name: str
    roles: frozenset[str]
    led_paths: tuple[str, ...]
    via: str  # "session" | "token"
    token_id: int | None = None
    member_paths: tuple[str, ...] = ()  # grids this person is a member of (grid_members)
    # The source of the tickets a token files (`token create --source`): a hotline's key
    # files "hotline" tickets; None: public.
    source: str | None = None

    @property
    def is_supervisor(self) -> bool:
        return "supervisor" in self.roles

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    @property
    def actor(self) -> Actor:
        return Actor(
            self.person_id, self.handle, self.name, self.roles, self.led_paths, self.member_paths
        )

    @property
    def has_inbox(self) -> bool:
        return bool(self.led_paths or self.member_paths)


# The person with the paths of the grids they lead or are a member of (one row per grid, or one
# with no path), joined to what proves who they are. Built once with bound parameters: these run
# on every request, and building a statement costs more than SQLite takes to run it.
_WHO = (people.c.id, people.c.handle, people.c.name, people.c.roles)
_BY_PERSON = with_own_grids(_WHO, people, people.c.id == bindparam("person_id"))
_BY_TOKEN = with_own_grids(
    (
        *_WHO,
        api_tokens.c.id.label("token_id"),
        api_tokens.c.last_used_at,
        api_tokens.c.source.label("token_source"),
    ),
    api_tokens.join(people, people.c.id == api_tokens.c.person_id),
    api_tokens.c.token_hash == bindparam("digest"),
    api_tokens.c.revoked_at.is_(None),
    people.c.disabled_at.is_(None),
)
_BY_SESSION = with_own_grids(
    (
        *_WHO,
        web_sessions.c.id.label("session_id"),
        web_sessions.c.created_at,
        web_sessions.c.seen_at,
        web_sessions.c.expires_at,
    ),
    web_sessions.join(people, people.c.id == web_sessions.c.person_id),
    web_sessions.c.token_hash == bindparam("digest"),
    people.c.disabled_at.is_(None),
)


def _principal(rows: Sequence[Any], via: str, token_id: int | None = None) -> Principal | None:
    if not rows:
        return None
    p = rows[0]
    roles = frozenset(r for r in p.roles.split(",") if r)
    paths = tuple(sorted(r.path for r in rows if r.path is not None and r.leads))
    member = tuple(sorted(r.path for r in rows if r.path is not None and not r.leads))
    return Principal(p.id, p.handle, p.name, roles, paths, via, token_id, member)


def _load_principal(
    conn: Connection, person_id: int, via: str, token_id: int | None = None
) -> Principal | None:
    return _principal(conn.execute(_BY_PERSON, {"person_id": person_id}).all(), via, token_id)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# --- passwords ---------------------------------------------------------------------------------


def check_password_rules(password: str) -> None:
    if len(password) < PASSWORD_MIN:
        raise Invalid("auth.password_short", n=PASSWORD_MIN)
    if len(password) > PASSWORD_MAX:
        raise Invalid("auth.password_long", n=PASSWORD_MAX)


def hash_password(password: str) -> str:
    check_password_rules(password)
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _DUMMY_HASH, password[:PASSWORD_MAX]) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def set_password(
    app: App, handle: str, password: str, *, now: datetime | None = None, by: str = audit.CLI
) -> None:
    """Set a person's password, end their sessions and revoke their API tokens (a reset locks
    out whoever had any of them), with a line in the audit log."""
    hashed = hash_password(password)
    at = now or app.now()
    with app.engine.begin() as conn:
        person_id = conn.execute(select(people.c.id).where(people.c.handle == handle)).scalar()
        if person_id is None:
            raise NotFound("person.unknown", handle=handle)
        conn.execute(update(people).where(people.c.id == person_id).values(password_hash=hashed))
        ended, revoked = _lock_out(conn, person_id, at)
        audit.record(
            conn,
            at,
            by,
            "password.set" if by == handle else "password.reset",
            handle,
            f"{ended} session(s) ended, {revoked} token(s) revoked",
        )


def _lock_out(conn: Connection, person_id: int, at: datetime) -> tuple[int, int]:
    """End a person's sessions and revoke their tokens; how many of each."""
    ended = conn.execute(delete(web_sessions).where(web_sessions.c.person_id == person_id))
    revoked = conn.execute(
        update(api_tokens)
        .where(api_tokens.c.person_id == person_id, api_tokens.c.revoked_at.is_(None))
        .values(revoked_at=at)
    )
    return ended.rowcount or 0, revoked.rowcount or 0


def set_disabled(app: App, handle: str, disabled: bool, now: datetime, by: str = audit.CLI) -> None:
    """Disable a person (no login, sessions ended, tokens revoked) or enable them again."""
    with app.engine.begin() as conn:
        row = conn.execute(
            select(people.c.id, people.c.disabled_at).where(people.c.handle == handle)
        ).first()
        if row is None:
            raise NotFound("person.unknown", handle=handle)
        if disabled:
            if row.disabled_at is None:
                conn.execute(update(people).where(people.c.id == row.id).values(disabled_at=now))
            ended, revoked = _lock_out(conn, row.id, now)
            detail = f"{ended} session(s) ended, {revoked} token(s) revoked"
            audit.record(conn, now, by, "person.disable", handle, detail)
        elif row.disabled_at is not None:
            conn.execute(update(people).where(people.c.id == row.id).values(disabled_at=None))
            audit.record(conn, now, by, "person.enable", handle)


def list_people(app: App) -> list[dict[str, Any]]:
    with read_only(app.engine) as conn:
        led = conn.execute(
            select(grids.c.leader_id, grids.c.code).where(grids.c.leader_id.is_not(None))
        ).all()
        leads: dict[int, list[str]] = {}
        for leader_id, code in led:
            leads.setdefault(leader_id, []).append(code)
        rows = conn.execute(
            select(
                people.c.id,
                people.c.handle,
                people.c.name,
                people.c.roles,
                people.c.password_hash.is_not(None).label("has_password"),
                people.c.disabled_at,
            ).order_by(people.c.handle)
        )
        return [
            {
                "handle": r.handle,
                "name": r.name,
                "roles": [x for x in r.roles.split(",") if x],
                "has_password": bool(r.has_password),
                "disabled": r.disabled_at is not None,
                "leads": sorted(leads.get(r.id, [])),
            }
            for r in rows
        ]


# --- login and its rate limit ------------------------------------------------------------------


def _attempt_key(handle: str, ip: str) -> tuple[str, str]:
    return handle.strip()[:64], (ip or "unknown")[:64]


def authenticate(
    app: App, cfg: WebSettings, handle: str, password: str, ip: str, now: datetime
) -> Principal:
    """Check a handle and password; count failures per handle and address.

    The password check runs outside any transaction: argon2 takes tens of milliseconds and
    SQLite must not hold its write lock that long.
    """
    key_handle, key_ip = _attempt_key(handle, ip)
    window = timedelta(minutes=cfg.login_window_minutes)
    since = login_attempts.c.at > now - window
    same_handle = login_attempts.c.handle == key_handle
    with read_only(app.engine) as conn:
        here = conn.execute(
            select(func.count(), func.min(login_attempts.c.at)).where(
                same_handle, login_attempts.c.ip == key_ip, since
            )
        ).one()
        # From every address: rotating addresses (or a NAT of many) does not reset the count.
        anywhere = conn.execute(
            select(func.count(), func.min(login_attempts.c.at)).where(same_handle, since)
        ).one()
        person = conn.execute(
            select(people.c.id, people.c.password_hash)
            .where(people.c.handle == key_handle)
            .where(people.c.disabled_at.is_(None))
        ).first()
    for (failures, oldest), limit, from_here in (
        (here, cfg.login_max_failures, True),
        (anywhere, cfg.login_max_failures_per_handle, False),
    ):
        if failures >= limit:
            retry = max(1, int(((oldest + window) - now).total_seconds()) + 1)
            raise TooManyAttempts(
                "auth.login_limited_here" if from_here else "auth.login_limited",
                retry,
                handle=key_handle,
                minutes=(retry + 59) // 60,
            )
    ok = verify_password(person.password_hash if person else None, password)
    with app.engine.begin() as conn:
        if not ok:
            conn.execute(insert(login_attempts).values(handle=key_handle, ip=key_ip, at=now))
            # Rows older than the window count for nobody: sweep them all, so guessing at
            # many handles cannot grow the table beyond one window's failures.
            conn.execute(delete(login_attempts).where(login_attempts.c.at <= now - window))
        else:
            assert person is not None
            conn.execute(
                delete(login_attempts).where(
                    login_attempts.c.handle == key_handle, login_attempts.c.ip == key_ip
                )
            )
            if _hasher.check_needs_rehash(person.password_hash):
                conn.execute(
                    update(people)
                    .where(people.c.id == person.id)
                    .values(password_hash=_hasher.hash(password))
                )
            principal = _load_principal(conn, person.id, "session")
    if not ok:
        raise LoginFailed("auth.login_failed")
    assert principal is not None
    return principal


# --- sessions ----------------------------------------------------------------------------------


def open_session(
    app: App,
    cfg: WebSettings,
    person_id: int,
    now: datetime,
    *,
    ip: str | None = None,
    user_agent: str | None = None,
) -> str:
    """Start a session; returns the cookie value (kept only as a hash on our side)."""
    value = secrets.token_urlsafe(32)
    with app.engine.begin() as conn:
        conn.execute(
            insert(web_sessions).values(
                token_hash=_sha256(value),
                person_id=person_id,
                created_at=now,
                seen_at=now,
                expires_at=now + timedelta(hours=cfg.session_idle_hours),
                ip=(ip or "")[:64] or None,
                user_agent=(user_agent or "")[:200] or None,
            )
        )
        # Sweep ended sessions (everyone's) while we hold the lock anyway.
        conn.execute(delete(web_sessions).where(web_sessions.c.expires_at <= now))
    return value


def session_principal(app: App, cfg: WebSettings, value: str, now: datetime) -> Principal | None:
    with read_only(app.engine) as conn:
        rows = conn.execute(_BY_SESSION, {"digest": _sha256(value)}).all()
    if not rows:
        return None
    s = rows[0]
    hard_end = s.created_at + timedelta(hours=cfg.session_max_hours)
    if s.expires_at <= now or hard_end <= now:
        return None
    if now - s.seen_at >= TOUCH_EVERY:
        with one_writer(app.engine), app.engine.begin() as conn:
            conn.execute(
                update(web_sessions)
                .where(web_sessions.c.id == s.session_id)
                .values(
                    seen_at=now,
                    expires_at=min(now + timedelta(hours=cfg.session_idle_hours), hard_end),
                )
            )
    return _principal(rows, "session")


def close_session(app: App, value: str) -> None:
    with app.engine.begin() as conn:
        conn.execute(delete(web_sessions).where(web_sessions.c.token_hash == _sha256(value)))


# --- API tokens --------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewToken:
    id: int
    token: str  # shown once
    handle: str
    label: str


def create_token(
    app: App,
    handle: str,
    label: str,
    now: datetime,
    *,
    by: str = audit.CLI,
    source: str | None = None,
) -> NewToken:
    """A new token for `handle`. Tokens are made by a logged-in person or on the command line,
    never by another token (see `new_token` in closeloop.web.api). `source`: the source of the
    tickets it files (a hotline's system), public when None."""
    label = label.strip()
    if len(label) > 100:
        raise Invalid("auth.token_label")
    if source is not None and source not in SOURCES:
        raise Invalid("auth.token_source", source=source, sources=", ".join(SOURCES))
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with app.engine.begin() as conn:
        person = conn.execute(
            select(people.c.id, people.c.disabled_at).where(people.c.handle == handle)
        ).first()
        if person is None:
            raise NotFound("person.unknown", handle=handle)
        if person.disabled_at is not None:
            raise Invalid("auth.person_disabled", handle=handle)
        token_id = conn.execute(
            insert(api_tokens)
            .values(
                person_id=person.id,
                label=label,
                token_hash=_sha256(token),
                created_at=now,
                source=source,
            )
            .returning(api_tokens.c.id)
        ).scalar_one()
        audit.record(conn, now, by, "token.create", handle, f"token {token_id} {label}".strip())
    return NewToken(int(token_id), token, handle, label)


def list_tokens(app: App, handle: str | None = None) -> list[dict[str, Any]]:
    q = (
        select(api_tokens, people.c.handle)
        .select_from(api_tokens.join(people, people.c.id == api_tokens.c.person_id))
        .order_by(api_tokens.c.id)
    )
    if handle is not None:
        q = q.where(people.c.handle == handle)
    with read_only(app.engine) as conn:
        return [
            {
                "id": r.id,
                "handle": r.handle,
                "label": r.label,
                "created_at": r.created_at,
                "last_used_at": r.last_used_at,
                "revoked_at": r.revoked_at,
            }
            for r in conn.execute(q)
        ]


def revoke_token(
    app: App, token_id: int, now: datetime, *, by: Principal | None = None
) -> dict[str, Any]:
    """Revoke a token (idempotent); `by`, when given, must own it or be an administrator."""
    with app.engine.begin() as conn:
        row = conn.execute(
            select(api_tokens.c.person_id, api_tokens.c.revoked_at, people.c.handle)
            .select_from(api_tokens.join(people, people.c.id == api_tokens.c.person_id))
            .where(api_tokens.c.id == token_id)
        ).first()
        if row is None or (by is not None and not by.is_admin and row.person_id != by.person_id):
            raise NotFound("auth.token_not_found", token_id=token_id)
        if row.revoked_at is None:
            conn.execute(
                update(api_tokens).where(api_tokens.c.id == token_id).values(revoked_at=now)
            )
            actor = by.handle if by is not None else audit.CLI
            audit.record(conn, now, actor, "token.revoke", row.handle, f"token {token_id}")
    return next(t for t in list_tokens(app) if t["id"] == token_id)


def token_principal(app: App, token: str, now: datetime) -> Principal | None:
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    with read_only(app.engine) as conn:
        rows = conn.execute(_BY_TOKEN, {"digest": _sha256(token)}).all()
    if not rows:
        return None
    t = rows[0]
    if t.last_used_at is None or now - t.last_used_at >= TOUCH_EVERY:
        with one_writer(app.engine), app.engine.begin() as conn:
            conn.execute(
                update(api_tokens).where(api_tokens.c.id == t.token_id).values(last_used_at=now)
            )
    found = _principal(rows, "token", t.token_id)
    return None if found is None else dataclasses.replace(found, source=t.token_source)


# --- the request side --------------------------------------------------------------------------


def web_app(request: Request) -> App:
    app: App = request.app.state.closeloop
    return app


def web_settings(request: Request) -> WebSettings:
    cfg: WebSettings = request.app.state.web_settings
    return cfg


def request_now(request: Request) -> datetime:
    clock: Callable[[], datetime] = request.app.state.clock
    return clock()


def client_ip(request: Request) -> str:
    # uvicorn has already replaced the peer by X-Forwarded-For when the proxy is trusted.
    return request.client.host if request.client else "unknown"


def is_secure(request: Request) -> bool:
    cfg = web_settings(request)
    if cfg.secure_cookies is not None:
        return cfg.secure_cookies
    # uvicorn has already taken the scheme from X-Forwarded-Proto when the proxy is trusted.
    return request.url.scheme == "https"


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise NotAuthenticated("auth.bad_header")
    return value.strip()


async def identify(request: Request) -> Principal | None:
    """Who the request's credentials say it is, without the CSRF check: a Bearer token (an
    unknown one is NotAuthenticated) or a live session cookie; None for an anonymous caller."""
    app, cfg, now = web_app(request), web_settings(request), request_now(request)
    token = bearer_token(request)
    if token is not None:
        principal = await run_in_threadpool(token_principal, app, token, now)
        if principal is None:
            raise NotAuthenticated("auth.bad_token")
        return principal
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        return await run_in_threadpool(session_principal, app, cfg, cookie, now)
    return None


def note_user(request: Request, principal: Principal | None) -> None:
    """Tell the request log who this was."""
    if principal is not None:
        request.state.user = principal.handle


async def optional_principal(request: Request) -> Principal | None:
    """The person behind a Bearer token or a session cookie, or None for an anonymous caller.

    A bad token is an error (401), not anonymity: an integration must learn its key is wrong.
    An unsafe request that rides on the session cookie must carry the CSRF token.
    """
    if hasattr(request.state, "principal"):
        cached: Principal | None = request.state.principal
        return cached
    app, cfg, now = web_app(request), web_settings(request), request_now(request)
    principal: Principal | None = getattr(request.state, PRE_PRINCIPAL, None)
    token = bearer_token(request)
    if principal is not None:
        if principal.via == "session" and request.method not in SAFE_METHODS:
            await check_csrf(request)
    elif token is not None:
        principal = await run_in_threadpool(token_principal, app, token, now)
        if principal is None:
            raise NotAuthenticated("auth.bad_token")
    else:
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            principal = await run_in_threadpool(session_principal, app, cfg, cookie, now)
            if principal is not None and request.method not in SAFE_METHODS:
                await check_csrf(request)
    request.state.principal = principal
    note_user(request, principal)
    return principal


async def current_principal(
    principal: Annotated[Principal | None, Depends(optional_principal)],
) -> Principal:
    if principal is None:
        raise NotAuthenticated("auth.login_needed")
    return principal


async def admin_principal(
    principal: Annotated[Principal, Depends(current_principal)],
) -> Principal:
    if not principal.is_admin:
        raise NotPermitted("person.not_admin", handle=principal.handle)
    return principal


OptionalUser = Annotated[Principal | None, Depends(optional_principal)]
CurrentUser = Annotated[Principal, Depends(current_principal)]
AdminUser = Annotated[Principal, Depends(admin_principal)]


# --- CSRF --------------------------------------------------------------------------------------


def signing_key(request: Request) -> bytes:
    """The key every worker shares: from config, else made once and kept in the database."""
    state = request.app.state
    key: bytes | None = getattr(state, "signing_key", None)
    if key is None:
        key = load_signing_key(web_app(request), web_settings(request), request_now(request))
        state.signing_key = key
    return key


def load_signing_key(app: App, cfg: WebSettings, now: datetime) -> bytes:
    if cfg.secret_key:
        return cfg.secret_key.encode()
    with app.engine.begin() as conn:
        insert_ignoring_duplicates(
            conn,
            web_keys,
            [{"name": "csrf", "value": secrets.token_hex(32), "created_at": now}],
            "name",
        )
        value = conn.execute(select(web_keys.c.value).where(web_keys.c.name == "csrf")).scalar_one()
    return bytes.fromhex(value)


def _sign(key: bytes, value: str, session: str) -> str:
    """HMAC of the CSRF cookie's value and the session it serves (the sha256 of the session
    cookie, "" without one): a cookie and token pair made for one session (or for none, and
    planted in a victim's browser) does not hold for another."""
    message = b"csrf:" + value.encode() + b":" + session.encode()
    mac = hmac.new(key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def _session_binding(request: Request) -> str:
    cookie = request.cookies.get(SESSION_COOKIE)
    return _sha256(cookie) if cookie else ""


def _cookie_value_ok(value: str | None) -> bool:
    return value is not None and 20 <= len(value) <= 100 and value.isascii()


def csrf_token(request: Request) -> str:
    """The token to put into a form (`<input type=hidden name=csrf_token>`) or X-CSRF-Token.

    Sets the CSRF cookie on the response when the browser has none yet.
    """
    value = request.cookies.get(CSRF_COOKIE)
    if not _cookie_value_ok(value):
        value = getattr(request.state, "csrf_new", None)
        if value is None:
            value = secrets.token_urlsafe(24)
            request.state.csrf_new = value
            request.state.set_cookies = [
                *getattr(request.state, "set_cookies", []),
                _cookie_header(CSRF_COOKIE, value, secure=is_secure(request), max_age=None),
            ]
    assert value is not None
    return _sign(signing_key(request), value, _session_binding(request))


async def check_csrf(request: Request) -> None:
    cookie = request.cookies.get(CSRF_COOKIE)
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        field = form.get(CSRF_FIELD)
        sent = field if isinstance(field, str) else None
    if not _cookie_value_ok(cookie) or not sent:
        raise CsrfFailed("auth.csrf_missing")
    assert cookie is not None
    expected = await run_in_threadpool(
        _sign, signing_key(request), cookie, _session_binding(request)
    )
    if not hmac.compare_digest(expected, sent):
        raise CsrfFailed("auth.csrf_wrong")


async def require_csrf(request: Request) -> None:
    """Dependency for every form POST of the pages (anonymous ones included)."""
    await check_csrf(request)


# --- cookies -----------------------------------------------------------------------------------


def _cookie_header(name: str, value: str, *, secure: bool, max_age: int | None) -> str:
    parts = [f"{name}={value}", "Path=/", "HttpOnly", "SameSite=Lax"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def set_session_cookie(request: Request, response: Response, value: str) -> None:
    cfg = web_settings(request)
    response.headers.append(
        "set-cookie",
        _cookie_header(
            SESSION_COOKIE,
            value,
            secure=is_secure(request),
            max_age=int(cfg.session_max_hours * 3600),
        ),
    )


def clear_session_cookie(request: Request, response: Response) -> None:
    response.headers.append(
        "set-cookie", _cookie_header(SESSION_COOKIE, "", secure=is_secure(request), max_age=0)
    )


def safe_next(target: str | None) -> str:
    """Only a path on this site: never an open redirect to another host."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


# --- routes: the login and logout forms, and the CSRF token for scripts ------------------------

router = APIRouter(tags=["auth"], responses=ERROR_RESPONSES)


@router.get("/api/csrf", summary="A CSRF token for forms and X-CSRF-Token")
def get_csrf(request: Request) -> dict[str, str]:
    return {"csrf_token": csrf_token(request)}


@router.post(
    "/login",
    summary="Log in with handle and password (form); redirects to `next`",
    status_code=303,
    dependencies=[Depends(require_csrf)],
    response_class=RedirectResponse,
    responses={303: {"description": "logged in; the session cookie is set"}},
)
def login(
    request: Request,
    handle: Annotated[Text, Form(max_length=200)],
    password: Annotated[Text, Form(max_length=PASSWORD_MAX)],
    # Checked by `require_csrf`; declared so that the schema documents the field.
    csrf: Annotated[str, Form(alias=CSRF_FIELD, max_length=200)],
    next_path: Annotated[Text | None, Form(alias="next", max_length=2000)] = None,
) -> Response:
    app, cfg, now = web_app(request), web_settings(request), request_now(request)
    principal = authenticate(app, cfg, handle, password, client_ip(request), now)
    note_user(request, principal)
    value = open_session(
        app,
        cfg,
        principal.person_id,
        now,
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
    )
    response = RedirectResponse(safe_next(next_path), status_code=303)
    set_session_cookie(request, response, value)
    return response


@router.post(
    "/logout",
    summary="End the session (form)",
    status_code=303,
    dependencies=[Depends(require_csrf)],
    response_class=RedirectResponse,
    responses={303: {"description": "logged out; the session cookie is cleared"}},
)
def logout(
    request: Request, csrf: Annotated[str, Form(alias=CSRF_FIELD, max_length=200)]
) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        close_session(web_app(request), cookie)
    response = RedirectResponse("/", status_code=303)
    clear_session_cookie(request, response)
    return response
