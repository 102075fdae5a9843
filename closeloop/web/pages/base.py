"""What every page shares: the language, times as people read them, rendering a template,
the navigation, the guards (logged in), the error page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy import select

from closeloop.app import App
from closeloop.db import read_only
from closeloop.errors import CodedError
from closeloop.evidence import EvidenceError
from closeloop.exam import service as exam_service
from closeloop.grid import UnknownGrid, level_name
from closeloop.models import grids, people
from closeloop.tickets import DomainError
from closeloop.web import i18n
from closeloop.web.auth import (
    CSRF_FIELD,
    Principal,
    csrf_token,
    request_now,
    safe_next,
    web_app,
)
from closeloop.workflow import StepNotAllowed

log = logging.getLogger("closeloop.web.pages")
HERE = Path(__file__).resolve().parents[1]  # closeloop/web: its templates and static files
TEMPLATES = HERE / "templates"
LANG_COOKIE = "closeloop_lang"
_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def page_locale(request: Request) -> str:
    """?lang= (kept in a cookie), else the cookie, else the zone's language."""
    cached: str | None = getattr(request.state, "locale", None)
    if cached is not None:
        return cached
    asked = i18n.normalise(request.query_params.get("lang"))
    if asked is not None:
        if request.cookies.get(LANG_COOKIE) != asked:
            request.state.set_cookies = [
                *getattr(request.state, "set_cookies", []),
                f"{LANG_COOKIE}={asked}; Path=/; Max-Age=31536000; SameSite=Lax",
            ]
        locale = asked
    else:
        locale = (
            i18n.normalise(request.cookies.get(LANG_COOKIE))
            or i18n.normalise(web_app(request).settings.locale)
            or i18n.DEFAULT
        )
    request.state.locale = locale
    return locale


def _parse_time(value: str | datetime | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


def _seconds_left(due: str | datetime | None, now: datetime) -> float | None:
    when = _parse_time(due)
    return None if when is None else (when - now).total_seconds()


@dataclass
class Labels:
    """Names of the workflow's states, steps and categories and of grids, in one language."""

    app: App
    locale: str

    def state(self, key: str) -> str:
        found = self.app.workflow.states.get(key)
        return found.label.get(self.locale) if found else key

    def step(self, key: str) -> str:
        found = self.app.workflow.steps.get(key)
        text = found.label.get(self.locale) if found else key
        # The workflow's English step names are verbs in lower case ("fix"): buttons start big.
        return text[:1].upper() + text[1:] if self.locale == "en" else text

    def stage(self, key: str | None) -> str:
        found = self.app.workflow.stages.get(key or "")
        return found.get(self.locale) if found else (key or "")

    def category(self, key: str) -> str:
        found = self.app.workflow.categories.get(key)
        return found.label.get(self.locale) if found else key

    def word(self, key: str) -> str:
        """A step's or a state's label (error messages name either)."""
        if key in self.app.workflow.steps:
            return self.step(key)
        return self.state(key)

    def level(self, level: int | None) -> str:
        return level_name(level, self.locale) if level in (1, 2, 3, 4) else ""

    @cached_property
    def grids(self) -> dict[str, Any]:
        """Every grid by code (name, level, path): a zone has hundreds, read once per page."""
        with read_only(self.app.engine) as conn:
            rows = conn.execute(
                select(grids.c.id, grids.c.code, grids.c.name, grids.c.level, grids.c.path)
            ).all()
        return {r.code: r for r in rows}

    @cached_property
    def grids_by_id(self) -> dict[int, Any]:
        return {r.id: r for r in self.grids.values()}

    def grid(self, code: str | None) -> str:
        if not code:
            return ""
        row = self.grids.get(code)
        return row.name if row else code


def _time_text(locale: str, tz: Any, now: datetime) -> Callable[..., str]:
    def when(value: str | datetime | None, weekday: bool = False) -> str:
        moment = _parse_time(value)
        if moment is None:
            return ""
        return i18n.local_time(moment.astimezone(tz), locale, weekday=weekday, now=now)

    return when


def _urgency(seconds: float | None) -> str:
    if seconds is None:
        return "none"
    if seconds < 0:
        return "late"
    return "soon" if seconds < 4 * 3600 else "ok"


def render(
    request: Request,
    template: str,
    *,
    status: int = 200,
    principal: Principal | None = None,
    **context: Any,
) -> HTMLResponse:
    app = web_app(request)
    locale = page_locale(request)
    now = request_now(request)
    t = i18n.translator(locale)
    who = principal if principal is not None else getattr(request.state, "principal", None)
    labels = Labels(app, locale)
    flash = context.pop("flash", None)
    done = request.query_params.get("done")
    if flash is None and done and t.has(f"done.{done}"):
        flash = t(f"done.{done}")
    body = _env.get_template(template).render(
        request=request,
        t=t,
        locale=locale,
        html_lang="en" if locale == "en" else "zh-CN",
        zone_name=app.settings.zone_name,
        user=who,
        nav=_nav(who, t, app),
        path=request.url.path,
        csrf=csrf_token(request),
        csrf_field=CSRF_FIELD,
        lang_links=_lang_links(request, locale),
        now=now,
        when=_time_text(locale, app.tz, now),
        left=lambda due: i18n.time_left(_seconds_left(due, now), locale),
        urgency=lambda due: _urgency(_seconds_left(due, now)),
        labels=labels,
        flash=flash,
        error=context.pop("error", None),
        **context,
    )
    return HTMLResponse(body, status, headers={"Cache-Control": "no-store"})


def _lang_links(request: Request, locale: str) -> list[dict[str, Any]]:
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in ("lang", "done")]
    out = []
    for code, label in (("zh", "中文"), ("en", "English")):
        query = urlencode([*params, ("lang", code)])
        out.append(
            {
                "href": f"{request.url.path}?{query}",
                "label": label,
                "current": i18n.normalise(code) == locale,
                "lang": "en" if code == "en" else "zh-CN",
            }
        )
    return out


