"""The HTML pages: reporters, grid leaders, supervisors, administrators.

Thin: each page asks the same functions as the JSON API (often the API's handlers themselves)
and renders a Jinja2 template. Who may see and do what is decided there and in
`closeloop.web.access`; the pages only leave out what a person may not do, the server refuses
it anyway. Every form carries the CSRF token (`closeloop.web.auth`). User text comes from
`closeloop.web.i18n` (Chinese by default; `?lang=en` switches and a cookie keeps the choice).
Time comes from the app's clock, so a test can move it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from closeloop import escalation, views, zone
from closeloop import grid as grid_mod
from closeloop.app import App
from closeloop.db import read_only
from closeloop.evidence import EvidenceError
from closeloop.grid import UnknownGrid, UnknownPerson, level_name
from closeloop.gridfile import CHANNELS, GridFileError, decode_grid_csv
from closeloop.models import grids, people, ticket_events, tickets
from closeloop.tickets import DomainError, NotFound, NotPermitted
from closeloop.web import access, api, i18n, registers
from closeloop.web.auth import (
    CSRF_FIELD,
    OptionalUser,
    Principal,
    csrf_token,
    list_people,
    request_now,
    require_csrf,
    safe_next,
    set_password,
    web_app,
    web_settings,
)
from closeloop.workflow import StepNotAllowed

log = logging.getLogger("closeloop.web.pages")

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
STATIC_FILES = {"site.css": "text/css", "site.js": "text/javascript"}
LANG_COOKIE = "closeloop_lang"
CSV_MAX_BYTES = 5 * 1024 * 1024
PEOPLE_SHOWN = 25
GRIDS_SHOWN = 25
LIST_PAGE = 50

# How a step's form looks: the primary step of a state is shown open, the rest folded away;
# "danger" steps undo work and are styled so; some steps take photos or an optional note.
PRIMARY_STEPS = ("fix", "verify", "close", "approve_extension", "resume")
DANGER_STEPS = frozenset({"reject", "dismiss", "refuse_extension"})
PHOTO_STEPS = frozenset({"fix", "verify", "reject"})
NOTE_STEPS = frozenset({"fix", "verify", "close", "approve_extension", "resume", "reassign"})

router = APIRouter(include_in_schema=False)

_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


# --- language, time, rendering -----------------------------------------------------------------


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
        nav=_nav(who, t),
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


def _nav(who: Principal | None, t: i18n.Translator) -> list[dict[str, str]]:
    if who is None:
        return [
            {"href": "/report", "label": t("nav.report")},
            {"href": "/track", "label": t("nav.track")},
            {"href": "/login", "label": t("nav.login")},
        ]
    items = []
    if who.has_inbox:
        items.append({"href": "/inbox", "label": t("nav.inbox")})
    if who.is_supervisor:
        items.append({"href": "/board", "label": t("nav.board")})
        items.append({"href": "/map", "label": t("nav.map")})
        items.append({"href": "/extensions", "label": t("nav.extensions")})
        items.append({"href": "/deferred", "label": t("nav.deferred")})
        items.append({"href": "/reports", "label": t("nav.reports")})
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
    locale = page_locale(request)
    if isinstance(exc, RequestValidationError):
        return i18n.validation_errors(locale, list(exc.errors()))
    status = getattr(exc, "status", None)
    return i18n.friendly_error(
        locale,
        str(exc),
        status=status if isinstance(status, int) else None,
        names=Labels(web_app(request), locale).word,
    )


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
    request: Request, status: int, message: str, headers: Mapping[str, str] | None = None
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
        locale = page_locale(request)
        text = i18n.friendly_error(
            locale, message, status=status, names=Labels(web_app(request), locale).word
        )
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


# --- static files ------------------------------------------------------------------------------


@router.get("/static/{name}")
def static(name: str) -> Response:
    media = STATIC_FILES.get(name)
    if media is None:
        raise NotFound(f"no file {name}")
    return FileResponse(
        STATIC / name,
        media_type=media,
        headers={"Cache-Control": "public, max-age=3600"},
    )


# --- home, login -------------------------------------------------------------------------------


def _home_of(p: Principal) -> str:
    if p.has_inbox:
        return "/inbox"
    if p.is_supervisor:
        return "/board"
    if p.is_admin:
        return "/admin"
    return "/tickets"


@router.get("/")
def home(request: Request, principal: OptionalUser) -> Response:
    if principal is not None and not request.query_params.get("lang"):
        return RedirectResponse(_home_of(principal), status_code=303)
    return render(request, "home.html", principal=principal)


@router.get("/login")
def login_page(request: Request, principal: OptionalUser, next: str | None = None) -> Response:
    target = safe_next(next)
    if principal is not None:
        return RedirectResponse(target if target != "/" else _home_of(principal), status_code=303)
    return render(request, "login.html", next_path=target)


# --- reporters ---------------------------------------------------------------------------------


def _place_choices(app: App) -> dict[str, Any]:
    """The grid picker: small grids (villages, enterprise grids, community sections) grouped by
    the medium grid above them, and the micro grids of each."""
    with read_only(app.engine) as conn:
        rows = conn.execute(
            select(grids.c.id, grids.c.code, grids.c.name, grids.c.level, grids.c.parent_id)
            .where(grids.c.level >= 2)
            .order_by(grids.c.path)
        ).all()
    by_id = {r.id: r for r in rows}
    areas: list[dict[str, Any]] = []
    smalls: dict[int, dict[str, Any]] = {}
    for r in rows:
        if r.level == 2:
            areas.append({"code": r.code, "name": r.name, "smalls": []})
        elif r.level == 3 and r.parent_id in by_id and areas:
            small = {"code": r.code, "name": r.name, "micros": []}
            smalls[r.id] = small
            areas[-1]["smalls"].append(small)
        elif r.level == 4 and r.parent_id in smalls:
            smalls[r.parent_id]["micros"].append({"code": r.code, "name": r.name})
    return {"areas": areas}


def _categories(app: App, locale: str) -> list[dict[str, str]]:
    return [{"key": c.key, "name": c.label.get(locale)} for c in app.workflow.categories.values()]


def _report_page(
    request: Request,
    principal: Principal | None,
    *,
    status: int = 200,
    error: str | None = None,
    values: Mapping[str, str] | None = None,
) -> Response:
    app, cfg = web_app(request), web_settings(request)
    return render(
        request,
        "report.html",
        status=status,
        principal=principal,
        error=error,
        places=_place_choices(app),
        categories=_categories(app, page_locale(request)),
        max_photos=cfg.max_photos,
        max_mb=cfg.max_upload_bytes // (1024 * 1024),
        values=values or {},
    )


@router.get("/report")
def report_form(request: Request, principal: OptionalUser) -> Response:
    return _report_page(request, principal)


@router.post("/report", dependencies=[Depends(require_csrf)])
async def report_submit(request: Request, principal: OptionalUser) -> Response:
    try:
        made = await api.submit_ticket(request)
    except FORM_ERRORS as exc:
        form = await request.form()
        values = {k: v for k, v in form.multi_items() if isinstance(v, str) and k != CSRF_FIELD}
        message, code = _message(request, exc), _status_of(exc)
        return await run_in_threadpool(
            lambda: _report_page(request, principal, status=code, error=message, values=values)
        )
    query = urlencode({"secret": made["secret"], "new": "1"})
    return RedirectResponse(f"/track/{quote(made['ref'])}?{query}", status_code=303)


@router.get("/track")
def track_form(
    request: Request,
    ref: Annotated[str | None, Query(max_length=32)] = None,
    secret: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    ref = (ref or "").strip().upper()
    secret = (secret or "").strip()
    if ref and secret:
        return RedirectResponse(
            f"/track/{quote(ref)}?{urlencode({'secret': secret})}", status_code=303
        )
    return render(request, "track.html", ref=ref, missing=bool(ref or secret))


def _public_base(request: Request) -> str:
    base = web_settings(request).public_url
    return base or str(request.base_url).rstrip("/")


@router.get("/track/{ref}")
def track_ticket(
    request: Request,
    ref: Annotated[str, PathParam(max_length=32)],
    secret: Annotated[str | None, Query(max_length=100)] = None,
    new: str | None = None,
) -> Response:
    app = web_app(request)
    if not secret:
        return render(request, "track.html", ref=ref, missing=True)
    try:
        seen = api.reporter_view(app, ref, secret)
    except NotFound:
        return render(request, "track.html", status=404, ref=ref, not_found=True, missing=False)
    link = f"{_public_base(request)}/track/{quote(ref)}?{urlencode({'secret': secret})}"
    return render(
        request,
        "track_ticket.html",
        ticket=seen,
        secret=secret,
        link=link,
        new=bool(new),
        photos=[e for e in seen["evidence"] if e["content_type"].startswith("image/")],
    )


# --- staff: who must be logged in --------------------------------------------------------------


def _staff(request: Request, principal: Principal | None) -> Principal | Response:
    if principal is None:
        return _login_redirect(request)
    return principal


@router.get("/inbox")
def inbox(request: Request, principal: OptionalUser) -> Response:
    who = _staff(request, principal)
    if isinstance(who, Response):
        return who
    app, now = web_app(request), request_now(request)
    items = api.with_left(views.inbox(app, who.handle, now), now)
    todo = [i for i in items if i["state"] == "assigned"]
    check = [i for i in items if i["state"] != "assigned"]
    return render(
        request,
        "inbox.html",
        principal=who,
        todo=todo,
        check=check,
        late=sum(1 for i in items if (i["seconds_left"] or 0) < 0),
    )


@router.get("/tickets")
def ticket_list(
    request: Request,
    principal: OptionalUser,
    state: Annotated[str | None, Query(max_length=32)] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Response:
    who = _staff(request, principal)
    if isinstance(who, Response):
        return who
    app = web_app(request)
    states = [state] if state is not None and state in app.workflow.states else []
    found = api.list_tickets(request, who, state=states, limit=LIST_PAGE + 1, offset=offset)
    items = found["items"]
    return render(
        request,
        "tickets.html",
        principal=who,
        items=items[:LIST_PAGE],
        more=len(items) > LIST_PAGE,
        state=states[0] if states else "",
        states=list(app.workflow.states),
        offset=offset,
        page=LIST_PAGE,
    )


# --- the ticket page and its steps -------------------------------------------------------------


def _event_ids(app: App, ref: str) -> list[int]:
    """The ids of a ticket's events, in the order `views.show` lists them (by id)."""
    with read_only(app.engine) as conn:
        return list(
            conn.execute(
                select(ticket_events.c.id)
                .join(tickets, tickets.c.id == ticket_events.c.ticket_id)
                .where(tickets.c.ref == ref)
                .order_by(ticket_events.c.id)
            ).scalars()
        )


