"""What the notice tests share: a ticket walked through the loop, real HTTP and SMTP receivers,
and an App whose [notifiers] section a test can change."""

from __future__ import annotations

import copy
import dataclasses
import email
import email.policy
import json
import socket
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import insert, select, update

from closeloop import escalation, service
from closeloop.app import App
from closeloop.models import notifications, people, tickets
from tests.conftest import NOW
from tests.factories import hours, step

HOUR = timedelta(hours=1)


def with_notifiers(app: App, **changes: Any) -> App:
    """The app with keys of [notifiers] replaced (sub-tables merged key by key)."""
    raw = copy.deepcopy(dict(app.settings.raw))
    section = dict(raw.get("notifiers", {}))
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(section.get(key), dict):
            section[key] = {**section[key], **value}
        else:
            section[key] = value
    raw["notifiers"] = section
    return dataclasses.replace(app, settings=dataclasses.replace(app.settings, raw=raw))


@pytest.fixture
def napp(app: App, tmp_path: Path) -> App:
    """The test app (both backends) with the file channel writing into the test's folder."""
    return with_notifiers(app, file={"path": str(tmp_path / "notices.jsonl")})


def set_person(app: App, handle: str, **values: Any) -> int:
    with app.engine.begin() as conn:
        conn.execute(update(people).where(people.c.handle == handle).values(**values))
        return int(conn.execute(select(people.c.id).where(people.c.handle == handle)).scalar_one())


def person_id(app: App, handle: str) -> int:
    with app.engine.connect() as conn:
        return int(conn.execute(select(people.c.id).where(people.c.handle == handle)).scalar_one())


@dataclass(frozen=True)
class Walked:
    closed: str  # submitted, fixed, rejected, fixed again, verified, closed
    late: str  # never fixed: reminders, then escalated twice


def walk_the_loop(app: App) -> Walked:
    """Two tickets with everything that makes notices: each kind is in the outbox after it."""
    closed = service.submit(
        app,
        service.NewProblem(
            grid="JS-A1-V01-G03",
            category="random_piling",
            title="村口河边堆放建筑垃圾",
            description="约两车建筑垃圾堆在河堤边",
            address="堰头村村口桥东",
            reporter="李大伯",
            reporter_email="li.dabo@example.org",
        ),
        NOW,
    )
    step(app, closed, "fix", "yantou.g3", NOW + hours(1), note="已组织清运")
    step(app, closed, "reject", "yantou.lead", NOW + hours(2), reason="河堤下仍有碎砖，需返工")
    step(app, closed, "fix", "yantou.g3", NOW + hours(3), note="碎砖已清理干净")
    step(app, closed, "verify", "yantou.lead", NOW + hours(4), note="现场核查合格")
    step(app, closed, "close", "yantou.lead", NOW + hours(4.5))
    late = service.submit(
        app,
        service.NewProblem(
            grid="JS-A1-V02-G02",
            category="random_piling",
            title="农房旁乱堆木料",
            address="曹园村2组",
        ),
        NOW + hours(5),
    )
    for h in (18, 30, 70):  # half time used; a day late; two days late
        escalation.sweep(app, NOW + hours(h))
    return Walked(closed, late)


def add_notices(
    app: App, ref: str, count: int, *, handle: str, channel: str, prefix: str = "bulk"
) -> list[str]:
    """`count` more assignment notices about ticket `ref` for `handle`, keys prefix:i:channel."""
    recipient = person_id(app, handle)
    with app.engine.begin() as conn:
        ticket_id = conn.execute(select(tickets.c.id).where(tickets.c.ref == ref)).scalar_one()
        keys = [f"{prefix}:{i}:{channel}" for i in range(count)]
        conn.execute(
            insert(notifications),
            [
                {
                    "ticket_id": ticket_id,
                    "recipient_id": recipient,
                    "channel": channel,
                    "kind": "assignment",
                    "locale": "zh_CN",
                    "payload": {},
                    "idempotency_key": key,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": NOW,
                    "created_at": NOW,
                }
                for key in keys
            ],
        )
    return keys


def statuses(app: App) -> Counter[str]:
    with app.engine.connect() as conn:
        return Counter(conn.execute(select(notifications.c.status)).scalars())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- HTTP -------------------------------------------------------------------------------------


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))

    def query(self) -> dict[str, list[str]]:
        return urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)

    @property
    def key(self) -> str:
        return self.headers["Idempotency-Key"]


@dataclass
class Receiver:
    """A real HTTP server that records every POST; what it answers is set by the test."""

    port: int
    status: int = 200
    reply: bytes = b'{"errcode": 0, "errmsg": "ok"}'
    delay: float = 0.0  # seconds before answering: a slow receiver
    hold_after: int | None = None  # requests after this many are recorded, then held ...
    gate: threading.Event = field(default_factory=threading.Event)  # ... until this is set
    seen: list[Request] = field(default_factory=list)
    active: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answer(self, status: int, reply: Any) -> None:
        self.status = status
        self.reply = reply if isinstance(reply, bytes) else json.dumps(reply).encode()

    def keys(self) -> Counter[str]:
        with self.lock:
            return Counter(r.key for r in self.seen)

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                with receiver.lock:
                    receiver.active += 1
                try:
                    body = self.rfile.read(int(self.headers["Content-Length"]))
                    if receiver.delay:
                        time.sleep(receiver.delay)
                    with receiver.lock:
                        receiver.seen.append(Request(self.path, dict(self.headers.items()), body))
                        held = receiver.hold_after is not None and (
                            len(receiver.seen) > receiver.hold_after
                        )
                    if held:
                        receiver.gate.wait(timeout=60)
                    self.send_response(receiver.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(receiver.reply)))
                    self.end_headers()
                    self.wfile.write(receiver.reply)
                except OSError:
                    pass  # the sender died while we held its request
                finally:
                    with receiver.lock:
                        receiver.active -= 1

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.01,))
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        self.gate.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join()
            self._server = None


@pytest.fixture
def receiver() -> Iterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def make(port: int = 0, *, start: bool = True, **kw: Any) -> Receiver:
        r = Receiver(port=port, **kw)
        made.append(r)
        return r.start() if start else r

    yield make
    for r in made:
        r.stop()


# --- SMTP -------------------------------------------------------------------------------------


@dataclass
class Mail:
    rcpt_tos: list[str]
    data: bytes

    def parsed(self) -> EmailMessage:
        mail = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(mail, EmailMessage)
        return mail


class Mailbox:
    def __init__(self) -> None:
        self.received: list[Mail] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(Mail(list(envelope.rcpt_tos), envelope.original_content))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    box, port = Mailbox(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


@pytest.fixture
def no_smtp_login(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLOSELOOP_SMTP_USER", raising=False)
    monkeypatch.delenv("CLOSELOOP_SMTP_PASSWORD", raising=False)