def _inspects(app: App, who: Principal) -> bool:
    """Whether a grid leader belongs to an inspecting grid of the monthly exam."""
    return bool(who.led_paths) and any(
        led.startswith(path) for path in exam_service.inspecting_paths(app) for led in who.led_paths
    )


def _nav(who: Principal | None, t: i18n.Translator, app: App | None = None) -> list[dict[str, str]]:
    if who is None:
        return [
            {"href": "/report", "label": t("nav.report")},
            {"href": "/track", "label": t("nav.track")},
            {"href": "/login", "label": t("nav.login")},
        ]
    items = []
    if who.has_inbox:
        items.append({"href": "/inbox", "label": t("nav.inbox")})
    if who.is_supervisor or (app is not None and _inspects(app, who)):
        items.append({"href": "/exam", "label": t("nav.exam")})
    if who.is_supervisor:
        items.append({"href": "/board", "label": t("nav.board")})
        items.append({"href": "/map", "label": t("nav.map")})
        items.append({"href": "/extensions", "label": t("nav.extensions")})
        items.append({"href": "/deferred", "label": t("nav.deferred")})
        items.append({"href": "/reports", "label": t("nav.reports")})
    # Every grid leader, case or not: the menu is built on each request and asks no query; a
    # leader without a case finds the page empty.
    if who.is_supervisor or who.led_paths:
        items.append({"href": "/accountability", "label": t("nav.accountability")})
    if who.is_supervisor:
        items.append({"href": "/funds", "label": t("nav.funds")})
    items.append({"href": "/tickets", "label": t("nav.tickets")})
    if who.has_inbox or who.is_supervisor:
        items.append({"href": "/patrols", "label": t("nav.patrols")})
        items.append({"href": "/campaigns", "label": t("nav.campaigns")})
    if who.is_supervisor:
        items.append({"href": "/meetings", "label": t("nav.meetings")})
    if who.is_admin:
        items.append({"href": "/admin", "label": t("nav.admin")})
    items.append({"href": "/report", "label": t("nav.report")})
    return items


def _login_redirect(request: Request, back: str = "/") -> RedirectResponse:
    """To the login page, and after it back here (or to `back` from a form whose session
    ended: its address answers POST only)."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET":
        target = back
    return RedirectResponse(f"/login?{urlencode({'next': target})}", status_code=303)


def _with_done(target: str, step: str) -> str:
    sep = "&" if "?" in target else "?"
    return f"{target}{sep}{urlencode({'done': step})}"


def _message(request: Request, exc: BaseException) -> str:
    """A domain error or a refused form in the page's language."""
    if isinstance(exc, RequestValidationError):
        return i18n.validation_errors(page_locale(request), list(exc.errors()))
    status = getattr(exc, "status", None)
    return said(
        request,
        exc if isinstance(exc, CodedError) else None,
        str(exc),
        status if isinstance(status, int) else None,
    )


def said(request: Request, error: CodedError | None, message: str, status: int | None) -> str:
    """An error in the page's language: by its code, or (the framework's own) by its status."""
    locale = page_locale(request)
    if error is not None:
        return error.text(locale, words=Labels(web_app(request), locale).word)
    return i18n.http_error(locale, message, status=status)


# Errors a form can cause: shown on the page again, with the status the API would answer.
FORM_ERRORS: tuple[type[Exception], ...] = (
    DomainError,
    RequestValidationError,
    EvidenceError,
    StepNotAllowed,
    UnknownGrid,
)


def _status_of(exc: BaseException) -> int:
    if isinstance(exc, DomainError):
        return exc.status
    if isinstance(exc, StepNotAllowed):
        return 409
    return 422


def error_page(
    request: Request,
    status: int,
    message: str,
    headers: Mapping[str, str] | None = None,
    error: CodedError | None = None,
) -> Response | None:
    """The HTML answer to an error on a page (for browsers); None leaves it to the JSON one.

    `closeloop.web.app` calls this for every error it turns into a response, so refusals raised
    before a page handler runs (a stale CSRF token, a bad query, an unknown path) read as a page.
    """
    path = request.url.path
    if path.startswith(("/api/", "/open311/", "/healthz", "/docs", "/redoc", "/openapi")):
        return None
    if "text/html" not in request.headers.get("accept", ""):
        return None
    try:
        text = said(request, error, message, status)
        if path == "/login" and request.method == "POST":
            response = render(
                request,
                "login.html",
                status=status,
                error=text,
                next_path=safe_next(request.query_params.get("next")),
            )
        else:
            response = render(request, "error.html", status=status, error=text, status_code=status)
    except Exception:
        # The page itself failed (the database is gone, say): the plain JSON answer still works.
        log.exception("error page for %s %s", request.method, path)
        return None
    for key, value in (headers or {}).items():
        if key.lower() == "retry-after":
            response.headers[key] = value
    return response


def _home_of(p: Principal) -> str:
    if p.has_inbox:
        return "/inbox"
    if p.is_supervisor:
        return "/board"
    if p.is_admin:
        return "/admin"
    return "/tickets"


def _staff(request: Request, principal: Principal | None) -> Principal | Response:
    if principal is None:
        return _login_redirect(request)
    return principal


def _names_of(app: App, handles: Iterable[str | None]) -> dict[str, str]:
    wanted = {h for h in handles if h}
    if not wanted:
        return {}
    with read_only(app.engine) as conn:
        rows = conn.execute(
            select(people.c.handle, people.c.name).where(people.c.handle.in_(wanted))
        )
        return {h: n for h, n in rows}
