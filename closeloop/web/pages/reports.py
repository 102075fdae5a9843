"""The weekly report and the monthly boards, as pages and as files."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import Response
from sqlalchemy import select

from closeloop.app import App
from closeloop.db import read_only
from closeloop.exam import service as store
from closeloop.exam.render import render_board
from closeloop.models import month_results
from closeloop.reports.indicators import last_full_week, weeks_before
from closeloop.reports.render import render_weekly
from closeloop.reports.weekly import build_weekly
from closeloop.tickets import NotFound, NotPermitted
from closeloop.web.auth import (
    OptionalUser,
    Principal,
    request_now,
    web_app,
)
from closeloop.web.pages.base import _login_redirect, page_locale, render

router = APIRouter(include_in_schema=False)


REPORT_WEEKS = 8
REPORT_MEDIA = {
    "html": "text/html; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def _supervisor(request: Request, principal: Principal | None) -> Principal | Response:
    if principal is None:
        return _login_redirect(request)
    if not principal.is_supervisor:
        raise NotPermitted("report.supervisor_only", handle=principal.handle)
    return principal


def _recent_weeks(app: App, now: datetime) -> list[str]:
    last = last_full_week(now, app.tz)
    return [last.label, *(p.label for p in reversed(weeks_before(last, REPORT_WEEKS - 1, app.tz)))]


def _published_months(app: App) -> list[str]:
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
        raise NotFound("page.no_report_format", fmt=fmt)
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
        raise NotFound("page.no_report_format", fmt=fmt)
    app, now = web_app(request), request_now(request)
    body = render_board(store.board_view(app, month, now), fmt, locale=page_locale(request))
    return _report_file(body, fmt, f"board-{month}.{fmt}", download)
