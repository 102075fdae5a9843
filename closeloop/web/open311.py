"""Open311 GeoReport v2 at /open311/v2/, so civic-reporting clients can submit and follow.

- services: our categories (service_code = the category key, group = the assault action);
- a request is a ticket: service_request_id = the ticket reference; status is open or closed
  (final states are closed) and status_notes carries our detailed state;
- jurisdiction_id is the zone (`[open311] jurisdiction_id`); another one answers 404;
- api_key is an API token (`closeloop token create HANDLE --label ...`). Posting needs one, as
  the spec says. Reads are public, as the spec says (`[open311] read_requires_key = false`):
  without a key every request of the zone is listed with its public fields only (never the
  reporter's name, phone or e-mail, nor the staff's notes, nor the photo); with a key (or when
  the zone sets read_requires_key = true) the key's owner sees what they may see;
- a ticket needs a grid: send it as the service attribute `grid`
  (`attribute[grid]=JS-A1-V01-G03`), or send lat/long and the request goes to the deepest grid
  there; `[open311] default_grid` takes requests that have neither (or whose point is in no
  grid); otherwise they are refused with a 400 that says to name a grid. lat/long and
  address_string are stored as given;
- media_url in answers is the first photo of the ticket (fetching it needs a key);
  a media_url sent with a request is kept in the description, never fetched; a `media` file in
  a multipart/form-data request is checked and stored like the report page's photos;
- .json and .xml both work; errors are the spec's list of {code, description}.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from xml.etree import ElementTree as ET

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from closeloop import service, views
from closeloop.app import App
from closeloop.db import read_only
from closeloop.geo import service as geo
from closeloop.models import evidence, tickets
from closeloop.textguard import BadJson, has_visible, loads_json
from closeloop.tickets import DomainError, NotFound
from closeloop.web import access, idempotency
from closeloop.web.auth import (
    Principal,
    bearer_token,
    note_user,
    request_now,
    token_principal,
    web_app,
    web_settings,
)
from closeloop.web.schemas import Lat, Lon, Text, When
from closeloop.web.settings import WebSettings
from closeloop.web.uploads import FORM_TYPES, BadRequest, Upload, read_upload, store_uploads
from closeloop.web.writers import write

Format = Literal["json", "xml"]
LIST_DAYS = 90  # the spec's default window for a request list
LIST_MAX = 1000  # and its default cap


class Open311Error(DomainError):
    def __init__(self, status: int, code: str, /, **params: Any) -> None:
        super().__init__(code, **params)
        self.status = status


class ErrorItem(BaseModel):
    code: int
    description: str


_XML = {"text/xml": {"schema": {"type": "string", "description": "<errors><error>..."}}}
OPEN311_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": list[ErrorItem], "description": what, "content": _XML}
    for status, what in (
        (400, "bad request (missing or invalid field)"),
        (403, "api_key missing, unknown or revoked"),
        (404, "unknown jurisdiction, service or request"),
        (413, "the request body is too large"),
        # Never sent (invalid parameters are 400s, as the spec has it); declared so that the
        # schema does not promise FastAPI's own validation error body instead.
        (422, "an Idempotency-Key sent again with another request (invalid parameters are 400)"),
    )
}

router = APIRouter(prefix="/open311/v2", tags=["open311"], responses=OPEN311_ERRORS)


# --- bodies ------------------------------------------------------------------------------------


class Service(BaseModel):
    service_code: str
    service_name: str
    description: str
    metadata: bool
    type: str
    keywords: str
    group: str


class Attribute(BaseModel):
    variable: bool
    code: str
    datatype: str
    required: bool
    datatype_description: str
    order: int
    description: str


class ServiceDefinition(BaseModel):
    service_code: str
    attributes: list[Attribute]


class ServiceRequest(BaseModel):
    service_request_id: str
    status: Literal["open", "closed"]
    status_notes: str
    service_name: str
    service_code: str
    description: str
    agency_responsible: str
    service_notice: str
    requested_datetime: datetime
    updated_datetime: datetime
    expected_datetime: datetime | None
    address: str
    address_id: str
    zipcode: str
    lat: float | None
    long: float | None
    media_url: str


class Created(BaseModel):
    service_request_id: str
    service_notice: str
    account_id: str | None


class NewRequest(BaseModel):
    """POST /requests: form-encoded as the spec says (JSON is accepted too)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    jurisdiction_id: Annotated[Text | None, Field(max_length=200)] = None
    service_code: Annotated[Text, Field(min_length=1, max_length=64)]
    lat: Lat | None = None
    long: Lon | None = None
    address_string: Annotated[Text | None, Field(max_length=300)] = None
    address_id: Annotated[Text | None, Field(max_length=100)] = None
    email: Annotated[Text | None, Field(max_length=200)] = None
    device_id: Annotated[Text | None, Field(max_length=200)] = None
    account_id: Annotated[Text | None, Field(max_length=200)] = None
    first_name: Annotated[Text | None, Field(max_length=50)] = None
    last_name: Annotated[Text | None, Field(max_length=50)] = None
    phone: Annotated[Text | None, Field(max_length=32)] = None
    description: Annotated[Text, Field(max_length=4000)] = ""
    media_url: Annotated[Text | None, Field(max_length=1000)] = None
    grid: Annotated[Text | None, Field(alias="attribute[grid]", max_length=64)] = None
    api_key: Annotated[Text | None, Field(max_length=200)] = None


