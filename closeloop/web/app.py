"""The web application: routers, error handling, the request log, health, background jobs.

`create_app(app)` composes the routers onto one FastAPI application. The pages (HTML) plug in
the same way: a module with an `APIRouter` named `router`, included below next to the API.

Handlers take the time from `request.app.state.clock` (see `request_now`): the App's clock unless
`create_app` is given another, so a test can run the service on a `ManualClock` and move it.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import tzinfo
from typing import Any
from xml.etree import ElementTree as ET

from anyio import to_thread
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import select, text
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from closeloop.app import App, Clock
from closeloop.campaigns import web as campaign_pages
from closeloop.db import read_only
from closeloop.errors import CodedError
from closeloop.errors import text as error_text
from closeloop.evidence import EvidenceError
from closeloop.grid import UnknownGrid
from closeloop.logs import iso_now
from closeloop.meetings import web as meeting_pages
from closeloop.models import grids
from closeloop.patrols import web as patrol_pages
from closeloop.textguard import printable
from closeloop.tickets import DomainError
from closeloop.web import api, auth, geo, i18n, open311
from closeloop.web.auth import NotAuthenticated
from closeloop.web.limits import BodyLimit, CredentialsFirst, plain_error
from closeloop.web.methods import AllowHeader, declare_security
from closeloop.web.pages import admin, exam, inbox, public, reports, supervise, ticket
from closeloop.web.pages import base as page_base
from closeloop.web.settings import WebSettings
from closeloop.workflow import StepNotAllowed, UnknownCategory

log = logging.getLogger("closeloop.web")
access_log = logging.getLogger("closeloop.web.access")

# --- errors ------------------------------------------------------------------------------------


_DOMAIN_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (StepNotAllowed, 409),
    (EvidenceError, 422),
    (UnknownGrid, 422),
    (UnknownCategory, 422),
)


def _is_open311(request: Request) -> bool:
    return request.url.path.startswith("/open311/")


def error_response(
    request: Request,
    status: int,
    message: str,
    *,
    error: CodedError | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
    details: list[dict[str, Any]] | None = None,
    keep_status: bool = False,
) -> Response:
    """An error in the caller's dialect: `{"error": {"code", "message"}}` with the message in
    the caller's language, or Open311's list of code and description (in XML when the path asks
    for .xml). `error` gives the code and its text; without it, `code` (or `http.<status>`)
    and `message` as it is."""
    message = printable(message)  # e.g. a field name with a lone surrogate, echoed back
    if details:
        details = [
            {k: printable(v) if isinstance(v, str) else v for k, v in d.items()} for d in details
        ]
    page_error = getattr(request.app.state, "page_error", None)  # HTML for browsers on pages
    if page_error is not None and (page := page_error(request, status, message, headers, error)):
        return page
    if _is_open311(request):
        if not keep_status:  # GeoReport v2 knows 400, not 422 (a reused Idempotency-Key is)
            status = 400 if status == 422 else status
        if request.url.path.endswith(".xml"):
            root = ET.Element("errors")
            err = ET.SubElement(root, "error")
            ET.SubElement(err, "code").text = str(status)
            ET.SubElement(err, "description").text = message
            body = ET.tostring(root, encoding="utf-8", xml_declaration=True)
            return Response(body, status, headers=headers, media_type="text/xml; charset=utf-8")
        return JSONResponse([{"code": status, "description": message}], status, headers=headers)
    locale = i18n.api_locale(
        request.query_params.get("lang"), request.headers.get("accept-language")
    )
    said = printable(error.text(locale, words=_labels(request, locale))) if error else message
    code = error.code if error is not None else code or f"http.{status}"
    content: dict[str, Any] = {"error": {"code": code, "message": said}}
    if details:
        content["details"] = details
    return JSONResponse(content, status, headers=headers)


def _labels(request: Request, locale: str) -> Callable[[str], str] | None:
    """The workflow's labels of steps and states in `locale`, for an error that names one."""
    app: App | None = getattr(request.app.state, "closeloop", None)
    return None if app is None else (lambda key: app.workflow.label(key, locale))


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    headers: dict[str, str] = {}
    retry_after = getattr(exc, "retry_after", None)  # too many logins; a key still in use
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    if isinstance(exc, NotAuthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="closeloop"'
    return error_response(
        request,
        exc.status,
        str(exc),
        error=exc,
        headers=headers or None,
        keep_status=getattr(exc, "keep_status", False),
    )


def _mapped(status: int) -> Callable[[Request, Exception], Any]:
    async def handler(request: Request, exc: Exception) -> Response:
        coded = exc if isinstance(exc, CodedError) else None
        return error_response(request, status, str(exc), error=coded)

    return handler


def _where(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie")]
    return ".".join(parts) or str(loc[0] if loc else "request")


# pydantic's kinds of error, said by a code of the catalogue: (code, its parameter, ctx key).
_LIMITS = {
    "string_too_long": ("request.text_too_long", "max_length"),
    "string_too_short": ("request.text_too_short", "min_length"),
    "too_long": ("request.too_many", "max_length"),
    "too_short": ("request.too_few", "min_length"),
    "greater_than_equal": ("request.at_least", "ge"),
    "less_than_equal": ("request.at_most", "le"),
    "greater_than": ("request.above", "gt"),
    "less_than": ("request.below", "lt"),
}
# A value of the wrong type: what it must be, by the first word of pydantic's kind.
_KINDS = {
    "string": "文字",
    "int": "整数",
    "float": "数字",
    "bool": "布尔值（true 或 false）",
    "list": "列表",
    "dict": "对象",
    "model": "对象",
    "date": "日期",
}
_COLLECTIONS = ("List", "Tuple", "Set", "Dict")


def field_problem(e: Mapping[str, Any], locale: str) -> str:
    """What pydantic found wrong with one field, in `locale`: closeloop's own refusals by their
    code; in English pydantic's words as they always were; in Chinese by the kind of error
    (never by parsing pydantic's English)."""
    kind = str(e.get("type", ""))
    ctx = e.get("ctx") or {}
    said = functools.partial(error_text, locale=locale)
    if kind == "value_error" and isinstance(ctx.get("error"), CodedError):
        return str(ctx["error"].text(locale))
    if kind == "extra_forbidden":
        # Pydantic's "Extra inputs are not permitted" says not why: most often a misspelling.
        return said("request.unknown_field", {})
    if locale == "en":
        return str(e.get("msg", "invalid"))  # pydantic's own English, which scripts read
    if kind == "missing":
        return said("request.missing", {})
    if kind in _LIMITS and ctx:
        code, key = _LIMITS[kind]
        if kind in ("too_long", "too_short") and ctx.get("field_type") not in _COLLECTIONS:
            # a text whose length a validator after the type checked is still a text
            code = "request.text_too_long" if kind == "too_long" else "request.text_too_short"
        return said(code, {"limit": ctx.get(key)})
    if kind == "string_pattern_mismatch":
        return said("request.pattern", {"pattern": ctx.get("pattern")})
    if kind in ("literal_error", "enum"):
        return said("request.choice", {"expected": ctx.get("expected")})
    if kind.startswith(("datetime_", "timezone_")):
        return said("request.time", {})
    prefix = kind.split("_", 1)[0]
    if kind.endswith(("_type", "_parsing")) and prefix in _KINDS:
        return said("request.wrong_type", {"kind": _KINDS[prefix]})
    return said("request.bad_value", {"reason": str(e.get("msg", "invalid"))})


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    malformed = any(e.get("type") == "json_invalid" for e in errors)
    locale = i18n.api_locale(
        request.query_params.get("lang"), request.headers.get("accept-language")
    )
    details = [
        {"field": _where(e.get("loc", ())), "problem": field_problem(e, locale)} for e in errors
    ]
    if locale == "en":
        message = "; ".join(f"{d['field']}: {d['problem']}" for d in details)
    else:  # one sentence: each problem's full stop gives way to the list's semicolon
        message = "；".join(f"{d['field']}：{d['problem'].rstrip('。')}" for d in details)
        message += "。" if message else ""
    message = message or error_text("request.bad_value", {"reason": "invalid request"}, locale)
    if malformed:
        message = error_text("request.malformed_json", {"problems": message}, locale)
    return error_response(
        request,
        400 if malformed else 422,
        message,
        code="request.malformed_json" if malformed else "request.invalid",
        details=details,
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers) if exc.headers else None
    return error_response(request, exc.status_code, str(exc.detail), headers=headers)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    if isinstance(exc, CodedError):
        # Not the request's fault, yet something closeloop can name: most often a section of
        # config.toml read when first used (`[exam]`, `[reports]`). Saying which key is wrong,
        # in the reader's language, tells them what to ask the administrator to fix.
        return error_response(request, 500, str(exc), error=exc)
    return error_response(request, 500, "internal error; it has been logged", code="server.error")


def install_error_handlers(fa: FastAPI) -> None:
    fa.add_exception_handler(DomainError, _domain_error)
    for kind, status in _DOMAIN_STATUS:
        fa.add_exception_handler(kind, _mapped(status))
    fa.add_exception_handler(RequestValidationError, _validation_error)
    fa.add_exception_handler(StarletteHTTPException, _http_error)
    fa.add_exception_handler(Exception, _unexpected)


# --- the request log, response headers, body size ----------------------------------------------

SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
)


class RequestContext:
    """One JSON log line per request; cookies the handlers asked for; security headers."""

    def __init__(self, app: ASGIApp, tz: tzinfo | None = None) -> None:
        self.app = app
        self.tz = tz

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state: dict[str, Any] = scope.setdefault("state", {})
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                headers += [(b"set-cookie", c.encode()) for c in state.get("set_cookies", ())]
                message = {**message, "headers": headers}
            await send(message)

        try:
            refusal = self._refusal(scope)
            if refusal is not None:
                status = refusal[0]
                await plain_error(scope, *refusal)(scope, receive, send_with_headers)
                return
            await self.app(scope, receive, send_with_headers)
        finally:
            access_log.info(
                json.dumps(
                    {
                        "at": iso_now(self.tz),
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "ms": round((time.perf_counter() - started) * 1000, 1),
                        "user": state.get("user"),
                    },
                    ensure_ascii=False,
                )
            )

    def _refusal(self, scope: Scope) -> tuple[int, CodedError] | None:
        """What to refuse before any handler runs: NUL characters in the URL (no text column
        can hold them; PostgreSQL would fail). Body sizes: `closeloop.web.limits`."""
        if "\x00" in scope["path"] or b"%00" in scope.get("query_string", b"").lower():
            return 400, CodedError("request.nul")
        return None


# --- health ------------------------------------------------------------------------------------


class Health(BaseModel):
    status: str
    database: str


health_router = APIRouter(tags=["service"])


@health_router.get(
    "/healthz",
    response_model=Health,
    summary="Liveness and database check",
    responses={503: {"model": Health, "description": "the database does not answer"}},
)
async def healthz(request: Request) -> Response:
    app: App = request.app.state.closeloop

    def ping() -> None:
        with read_only(app.engine) as conn:
            conn.execute(text("SELECT 1"))

    try:
        await run_in_threadpool(ping)
    except Exception as exc:
        log.warning("health check: database error: %s", exc)
        return JSONResponse({"status": "error", "database": type(exc).__name__}, 503)
    return JSONResponse({"status": "ok", "database": app.engine.dialect.name})


# --- composition -------------------------------------------------------------------------------


class BackgroundJobs:
    """The scheduler's jobs (sweep, delivery) in a thread of this process: the single-process
    SQLite set-up. Stopping lets a running job finish its current batch."""

    def __init__(self, app: App) -> None:
        from closeloop.scheduler import build_scheduler

        self.stopping = threading.Event()
        self.scheduler = build_scheduler(app, background=True, stopping=self.stopping)

    def start(self) -> None:
        self.scheduler.start()
        log.info("background jobs: %s", ", ".join(j.id for j in self.scheduler.get_jobs()))

    def stop(self) -> None:
        self.stopping.set()
        self.scheduler.shutdown(wait=True)


def create_app(app: App, *, clock: Clock | None = None, run_background: bool = False) -> FastAPI:
    """The web service for one zone. `run_background` also runs the scheduler in this process
    (the single-process SQLite set-up); several web workers leave it to `closeloop scheduler`."""
    cfg = WebSettings.from_settings(app.settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Starlette runs sync endpoints and run_in_threadpool in anyio's default pool (40).
        to_thread.current_default_thread_limiter().total_tokens = cfg.request_threads
        jobs = BackgroundJobs(app) if run_background else None
        if jobs is not None:
            await run_in_threadpool(jobs.start)
        try:
            yield
        finally:
            if jobs is not None:
                await run_in_threadpool(jobs.stop)

    fa = FastAPI(
        title=f"closeloop — {app.settings.zone_name}",
        version="1",
        description=(
            "Environmental-problem tickets of the zone: submit, follow, fix, verify, close; "
            "inboxes and supervision lists; Open311 GeoReport v2 under /open311/v2/. "
            "Authenticate with `Authorization: Bearer <token>` (`closeloop token create`) or "
            "the session cookie of the pages (then unsafe requests need `X-CSRF-Token`)."
        ),
        lifespan=lifespan,
    )
    fa.state.closeloop = app
    fa.state.web_settings = cfg
    fa.state.clock = clock or app.clock
    install_error_handlers(fa)
    # Added innermost first: RequestContext sees every request, then the body cap, then the
    # credentials check (which reads no body). Routes with photos may carry max_photos files
    # plus the form fields around them; each file is checked again on its own.
    fa.add_middleware(AllowHeader)
    fa.add_middleware(CredentialsFirst)
    fa.add_middleware(
        BodyLimit,
        max_body=cfg.max_body_bytes,
        max_upload_body=cfg.max_upload_bytes * cfg.max_photos + 1024 * 1024,
    )
    fa.add_middleware(RequestContext, tz=app.tz)
    fa.include_router(health_router)
    fa.include_router(auth.router)
    fa.include_router(api.router)
    fa.include_router(open311.router)
    fa.include_router(geo.router)
    fa.include_router(patrol_pages.router)
    fa.include_router(meeting_pages.router)
    fa.include_router(campaign_pages.router)
    # The pages, area by area (the order is the order routes are matched in).
    for area in (public, inbox, ticket, supervise, reports, exam, admin):
        fa.include_router(area.router)
    fa.state.page_error = page_base.error_page

    def enums() -> dict[tuple[str, str, str], list[str]]:
        """Values the server accepts, from the workflow and the grid: in the schema too."""
        try:
            with read_only(app.engine) as conn:
                codes = sorted(conn.execute(select(grids.c.code)).scalars())
        except SQLAlchemyError:  # no schema yet (building the schema offline): no grid list
            codes = []
        return {
            ("/api/tickets", "get", "state"): list(app.workflow.states),
            ("/api/tickets", "post", "category"): list(app.workflow.categories),
            ("/api/tickets", "post", "grid"): codes,
            ("/api/tickets/{ref}/steps/{step}", "post", "to_grid"): codes,
        }

    steps = {
        name: (f"{step.label.en} ({step.label.zh})", step.requires)
        for name, step in app.workflow.steps.items()
        if name != "submit"
    }
    declare_security(fa, cfg.max_photos, enums, steps)
    return fa
