"""10,000 pending notices delivered to a local HTTP receiver, against a bare loop of the same posts.

The notices are assignment notices about real tickets (submitted through the engine) for leaders
whose channel is a generic JSON webhook pointing at an HTTP server in this process. The deliverer
claims them in batches, renders each from the database (ticket, grid path, last five events),
posts it and marks it sent. The baseline posts the same number of requests, with bodies of the
same size, through a webhook channel with the same httpx client settings, in a plain loop: no
database, no rendering. The ratio says what claiming, rendering and marking cost per notice.

The receiver counts requests by Idempotency-Key: the run fails if any notice arrived twice or not
at all.

    python benchmarks/deliver.py [-n 10000] [--batch 100] [--db sqlite|postgresql+psycopg://...]

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import sys
from pathlib import Path

# benchmarks/http.py would shadow the standard library's http package: run from the repository.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from dataclasses import replace  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402
from typing import Any  # noqa: E402

from sqlalchemy import create_engine, insert, select, text, update  # noqa: E402

from closeloop import delivery, service, zone  # noqa: E402
from closeloop.app import App  # noqa: E402
from closeloop.bootstrap import bootstrap  # noqa: E402
from closeloop.config import load_settings  # noqa: E402
from closeloop.db import read_only  # noqa: E402
from closeloop.models import notifications, people, tickets  # noqa: E402
from closeloop.notices import Notice, prepare  # noqa: E402
from notifiers import Message  # noqa: E402
from notifiers.webhook import WebhookChannel  # noqa: E402

CONFIG = Path(__file__).resolve().parents[1] / "config.toml"
NOW = datetime(2026, 4, 1, 1, 0, tzinfo=UTC)
GRIDS = [(f"JS-A1-V01-G0{i}", f"yantou.g{i}") for i in range(1, 5)]
TICKETS = 100
PG_NAME = "closeloop_bench_deliver"


class Receiver:
    """An HTTP/1.1 server (keep-alive) that answers 200 and counts Idempotency-Keys."""

    def __init__(self) -> None:
        self.keys: Counter[str] = Counter()
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: without TCP_NODELAY the second waits for
            # the client's delayed ACK (40 ms), and both loops would measure that instead.
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.keys[self.headers["Idempotency-Key"]] += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def fresh_app(db: str, workdir: Path) -> App:
    if db == "sqlite":
        url = f"sqlite:///{workdir / 'deliver.db'}"
    else:
        name = PG_NAME
        admin = create_engine(db, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        url = db.rsplit("/", 1)[0] + f"/{name}"
    settings = load_settings(CONFIG, url)
    raw = dict(settings.raw)
    # No file channel: nothing written beside the repository.
    raw["notifiers"] = {k: v for k, v in raw["notifiers"].items() if k != "file"}
    app = bootstrap(replace(settings, raw=raw))
    zone.init(app, NOW)
    return app


def load(app: App, count: int, url: str, rounds: int) -> None:
    """TICKETS real tickets, then `count` pending assignment notices about them, due in
    `rounds` groups an hour apart (so each round of the run takes one group)."""
    with app.engine.begin() as conn:
        conn.execute(
            update(people)
            .where(people.c.handle.in_([h for _, h in GRIDS]))
            .values(channels="webhook", webhook=url)
        )
        conn.execute(update(notifications).values(status="sent"))
    for i in range(TICKETS):
        grid, _ = GRIDS[i % len(GRIDS)]
        service.submit(
            app,
            service.NewProblem(
                grid=grid,
                category="random_piling",
                title=f"河边垃圾堆放 {i}",
                description="约两车建筑垃圾堆在河堤边",
                address="堰头村村口桥东",
            ),
            NOW + timedelta(seconds=i),
        )
    with app.engine.begin() as conn:
        conn.execute(notifications.delete())
        found = conn.execute(select(tickets.c.id, tickets.c.assignee_id)).all()
        rows = [
            {
                "ticket_id": found[i % len(found)].id,
                "recipient_id": found[i % len(found)].assignee_id,
                "channel": "webhook",
                "kind": "assignment",
                "locale": "zh_CN",
                "payload": {},
                "idempotency_key": f"bench:{i}:webhook",
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": NOW + timedelta(hours=i * rounds // count),
                "created_at": NOW,
            }
            for i in range(count)
        ]
        for start in range(0, count, 1000):
            conn.execute(insert(notifications), rows[start : start + 1000])


def channel() -> WebhookChannel:
    return WebhookChannel(format="json", timeout=5, trust_env=False)


def bare_loop(count: int, url: str, sample: Message, offset: int = 0) -> float:
    """The same number of posts, same body size, same client settings; seconds taken."""
    hook = channel()
    try:
        started = time.perf_counter()
        for i in range(count):
            hook.send(
                Message(
                    kind=sample.kind,
                    channel="webhook",
                    recipient_name=sample.recipient_name,
                    address=url,
                    subject=sample.subject,
                    text=sample.text,
                    html=sample.html,
                    markdown=sample.markdown,
                    idempotency_key=f"bare:{offset + i}",
                    ticket_ref=sample.ticket_ref,
                )
            )
        return time.perf_counter() - started
    finally:
        hook.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", "--count", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=4, help="bare and deliverer alternate")
    parser.add_argument("--db", default="sqlite", help="sqlite, or a PostgreSQL admin URL")
    args = parser.parse_args()
    per_round = args.count // args.rounds
    if per_round * args.rounds != args.count:
        raise SystemExit("--count must be a multiple of --rounds")

    receiver = Receiver()
    with tempfile.TemporaryDirectory() as tmp:
        app = fresh_app(args.db, Path(tmp))
        load(app, args.count, receiver.url, args.rounds)
        print(f"{args.count} pending notices about {TICKETS} tickets ({app.engine.dialect.name})")
        renderer = delivery.make_renderer(app)

        # One rendered notice, as the deliverer makes it, is the body of every bare post.
        with read_only(app.engine) as conn:
            first = conn.execute(select(notifications).limit(1)).one()
            [ready] = prepare(app, conn, [Notice.from_row(first)], NOW, renderer)
        assert ready.message is not None

        # Rendering alone (no claim, no send, no mark), to show where the time goes.
        with read_only(app.engine) as conn:
            rows = [Notice.from_row(r) for r in conn.execute(select(notifications).limit(1000))]
            started = time.perf_counter()
            for start in range(0, len(rows), args.batch):
                prepare(app, conn, rows[start : start + args.batch], NOW, renderer)
            render_each = (time.perf_counter() - started) / len(rows)

        # Alternate rounds of the bare loop and the deliverer, so that a machine busy with
        # something else slows both alike.
        bare = took = 0.0
        total = delivery.DeliveryReport()
        hook = channel()
        try:
            for r in range(args.rounds):
                bare += bare_loop(per_round, receiver.url, ready.message, offset=r * per_round)
                started = time.perf_counter()
                report = delivery.deliver_due(
                    app,
                    NOW + timedelta(hours=r, minutes=1),
                    batch=args.batch,
                    channels={"webhook": hook},
                    renderer=renderer,
                )
                took += time.perf_counter() - started
                total.add(report)
                if report.sent != per_round:
                    raise SystemExit(f"round {r}: {report.as_dict()}")
        finally:
            hook.close()
        print(f"bare loop:  {args.count / bare:8.0f} posts/s ({bare:.2f} s)")
        print(f"deliverer:  {total.sent / took:8.0f} notices/s ({took:.2f} s), {total.as_dict()}")
        print(f"rendering alone: {render_each * 1000:.2f} ms a notice")

        delivered = {k: n for k, n in receiver.keys.items() if k.startswith("bench:")}
        if len(delivered) != args.count or set(delivered.values()) != {1}:
            raise SystemExit(
                f"delivery wrong: {len(delivered)} keys, counts {Counter(delivered.values())}"
            )
        with read_only(app.engine) as conn:
            sent = conn.execute(
                select(notifications.c.id).where(notifications.c.status == "sent")
            ).all()
        if len(sent) != args.count:
            raise SystemExit(f"{len(sent)} rows marked sent, not {args.count}")
        app.engine.dispose()
        if args.db != "sqlite":
            admin = create_engine(args.db, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{PG_NAME}" WITH (FORCE)'))
            admin.dispose()
    receiver.stop()
    result = {
        "benchmark": "deliver",
        "backend": app.engine.dialect.name,
        "notices": args.count,
        "batch": args.batch,
        "deliver_per_second": round(total.sent / took, 1),
        "bare_posts_per_second": round(args.count / bare, 1),
        "ratio_to_bare": round((total.sent / took) / (args.count / bare), 3),
        "render_ms_per_notice": round(render_each * 1000, 3),
        "delivered_once_each": True,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