# --- helpers -----------------------------------------------------------------------------------


def _check_jurisdiction(cfg: WebSettings, given: str | None) -> None:
    if given is not None and given != cfg.open311_jurisdiction:
        raise Open311Error(404, "open311.jurisdiction", given=given)


async def _reader(request: Request, cfg: WebSettings, key: str | None) -> Principal | None:
    """Who reads: the key's owner, or nobody (public fields) when reads need no key."""
    if not (key or bearer_token(request)) and not cfg.open311_read_requires_key:
        return None
    return await _principal(request, key)


async def _principal(request: Request, key: str | None) -> Principal:
    token = key or bearer_token(request)
    if not token:
        raise Open311Error(403, "open311.no_key")
    principal = await run_in_threadpool(
        token_principal, web_app(request), token, request_now(request)
    )
    if principal is None:
        raise Open311Error(403, "open311.bad_key")
    note_user(request, principal)
    return principal


def _service(app: App, key: str) -> dict[str, Any]:
    wf, locale = app.workflow, app.settings.locale
    c = wf.category(key)
    action = wf.actions.get(c.action)
    fix = c.limits.get("fix")
    limit = f"; fix within {fix.within} ({fix.clock} time)" if fix else ""
    return {
        "service_code": c.key,
        "service_name": c.label.get(locale),
        "description": f"{c.label.zh} / {c.label.en}{limit}",
        "metadata": True,
        "type": "realtime",
        "keywords": c.action,
        "group": action.get(locale) if action else c.action,
    }


def _definition(app: App, cfg: WebSettings, key: str) -> dict[str, Any]:
    if key not in app.workflow.categories:
        raise Open311Error(404, "open311.service", code=key)
    default = cfg.open311_default_grid
    mapped = len(geo.locator(app)) > 0
    return {
        "service_code": key,
        "attributes": [
            {
                "variable": True,
                "code": "grid",
                "datatype": "string",
                "required": default is None and not mapped,
                "datatype_description": "a grid code of the zone, e.g. JS-A1-V01-G03; "
                "the list is at /api/grids"
                + ("; without it: the grid at lat/long" if mapped else "")
                + (f"; else {default}" if default else ""),
                "order": 1,
                "description": "网格 grid where the problem is",
            }
        ],
    }


def _base_url(request: Request, cfg: WebSettings) -> str:
    return cfg.public_url or str(request.base_url).rstrip("/")


