"""The ticket page and its steps (the forms, and what a step answers)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from closeloop.app import App
from closeloop.db import read_only
from closeloop.models import grids, ticket_events, tickets
from closeloop.tickets import NotFound
from closeloop.web import api, i18n
from closeloop.web.auth import (
    CSRF_FIELD,
    OptionalUser,
    Principal,
    request_now,
    web_app,
    web_settings,
)
from closeloop.web.pages.base import (
    FORM_ERRORS,
    _home_of,
    _login_redirect,
    _message,
    _names_of,
    _parse_time,
    _staff,
    _status_of,
    _with_done,
    page_locale,
    render,
)
from closeloop.web.pages.supervise import LIST_PAGES

router = APIRouter(include_in_schema=False)


# How a step's form looks: the primary step of a state is shown open, the rest folded away;
# "danger" steps undo work and are styled so; some steps take photos or an optional note.
PRIMARY_STEPS = ("fix", "verify", "close", "approve_extension", "resume")
DANGER_STEPS = frozenset({"reject", "dismiss", "refuse_extension"})
PHOTO_STEPS = frozenset({"fix", "verify", "reject"})
NOTE_STEPS = frozenset({"fix", "verify", "close", "approve_extension", "resume", "reassign"})


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


# No require_csrf here: an anonymous sender only gets the login page, and a logged-in one is
# CSRF-checked by optional_principal (a token from an ended session must still lead to login).
@router.post("/tickets/{ref}/steps/{step}")
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