def _names_of(app: App, handles: Iterable[str | None]) -> dict[str, str]:
    wanted = {h for h in handles if h}
    if not wanted:
        return {}
    with read_only(app.engine) as conn:
        rows = conn.execute(
            select(people.c.handle, people.c.name).where(people.c.handle.in_(wanted))
        )
        return {h: n for h, n in rows}


def _until_choices(app: App, due: datetime | None, now: datetime, locale: str) -> list[Any]:
    """Ends of the next working days after the current deadline: a leader asking for more
    time picks a day, not a minute (and the choice carries the zone's offset)."""
    cal = app.calendar
    start = max(due or now, now).astimezone(cal.tz)
    close = cal.hours[-1][1] if cal.hours else time(17, 30)
    out = []
    day = start.date()
    for _ in range(60):
        moment = datetime.combine(day, close, tzinfo=cal.tz)
        if cal.is_working_day(day) and moment > start:
            out.append(
                {
                    "value": moment.isoformat(),
                    "label": i18n.local_time(moment, locale, weekday=True, now=now),
                }
            )
            if len(out) == 10:
                break
        day += timedelta(days=1)
    return out


def _review_choices(app: App, now: datetime, locale: str) -> list[dict[str, str]]:
    """Review dates for the deferral register: a week to a quarter away, at 09:00."""
    local = now.astimezone(app.tz).date()
    out = []
    for days in (7, 14, 30, 60, 90):
        moment = datetime.combine(local + timedelta(days=days), time(9, 0), tzinfo=app.tz)
        out.append({"value": moment.isoformat(), "label": i18n.local_time(moment, locale, now=now)})
    return out


