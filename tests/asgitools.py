"""Drive the ASGI application directly with a body that arrives in chunks, counting what the
application took: shows exactly how much of a body was read, and when."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    chunks_read: int
    bytes_read: int
    receive_calls: int

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class _Body:
    chunks: Iterable[bytes]
    read: int = 0
    size: int = 0
    calls: int = 0
    _it: Any = field(default=None)


def call(
    asgi: Any,
    method: str,
    path: str,
    headers: dict[str, str],
    chunks: Iterable[bytes],
    query: str = "",
) -> Answer:
    """One request to `asgi`; the body is `chunks`, handed over one per receive()."""
    body = _Body(chunks)
    body._it = iter(chunks)
    pending: list[bytes | None] = []

    async def receive() -> dict[str, Any]:
        body.calls += 1
        if not pending:
            try:
                pending.append(next(body._it))
            except StopIteration:
                pending.append(None)
        piece = pending.pop()
        if piece is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        body.read += 1
        body.size += len(piece)
        return {"type": "http.request", "body": piece, "more_body": True}

    status = 0
    out_headers: dict[str, str] = {}
    out: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            out_headers.update({k.decode(): v.decode() for k, v in message.get("headers", [])})
        elif message["type"] == "http.response.body":
            out.append(message.get("body", b""))

    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    asyncio.run(asgi(scope, receive, send))
    return Answer(status, out_headers, b"".join(out), body.read, body.size, body.calls)
