"""Bodies that come as JSON or as a form with photos, and the photos themselves.

A report or a step can be sent as JSON (integrations) or as multipart/form-data with files
(phones, the pages). Both are checked by the same pydantic model. Uploaded files are checked
for count, size and type (by their first bytes) and stored by content hash: the name a client
gives is kept as a label in the database and never reaches the file system.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from closeloop.app import App
from closeloop.evidence import StoredFile, sniff, store_bytes
from closeloop.textguard import BadJson, loads_json
from closeloop.tickets import DomainError, Invalid
from closeloop.web.auth import CSRF_FIELD
from closeloop.web.settings import WebSettings

M = TypeVar("M", bound=BaseModel)

FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
MAX_FIELD_BYTES = 64 * 1024


class BadRequest(DomainError):
    status = 400


class UnsupportedMediaType(DomainError):
    status = 415


class TooLarge(DomainError):
    status = 413


@dataclass(frozen=True)
class Upload:
    """A file as it arrived: a label for the database and its bytes (size already checked)."""

    name: str
    data: bytes


async def read_body(
    request: Request, model: type[M], files_field: str, cfg: WebSettings
) -> tuple[M, list[Upload]]:
    """Parse a JSON or form body into `model`; files come from the form field `files_field`."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    uploads: list[Upload] = []
    data: Any
    if ctype in FORM_TYPES:
        form = await request.form(
            max_files=cfg.max_photos, max_fields=100, max_part_size=MAX_FIELD_BYTES
        )
        try:
            data = {}
            for key, value in form.multi_items():
                if key == CSRF_FIELD:
                    continue  # a session's CSRF token (closeloop.web.auth.check_csrf)
                if isinstance(value, UploadFile) and key == files_field:
                    # A file input left empty arrives as a part with no name and no bytes.
                    if value.filename or value.size:
                        uploads.append(await _read_upload(value, cfg))
                elif value == "" and (key in model.model_fields or key == files_field):
                    continue  # an input left empty: the field is left out
                else:
                    # A name the model does not know, even empty or a file (`photo` for
                    # `photos`), is handed on to be refused, not dropped.
                    data[key] = value
        finally:
            await form.close()
    elif ctype == "application/json" or (ctype == "" and not await request.body()):
        raw = await request.body()
        try:
            data = loads_json(raw) if raw.strip() else {}
        except BadJson as exc:
            raise BadRequest(exc.code, **exc.params) from None
    else:
        raise UnsupportedMediaType("upload.media_type", ctype=ctype or "an untyped body")
    try:
        return model.model_validate(data), uploads
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None


async def read_upload(upload: UploadFile, cfg: WebSettings) -> Upload:
    """One uploaded file, its size checked (its type is checked when it is stored)."""
    return await _read_upload(upload, cfg)


async def _read_upload(upload: UploadFile, cfg: WebSettings) -> Upload:
    name = clean_name(upload.filename)
    data = await upload.read(cfg.max_upload_bytes + 1)
    if len(data) > cfg.max_upload_bytes:
        raise TooLarge("upload.too_large", name=name, max_bytes=cfg.max_upload_bytes)
    return Upload(name, data)


def clean_name(name: str | None) -> str:
    """A label for the database: no control characters, no folders, not too long."""
    text = "".join(c for c in (name or "") if unicodedata.category(c)[0] != "C")
    text = text.replace("\\", "/").rsplit("/", 1)[-1].strip()
    return text[:200] or "upload"


async def store_uploads(app: App, cfg: WebSettings, uploads: list[Upload]) -> list[StoredFile]:
    """Check and store uploaded photos; nothing is stored unless all of them pass."""
    if len(uploads) > cfg.max_photos:
        raise Invalid("upload.too_many", max_photos=cfg.max_photos, count=len(uploads))
    for u in uploads:
        if not u.data:
            raise Invalid("upload.empty", name=u.name)
        sniff(u.data)
    return [
        await run_in_threadpool(
            store_bytes, app.settings.evidence_dir, u.data, u.name, cfg.max_upload_bytes
        )
        for u in uploads
    ]


def body_schema(model: type[BaseModel], files_field: str, files_doc: str) -> dict[str, Any]:
    """The OpenAPI request body for a route that takes `model` as JSON or as a form with files."""
    schema = model.model_json_schema()
    form = {
        **schema,
        "properties": {
            **schema.get("properties", {}),
            files_field: {
                "type": "array",
                "items": {"type": "string", "format": "binary"},
                "description": files_doc,
            },
        },
    }
    # The form refuses unknown names as the JSON does (read_body); the CSRF token a session
    # may send as a field instead of X-CSRF-Token is one it knows.
    form["properties"][CSRF_FIELD] = {
        "type": "string",
        "description": "with a session cookie: the CSRF token (GET /api/csrf), if not sent as "
        "X-CSRF-Token",
    }
    return {
        "requestBody": {
            "required": bool(schema.get("required")),
            "content": {
                "application/json": {"schema": schema},
                "multipart/form-data": {"schema": form},
            },
        }
    }