def _grid_choices(app: App, exclude: str | None) -> list[dict[str, Any]]:
    """Grids to reassign to, grouped by the medium grid above them."""
    with read_only(app.engine) as conn:
        rows = conn.execute(
            select(grids.c.code, grids.c.name, grids.c.level)
            .where(grids.c.level >= 2)
            .order_by(grids.c.path)
        ).all()
    groups: list[dict[str, Any]] = []
    for r in rows:
        if r.level == 2:
            groups.append({"label": r.name, "options": []})
        if groups and r.code != exclude:
            indent = "\u3000" * (r.level - 2)
            groups[-1]["options"].append({"value": r.code, "label": f"{indent}{r.name}"})
    return groups


def _step_forms(app: App, detail: Mapping[str, Any], now: datetime, locale: str) -> list[Any]:
    wf = app.workflow
    pending = any(x["status"] == "pending" for x in detail.get("extensions", []))
    # A decision needs a request waiting, and a second request waits for the first's decision.
    allowed = [
        s
        for s in detail["allowed_steps"]
        if not (s in ("approve_extension", "refuse_extension") and not pending)
        and not (s == "request_extension" and pending)
    ]
    ordered = [s for s in PRIMARY_STEPS if s in allowed] + [
        s for s in allowed if s not in PRIMARY_STEPS
    ]
    due = _parse_time(detail["due_at"])
    forms = []
    for name in ordered:
        step = wf.steps[name]
        forms.append(
            {
                "name": name,
                "primary": name in PRIMARY_STEPS,
                "danger": name in DANGER_STEPS,
                "requires": step.requires,
                "note": "note" in step.requires or name in NOTE_STEPS,
                "photos": name in PHOTO_STEPS,
                "until": (
                    _until_choices(app, due, now, locale) if "until" in step.requires else []
                ),
                "review_on": (
                    _review_choices(app, now, locale) if "review_on" in step.requires else []
                ),
                "grids": (_grid_choices(app, detail["grid"]) if "to_grid" in step.requires else []),
            }
        )
    return forms


