"""Pages anyone may open: the static files, home, login, reporting a problem, following it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, RedirectResponse, Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from closeloop import feedback
from closeloop.app import App
from closeloop.db import read_only
from closeloop.models import grids
from closeloop.tickets import NotFound
from closeloop.web import access, api
from closeloop.web.auth import (
    CSRF_FIELD,
    OptionalUser,
    Principal,
    request_now,
    require_csrf,
    safe_next,
    web_app,
    web_settings,
)
from closeloop.web.pages.base import (
    FORM_ERRORS,
    HERE,
    _home_of,
    _message,
    _status_of,
    page_locale,
    render,
)

router = APIRouter(include_in_schema=False)


STATIC = HERE / "static"
STATIC_FILES = {"site.css": "text/css", "site.js": "text/javascript"}


@router.get("/static/{name}")
def static(name: str) -> Response:
    media = STATIC_FILES.get(name)
    if media is None:
        raise NotFound("page.no_file", name=name)
    return FileResponse(
        STATIC / name,
        media_type=media,
        headers={"Cache-Control": "public, max-age=3600"},
    )


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
        satisfaction=feedback.SATISFACTION,
    )


@router.post("/track/{ref}/feedback", dependencies=[Depends(require_csrf)])
async def track_feedback(
    request: Request,
    ref: Annotated[str, PathParam(max_length=32)],
    secret: Annotated[str, Form(max_length=100)],
    solved: Annotated[str, Form(pattern="^(yes|no)$")],
    satisfaction: Annotated[str, Form(max_length=16)],
    comment: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    """The reporter's answer once the ticket is closed: solved? and how satisfied."""
    app = web_app(request)
    answer = feedback.Answer(solved == "yes", satisfaction, comment)
    await run_in_threadpool(
        feedback.reporter_answer,
        app,
        ref,
        access.hash_secret(secret),
        answer,
        request_now(request),
    )
    query = urlencode({"secret": secret, "done": "rated"})
    return RedirectResponse(f"/track/{quote(ref)}?{query}", status_code=303)
