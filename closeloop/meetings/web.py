"""The meeting pages for the meeting's secretary (a supervisor): record a meeting, read its
agenda, hand decisions over to grids, send the minutes; thin over `closeloop.meetings.service`."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from closeloop.meetings import service as meetings
from closeloop.meetings.rules import KINDS, kind_name
from closeloop.tickets import Invalid
from closeloop.web import staffpages
from closeloop.web.auth import OptionalUser, Principal, request_now, require_csrf, web_app
from closeloop.web.pages.base import page_locale, render

router = APIRouter(include_in_schema=False)
WHAT = "record meetings"


def local_time(text: str, request: Request, field: str) -> datetime:
    """A datetime-local field (zone time, no offset) as an aware time."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise Invalid("option.bad_time", field=field, text=text) from None
    return value if value.tzinfo else value.replace(tzinfo=web_app(request).tz)


def _form_context(request: Request, who: Principal) -> dict[str, Any]:
    app, locale = web_app(request), page_locale(request)
    return {
        "kinds": [{"key": k, "name": kind_name(k, locale)} for k in KINDS],
        "grids": staffpages.grid_options(app, who, max_level=3),
        "decision_grids": staffpages.grid_options(app, who),
        "categories": [
            {"key": c.key, "name": c.label.get(locale)} for c in app.workflow.categories.values()
        ],
    }


def _list_page(
    request: Request, who: Principal, *, error: str | None = None, status: int = 200
) -> Response:
    rows = meetings.list_meetings(web_app(request))
    return render(
        request,
        "meetings.html",
        status=status,
        principal=who,
        error=error,
        meetings=list(reversed(rows)),
        **_form_context(request, who),
    )


def _meeting_page(
    request: Request,
    who: Principal,
    meeting_id: int,
    *,
    error: str | None = None,
    status: int = 200,
) -> Response:
    m = meetings.show_meeting(web_app(request), meeting_id)
    return render(
        request,
        "meeting.html",
        status=status,
        principal=who,
        error=error,
        meeting=m,
        agenda=m["agenda"],
        **_form_context(request, who),
    )


@router.get("/meetings")
def meeting_list(request: Request, principal: OptionalUser) -> Response:
    who = staffpages.supervisor(request, principal, WHAT)
    if isinstance(who, Response):
        return who
    return _list_page(request, who)


@router.post("/meetings", dependencies=[Depends(require_csrf)])
async def meeting_add(
    request: Request,
    principal: OptionalUser,
    kind: Annotated[str, Form(max_length=16)],
    at: Annotated[str, Form(max_length=40)],
    place: Annotated[str, Form(max_length=64)],
    attendees: Annotated[str, Form(max_length=4000)],
    week: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    who = staffpages.supervisor(request, principal, WHAT)
    if isinstance(who, Response):
        return who
    app, now = web_app(request), request_now(request)
    handles = [h for h in re.split(r"[\s,，;；]+", attendees) if h]
    try:
        when = local_time(at, request, "the time")
        m = await run_in_threadpool(
            lambda: meetings.add_meeting(
                app, kind=kind, at=when, place=place, attendees=handles, now=now,
                week=week.strip() or None,
            )
        )  # fmt: skip
    except staffpages.FORM_ERRORS as exc:
        text, code = staffpages.message(request, exc), staffpages.status_of(exc)
        return await run_in_threadpool(lambda: _list_page(request, who, error=text, status=code))
    return staffpages.done(f"/meetings/{m['id']}", "meeting_added")


@router.get("/meetings/{meeting_id}")
def meeting_page(request: Request, principal: OptionalUser, meeting_id: int) -> Response:
    who = staffpages.supervisor(request, principal, WHAT)
    if isinstance(who, Response):
        return who
    return _meeting_page(request, who, meeting_id)


@router.post("/meetings/{meeting_id}/decisions", dependencies=[Depends(require_csrf)])
async def meeting_decide(
    request: Request,
    principal: OptionalUser,
    meeting_id: int,
    grid: Annotated[str, Form(max_length=64)],
    title: Annotated[str, Form(max_length=200)],
    due: Annotated[str, Form(max_length=40)],
    category: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    who = staffpages.supervisor(request, principal, WHAT)
    if isinstance(who, Response):
        return who
    app, now = web_app(request), request_now(request)
    try:
        by = local_time(due, request, "the deadline")
        await run_in_threadpool(
            lambda: meetings.decide(
                app, meeting_id, grid=grid, title=title, due=by, now=now,
                category=category or None,
            )
        )  # fmt: skip
    except staffpages.FORM_ERRORS as exc:
        text, code = staffpages.message(request, exc), staffpages.status_of(exc)
        return await run_in_threadpool(
            lambda: _meeting_page(request, who, meeting_id, error=text, status=code)
        )
    return staffpages.done(f"/meetings/{meeting_id}", "decided")


@router.post("/meetings/{meeting_id}/minutes", dependencies=[Depends(require_csrf)])
async def meeting_send_minutes(
    request: Request, principal: OptionalUser, meeting_id: int
) -> Response:
    who = staffpages.supervisor(request, principal, WHAT)
    if isinstance(who, Response):
        return who
    app, now = web_app(request), request_now(request)
    await run_in_threadpool(lambda: meetings.send_minutes(app, meeting_id, now))
    return staffpages.done(f"/meetings/{meeting_id}", "minutes_sent")


@router.get("/meetings/{meeting_id}/minutes.{fmt}")
def meeting_minutes(
    request: Request, principal: OptionalUser, meeting_id: int, fmt: str
) -> Response:
    who = staffpages.supervisor(request, principal, WHAT)
    if isinstance(who, Response):
        return who
    if fmt not in ("md", "html"):
        raise Invalid("meeting.format", fmt=fmt)
    text = meetings.minutes(web_app(request), meeting_id, fmt, page_locale(request))
    if fmt == "html":
        return HTMLResponse(text)
    return PlainTextResponse(text, media_type="text/markdown; charset=utf-8")