def _ticket_page(
    request: Request,
    who: Principal,
    ref: str,
    *,
    status: int = 200,
    error: str | None = None,
    failed_step: str | None = None,
    values: Mapping[str, str] | None = None,
) -> Response:
    app, now = web_app(request), request_now(request)
    locale = page_locale(request)
    detail = api.ticket_detail(app, who, ref, now)
    ids = _event_ids(app, ref)
    photos_by_event: dict[int | None, list[dict[str, Any]]] = {}
    for item in detail["evidence"]:
        photos_by_event.setdefault(item["event"], []).append(item)
    events = []
    for event_id, event in zip(ids, detail["events"], strict=False):
        events.append({**event, "id": event_id, "files": photos_by_event.get(event_id, [])})
    names = _names_of(
        app,
        [e["by"] for e in detail["events"]]
        + [r["supervisor"] for r in detail.get("escalations", [])]
        + [detail["assignee"], detail["supervisor"]],
    )
    return render(
        request,
        "ticket.html",
        status=status,
        principal=who,
        error=error,
        ticket=detail,
        events=list(reversed(events)),
        names=names,
        forms=_step_forms(app, detail, now, locale),
        failed_step=failed_step,
        values=values or {},
        max_photos=web_settings(request).max_photos,
        max_mb=web_settings(request).max_upload_bytes // (1024 * 1024),
        closed=app.workflow.states[detail["state"]].final,
    )


@router.get("/tickets/{ref}")
def ticket_page(
    request: Request, ref: Annotated[str, PathParam(max_length=32)], principal: OptionalUser
) -> Response:
    who = _staff(request, principal)
    if isinstance(who, Response):
        return who
    return _ticket_page(request, who, ref)


@router.post("/tickets/{ref}/steps/{step}", dependencies=[Depends(require_csrf)])
async def ticket_step(
    request: Request,
    ref: Annotated[str, PathParam(max_length=32)],
    step: Annotated[str, PathParam(max_length=40)],
    principal: OptionalUser,
    back: Annotated[str | None, Query(max_length=300)] = None,
) -> Response:
    if principal is None:
        return _login_redirect(request, back if back in LIST_PAGES else f"/tickets/{quote(ref)}")
    who = principal
    try:
        done = await api.take_step(request, ref, step, who)
    except FORM_ERRORS as exc:
        form = await request.form()
        values = {k: v for k, v in form.multi_items() if isinstance(v, str) and k != CSRF_FIELD}
        message, code = _message(request, exc), _status_of(exc)
        colon = i18n.translator(page_locale(request))("p.colon")
        page = LIST_PAGES.get(back or "")
        if page is not None:
            return await run_in_threadpool(
                lambda: page(request, who, code=code, error=f"{ref}{colon}{message}")
            )
        try:
            return await run_in_threadpool(
                lambda: _ticket_page(
                    request,
                    who,
                    ref,
                    status=code,
                    error=message,
                    failed_step=step,
                    values=values,
                )
            )
        except NotFound:
            raise exc from None
    if back in LIST_PAGES:
        return RedirectResponse(_with_done(back, done["step"]), status_code=303)
    if done["ticket"] is None:  # e.g. reassigned out of this person's grids
        return RedirectResponse(_with_done(_home_of(who), done["step"]), status_code=303)
    return RedirectResponse(_with_done(f"/tickets/{quote(ref)}", done["step"]), status_code=303)


