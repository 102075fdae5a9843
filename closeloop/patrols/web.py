"""The patrol pages, made for a phone: start a patrol, check in at each grid (optionally with
the phone's coordinates), report the problems found; thin over `closeloop.patrols.service`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from closeloop.patrols import service as patrols
from closeloop.web import staffpages
from closeloop.web.auth import OptionalUser, Principal, request_now, require_csrf, web_app
from closeloop.web.pages.base import page_locale, render

router = APIRouter(include_in_schema=False)


def _number(text: str | None) -> float | None:
    text = (text or "").strip()
    return float(text) if text else None


def _patrol_page(
    request: Request, who: Principal, patrol_id: int, *, error: str | None = None, status: int = 200
) -> Response:
    app = web_app(request)
    p = patrols.show_patrol(app, patrol_id)
    locale = page_locale(request)
    return render(
        request,
        "patrol.html",
        status=status,
        principal=who,
        error=error,
        patrol=p,
        mine=p["by"] == who.handle,
        grids=staffpages.grid_options(app, who),
        categories=[
            {"key": c.key, "name": c.label.get(locale)} for c in app.workflow.categories.values()
        ],
    )


@router.get("/patrols")
def patrol_list(request: Request, principal: OptionalUser) -> Response:
    who = staffpages.field_staff(request, principal)
    if isinstance(who, Response):
        return who
    mine = patrols.list_patrols(web_app(request), by=who.handle)
    return render(request, "patrols.html", principal=who, patrols=list(reversed(mine)))


@router.post("/patrols", dependencies=[Depends(require_csrf)])
async def patrol_start(
    request: Request, principal: OptionalUser, note: Annotated[str, Form(max_length=2000)] = ""
) -> Response:
    who = staffpages.field_staff(request, principal)
    if isinstance(who, Response):
        return who
    app, now = web_app(request), request_now(request)
    p = await run_in_threadpool(
        lambda: patrols.start_patrol(app, by=who.handle, now=now, note=note or None)
    )
    return staffpages.done(f"/patrols/{p['id']}", "patrol_started")


@router.get("/patrols/{patrol_id}")
def patrol_page(request: Request, principal: OptionalUser, patrol_id: int) -> Response:
    who = staffpages.field_staff(request, principal)
    if isinstance(who, Response):
        return who
    return _patrol_page(request, who, patrol_id)


@router.post("/patrols/{patrol_id}/checkins", dependencies=[Depends(require_csrf)])
async def patrol_check_in(
    request: Request,
    principal: OptionalUser,
    patrol_id: int,
    grid: Annotated[str, Form(max_length=64)],
    lat: Annotated[str, Form(max_length=20)] = "",
    lon: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    who = staffpages.field_staff(request, principal)
    if isinstance(who, Response):
        return who
    app, now = web_app(request), request_now(request)
    try:
        checkin = patrols.CheckIn(grid, _number(lat), _number(lon))
        await run_in_threadpool(
            lambda: patrols.check_in(app, patrol_id, by=who.handle, checkin=checkin, now=now)
        )
    except staffpages.FORM_ERRORS as exc:
        text, code = staffpages.message(request, exc), staffpages.status_of(exc)
        return await run_in_threadpool(
            lambda: _patrol_page(request, who, patrol_id, error=text, status=code)
        )
    return staffpages.done(f"/patrols/{patrol_id}", "checked_in")


@router.post("/patrols/{patrol_id}/problems", dependencies=[Depends(require_csrf)])
async def patrol_report(
    request: Request,
    principal: OptionalUser,
    patrol_id: int,
    problem: staffpages.ProblemForm,
) -> Response:
    who = staffpages.field_staff(request, principal)
    if isinstance(who, Response):
        return who
    app, now = web_app(request), request_now(request)
    try:
        await run_in_threadpool(
            lambda: patrols.report_problem(app, patrol_id, by=who.handle, problem=problem, now=now)
        )
    except staffpages.FORM_ERRORS as exc:
        text, code = staffpages.message(request, exc), staffpages.status_of(exc)
        return await run_in_threadpool(
            lambda: _patrol_page(request, who, patrol_id, error=text, status=code)
        )
    return staffpages.done(f"/patrols/{patrol_id}", "problem_reported")
