"""The administrators' pages: people, passwords, channels, a grid's leader, the grid import,
the grid boundaries (GeoJSON)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from closeloop import grid as grid_mod
from closeloop import zone
from closeloop.app import App
from closeloop.config import ConfigError
from closeloop.csvfile import CsvFileError, decode
from closeloop.db import read_only
from closeloop.geo import service as geo
from closeloop.geo.rules import GeometryFileError
from closeloop.grid import UnknownGrid, UnknownPerson
from closeloop.gridfile import CHANNELS
from closeloop.models import grids, people
from closeloop.tickets import DomainError, NotFound, NotPermitted
from closeloop.web import i18n
from closeloop.web.auth import (
    OptionalUser,
    Principal,
    list_people,
    request_now,
    require_csrf,
    set_disabled,
    set_password,
    web_app,
)
from closeloop.web.pages.base import _login_redirect, _message, _with_done, page_locale, render

router = APIRouter(include_in_schema=False)


CSV_MAX_BYTES = 5 * 1024 * 1024
GEOJSON_MAX_BYTES = 20 * 1024 * 1024
PEOPLE_SHOWN = 25
GRIDS_SHOWN = 25


def _admin(request: Request, principal: Principal | None) -> Principal | Response:
    if principal is None:
        return _login_redirect(request)
    if not principal.is_admin:
        raise NotPermitted("person.not_admin", handle=principal.handle)
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
            raise NotFound("person.unknown", handle=handle)
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
        "disabled_at": row.disabled_at,
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
        set_password(web_app(request), handle, password, now=request_now(request), by=who.handle)
    except DomainError as exc:
        return _person_page(request, who, handle, status=exc.status, error=_message(request, exc))
    return RedirectResponse(
        _with_done(f"/admin/people/{quote(handle)}", "password"), status_code=303
    )


@router.post("/admin/people/{handle}/disable", dependencies=[Depends(require_csrf)])
def admin_disable(
    request: Request,
    handle: Annotated[str, PathParam(max_length=64)],
    principal: OptionalUser,
    confirm: Annotated[str | None, Form(max_length=5)] = None,
) -> Response:
    """Disable a person: no login, their sessions ended, their API tokens revoked, one audit
    line (closeloop.web.auth.set_disabled, as the API and `closeloop user disable` do). The
    form's checkbox must be ticked: one click must not lock someone out."""
    who = _admin(request, principal)
    if isinstance(who, Response):
        return who
    t = i18n.translator(page_locale(request))
    if handle == who.handle:
        raise NotPermitted("auth.disable_self")
    if confirm is None:
        _person(web_app(request), handle)  # an unknown person is 404, not a request to confirm
        return _person_page(request, who, handle, status=422, error=t("admin.disable_confirm"))
    set_disabled(web_app(request), handle, True, request_now(request), by=who.handle)
    return RedirectResponse(
        _with_done(f"/admin/people/{quote(handle)}", "disable"), status_code=303
    )


@router.post("/admin/people/{handle}/enable", dependencies=[Depends(require_csrf)])
def admin_enable(
    request: Request, handle: Annotated[str, PathParam(max_length=64)], principal: OptionalUser
) -> Response:
    """Let a disabled person log in again; their old tokens stay revoked."""
    who = _admin(request, principal)
    if isinstance(who, Response):
        return who
    set_disabled(web_app(request), handle, False, request_now(request), by=who.handle)
    return RedirectResponse(_with_done(f"/admin/people/{quote(handle)}", "enable"), status_code=303)


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
        raise NotFound(exc.code, **exc.params) from None
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
        raise NotFound(exc.code, **exc.params) from None
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


def _refused(request: Request, who: Principal, error: CsvFileError, content: str) -> Response:
    return render(
        request,
        "admin_import.html",
        status=422,
        principal=who,
        problems=error.lines(page_locale(request)),
        summary=None,
        text=content if len(content) < 200_000 else "",
    )


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
        try:
            content = decode(data)
        except CsvFileError as exc:
            return _refused(request, who, exc, "")
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
    except CsvFileError as exc:
        return _refused(request, who, exc, content)
    return render(
        request,
        "admin_import.html",
        principal=who,
        flash=t("done.import"),
        problems=[],
        summary=summary,
        text="",
    )


@router.get("/admin/geometry")
def admin_geometry_form(request: Request, principal: OptionalUser) -> Response:
    who = _admin(request, principal)
    if isinstance(who, Response):
        return who
    return render(request, "admin_geometry.html", principal=who, refused=None, problems=[])


@router.post("/admin/geometry", dependencies=[Depends(require_csrf)])
async def admin_geometry(
    request: Request,
    principal: OptionalUser,
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """Grid boundaries from a GeoJSON file, as `closeloop grid import-geometry` stores them: a
    file with any problem is refused whole, every problem listed in the page's language."""
    who = _admin(request, principal)
    if isinstance(who, Response):
        return who
    app, now, locale = web_app(request), request_now(request), page_locale(request)
    t = i18n.translator(locale)

    def page(status: int = 200, **context: Any) -> Response:
        context = {"refused": None, "problems": [], **context}
        return render(request, "admin_geometry.html", status=status, principal=who, **context)

    data = await file.read(GEOJSON_MAX_BYTES + 1) if file is not None else b""
    if len(data) > GEOJSON_MAX_BYTES:
        return page(413, error=t("admin.geometry_too_large", mb=GEOJSON_MAX_BYTES // 2**20))
    if not data.strip():
        return page(422, error=t("admin.geometry_empty"))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return page(422, error=t("admin.geometry_not_utf8"))
    try:
        stored = await run_in_threadpool(geo.import_geometry_text, app, text, now)
    except GeometryFileError as exc:
        return page(422, refused=exc.head(locale), problems=exc.lines(locale))
    except ConfigError as exc:  # [geometry] tolerance_m of config.toml
        return page(422, error=_message(request, exc))
    return page(flash=t("done.geometry", grids=stored.grids, replaced=stored.replaced))