# --- supervisors -------------------------------------------------------------------------------


def supervision_board(
    app: App, principal: Principal, now: datetime, *, grid: str | None, level: int | None
) -> list[dict[str, Any]]:
    """The tickets this person may see that missed a deadline or climbed the ladder (the
    escalation module's overdue list), the latest first, with how late each is counted from
    the first deadline its stage missed."""
    items = api.only_visible(app, principal, escalation.overdue(app, now, grid=grid, level=level))
    for item in items:
        missed = datetime.fromisoformat(item["missed_deadline"])
        item["missed_at"] = missed
        item["late_seconds"] = max(0.0, (now - missed).total_seconds())
        item["overdue_now"] = item["overdue"]
    items.sort(key=lambda i: (-i["late_seconds"], i["ref"]))
    return items


def _board_filters(app: App) -> list[dict[str, Any]]:
    with read_only(app.engine) as conn:
        rows = conn.execute(
            select(grids.c.code, grids.c.name, grids.c.level)
            .where(grids.c.level.in_((2, 3)))
            .order_by(grids.c.path)
        ).all()
    groups: list[dict[str, Any]] = []
    for r in rows:
        if r.level == 2:
            groups.append({"code": r.code, "name": r.name, "smalls": []})
        elif groups:
            groups[-1]["smalls"].append({"code": r.code, "name": r.name})
    return groups


def _area_of(labels: Labels, code: str) -> tuple[str, str] | None:
    """The medium grid (level 2) a grid lies in, as (code, name)."""
    row = labels.grids.get(code)
    if row is None:
        return None
    ids = [int(p) for p in row.path.strip("/").split("/")]
    area = labels.grids_by_id.get(ids[1]) if len(ids) >= 2 else None
    return (area.code, area.name) if area is not None else None


@router.get("/board")
def board(
    request: Request,
    principal: OptionalUser,
    grid: Annotated[str | None, Query(max_length=64)] = None,
    level: Annotated[str | None, Query(max_length=3)] = None,
) -> Response:
    who = _staff(request, principal)
    if isinstance(who, Response):
        return who
    app, now = web_app(request), request_now(request)
    grid = grid or None
    chosen_level = int(level) if level and level.isdigit() else None
    items = supervision_board(app, who, now, grid=grid, level=chosen_level)
    labels = Labels(app, page_locale(request))
    by_level: dict[int, int] = {}
    by_area: dict[tuple[str, str], int] = {}
    for item in items:
        by_level[item["escalation_level"]] = by_level.get(item["escalation_level"], 0) + 1
        area = _area_of(labels, item["grid"])
        if area is not None:
            by_area[area] = by_area.get(area, 0) + 1
    return render(
        request,
        "board.html",
        principal=who,
        names=_names_of(app, (i["supervisor"] for i in items)),
        items=items,
        by_level=sorted(by_level.items()),
        by_area=sorted(by_area.items(), key=lambda kv: (-kv[1], kv[0][0])),
        filters=_board_filters(app),
        grid=grid or "",
        level=chosen_level,
        late_text=lambda s: i18n.duration(s, page_locale(request)),
    )


def _allowed_by_ref(app: App, principal: Principal, refs: Iterable[str]) -> dict[str, list[str]]:
    wanted = list(dict.fromkeys(refs))
    if not wanted:
        return {}
    with read_only(app.engine) as conn:
        rows = conn.execute(
            views.listing_select().where(tickets.c.ref.in_(wanted), access.scope_clause(principal))
        ).all()
    return {r.ref: access.allowed_steps(app, r, principal) for r in rows}


def _extensions_page(
    request: Request,
    who: Principal,
    status: str = "pending",
    *,
    code: int = 200,
    error: str | None = None,
) -> Response:
    app = web_app(request)
    status = status if status in ("pending", "approved", "refused", "lapsed", "all") else "pending"
    items = registers.extension_requests(
        app, access.scope_clause(who), None if status == "all" else status
    )
    allowed = _allowed_by_ref(
        app, who, [i["ticket"]["ref"] for i in items if i["status"] == "pending"]
    )
    return render(
        request,
        "extensions.html",
        status=code,
        principal=who,
        error=error,
        names=_names_of(app, (h for i in items for h in (i["requested_by"], i["decided_by"]))),
        items=items,
        allowed=allowed,
        status_filter=status,
    )


