"""Issue 10, item 2: bodies are capped as they arrive, and credentials are checked first.

The cap used to read only Content-Length: a chunked 200 MB JSON body to the anonymous
POST /api/tickets was read whole before a 422. Now the application stops taking the body the
moment it passes the cap and answers 413. Routes that need a logged-in person (and the Open311
POST with its api_key outside the body) refuse a caller without valid credentials before
reading a byte of the body.
"""

from __future__ import annotations

import select
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func
from sqlalchemy import select as sql_select

from closeloop.app import ManualClock
from closeloop.bootstrap import App
from closeloop.models import tickets
from closeloop.web.app import create_app
from tests.asgitools import call
from tests.conftest import NOW
from tests.livetools import chunk, head, live_server, read_response

MB = 1024 * 1024
CHUNK = 64 * 1024


def json_chunks(total: int) -> Iterator[bytes]:
    yield b'{"grid": "JS-A1-V01-G03", "category": "random_piling", "title": "'
    for _ in range(total // CHUNK):
        yield b"x" * CHUNK
    yield b'"}'


@pytest.fixture
def asgi(app: App) -> Any:
    return create_app(app, clock=ManualClock(NOW))


def test_a_chunked_json_body_stops_at_the_cap(app: App, asgi: Any) -> None:
    # 200 MB offered in 64 KiB chunks with no Content-Length, to the anonymous submit.
    answer = call(
        asgi, "POST", "/api/tickets", {"content-type": "application/json"}, json_chunks(200 * MB)
    )
    assert answer.status == 413, answer.body
    assert "larger than" in answer.json()["error"]["message"]
    assert answer.bytes_read <= 1 * MB + CHUNK  # [web] max_body_bytes, not a chunk more
    with app.engine.connect() as conn:
        assert conn.execute(sql_select(func.count()).select_from(tickets)).scalar() == 0


def test_a_multipart_body_with_photos_stops_at_the_upload_cap(asgi: Any) -> None:
    def parts() -> Iterator[bytes]:
        yield (
            b'--B\r\nContent-Disposition: form-data; name="photos"; filename="a.png"\r\n'
            b"Content-Type: image/png\r\n\r\n\x89PNG\r\n\x1a\n"
        )
        for _ in range(80 * MB // CHUNK):
            yield b"\x00" * CHUNK

    headers = {"content-type": "multipart/form-data; boundary=B"}
    answer = call(asgi, "POST", "/api/tickets", headers, parts())
    assert answer.status == 413
    # 6 photos of 10 MiB and a MiB for the fields: the cap of a report with photos.
    assert answer.bytes_read <= 61 * MB + CHUNK


def test_a_declared_length_over_the_cap_is_refused_unread(asgi: Any) -> None:
    headers = {"content-type": "application/json", "content-length": str(5 * MB)}
    answer = call(asgi, "POST", "/api/tickets", headers, json_chunks(5 * MB))
    assert answer.status == 413 and answer.receive_calls == 0


def test_a_small_chunked_body_still_works(asgi: Any) -> None:
    body = b'{"grid": "JS-A1-V01-G03", "category": "random_piling", "title": "abc"}'
    answer = call(asgi, "POST", "/api/tickets", {"content-type": "application/json"}, [body])
    assert answer.status == 201, answer.body


def _unsafe_operations_needing_login(asgi: Any) -> list[tuple[str, str]]:
    values = {"ref": "EP-2026-000001", "step": "fix", "token_id": "1", "handle": "admin"}
    found = []
    for path, item in asgi.openapi()["paths"].items():
        for method in item:
            if method.upper() in ("GET", "HEAD", "OPTIONS") or not path.startswith("/api/"):
                continue
            if path == "/api/tickets" and method == "post":
                continue  # anonymous reports
            concrete = path
            for name, value in values.items():
                concrete = concrete.replace("{" + name + "}", value)
            found.append((method.upper(), concrete))
    return found


def endless() -> Iterator[bytes]:
    """More than any cap allows; a handler that reads it fails on the size, after reading."""
    for _ in range(4 * MB // CHUNK):
        yield b"x" * CHUNK


def test_every_route_needing_login_refuses_before_reading_the_body(asgi: Any) -> None:
    operations = _unsafe_operations_needing_login(asgi)
    assert ("POST", "/api/tokens") in operations and len(operations) >= 5
    for method, path in operations:
        for headers in (
            {},
            {"authorization": "Bearer cl_" + "x" * 43},  # unknown token
            {"cookie": "closeloop_session=" + "y" * 43},  # no such session
        ):
            headers = {"content-type": "application/json", **headers}
            answer = call(asgi, method, path, headers, endless())
            assert answer.status == 401, (method, path, headers, answer.body)
            assert answer.receive_calls == 0, (method, path, headers)


def test_open311_checks_the_key_before_the_body(asgi: Any) -> None:
    headers = {"content-type": "application/x-www-form-urlencoded"}
    answer = call(
        asgi, "POST", "/open311/v2/requests.json", headers, endless(), query="api_key=cl_nope"
    )
    assert answer.status == 403, answer.body
    assert answer.receive_calls == 0
    assert answer.json()[0]["code"] == 403


def test_a_real_server_answers_413_while_the_body_still_comes(app: App) -> None:
    """uvicorn on a socket: the 413 arrives after about a megabyte of a 200 MB chunked body."""
    with live_server(app) as live:
        conn = live.connect()
        conn.sendall(
            head(
                "POST",
                "/api/tickets",
                {"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
            )
        )
        sent = 0
        try:
            for piece in json_chunks(200 * MB):
                conn.sendall(chunk(piece))
                sent += len(piece)
                if select.select([conn], [], [], 0)[0]:
                    break
        except (BrokenPipeError, ConnectionResetError):
            pass
        status, _, body = read_response(conn)
        conn.close()
    assert status == 413, body
    assert sent < 20 * MB, sent
