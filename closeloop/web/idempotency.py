"""`Idempotency-Key` on the POSTs of the JSON API and Open311: a retried request is answered,
not run again.

A client that sends the header with a key of its own (a UUID per operation) may send the same
request again when it lost the answer, for as long as ``[web] idempotency_hours`` (24 by
default):

- the same key and the same request (method, path and body) from the same caller answer what
  the first one answered, with the same status and ``Idempotent-Replayed: true``: no second
  ticket, and a step taken once does not answer 409 the second time;
- the same key with another request is 422;
- the same key while the first request still runs waits for its answer (a few seconds), then
  answers 409 with ``Retry-After``.

Keys are scoped to the caller: an API token (Open311's ``api_key`` is one), a person's session,
or, for anonymous reports, the client address. Requests that fail (4xx) are not kept: they
change nothing, and sending them again fails again or succeeds once fixed.

How it holds under crashes and races. A row per (scope, key) is inserted first, in a
transaction of its own; the unique pair makes two concurrent requests race to one winner. The
winner runs the request, and the writes that matter (the ticket, the step) commit together with
the answer in the same transaction (see ``also=`` of :func:`closeloop.service.submit`): a worker
killed at any moment leaves either both or neither. A claim whose request died before it
answered is taken over once its lock (``LOCK``) has passed; a late writer whose claim was taken
over rolls back (the token and password POSTs write their answer after their work, so a
takeover while the first still runs could create a second token; the first caller then gets
409). The key itself is not stored (its sha256 is), and the stored answer (which may
hold a reporter's secret or a new API token) is encrypted with a key stream derived from the
client's key: the database alone does not give it away.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel
from sqlalchemy import Connection, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from starlette.concurrency import run_in_threadpool

from closeloop.app import App
from closeloop.models import idempotency_keys
from closeloop.tickets import Conflict, DomainError
from closeloop.web.auth import Principal, client_ip, request_now, web_app, web_settings
from closeloop.web.writers import one_writer

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
MAX_KEY = 255
# An unanswered claim this old is taken over: its request most likely died with its worker.
# Short, because a ticket or step writes its answer in its own transaction guarded by the
# claim: should the first request still be running, it rolls back when it gets there.
LOCK = timedelta(seconds=10)
WAIT_SECONDS = 5.0  # a duplicate arriving while the first runs waits this long for the answer
POLL_SECONDS = 0.05
PRUNE = 100  # expired rows removed by each new claim
JSON_TYPE = "application/json"

PARAMETER: dict[str, Any] = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "description": (
        "A key of the client's own (a UUID per operation, at most 255 visible ASCII characters). "
        "Sending the same request again with the same key within 24 hours answers what the "
        "first one answered, with the same status and `Idempotent-Replayed: true`; the same "
        "key with another body is 422; while the first still runs, 409 with Retry-After. "
        "Keys are per caller (API token, session, or client address when anonymous)."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY, "pattern": "^[!-~]+$"},
}
OPENAPI = {"parameters": [PARAMETER]}


class BadKey(DomainError):
    status = 400


class KeyReused(DomainError):
    """The key came with another request: 422, Open311 too (its other errors say 400)."""

    status = 422
    keep_status = True


class StillRunning(Conflict):
    retry_after = 1


def key_of(request: Request) -> str | None:
    value = request.headers.get(HEADER)
    if value is None:
        return None
    if not 1 <= len(value) <= MAX_KEY or not all(33 <= ord(c) <= 126 for c in value):
        raise BadKey("idempotency.bad_key", header=HEADER, max_key=MAX_KEY)
    return value


def scope_of(request: Request, principal: Principal | None) -> str:
    """Whose keys these are: the token, the person (a session), or the anonymous address."""
    if principal is None:
        return f"anon:{client_ip(request)}"[:100]
    if principal.token_id is not None:
        return f"token:{principal.token_id}"
    return f"person:{principal.person_id}"


def fingerprint(request: Request, parts: Any, key: str) -> str:
    """The request as the server understood it: method, path and the parsed body (so that a
    multipart body with a new boundary is still the same request). Keyed with the client's
    key: a body with a password in it is not left as a plain hash to guess at."""
    text = json.dumps(
        [request.method, request.url.path, parts], sort_keys=True, default=str, ensure_ascii=False
    )
    return hmac.new(key.encode(), text.encode(), hashlib.sha256).hexdigest()


def file_digests(files: Any) -> list[str]:
    return [hashlib.sha256(f.data).hexdigest() for f in files]


# --- the stored answer, sealed with a key stream derived from the client's key ---------------


def _stream(key: str, scope: str, nonce: bytes, size: int) -> bytes:
    seed = b"closeloop-idempotency\0" + scope.encode() + b"\0" + key.encode() + b"\0" + nonce
    return hashlib.shake_256(seed).digest(size)


def _xor(data: bytes, stream: bytes) -> bytes:
    if not data:
        return b""
    mixed = int.from_bytes(data, "big") ^ int.from_bytes(stream, "big")
    return mixed.to_bytes(len(data), "big")


def seal(key: str, scope: str, body: bytes) -> bytes:
    nonce = secrets.token_bytes(16)
    return nonce + _xor(body, _stream(key, scope, nonce, len(body)))


def unseal(key: str, scope: str, sealed: bytes) -> bytes:
    nonce, data = sealed[:16], sealed[16:]
    return _xor(data, _stream(key, scope, nonce, len(data)))


# --- claims ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    status: int
    content_type: str
    body: bytes

    def response(self) -> Response:
        return Response(
            self.body, self.status, headers={REPLAYED: "true"}, media_type=self.content_type
        )


@dataclass(frozen=True)
class Claim:
    """This request holds the key: it runs, then writes its answer."""

    app: App
    id: int
    claim: str
    key: str
    scope: str

    def record(self, conn: Connection, status: int, content_type: str, body: bytes) -> None:
        """Write the answer inside the caller's transaction; if the claim was taken over
        meanwhile, raise so that the transaction (the ticket, the step) rolls back."""
        done = conn.execute(
            update(idempotency_keys)
            .where(idempotency_keys.c.id == self.id, idempotency_keys.c.claim == self.claim)
            .values(status=status, content_type=content_type, body=seal(self.key, self.scope, body))
        ).rowcount
        if done != 1:
            raise StillRunning("idempotency.taken_over", header=HEADER)

    def finish(self, status: int, content_type: str, body: bytes) -> Response:
        """Store the final answer (its own transaction) and return it."""
        with one_writer(self.app.engine), self.app.engine.begin() as conn:
            self.record(conn, status, content_type, body)
        return Response(body, status, media_type=content_type)

    def release(self) -> None:
        """The request failed without an answer worth keeping: let the key be used again."""
        with one_writer(self.app.engine), self.app.engine.begin() as conn:
            conn.execute(
                delete(idempotency_keys).where(
                    idempotency_keys.c.id == self.id,
                    idempotency_keys.c.claim == self.claim,
                    idempotency_keys.c.status.is_(None),
                )
            )


def _try_claim(
    app: App, scope: str, key: str, fp: str, now: datetime, keep: timedelta
) -> Claim | Stored | None:
    """One attempt: the claim, the stored answer, or None while another request runs."""
    key_hash = hashlib.sha256(key.encode()).hexdigest()
    token = secrets.token_hex(16)
    this = (idempotency_keys.c.scope == scope) & (idempotency_keys.c.key_hash == key_hash)
    for _ in range(3):
        with one_writer(app.engine), app.engine.begin() as conn:
            # This key's row if it expired, and a few other expired rows (everyone's).
            conn.execute(delete(idempotency_keys).where(this, idempotency_keys.c.expires_at <= now))
            old = select(idempotency_keys.c.id).where(idempotency_keys.c.expires_at <= now)
            conn.execute(
                delete(idempotency_keys).where(
                    idempotency_keys.c.id.in_(old.limit(PRUNE).scalar_subquery())
                )
            )
            row = {
                "scope": scope,
                "key_hash": key_hash,
                "fingerprint": fp,
                "claim": token,
                "created_at": now,
                "locked_until": now + LOCK,
                "expires_at": now + keep,
            }
            insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
            made = conn.execute(
                insert(idempotency_keys)
                .values(**row)
                .on_conflict_do_nothing(index_elements=["scope", "key_hash"])
                .returning(idempotency_keys.c.id)
            ).scalar()
            if made is not None:
                return Claim(app, int(made), token, key, scope)
            found = conn.execute(
                select(idempotency_keys).where(
                    idempotency_keys.c.scope == scope, idempotency_keys.c.key_hash == key_hash
                )
            ).first()
            if found is None:
                continue  # released or pruned since: try again
            if found.fingerprint != fp:
                raise KeyReused("idempotency.reused", header=HEADER)
            if found.status is not None:
                return Stored(
                    found.status, found.content_type or JSON_TYPE, unseal(key, scope, found.body)
                )
            if found.locked_until > now:
                return None
            taken = conn.execute(
                update(idempotency_keys)
                .where(
                    idempotency_keys.c.id == found.id,
                    idempotency_keys.c.claim == found.claim,
                    idempotency_keys.c.status.is_(None),
                )
                .values(claim=token, locked_until=now + LOCK)
            ).rowcount
            if taken == 1:
                return Claim(app, found.id, token, key, scope)
            return None
    return None


async def claim(
    request: Request, principal: Principal | None, parts: Any, *, key: str | None = None
) -> Claim | Response | None:
    """For a POST handler, after it parsed the body: None without the header; the stored
    answer (a Response) for a retry; else this request's Claim. Raises 422 for a key reused
    with another request, 409 when the first request with the key is still running."""
    key = key if key is not None else key_of(request)
    if key is None:
        return None
    app, cfg = web_app(request), web_settings(request)
    scope, fp = scope_of(request, principal), fingerprint(request, parts, key)
    keep = timedelta(hours=cfg.idempotency_hours)
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        now = request_now(request)
        got = await run_in_threadpool(_try_claim, app, scope, key, fp, now, keep)
        if isinstance(got, Stored):
            return got.response()
        if isinstance(got, Claim):
            return got
        if time.monotonic() >= deadline:
            raise StillRunning("idempotency.running", header=HEADER)
        await asyncio.sleep(POLL_SECONDS)


def as_json(model: type[BaseModel], value: Any) -> bytes:
    """The body FastAPI would send for `value` under `response_model=model`."""
    return model.model_validate(value).model_dump_json(by_alias=True).encode()


async def answer(claim_: Claim | None, status: int, model: type[BaseModel], value: Any) -> Any:
    """The handler's answer: stored under the claim (and returned as a Response), or `value`
    as it is when there is no key."""
    if claim_ is None:
        return value
    return await run_in_threadpool(claim_.finish, status, JSON_TYPE, as_json(model, value))


async def release(claim_: Claim | None) -> None:
    if claim_ is not None:
        await run_in_threadpool(claim_.release)


def recorder(
    claim_: Claim | None, status: int, content_type: str, body: Callable[[Any], bytes]
) -> Callable[[Connection, Any], None] | None:
    """An `also=` for the service: writes the answer made from what the transaction produced
    (the ticket's ref, the ticket) in the same transaction."""
    if claim_ is None:
        return None

    def write(conn: Connection, produced: Any) -> None:
        claim_.record(conn, status, content_type, body(produced))

    return write