@router.get("/extensions")
def extension_list(
    request: Request,
    principal: OptionalUser,
    status: Annotated[str, Query(max_length=10)] = "pending",
) -> Response:
    who = _staff(request, principal)
    if isinstance(who, Response):
        return who
    return _extensions_page(request, who, status)


def _deferred_page(
    request: Request, who: Principal, *, code: int = 200, error: str | None = None
) -> Response:
    app, now = web_app(request), request_now(request)
    items = registers.deferred(app, access.scope_clause(who), now)
    allowed = _allowed_by_ref(app, who, [i["ticket"]["ref"] for i in items])
    return render(
        request,
        "deferred.html",
        status=code,
        principal=who,
        error=error,
        names=_names_of(app, (i["by"] for i in items)),
        items=items,
        allowed=allowed,
    )


@router.get("/deferred")
def deferred_list(request: Request, principal: OptionalUser) -> Response:
    who = _staff(request, principal)
    if isinstance(who, Response):
        return who
    return _deferred_page(request, who)


# Lists with step buttons: after a step they show again, with its error if it failed.
LIST_PAGES: dict[str, Callable[..., Response]] = {
    "/extensions": _extensions_page,
    "/deferred": _deferred_page,
}


# --- reports: the weekly report and the monthly boards ------------------------------------------

REPORT_WEEKS = 8
REPORT_MEDIA = {
    "html": "text/html; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def _supervisor(request: Request, principal: Principal | None) -> Principal | Response:
    if principal is None:
        return _login_redirect(request)
    if not principal.is_supervisor:
        raise NotPermitted(f"{principal.handle} may not see the reports: only a supervisor may")
    return principal


def _recent_weeks(app: App, now: datetime) -> list[str]:
    from closeloop.reports.indicators import last_full_week, weeks_before

    last = last_full_week(now, app.tz)
    return [last.label, *(p.label for p in reversed(weeks_before(last, REPORT_WEEKS - 1, app.tz)))]


def _published_months(app: App) -> list[str]:
    from closeloop.models import month_results

    with read_only(app.engine) as conn:
        return list(
            conn.execute(
                select(month_results.c.month).distinct().order_by(month_results.c.month.desc())
            ).scalars()
        )


@router.get("/reports")
def reports_page(
    request: Request,
    principal: OptionalUser,
    week: Annotated[str | None, Query(max_length=10)] = None,
    month: Annotated[str | None, Query(max_length=7)] = None,
) -> Response:
    who = _supervisor(request, principal)
    if isinstance(who, Response):
        return who
    from closeloop.exam import service as store

    app, now = web_app(request), request_now(request)
    weeks = _recent_weeks(app, now)
    week = week if week in weeks else weeks[0]
    months = _published_months(app)
    month = month if month in months else (months[0] if months else None)
    board = store.board_view(app, month, now) if month else None
    return render(
        request,
        "reports.html",
        principal=who,
        weeks=weeks,
        week=week,
        months=months,
        month=month,
        board=board,
    )


def _report_file(body: bytes, fmt: str, name: str, download: bool) -> Response:
    headers = {
        "Cache-Control": "private, no-store",
        # The page shows the HTML report in a frame of its own.
        "X-Frame-Options": "SAMEORIGIN",
        "Content-Security-Policy": "frame-ancestors 'self'; script-src 'none'",
    }
    if download or fmt != "html":
        headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(name)}"
    return Response(body, media_type=REPORT_MEDIA[fmt], headers=headers)


@router.get("/reports/weekly/{week}.{fmt}")
def weekly_file(
    request: Request,
    week: Annotated[str, PathParam(max_length=10)],
    fmt: Annotated[str, PathParam(max_length=4)],
    principal: OptionalUser,
    download: bool = False,
) -> Response:
    who = _supervisor(request, principal)
    if isinstance(who, Response):
        return who
    if fmt not in REPORT_MEDIA:
        raise NotFound(f"no report format {fmt}")
    from closeloop.reports.render import render_weekly
    from closeloop.reports.weekly import build_weekly

    app, now = web_app(request), request_now(request)
    report = build_weekly(app, now=now, week=week)
    body = render_weekly(report, fmt, locale=page_locale(request), workflow=app.workflow)
    return _report_file(body, fmt, f"weekly-{week}.{fmt}", download)


