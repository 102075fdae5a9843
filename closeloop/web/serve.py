"""`closeloop serve`: the web service under uvicorn.

- SQLite: one process. It serves the web and runs the scheduler's jobs (the sweep, delivery)
  in a background thread, because SQLite has one writer anyway and a second process would only
  wait for the lock.
- PostgreSQL: `--workers N` web processes and no jobs in them; the operator runs
  `closeloop scheduler` (and the deliverer) as processes of their own, several of each if they
  like: the jobs claim their rows, so doubles do no harm.

SIGTERM or Ctrl-C: uvicorn stops accepting, lets running requests finish, then the lifespan
stops the background jobs (a sweep finishes its batch) and the process exits 0.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

import uvicorn
from fastapi import FastAPI
from sqlalchemy import inspect

from closeloop.bootstrap import App, bootstrap
from closeloop.tickets import Invalid
from closeloop.web.app import access_log, create_app
from closeloop.web.settings import WebSettings

GRACEFUL_SECONDS = 30
WEB_TABLES = ("api_tokens", "login_attempts", "web_sessions", "web_keys")


def configure_logging() -> None:
    """Request lines as bare JSON on stdout; everything else with time, level and logger."""
    if not any(getattr(h, "closeloop", False) for h in access_log.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler.closeloop = True  # type: ignore[attr-defined]
        access_log.addHandler(handler)
        access_log.setLevel(logging.INFO)
        access_log.propagate = False
    root = logging.getLogger("closeloop")
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.INFO)


def worker_app() -> FastAPI:
    """The app of one web worker (uvicorn imports this in each worker process); config and
    database come from CLOSELOOP_CONFIG and CLOSELOOP_DB, set by `serve`."""
    configure_logging()
    return create_app(bootstrap(), run_background=False)


def run_until_signal(server: uvicorn.Server) -> None:
    """Run until SIGTERM or Ctrl-C, then return: a graceful stop exits 0.

    uvicorn restores the handlers it found and sends itself the signal again after its own
    graceful shutdown; the handlers found here only ask the server to stop, so that repeat is
    harmless (and a signal during start-up stops it too)."""

    def stop(_signum: int, _frame: object) -> None:
        server.should_exit = True

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def check_schema(app: App) -> None:
    """Refuse to serve a database without the tables the service needs, before any request
    meets the gap."""
    present = set(inspect(app.engine).get_table_names())
    missing = [t for t in ("tickets", *WEB_TABLES) if t not in present]
    if missing:
        raise Invalid(
            f"the database lacks the table(s) {', '.join(missing)}; run `closeloop init` first"
        )


def serve(
    app: App,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    echo: Callable[[str], None] = print,
) -> None:
    cfg = WebSettings.from_settings(app.settings)
    sqlite = app.engine.dialect.name == "sqlite"
    if workers < 1:
        raise Invalid("--workers must be at least 1")
    if sqlite and workers > 1:
        raise Invalid(
            "SQLite is served by one process (it has one writer); "
            "--workers needs PostgreSQL ([database] url or CLOSELOOP_DB)"
        )
    check_schema(app)
    configure_logging()
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "access_log": False,  # closeloop.web.access writes one JSON line per request
        "proxy_headers": True,
        "forwarded_allow_ips": cfg.forwarded_allow_ips,
        "timeout_graceful_shutdown": GRACEFUL_SECONDS,
        "log_level": "info",
    }
    url = f"http://{host}:{port}/"
    if sqlite:
        echo(f"closeloop serving {app.settings.zone_name} on {url}")
        echo("SQLite: the scheduler (sweep, delivery) runs in this process")
        server = uvicorn.Server(uvicorn.Config(create_app(app, run_background=True), **options))
        run_until_signal(server)
        echo("closeloop stopped")
        return
    os.environ["CLOSELOOP_CONFIG"] = str(app.settings.path)
    os.environ["CLOSELOOP_DB"] = app.settings.database_url
    echo(f"closeloop serving {app.settings.zone_name} on {url} with {workers} worker(s)")
    echo(
        "PostgreSQL: no jobs run in the web workers; run `closeloop scheduler` "
        "(and the deliverer, `closeloop deliver`) as processes of their own"
    )
    uvicorn.run("closeloop.web.serve:worker_app", factory=True, workers=workers, **options)
