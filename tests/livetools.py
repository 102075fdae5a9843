"""The web service under a real uvicorn in a thread of the test, and raw HTTP/1.1 over a socket:
for what only a real server shows (chunked bodies, when a body is read, keep-alive)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn

from closeloop.app import ManualClock
from closeloop.bootstrap import App
from closeloop.web.app import create_app
from closeloop.web.serve import listening_socket
from tests.conftest import NOW


@dataclass
class Live:
    port: int
    clock: ManualClock

    def connect(self, timeout: float = 10) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)


def loopback_socket() -> socket.socket:
    """A TCP socket on a free loopback port, for uvicorn to serve on (`sockets=[...]`), made as
    `closeloop serve --workers N` makes its own: one that names TCP, so that asyncio sets
    TCP_NODELAY on its connections. Without it every answer on a kept-alive connection waited
    for the client's delayed ACK: ~45 ms a request instead of ~2 ms, most of the 6 minutes the
    schemathesis run took.
    """
    return listening_socket(uvicorn.Config(app=None, host="127.0.0.1", port=0))


@contextmanager
def live_server(app: App, **options: Any) -> Iterator[Live]:
    clock = ManualClock(NOW)
    sock = loopback_socket()
    port = sock.getsockname()[1]
    options = {"log_level": "warning", "access_log": False, **options}
    config = uvicorn.Config(create_app(app, clock=clock), **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the test server did not start")
            threading.Event().wait(0.01)
        yield Live(port, clock)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: test", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_response(conn: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One response (Content-Length framed, as the service answers) from the connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a response: {data!r}")
        data += chunk
    top, _, rest = data.partition(b"\r\n\r\n")
    status_line, *header_lines = top.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        rest += chunk
    return int(status_line.split()[1]), headers, rest[:length]


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"