def _request_out(
    app: App, row: Any, media: Mapping[int, int], base: str, *, public: bool = False
) -> dict[str, Any]:
    """A ticket as a GeoReport request: never the reporter's name, phone or e-mail, nor the
    notes of the steps; `public` (a read without a key) leaves out the photo too."""
    wf, locale = app.workflow, app.settings.locale
    s = views.ticket_summary(app, row)
    state = wf.states[row.state]
    notes = f"{state.label.get(locale)} ({row.state})"
    if row.escalation_level:
        notes += f"; supervised at grid level {row.escalation_level}"
    photo = media.get(row.id)
    return {
        "service_request_id": row.ref,
        "status": "closed" if state.final else "open",
        "status_notes": notes,
        "service_name": s["category_name"],
        "service_code": row.category,
        "description": row.description or row.title,
        "agency_responsible": row.responsible_name,
        "service_notice": "",
        "requested_datetime": s["created_at"],
        "updated_datetime": s["updated_at"],
        "expected_datetime": s["due_at"],
        "address": row.address or "",
        "address_id": "",
        "zipcode": "",
        "lat": row.lat,
        "long": row.lon,
        "media_url": f"{base}/api/evidence/{photo}" if photo and not public else "",
    }


def _first_photos(conn: Any, ids: list[int]) -> dict[int, int]:
    if not ids:
        return {}
    rows = conn.execute(
        select(evidence.c.ticket_id, func.min(evidence.c.id))
        .where(evidence.c.ticket_id.in_(ids))
        .group_by(evidence.c.ticket_id)
    )
    return {t: e for t, e in rows}


# --- rendering ---------------------------------------------------------------------------------


def _xml_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _xml_fill(parent: ET.Element, item: Mapping[str, Any]) -> None:
    for key, value in item.items():
        if isinstance(value, list):
            holder = ET.SubElement(parent, key)
            for sub in value:
                _xml_fill(ET.SubElement(holder, key.removesuffix("s")), sub)
        else:
            ET.SubElement(parent, key).text = _xml_value(value)


def render(fmt: Format, root: str, element: str, items: list[dict[str, Any]]) -> Response:
    if fmt == "json":
        return JSONResponse(items)
    tree = ET.Element(root)
    for item in items:
        _xml_fill(ET.SubElement(tree, element), item)
    body = ET.tostring(tree, encoding="utf-8", xml_declaration=True)
    return Response(body, media_type="text/xml; charset=utf-8")


def render_one(fmt: Format, root: str, item: dict[str, Any]) -> Response:
    if fmt == "json":
        return JSONResponse(item)
    tree = ET.Element(root)
    _xml_fill(tree, item)
    return Response(
        ET.tostring(tree, encoding="utf-8", xml_declaration=True),
        media_type="text/xml; charset=utf-8",
    )


def _xml_doc(model: Any) -> dict[int | str, dict[str, Any]]:
    return {200: {"model": model, "content": {"text/xml": {"schema": {"type": "string"}}}}}


Jurisdiction = Annotated[str | None, Query(max_length=200, description="the zone")]
ApiKey = Annotated[str | None, Query(max_length=200, description="an API token")]


# --- routes ------------------------------------------------------------------------------------


@router.get(
    "/services.{fmt}",
    summary="Our problem categories as Open311 services",
    responses=_xml_doc(list[Service]),
)
def services(request: Request, fmt: Format, jurisdiction_id: Jurisdiction = None) -> Response:
    app = web_app(request)
    _check_jurisdiction(web_settings(request), jurisdiction_id)
    items = [_service(app, key) for key in app.workflow.categories]
    return render(fmt, "services", "service", items)


@router.get(
    "/services/{service_code}.{fmt}",
    summary="A service definition: its one attribute is the grid",
    responses=_xml_doc(ServiceDefinition),
)
def service_definition(
    request: Request,
    service_code: Annotated[str, Path(max_length=64)],
    fmt: Format,
    jurisdiction_id: Jurisdiction = None,
) -> Response:
    cfg = web_settings(request)
    _check_jurisdiction(cfg, jurisdiction_id)
    return render_one(fmt, "service_definition", _definition(web_app(request), cfg, service_code))


_POST_SCHEMA = NewRequest.model_json_schema(by_alias=True)


