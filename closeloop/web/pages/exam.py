"""The pages of the monthly exam, the `exam` area of `closeloop.web.pages`: inspectors score
their grids on a phone; supervisors make the plan, reopen a grid, publish the boards, follow
accountability cases and the fund ledger.

Thin: every page calls `closeloop.exam.service` and renders a template with
`closeloop.web.pages.base.render`. Who may do what is decided in the service (an inspector is a
person of the inspecting grid the plan names, or a supervisor); these pages only leave out what
a person may not do.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from closeloop.app import App
from closeloop.csvfile import joined
from closeloop.evidence import EvidenceError, path_of
from closeloop.exam import printing
from closeloop.exam import service as exam
from closeloop.tickets import DomainError, Invalid, NotFound, NotPermitted
from closeloop.web.auth import (
    OptionalUser,
    Principal,
    request_now,
    require_csrf,
    web_app,
    web_settings,
)
from closeloop.web.pages.base import _message, page_locale, render
from closeloop.web.settings import WebSettings
from closeloop.web.uploads import Upload, clean_name, store_uploads

router = APIRouter(include_in_schema=False)

MONTH = Annotated[str, PathParam(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]
GRID = Annotated[str, PathParam(max_length=64)]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _login(request: Request) -> RedirectResponse:
    target = request.url.path if request.method == "GET" else "/exam"
    return RedirectResponse(f"/login?{urlencode({'next': target})}", status_code=303)


def _supervisor(principal: Principal) -> Principal:
    if not principal.is_supervisor:
        raise NotPermitted("person.not_supervisor", handle=principal.handle)
    return principal


def _done(target: str, what: str) -> RedirectResponse:
    return RedirectResponse(f"{target}?{urlencode({'done': what})}", status_code=303)


def this_month(app: App, now: datetime) -> str:
    return now.astimezone(app.tz).strftime("%Y-%m")


@router.get("/exam")
def exam_home(request: Request, principal: OptionalUser) -> Response:
    if principal is None:
        return _login(request)
    app = web_app(request)
    return RedirectResponse(f"/exam/{this_month(app, request_now(request))}", status_code=303)


@router.get("/exam/{month}")
def exam_month(request: Request, month: MONTH, principal: OptionalUser) -> Response:
    if principal is None:
        return _login(request)
    app = web_app(request)
    try:
        exam.plan_view(app, month)
        planned = True
    except NotFound:
        planned = False
    if principal.is_supervisor:
        grids = exam.exam_status(app, month) if planned else []
    else:
        grids = exam.inspector_grids(app, month, principal.actor) if planned else []
    tally = {key: sum(g.status == key for g in grids) for key in exam.STATUSES}
    return render(
        request,
        "exam_month.html",
        principal=principal,
        month=month,
        planned=planned,
        grids=grids,
        tally=tally,
        inspectors=sorted({g.inspector_grid for g in grids if g.inspector_grid}),
    )


@router.post("/exam/{month}/plan", dependencies=[Depends(require_csrf)])
def exam_make_plan(request: Request, month: MONTH, principal: OptionalUser) -> Response:
    if principal is None:
        return _login(request)
    _supervisor(principal)
    exam.make_plan(web_app(request), month, request_now(request))
    return _done(f"/exam/{month}", "exam_planned")


@router.post("/exam/{month}/publish", dependencies=[Depends(require_csrf)])
def exam_publish(request: Request, month: MONTH, principal: OptionalUser) -> Response:
    if principal is None:
        return _login(request)
    _supervisor(principal)
    exam.publish_board(web_app(request), month, request_now(request))
    return RedirectResponse(
        f"/reports?{urlencode({'month': month, 'done': 'exam_published'})}", status_code=303
    )


@router.get("/exam/{month}/sheets.{fmt}")
def exam_sheets(
    request: Request,
    month: MONTH,
    fmt: Annotated[str, PathParam(pattern=r"^(html|xlsx)$")],
    principal: OptionalUser,
    inspector: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    if principal is None:
        return _login(request)
    _supervisor(principal)
    app = web_app(request)
    plan, sheets = exam.plan_view(app, month), exam.answer_sheets(app)
    locale = page_locale(request)
    if fmt == "html":
        body = printing.score_sheets_html(
            app.settings.zone_name, plan, sheets, locale=locale, inspector=inspector
        )
        return Response(body, media_type="text/html; charset=utf-8")
    body = printing.score_sheets_xlsx(plan, sheets, locale=locale, inspector=inspector)
    name = f"exam-sheets-{month}{'-' + inspector if inspector else ''}.xlsx"
    return Response(
        body, media_type=XLSX, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


def _grid_page(
    request: Request,
    principal: Principal,
    form: exam.GradingForm,
    *,
    error: str | None = None,
    typed: dict[str, dict[str, str]] | None = None,
    status: int = 200,
) -> Response:
    sections: list[dict[str, Any]] = []
    for entry in form.entries:
        if not sections or sections[-1]["sheet"] != entry.item.sheet:
            sections.append({"sheet": entry.item.sheet, "entries": []})
        sections[-1]["entries"].append(entry)
    return render(
        request,
        "exam_grid.html",
        principal=principal,
        status=status,
        error=error,
        form=form,
        sections=sections,
        typed=typed or {},
        editable=form.status != "submitted",
    )


@router.get("/exam/{month}/{grid}")
def exam_grid(request: Request, month: MONTH, grid: GRID, principal: OptionalUser) -> Response:
    if principal is None:
        return _login(request)
    form = exam.grading_form(web_app(request), month, grid, principal.actor)
    return _grid_page(request, principal, form)


@router.post("/exam/{month}/{grid}", dependencies=[Depends(require_csrf)])
async def exam_grid_save(
    request: Request, month: MONTH, grid: GRID, principal: OptionalUser
) -> Response:
    if principal is None:
        return _login(request)
    app, cfg, now = web_app(request), web_settings(request), request_now(request)
    sheets = exam.answer_sheets(app)
    typed: dict[str, dict[str, str]] = {}
    uploads: dict[str, Upload] = {}
    form = await request.form()
    try:
        for item in sheets:
            points, note = form.get(f"pts.{item.key}"), form.get(f"note.{item.key}")
            typed[item.key] = {
                "points": points if isinstance(points, str) else "",
                "note": note if isinstance(note, str) else "",
            }
            photo = form.get(f"photo.{item.key}")
            if isinstance(photo, UploadFile) and (photo.filename or photo.size):
                data = await photo.read(cfg.max_upload_bytes + 1)
                uploads[item.key] = Upload(clean_name(photo.filename), data)
        submit = form.get("action") == "submit"
    finally:
        await form.close()
    try:
        stored = {}
        if uploads:
            if len(uploads) > len(sheets.items):
                raise Invalid("upload.too_many_exam")
            too_big = [u.name for u in uploads.values() if len(u.data) > cfg.max_upload_bytes]
            if too_big:
                raise Invalid(
                    "upload.too_large_exam", name=too_big[0], max_bytes=cfg.max_upload_bytes
                )
            files = await store_uploads(
                app, _photo_settings(cfg, len(uploads)), list(uploads.values())
            )
            stored = dict(zip(uploads, files, strict=True))
        entered = {
            key: exam.Entered(v["points"], v["note"], stored.get(key)) for key, v in typed.items()
        }
        exam.save_grading(app, month, grid, principal.actor, entered, now, submit=submit)
    except (DomainError, EvidenceError) as exc:
        current = exam.grading_form(app, month, grid, principal.actor)
        # The form's problems, one per item, in one sentence of the page's language
        if isinstance(exc, exam.ExamRefused) and exc.items:
            message = joined(exc.items, page_locale(request))
        else:
            message = _message(request, exc)
        status = getattr(exc, "status", 422)
        return _grid_page(
            request, principal, current, error=message, typed=typed, status=int(status)
        )
    return _done(f"/exam/{month}/{grid}", "exam_submitted" if submit else "exam_saved")


def _photo_settings(cfg: WebSettings, count: int) -> WebSettings:
    """The upload checks with room for one photo per item."""
    return replace(cfg, max_photos=max(cfg.max_photos, count))


@router.post("/exam/{month}/{grid}/reopen", dependencies=[Depends(require_csrf)])
async def exam_grid_reopen(
    request: Request, month: MONTH, grid: GRID, principal: OptionalUser
) -> Response:
    if principal is None:
        return _login(request)
    form = await request.form()
    reason = form.get("reason")
    exam.reopen_grading(
        web_app(request),
        month,
        grid,
        principal.actor,
        reason if isinstance(reason, str) else "",
        request_now(request),
    )
    return _done(f"/exam/{month}/{grid}", "exam_reopened")


@router.get("/exam/{month}/{grid}/photo/{item}")
def exam_photo(
    request: Request,
    month: MONTH,
    grid: GRID,
    item: Annotated[str, PathParam(max_length=64)],
    principal: OptionalUser,
) -> Response:
    if principal is None:
        return _login(request)
    app = web_app(request)
    stored, label = exam.grading_photo(app, month, grid, item, principal.actor)
    return FileResponse(
        path_of(app.settings.evidence_dir, stored),
        headers={"Cache-Control": "private, max-age=3600"},
        filename=label,
        content_disposition_type="inline",
    )


# --------------------------------------------------------------------------- accountability


@router.get("/accountability")
def accountability(request: Request, principal: OptionalUser) -> Response:
    if principal is None:
        return _login(request)
    if principal.is_supervisor:
        cases = exam.list_cases(web_app(request))
    else:
        # A grid leader follows the cases of their grid; anyone else is refused as before.
        cases = exam.cases_concerning(web_app(request), principal.handle)
        if not cases and not principal.led_paths:
            _supervisor(principal)
    return render(
        request,
        "accountability.html",
        principal=principal,
        can_close=principal.is_supervisor,
        open_cases=[c for c in cases if c.is_open],
        closed_cases=[c for c in cases if not c.is_open],
    )


@router.post("/accountability/{case_id}/close", dependencies=[Depends(require_csrf)])
async def accountability_close(
    request: Request,
    case_id: Annotated[int, PathParam(ge=1, le=2**62)],
    principal: OptionalUser,
) -> Response:
    if principal is None:
        return _login(request)
    form = await request.form()
    outcome = form.get("outcome")
    exam.close_case(
        web_app(request),
        case_id,
        principal.handle,
        outcome if isinstance(outcome, str) else "",
        request_now(request),
    )
    return _done("/accountability", "case_closed")


# --------------------------------------------------------------------------- funds


@router.get("/funds")
def funds(
    request: Request,
    principal: OptionalUser,
    month: Annotated[str | None, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")] = None,
) -> Response:
    if principal is None:
        return _login(request)
    _supervisor(principal)
    app = web_app(request)
    month = month or this_month(app, request_now(request))
    return render(
        request,
        "funds.html",
        principal=principal,
        month=month,
        ledger=exam.ledger(app, month),
        ledger_words=printing.words(page_locale(request)),
    )


@router.get("/funds/{month}.xlsx")
def funds_xlsx(request: Request, month: MONTH, principal: OptionalUser) -> Response:
    if principal is None:
        return _login(request)
    _supervisor(principal)
    app = web_app(request)
    body = printing.render_ledger(
        exam.ledger(app, month), "xlsx", zone=app.settings.zone_name, locale=page_locale(request)
    )
    return Response(
        body,
        media_type=XLSX,
        headers={"Content-Disposition": f'attachment; filename="funds-{month}.xlsx"'},
    )