@router.get("/reports/board/{month}.{fmt}")
def board_file(
    request: Request,
    month: Annotated[str, PathParam(max_length=7)],
    fmt: Annotated[str, PathParam(max_length=4)],
    principal: OptionalUser,
    download: bool = False,
) -> Response:
    who = _supervisor(request, principal)
    if isinstance(who, Response):
        return who
    if fmt not in REPORT_MEDIA:
        raise NotFound(f"no report format {fmt}")
    from closeloop.exam import service as store
    from closeloop.exam.render import render_board

    app, now = web_app(request), request_now(request)
    body = render_board(store.board_view(app, month, now), fmt, locale=page_locale(request))
    return _report_file(body, fmt, f"board-{month}.{fmt}", download)


# --- administrators ----------------------------------------------------------------------------


def _admin(request: Request, principal: Principal | None) -> Principal | Response:
    if principal is None:
        return _login_redirect(request)
    if not principal.is_admin:
        raise NotPermitted(f"{principal.handle} is not an administrator")
    return principal


def _matches(q: str, *texts: str | None) -> bool:
    q = q.casefold()
    return any(q in (t or "").casefold() for t in texts)


@router.get("/admin")
def admin_home(
    request: Request,
    principal: OptionalUser,
    q: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    who = _admin(request, principal)
    if isinstance(who, Response):
        return who
    app = web_app(request)
    q = q.strip()
    everyone = list_people(app)
    if q:
        found = [p for p in everyone if _matches(q, p["handle"], p["name"], *p["leads"])]
    else:  # staff first: the people who are not only grid leaders
        found = sorted(everyone, key=lambda p: (not p["roles"], p["handle"]))
    with read_only(app.engine) as conn:
        grid_rows = conn.execute(
            select(grids.c.code, grids.c.name, grids.c.level, people.c.handle, people.c.name)
            .select_from(grids.outerjoin(people, people.c.id == grids.c.leader_id))
            .order_by(grids.c.path)
        ).all()
    grid_list = [
        {"code": g[0], "name": g[1], "level": g[2], "leader": g[3], "leader_name": g[4]}
        for g in grid_rows
        if not q or _matches(q, g[0], g[1], g[3], g[4])
    ]
    return render(
        request,
        "admin.html",
        principal=who,
        q=q,
        people=found[:PEOPLE_SHOWN],
        people_total=len(found),
        grids=grid_list[:GRIDS_SHOWN],
        grids_total=len(grid_list),
    )


def _person(app: App, handle: str) -> dict[str, Any]:
    with read_only(app.engine) as conn:
        row = conn.execute(select(people).where(people.c.handle == handle)).first()
        if row is None:
            raise NotFound(f"unknown person '{handle}'")
        led = conn.execute(
            select(grids.c.code, grids.c.name, grids.c.level)
            .where(grids.c.leader_id == row.id)
            .order_by(grids.c.path)
        ).all()
    return {
        "handle": row.handle,
        "name": row.name,
        "phone": row.phone,
        "email": row.email,
        "roles": [r for r in row.roles.split(",") if r],
        "channels": [c for c in row.channels.split(",") if c],
        "webhook": row.webhook or "",
        "digest": bool(row.digest),
        "has_password": row.password_hash is not None,
        "leads": [{"code": g.code, "name": g.name, "level": g.level} for g in led],
    }


def _person_page(
    request: Request, who: Principal, handle: str, *, status: int = 200, error: str | None = None
) -> Response:
    app = web_app(request)
    defaults = app.settings.section("notifiers").get("default_channels", ["console"])
    return render(
        request,
        "admin_person.html",
        status=status,
        principal=who,
        error=error,
        person=_person(app, handle),
        channels=CHANNELS,
        default_channels=list(defaults),
    )


@router.get("/admin/people/{handle}")
def admin_person(
    request: Request, handle: Annotated[str, PathParam(max_length=64)], principal: OptionalUser
) -> Response:
    who = _admin(request, principal)
    if isinstance(who, Response):
        return who
    return _person_page(request, who, handle)


@router.post("/admin/people/{handle}/password", dependencies=[Depends(require_csrf)])
def admin_password(
    request: Request,
    handle: Annotated[str, PathParam(max_length=64)],
    principal: OptionalUser,
    password: Annotated[str, Form(max_length=1024)],
    again: Annotated[str, Form(max_length=1024)],
) -> Response:
    who = _admin(request, principal)
    if isinstance(who, Response):
        return who
    t = i18n.translator(page_locale(request))
    if password != again:
        return _person_page(request, who, handle, status=422, error=t("admin.password_differ"))
    try:
        set_password(web_app(request), handle, password)
    except DomainError as exc:
        return _person_page(request, who, handle, status=exc.status, error=_message(request, exc))
    return RedirectResponse(
        _with_done(f"/admin/people/{quote(handle)}", "password"), status_code=303
    )


@router.post("/admin/people/{handle}/channels", dependencies=[Depends(require_csrf)])
def admin_channels(
    request: Request,
    handle: Annotated[str, PathParam(max_length=64)],
    principal: OptionalUser,
    channel: Annotated[list[str] | None, Form(max_length=20)] = None,
    webhook: Annotated[str, Form(max_length=500)] = "",
    digest: Annotated[str | None, Form(max_length=5)] = None,
) -> Response:
    who = _admin(request, principal)
    if isinstance(who, Response):
        return who
    app = web_app(request)
    try:
        with app.engine.begin() as conn:
            grid_mod.set_channels(
                conn, handle, channel or [], webhook=webhook, digest=digest is not None
            )
    except UnknownPerson as exc:
        raise NotFound(str(exc)) from None
    except ValueError as exc:
        return _person_page(request, who, handle, status=422, error=_message(request, exc))
    return RedirectResponse(
        _with_done(f"/admin/people/{quote(handle)}", "channels"), status_code=303
    )


def _grid_page(
    request: Request,
    who: Principal,
    code: str,
    *,
    status: int = 200,
    error: str | None = None,
    value: str = "",
) -> Response:
    app = web_app(request)
    detail = zone.describe(app, code)
    return render(
        request,
        "admin_grid.html",
        status=status,
        principal=who,
        error=error,
        grid=detail,
        value=value,
    )


@router.get("/admin/grids/{code}")
def admin_grid(
    request: Request, code: Annotated[str, PathParam(max_length=64)], principal: OptionalUser
) -> Response:
    who = _admin(request, principal)
    if isinstance(who, Response):
        return who
    return _grid_page(request, who, code)


@router.post("/admin/grids/{code}/leader", dependencies=[Depends(require_csrf)])
def admin_grid_leader(
    request: Request,
    code: Annotated[str, PathParam(max_length=64)],
    principal: OptionalUser,
    handle: Annotated[str, Form(max_length=64)],
) -> Response:
    who = _admin(request, principal)
    if isinstance(who, Response):
        return who
    app = web_app(request)
    try:
        with app.engine.begin() as conn:
            grid_mod.set_leader(conn, code, handle.strip())
    except UnknownGrid as exc:
        raise NotFound(str(exc)) from None
    except UnknownPerson as exc:
        return _grid_page(
            request, who, code, status=422, error=_message(request, exc), value=handle
        )
    return RedirectResponse(_with_done(f"/admin/grids/{quote(code)}", "leader"), status_code=303)


@router.get("/admin/import")
def admin_import_form(request: Request, principal: OptionalUser) -> Response:
    who = _admin(request, principal)
    if isinstance(who, Response):
        return who
    return render(request, "admin_import.html", principal=who, problems=[], summary=None, text="")


@router.post("/admin/import", dependencies=[Depends(require_csrf)])
async def admin_import(
    request: Request,
    principal: OptionalUser,
    file: Annotated[UploadFile | None, File()] = None,
    text: Annotated[str, Form(max_length=CSV_MAX_BYTES)] = "",
) -> Response:
    who = _admin(request, principal)
    if isinstance(who, Response):
        return who
    app, now = web_app(request), request_now(request)
    t = i18n.translator(page_locale(request))
    content = text
    if file is not None and (file.filename or file.size):
        data = await file.read(CSV_MAX_BYTES + 1)
        if len(data) > CSV_MAX_BYTES:
            return render(
                request,
                "admin_import.html",
                status=413,
                principal=who,
                error=t("admin.csv_too_large", mb=CSV_MAX_BYTES // (1024 * 1024)),
                problems=[],
                summary=None,
                text="",
            )
        content = decode_grid_csv(data)
    if not content.strip():
        return render(
            request,
            "admin_import.html",
            status=422,
            principal=who,
            error=t("admin.csv_empty"),
            problems=[],
            summary=None,
            text="",
        )
    try:
        summary = await run_in_threadpool(zone.import_grid_text, app, content, now)
    except GridFileError as exc:
        return render(
            request,
            "admin_import.html",
            status=422,
            principal=who,
            problems=exc.problems,
            summary=None,
            text=content if len(content) < 200_000 else "",
        )
    return render(
        request,
        "admin_import.html",
        principal=who,
        flash=t("done.import"),
        problems=[],
        summary=summary,
        text="",
    )