@router.post(
    "/requests.{fmt}",
    summary="Submit a service request (api_key required)",
    responses=_xml_doc(list[Created]),
    openapi_extra={
        **idempotency.OPENAPI,
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {"schema": _POST_SCHEMA},
                "application/json": {"schema": _POST_SCHEMA},
            },
        },
    },
)
async def post_request(request: Request, fmt: Format) -> Response:
    app, cfg = web_app(request), web_settings(request)
    idem_key = idempotency.key_of(request)
    # A key in the query or the Authorization header is checked before a byte of the body is
    # read; one in the body (as the spec has it) right after the body, before anything else.
    early = request.query_params.get("api_key") or request.headers.get("authorization")
    principal = await _principal(request, request.query_params.get("api_key")) if early else None
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    data: Any
    media: list[Upload] = []
    if ctype in FORM_TYPES:
        form = await request.form(max_files=1, max_fields=100, max_part_size=64 * 1024)
        try:
            data = {k: v for k, v in form.items() if isinstance(v, str)}
            for k, v in form.multi_items():
                if isinstance(v, UploadFile) and k == "media" and (v.filename or v.size):
                    media.append(await read_upload(v, cfg))
        finally:
            await form.close()
    elif ctype == "application/json":
        try:
            data = loads_json(await request.body() or b"{}")
        except BadJson as exc:
            raise BadRequest(exc.code, **exc.params) from None
        if isinstance(data, dict) and isinstance(data.get("attribute"), dict):
            data = {**data, "attribute[grid]": data["attribute"].get("grid")}
    else:
        raise Open311Error(400, "open311.content_type")
    if not isinstance(data, dict):
        raise Open311Error(400, "open311.fields")
    if principal is None:
        key = data.get("api_key")
        principal = await _principal(request, key if isinstance(key, str) else None)
    try:
        body = NewRequest.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "body"
        raise Open311Error(
            400, "open311.invalid", where=where, problem=first.get("msg", "invalid")
        ) from None
    _check_jurisdiction(cfg, body.jurisdiction_id)
    if body.service_code not in app.workflow.categories:
        raise Open311Error(404, "open311.service", code=body.service_code)
    if (body.lat is None) != (body.long is None):
        raise Open311Error(400, "open311.lat_long")
    if body.lat is None and not body.address_string and not body.address_id:
        raise Open311Error(400, "open311.location")
    grid = body.grid
    if not grid and body.lat is not None and body.long is not None:
        try:
            grid = await run_in_threadpool(geo.route, app, body.lat, body.long)
        except geo.NotLocated as exc:
            if not cfg.open311_default_grid:
                raise Open311Error(400, "open311.grid", problem=exc) from None
    grid = grid or cfg.open311_default_grid
    if not grid:
        raise Open311Error(400, "open311.grid_missing")
    stored = await store_uploads(app, cfg, media)
    text = body.description.strip()
    line = text.splitlines()[0][:60] if text else ""
    title = line if has_visible(line) else _service(app, body.service_code)["service_name"]
    if body.media_url:
        text = f"{text}\nmedia_url: {body.media_url}".strip()
    name = " ".join(p for p in (body.first_name, body.last_name) if p) or None
    problem = service.NewProblem(
        grid=grid,
        category=body.service_code,
        title=title,
        description=text,
        address=body.address_string or body.address_id,
        lat=body.lat,
        lon=body.long,
        reporter=name,
        reporter_phone=body.phone,
        reporter_email=body.email,
        # Open311 requests come from the public unless the key says otherwise (a hotline's).
        source=(principal.source if principal else None) or "public",
    )
    now = request_now(request)
    # The api_key is the caller (its keys are that token's); the body without it is the request.
    parts = {k: v for k, v in data.items() if k != "api_key"}
    parts["media"] = idempotency.file_digests(media)
    claim = await idempotency.claim(request, principal, parts, key=idem_key) if idem_key else None
    if isinstance(claim, Response):
        return claim

    def answer(ref: str) -> Response:
        created = {
            "service_request_id": ref,
            "service_notice": "已受理，即交即办 / received and assigned to its grid",
            "account_id": body.account_id,
        }
        return render(fmt, "service_requests", "request", [created])

    def record(conn: Any, ref: str) -> None:
        assert claim is not None
        made = answer(ref)
        claim.record(conn, made.status_code, made.media_type or "", bytes(made.body))

    def run(a: App) -> str:
        return service.submit(a, problem, now, uploads=stored, also=record if claim else None)

    try:
        ref = await run_in_threadpool(write, app, run)
    except BaseException:
        await idempotency.release(claim)
        raise
    # The key proved the client; the report itself is anonymous.
    made = answer(ref)
    if claim is None:
        return made
    return await run_in_threadpool(
        claim.finish, made.status_code, made.media_type or "", bytes(made.body)
    )


