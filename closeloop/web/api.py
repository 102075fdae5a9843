"""The JSON API: every step of the loop and every list, scoped to what the caller may see.

Handlers are thin: parse, check who is asking, call the service layer, shape the answer. The
time comes from the app's clock. Errors are raised as closeloop.tickets errors and become JSON
with the right status in `closeloop.web.app`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from pathlib import Path as FsPath
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.responses import FileResponse
from sqlalchemy import Select, select
from starlette.concurrency import run_in_threadpool

from closeloop import escalation, feedback, service, views, zone
from closeloop.app import App
from closeloop.db import read_only
from closeloop.evidence import EvidenceError, path_of
from closeloop.exam import service as store
from closeloop.exam.render import render_board
from closeloop.geo import service as geo
from closeloop.grid import in_subtree, level_name
from closeloop.models import evidence, grids, people, tickets
from closeloop.reports.render import render_weekly
from closeloop.reports.weekly import build_weekly
from closeloop.tickets import Invalid, NotFound, NotPermitted, StepInput
from closeloop.web import access, idempotency, quota, registers, schemas
from closeloop.web.auth import (
    AdminUser,
    CurrentUser,
    NotAuthenticated,
    OptionalUser,
    Principal,
    client_ip,
    create_token,
    identify,
    list_people,
    list_tokens,
    optional_principal,
    request_now,
    revoke_token,
    set_disabled,
    set_password,
    verify_password,
    web_app,
    web_settings,
)
from closeloop.web.uploads import body_schema, read_body, store_uploads
from closeloop.web.writers import write

router = APIRouter(prefix="/api", responses=schemas.ERROR_RESPONSES)

Ref = Annotated[str, Path(max_length=32, description="ticket reference, e.g. EP-2026-000001")]
SecretQuery = Annotated[
    str | None,
    Query(max_length=100, description="the reporter's secret (or the X-Reporter-Secret header)"),
]
SecretHeader = Annotated[str | None, Header(alias="X-Reporter-Secret", max_length=100)]


# --- shaping -----------------------------------------------------------------------------------


def _seconds_left(due: str | datetime | None, now: datetime) -> float | None:
    if due is None:
        return None
    when = datetime.fromisoformat(due) if isinstance(due, str) else due
    return round((when - now).total_seconds(), 1)


def summary(app: App, row: Any, now: datetime) -> dict[str, Any]:
    out = views.ticket_summary(app, row, now)
    out["seconds_left"] = _seconds_left(row.due_at, now)
    return out


def with_left(items: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    for item in items:
        item["seconds_left"] = _seconds_left(item.get("due_at"), now)
    return items


def _evidence_items(files: list[dict[str, Any]], secret: str | None = None) -> list[dict[str, Any]]:
    suffix = f"?secret={quote(secret)}" if secret else ""
    return [{**f, "url": f"/api/evidence/{f['id']}{suffix}"} for f in files]


def ticket_detail(app: App, principal: Principal, ref: str, now: datetime) -> dict[str, Any]:
    """The whole ticket for a person allowed to see it (404 otherwise)."""
    with read_only(app.engine) as conn:
        row = access.visible_row(conn, ref, principal)
        out = views.show_row(app, conn, row, now)
    out["seconds_left"] = _seconds_left(row.due_at, now)
    out["evidence"] = _evidence_items(out["evidence"])
    out["allowed_steps"] = access.allowed_steps(app, row, principal)
    return out


def reporter_view(app: App, ref: str, secret: str) -> dict[str, Any]:
    with read_only(app.engine) as conn:
        row = access.reporter_row(conn, ref, secret)
        may_rate = row.state == "closed" and feedback.reporter_may_answer(
            conn, row.id, row.closed_at
        )
        full = views.show_row(app, conn, row)
    wf, locale = app.workflow, app.settings.locale

    def step_name(step: str) -> str:
        found = wf.steps.get(step)
        return found.label.get(locale) if found else step

    def state_name(state: str) -> str:
        found = wf.states.get(state)
        return found.label.get(locale) if found else state

    return {
        **{
            k: full[k]
            for k in (
                "ref",
                "state",
                "state_name",
                "category",
                "category_name",
                "title",
                "description",
                "grid_name",
                "address",
                "created_at",
                "updated_at",
                "closed_at",
            )
        },
        "closed": wf.states[full["state"]].final,
        # Once closed, the reporter is asked once: solved? and how satisfied (回访).
        "may_rate": may_rate,
        "rated": [
            {k: f[k] for k in ("at", "solved", "satisfaction", "comment")}
            for f in full["feedback"]
            if f["channel"] == "reporter"
        ],
        "events": [
            {
                "at": e["at"],
                "step": e["step"],
                "step_name": step_name(e["step"]),
                "to": e["to"],
                "to_name": state_name(e["to"]),
            }
            for e in full["events"]
        ],
        "evidence": _evidence_items(full["evidence"], secret),
    }


# --- tickets -----------------------------------------------------------------------------------


@router.post(
    "/tickets",
    status_code=201,
    response_model=schemas.Submitted,
    summary="Report a problem (no account needed); returns its reference and a secret",
    tags=["tickets"],
    openapi_extra={
        **body_schema(schemas.SubmitBody, "photos", "photos of the problem"),
        **idempotency.OPENAPI,
    },
)
async def submit_ticket(request: Request) -> Any:
    app, cfg = web_app(request), web_settings(request)
    key = idempotency.key_of(request)
    body, files = await read_body(request, schemas.SubmitBody, "photos", cfg)
    claim: idempotency.Claim | None = None
    if key is not None:
        # Anonymous reporters' keys are their address's; a token or session, theirs.
        principal = await optional_principal(request)
        parts = [body.model_dump(mode="json"), idempotency.file_digests(files)]
        got = await idempotency.claim(request, principal, parts, key=key)
        if isinstance(got, Response):
            return got
        claim = got
    try:
        caller = await identify(request)
        source = body.source or (caller.source if caller else None) or "public"
        if caller is None and source != "public":
            raise NotPermitted("ticket.source_staff_only")
        if body.urgent and not (caller is not None and caller.is_supervisor):
            raise NotPermitted("ticket.urgent_supervisor_only")
        admit: Callable[[App], None] | None = None
        if caller is None:  # anonymous: the per-address quota (web.quota)
            size = sum(len(f.data) for f in files)
            ip, at = client_ip(request), request_now(request)

            def admit(a: App) -> None:
                quota.admit(a, cfg, ip, size, at)

        # Without files or a position to route, nothing happens between the quota and the
        # submit: both go to the writer as one piece, in savepoints of their own (a refused
        # submit still counts against the quota, as when they were two), and the submit waits
        # for one group commit instead of two.
        admit_with_submit = admit is not None and not files and body.grid is not None
        if admit is not None and not admit_with_submit:
            await run_in_threadpool(write, app, admit)
        grid = body.grid
        if grid is None:
            grid = await run_in_threadpool(geo.route, app, body.lat, body.lon)
        stored = await store_uploads(app, cfg, files)
        secret, secret_hash = access.new_reporter_secret()
        problem = service.NewProblem(
            grid=grid,
            category=body.category,
            title=body.title,
            description=body.description,
            address=body.address,
            lat=body.lat,
            lon=body.lon,
            reporter=body.reporter_name,
            reporter_phone=body.reporter_phone,
            reporter_email=body.reporter_email,
            reporter_secret_hash=secret_hash,
            source=source,
            urgent=body.urgent,
        )
        now = request_now(request)

        def answer(ref: str) -> dict[str, Any]:
            return {
                "ref": ref,
                "secret": secret,
                # Where the workflow's submit step leads (即交即办: straight to the grid's leader).
                "state": app.workflow.steps["submit"].dest,
                "url": f"/api/tickets/{ref}?secret={quote(secret)}",
            }

        also = idempotency.recorder(
            claim,
            201,
            idempotency.JSON_TYPE,
            lambda ref: idempotency.as_json(schemas.Submitted, answer(ref)),
        )

        def run(a: App) -> str:
            if admit is not None and admit_with_submit:
                admit(a)
            return service.submit(a, problem, now, uploads=stored, also=also)

        ref = await run_in_threadpool(write, app, run)
    except BaseException:
        await idempotency.release(claim)
        raise
    return await idempotency.answer(claim, 201, schemas.Submitted, answer(ref))


@router.get(
    "/tickets",
    response_model=schemas.TicketList,
    summary="Tickets the caller may see, newest first",
    tags=["tickets"],
)
def list_tickets(
    request: Request,
    principal: CurrentUser,
    state: Annotated[list[str] | None, Query(max_length=20)] = None,
    grid: Annotated[str | None, Query(max_length=64, description="this grid and below")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> dict[str, Any]:
    app, now = web_app(request), request_now(request)
    states = state or []
    unknown = [s for s in states if s not in app.workflow.states]
    if unknown:
        raise Invalid(
            "ticket.unknown_state", states=", ".join(unknown), known=", ".join(app.workflow.states)
        )
    with read_only(app.engine) as conn:
        path = None
        if grid is not None:
            path = conn.execute(select(grids.c.path).where(grids.c.code == grid)).scalar()
            if path is None:
                raise NotFound("grid.unknown", code=grid)
        q = _listing(access.scope_of(principal), tuple(states), path, limit, offset)
        rows = conn.execute(q).all()
    return {"items": [summary(app, r, now) for r in rows], "limit": limit, "offset": offset}


@functools.lru_cache(maxsize=512)
def _listing(
    scope: access.Scope, states: tuple[str, ...], path: str | None, limit: int, offset: int
) -> Select[Any]:
    """The statement of one page of `list_tickets`, kept per question asked: see
    `access.scoped` for why a statement object is worth keeping."""
    q = access.scoped(scope)
    if states:
        q = q.where(tickets.c.state.in_(states))
    if path is not None:
        q = q.where(in_subtree(views.HOME.c.path, path))
    return q.order_by(tickets.c.id.desc()).limit(limit).offset(offset)


@router.get(
    "/tickets/{ref}",
    response_model=schemas.TicketDetail | schemas.ReporterTicket,
    summary="One ticket: the whole of it for staff, the reporter's view with the secret",
    tags=["tickets"],
)
async def get_ticket(
    request: Request,
    ref: Ref,
    principal: OptionalUser,
    secret: SecretQuery = None,
    x_reporter_secret: SecretHeader = None,
) -> dict[str, Any]:
    app, now = web_app(request), request_now(request)
    given = secret or x_reporter_secret
    if given:
        return await run_in_threadpool(reporter_view, app, ref, given)
    if principal is None:
        raise NotAuthenticated("auth.login_or_secret")
    return await run_in_threadpool(ticket_detail, app, principal, ref, now)


@router.post(
    "/tickets/{ref}/steps/{step}",
    response_model=schemas.StepDone,
    summary="Take a step of the loop (fix, verify, close, ...); photos as multipart `evidence`",
    tags=["tickets"],
    openapi_extra={
        **body_schema(schemas.StepBody, "evidence", "photos or PDFs of the work"),
        **idempotency.OPENAPI,
    },
)
async def take_step(
    request: Request,
    ref: Ref,
    step: Annotated[str, Path(max_length=40, description="e.g. fix, verify, request_extension")],
    principal: CurrentUser,
) -> Any:
    app, cfg, now = web_app(request), web_settings(request), request_now(request)
    key = idempotency.key_of(request)
    body, files = await read_body(request, schemas.StepBody, "evidence", cfg)
    name = step.replace("-", "_")
    parts = [body.model_dump(mode="json"), idempotency.file_digests(files)]
    claim = await idempotency.claim(request, principal, parts, key=key) if key else None
    if isinstance(claim, Response):
        return claim

    def check_visible() -> None:
        with read_only(app.engine) as conn:
            access.visible_row(conn, ref, principal)

    def outcome(t: Any, detail: dict[str, Any] | None) -> dict[str, Any]:
        return {
            "ref": ref,
            "step": name,
            "state": t.state,
            "state_name": app.workflow.states[t.state].label.get(app.settings.locale),
            "ticket": detail,
        }

    # Inside the step's transaction the answer without the ticket's detail (read after the
    # commit) is kept, so that a retry after a crash between the two still finds the step done.
    also = idempotency.recorder(
        claim,
        200,
        idempotency.JSON_TYPE,
        lambda t: idempotency.as_json(schemas.StepDone, outcome(t, None)),
    )

    try:
        if files:
            # Before the files are stored; without files the check rides with the write below
            # (one hand-over to a thread instead of two).
            await run_in_threadpool(check_visible)
        stored = await store_uploads(app, cfg, files)
        given = StepInput(
            note=body.note,
            reason=body.reason,
            to_grid=body.to_grid,
            until=body.until,
            review_on=body.review_on,
        )

        def step_once(a: App) -> Any:
            return service.run_step(
                a,
                ref,
                name,
                principal.handle,
                given,
                now,
                at=body.at,
                uploads=stored,
                backfill=service.backfill_limit(a),
                also=also,
            )

        def run() -> dict[str, Any]:
            if not files:
                check_visible()
            t = write(app, step_once)
            try:
                detail: dict[str, Any] | None = ticket_detail(app, principal, ref, now)
            except NotFound:
                detail = None  # e.g. reassigned out of the caller's grids
            return outcome(t, detail)

        done = await run_in_threadpool(run)
    except BaseException:
        await idempotency.release(claim)
        raise
    return await idempotency.answer(claim, 200, schemas.StepDone, done)


@router.get(
    "/evidence/{evidence_id}",
    response_class=FileResponse,
    summary="A photo or PDF, for people who may see its ticket (reporters with their secret)",
    tags=["tickets"],
    responses={200: {"content": {"image/*": {}, "application/pdf": {}}}},
)
def get_evidence(
    request: Request,
    evidence_id: Annotated[int, Path(ge=1, le=2**62)],
    principal: OptionalUser,
    secret: SecretQuery = None,
    x_reporter_secret: SecretHeader = None,
) -> FileResponse:
    app = web_app(request)
    given = secret or x_reporter_secret
    missing = NotFound("evidence.not_found", evidence_id=evidence_id)
    with read_only(app.engine) as conn:
        row = conn.execute(
            select(evidence, tickets.c.ref)
            .select_from(evidence.join(tickets, tickets.c.id == evidence.c.ticket_id))
            .where(evidence.c.id == evidence_id)
        ).first()
        if row is None:
            raise missing
        try:
            if given:
                access.reporter_row(conn, row.ref, given)
            elif principal is not None:
                access.visible_row(conn, row.ref, principal)
            else:
                raise missing
        except NotFound:
            raise missing from None
    try:
        path: FsPath = path_of(app.settings.evidence_dir, row.stored_name)
    except EvidenceError:
        raise missing from None
    if not path.is_file():
        raise NotFound("evidence.file_missing", evidence_id=evidence_id)
    return FileResponse(
        path,
        media_type=row.content_type,
        headers={
            "Cache-Control": "private, max-age=86400",
            "Content-Disposition": f"inline; filename*=UTF-8''{quote(row.original_name)}",
        },
    )


# --- the lists of leaders and supervisors ------------------------------------------------------


@router.get(
    "/inbox",
    response_model=schemas.TicketItems,
    summary="What the caller must handle: their grids' open tickets and fixes to verify",
    tags=["lists"],
)
def inbox(request: Request, principal: CurrentUser) -> dict[str, Any]:
    app, now = web_app(request), request_now(request)
    return {"items": with_left(views.inbox(app, principal.handle, now), now)}


def only_visible(
    app: App, principal: Principal, items: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    if principal.is_supervisor or not items:
        return items
    refs = [i["ref"] for i in items]
    q = (
        access.listing()
        .with_only_columns(tickets.c.ref)
        .where(tickets.c.ref.in_(refs), access.scope_clause(principal))
    )
    with read_only(app.engine) as conn:
        seen = set(conn.execute(q).scalars())
    return [i for i in items if i["ref"] in seen]


@router.get(
    "/overdue",
    response_model=schemas.OverdueList,
    summary="Tickets past their deadline, most overdue first (supervisors: all; leaders: "
    "their grids)",
    tags=["lists"],
)
def overdue(
    request: Request,
    principal: CurrentUser,
    grid: Annotated[str | None, Query(max_length=64, description="this grid and below")] = None,
    level: Annotated[
        int | None, Query(ge=0, le=10, description="escalation level; 0 = not escalated")
    ] = None,
) -> dict[str, Any]:
    app, now = web_app(request), request_now(request)
    if grid is not None:  # a filter naming no grid finds nothing there: 404
        with read_only(app.engine) as conn:
            if conn.execute(select(grids.c.id).where(grids.c.code == grid)).first() is None:
                raise NotFound("grid.unknown", code=grid)
    items = escalation.overdue(app, now, grid=grid, level=level)
    return {"items": only_visible(app, principal, items)}


@router.get(
    "/deferred",
    response_model=schemas.DeferralList,
    summary="The deferral register (缓办挂账), earliest review first",
    tags=["lists"],
)
def deferred(request: Request, principal: CurrentUser) -> dict[str, Any]:
    app, now = web_app(request), request_now(request)
    return {"items": registers.deferred(app, access.scope_clause(principal), now)}


@router.get(
    "/extensions",
    response_model=schemas.ExtensionList,
    summary="Extension requests (延期申请), oldest first",
    tags=["lists"],
)
def extension_requests(
    request: Request,
    principal: CurrentUser,
    status: Annotated[
        Literal["pending", "approved", "refused", "lapsed", "all"], Query()
    ] = "pending",
) -> dict[str, Any]:
    app = web_app(request)
    wanted = None if status == "all" else status
    return {"items": registers.extension_requests(app, access.scope_clause(principal), wanted)}


# --- the weekly report and the monthly boards (supervisors) ----------------------------------

REPORT_MEDIA = {
    "json": "application/json",
    "html": "text/html; charset=utf-8",
    "md": "text/markdown; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
ReportFormat = Literal["json", "html", "md", "xlsx"]
Locale = Literal["zh_CN", "en"]
_REPORT_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the report in the format asked for",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "text/html": {"schema": {"type": "string"}},
            "text/markdown": {"schema": {"type": "string"}},
            REPORT_MEDIA["xlsx"]: {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


def _supervisor(principal: Principal) -> None:
    if not principal.is_supervisor:
        raise NotPermitted("report.api_supervisor_only", handle=principal.handle)


def _report_response(body: bytes, fmt: str, filename: str) -> Response:
    headers = {"Cache-Control": "private, no-store"}
    if fmt == "xlsx":
        headers["Content-Disposition"] = f'attachment; filename="{filename}.xlsx"'
    return Response(body, media_type=REPORT_MEDIA[fmt], headers=headers)


@router.get(
    "/reports/weekly",
    summary="The weekly example-meeting report (定期例会周报) as JSON, HTML, Markdown or XLSX",
    tags=["reports"],
    response_class=Response,
    responses=_REPORT_DOC,
)
def weekly_report(
    request: Request,
    principal: CurrentUser,
    week: Annotated[
        str | None,
        Query(
            pattern=r"^2[0-1]\d\d-W(0[1-9]|[1-4]\d|5[0-3])$",
            description="ISO week, e.g. 2026-W14 (default: the last full week)",
        ),
    ] = None,
    fmt: Annotated[ReportFormat, Query(alias="format")] = "json",
    level: Annotated[int | None, Query(ge=2, le=4, description="grids listed")] = None,
    locale: Locale | None = None,
) -> Response:
    _supervisor(principal)
    app, now = web_app(request), request_now(request)
    report = build_weekly(app, now=now, week=week, level=level)
    body = render_weekly(report, fmt, locale=locale or app.settings.locale, workflow=app.workflow)
    return _report_response(body, fmt, f"weekly-{report.week.label}")


@router.get(
    "/exam/board",
    summary="A month's published red and yellow boards (月考红黄榜) with tiers and penalties",
    tags=["reports"],
    response_class=Response,
    responses=_REPORT_DOC,
)
def exam_board(
    request: Request,
    principal: CurrentUser,
    month: Annotated[str, Query(pattern=r"^2[0-1]\d\d-(0[1-9]|1[0-2])$", examples=["2026-04"])],
    fmt: Annotated[ReportFormat, Query(alias="format")] = "json",
    locale: Locale | None = None,
) -> Response:
    _supervisor(principal)
    app, now = web_app(request), request_now(request)
    view = store.board_view(app, month, now)
    body = render_board(view, fmt, locale=locale or app.settings.locale)
    return _report_response(body, fmt, f"board-{month}")


# --- grids, categories, the caller -------------------------------------------------------------


@router.get("/grids", response_model=schemas.GridList, summary="The grid tree", tags=["zone"])
def list_grids(
    request: Request,
    parent: Annotated[str | None, Query(max_length=64, description="children of this grid")] = None,
    level: Annotated[int | None, Query(ge=1, le=4)] = None,
) -> dict[str, Any]:
    app = web_app(request)
    locale = app.settings.locale
    up = grids.alias("up")
    q = (
        select(grids.c.code, grids.c.name, grids.c.level, grids.c.kind, up.c.code.label("parent"))
        .select_from(grids.outerjoin(up, up.c.id == grids.c.parent_id))
        .order_by(grids.c.path)
    )
    if parent is not None:
        q = q.where(up.c.code == parent)
    if level is not None:
        q = q.where(grids.c.level == level)
    with read_only(app.engine) as conn:
        rows = conn.execute(q).all()
    if parent is not None and not rows:
        with read_only(app.engine) as conn:
            if conn.execute(select(grids.c.id).where(grids.c.code == parent)).first() is None:
                raise NotFound("grid.unknown", code=parent)
    return {
        "items": [
            {
                "code": r.code,
                "name": r.name,
                "level": r.level,
                "level_name": level_name(r.level, locale),
                "kind": r.kind,
                "parent": r.parent,
            }
            for r in rows
        ]
    }


@router.get(
    "/grids/{code}",
    response_model=schemas.GridDetail,
    summary="A grid with its leader, ancestors and children",
    tags=["zone"],
)
def get_grid(
    request: Request, code: Annotated[str, Path(max_length=64)], principal: CurrentUser
) -> dict[str, Any]:
    return zone.describe(web_app(request), code)


@router.get(
    "/categories",
    response_model=schemas.CategoryList,
    summary="Problem categories and their time limits",
    tags=["zone"],
)
def categories(request: Request) -> dict[str, Any]:
    app = web_app(request)
    locale = app.settings.locale
    return {
        "items": [
            {
                "key": c.key,
                "name": c.label.get(locale),
                "name_zh": c.label.zh,
                "name_en": c.label.en,
                "action": c.action,
                "limits": {
                    stage: f"{limit.within} {limit.clock}" for stage, limit in c.limits.items()
                },
            }
            for c in app.workflow.categories.values()
        ]
    }


@router.get("/me", response_model=schemas.Me, summary="Who the caller is", tags=["account"])
def me(request: Request, principal: CurrentUser) -> dict[str, Any]:
    app = web_app(request)
    with read_only(app.engine) as conn:
        led = conn.execute(
            select(grids.c.code, grids.c.name, grids.c.level)
            .where(grids.c.leader_id == principal.person_id)
            .order_by(grids.c.path)
        ).all()
    return {
        "handle": principal.handle,
        "name": principal.name,
        "roles": sorted(principal.roles),
        "leads": [{"code": g.code, "name": g.name, "level": g.level} for g in led],
        "via": principal.via,
    }


@router.post(
    "/me/password",
    response_model=schemas.Done,
    summary="Change one's own password (ends every session of this person)",
    tags=["account"],
    openapi_extra=idempotency.OPENAPI,
)
async def change_own_password(
    request: Request, body: schemas.OwnPasswordBody, principal: CurrentUser
) -> Any:
    app = web_app(request)
    claim = await idempotency.claim(request, principal, body.model_dump(mode="json"))
    if isinstance(claim, Response):
        return claim

    now = request_now(request)

    def run() -> None:
        with read_only(app.engine) as conn:
            stored = conn.execute(
                select(people.c.password_hash).where(people.c.id == principal.person_id)
            ).scalar()
        if not verify_password(stored, body.current_password):
            raise NotPermitted("auth.password_wrong")
        set_password(app, principal.handle, body.new_password, now=now, by=principal.handle)

    try:
        await run_in_threadpool(run)
    except BaseException:
        await idempotency.release(claim)
        raise
    return await idempotency.answer(claim, 200, schemas.Done, {"ok": True})


# --- tokens and people (administrators) --------------------------------------------------------


@router.get("/tokens", response_model=schemas.TokenList, summary="API tokens", tags=["account"])
def tokens(
    request: Request,
    principal: CurrentUser,
    everyone: Annotated[bool, Query(alias="all", description="all people's (admins)")] = False,
) -> dict[str, Any]:
    if everyone and not principal.is_admin:
        raise NotPermitted("person.not_admin", handle=principal.handle)
    return {"items": list_tokens(web_app(request), None if everyone else principal.handle)}


@router.post(
    "/tokens",
    status_code=201,
    response_model=schemas.NewTokenOut,
    summary="Create an API token; it is shown once (and to a retry with the same Idempotency-Key)",
    tags=["account"],
    # Only a session: a token cannot mint tokens (issue 10, item 7).
    openapi_extra={**idempotency.OPENAPI, "security": [{"session": []}]},
)
async def new_token(request: Request, body: schemas.TokenBody, principal: CurrentUser) -> Any:
    if principal.via == "token":
        # A token cannot mint tokens: a stolen one would otherwise outlive its revocation.
        raise NotPermitted("auth.token_by_token")
    handle = body.handle or principal.handle
    if handle != principal.handle and not principal.is_admin:
        raise NotPermitted("auth.token_for_others", handle=principal.handle)
    claim = await idempotency.claim(request, principal, body.model_dump(mode="json"))
    if isinstance(claim, Response):
        return claim
    try:
        made = await run_in_threadpool(
            lambda: create_token(
                web_app(request), handle, body.label, request_now(request), by=principal.handle
            )
        )
    except BaseException:
        await idempotency.release(claim)
        raise
    out = {"id": made.id, "handle": made.handle, "label": made.label, "token": made.token}
    return await idempotency.answer(claim, 201, schemas.NewTokenOut, out)


@router.delete(
    "/tokens/{token_id}",
    response_model=schemas.TokenInfo,
    summary="Revoke an API token (one's own; administrators any)",
    tags=["account"],
)
def delete_token(
    request: Request, token_id: Annotated[int, Path(ge=1, le=2**62)], principal: CurrentUser
) -> dict[str, Any]:
    return revoke_token(web_app(request), token_id, request_now(request), by=principal)


@router.get("/users", response_model=schemas.PeopleList, summary="People", tags=["admin"])
def users(request: Request, principal: AdminUser) -> dict[str, Any]:
    return {"items": list_people(web_app(request))}


@router.post(
    "/users/{handle}/password",
    response_model=schemas.Done,
    summary="Set a person's password (ends their sessions)",
    tags=["admin"],
    openapi_extra=idempotency.OPENAPI,
)
async def reset_password(
    request: Request,
    handle: Annotated[str, Path(max_length=64)],
    body: schemas.PasswordBody,
    principal: AdminUser,
) -> Any:
    claim = await idempotency.claim(request, principal, body.model_dump(mode="json"))
    if isinstance(claim, Response):
        return claim
    try:
        await run_in_threadpool(
            lambda: set_password(
                web_app(request),
                handle,
                body.password,
                now=request_now(request),
                by=principal.handle,
            )
        )
    except BaseException:
        await idempotency.release(claim)
        raise
    return await idempotency.answer(claim, 200, schemas.Done, {"ok": True})


@router.post(
    "/users/{handle}/disable",
    response_model=schemas.Done,
    summary="Disable a person: no login, sessions ended, API tokens revoked (audit-logged)",
    tags=["admin"],
    # Disabling or enabling twice ends where once does: a retry with the key is harmless.
    openapi_extra=idempotency.OPENAPI,
)
def disable_user(
    request: Request, handle: Annotated[str, Path(max_length=64)], principal: AdminUser
) -> dict[str, Any]:
    idempotency.key_of(request)  # a malformed key is refused here too, as the schema says
    if handle == principal.handle:
        raise NotPermitted("auth.disable_self")
    set_disabled(web_app(request), handle, True, request_now(request), by=principal.handle)
    return {"ok": True}


@router.post(
    "/users/{handle}/enable",
    response_model=schemas.Done,
    summary="Enable a disabled person again (their old tokens stay revoked)",
    tags=["admin"],
    # Disabling or enabling twice ends where once does: a retry with the key is harmless.
    openapi_extra=idempotency.OPENAPI,
)
def enable_user(
    request: Request, handle: Annotated[str, Path(max_length=64)], principal: AdminUser
) -> dict[str, Any]:
    idempotency.key_of(request)  # a malformed key is refused here too, as the schema says
    set_disabled(web_app(request), handle, False, request_now(request), by=principal.handle)
    return {"ok": True}