def _split(value: str | None, what: str, max_items: int = 200) -> list[str]:
    if value is None:
        return []
    items = [v.strip() for v in value.split(",") if v.strip()]
    if len(items) > max_items:
        raise Open311Error(400, "open311.too_many", max_items=max_items, what=what)
    return items


@router.get(
    "/requests.{fmt}",
    summary="Service requests: public fields of all, or what the api_key's owner may see",
    responses=_xml_doc(list[ServiceRequest]),
)
async def get_requests(
    request: Request,
    fmt: Format,
    jurisdiction_id: Jurisdiction = None,
    api_key: ApiKey = None,
    service_request_id: Annotated[str | None, Query(max_length=4000)] = None,
    service_code: Annotated[str | None, Query(max_length=1000)] = None,
    start_date: Annotated[When | None, Query()] = None,
    end_date: Annotated[When | None, Query()] = None,
    status: Annotated[
        str | None,
        Query(
            max_length=20,
            pattern=r"^(open|closed)(,(open|closed))?$",
            description="open, closed or both (open,closed)",
        ),
    ] = None,
) -> Response:
    app, cfg, now = web_app(request), web_settings(request), request_now(request)
    _check_jurisdiction(cfg, jurisdiction_id)
    principal = await _reader(request, cfg, api_key)
    ids = _split(service_request_id, "service_request_id")
    codes = _split(service_code, "service_code")
    statuses = _split(status, "status")
    bad = [s for s in statuses if s not in ("open", "closed")]
    if bad:
        raise Open311Error(400, "open311.status", bad=", ".join(bad))
    final = [name for name, s in app.workflow.states.items() if s.final]
    q = access.listing()
    if principal is not None:
        q = q.where(access.scope_clause(principal))
    if ids:
        q = q.where(tickets.c.ref.in_(ids))
    else:
        end = end_date or now
        start = start_date or end - timedelta(days=LIST_DAYS)
        q = q.where(tickets.c.created_at >= start, tickets.c.created_at <= end)
    if codes:
        q = q.where(tickets.c.category.in_(codes))
    if statuses == ["open"]:
        q = q.where(tickets.c.state.not_in(final))
    elif statuses == ["closed"]:
        q = q.where(tickets.c.state.in_(final))
    q = q.order_by(tickets.c.created_at.desc(), tickets.c.id.desc()).limit(LIST_MAX)
    base = _base_url(request, cfg)

    def load() -> list[dict[str, Any]]:
        with read_only(app.engine) as conn:
            rows = conn.execute(q).all()
            media = _first_photos(conn, [r.id for r in rows])
        return [_request_out(app, r, media, base, public=principal is None) for r in rows]

    items = await run_in_threadpool(load)
    return render(fmt, "service_requests", "request", items)


@router.get(
    "/requests/{service_request_id}.{fmt}",
    summary="One service request",
    responses=_xml_doc(list[ServiceRequest]),
)
async def get_request(
    request: Request,
    service_request_id: Annotated[str, Path(max_length=32)],
    fmt: Format,
    jurisdiction_id: Jurisdiction = None,
    api_key: ApiKey = None,
) -> Response:
    app, cfg = web_app(request), web_settings(request)
    _check_jurisdiction(cfg, jurisdiction_id)
    principal = await _reader(request, cfg, api_key)
    base = _base_url(request, cfg)

    def load() -> dict[str, Any]:
        with read_only(app.engine) as conn:
            try:
                if principal is None:
                    row = conn.execute(
                        access.listing().where(tickets.c.ref == service_request_id)
                    ).first()
                    if row is None:
                        raise NotFound("open311.request", request_id=service_request_id)
                else:
                    row = access.visible_row(conn, service_request_id, principal)
            except NotFound:
                raise Open311Error(404, "open311.request", request_id=service_request_id) from None
            media = _first_photos(conn, [row.id])
        return _request_out(app, row, media, base, public=principal is None)

    item = await run_in_threadpool(load)
    return render(fmt, "service_requests", "request", [item])
