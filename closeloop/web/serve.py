"""`closeloop serve`: the web service under uvicorn.

- SQLite: one process. It serves the web and runs the scheduler's jobs (the sweep, delivery)
  in a background thread, because SQLite has one writer anyway and a second process would only
  wait for the lock.
- PostgreSQL: `--workers N` web processes and no jobs in them; the operator runs
  `closeloop scheduler` (which also delivers the notices) as a process of its own, several if
  they like: the jobs claim their rows, so doubles do no harm.

With `--workers N` uvicorn's supervisor pings each worker; a worker that does not answer within
`[web] worker_healthcheck_seconds` (default 30, uvicorn's own is 5: too short for a worker
starting on a busy machine, which was killed and replaced over and over) is killed and
replaced. The workers are forked from the supervisor rather than spawned, so a replacement
serves within a second or so instead of importing the whole service again; the supervisor
also logs why a worker went: the signal or exit status it died with, or the health check it
missed.

SIGTERM or Ctrl-C: uvicorn stops accepting, lets running requests finish (up to
`[web] graceful_shutdown_seconds`), then the lifespan stops the background jobs (a sweep
finishes its batch) and the process exits 0.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable
from datetime import tzinfo
from socket import socket
from typing import Any

import uvicorn
from fastapi import FastAPI
from sqlalchemy import inspect
from uvicorn._subprocess import subprocess_started
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import SIGNALS as SUPERVISOR_SIGNALS
from uvicorn.supervisors.multiprocess import Multiprocess, Process

from closeloop import logs
from closeloop.app import App
from closeloop.bootstrap import bootstrap
from closeloop.tickets import Invalid
from closeloop.web.app import access_log, create_app
from closeloop.web.settings import WebSettings

WEB_TABLES = ("api_tokens", "login_attempts", "web_sessions", "web_keys")
_FORK = multiprocessing.get_context("fork")


def configure_logging(tz: tzinfo | None) -> None:
    """Request lines as bare JSON on stdout; everything else in the one format of
    :mod:`closeloop.logs` (ISO 8601 times with the zone's offset) on stderr."""
    if not any(getattr(h, "closeloop", False) for h in access_log.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler.closeloop = True  # type: ignore[attr-defined]
        access_log.addHandler(handler)
        access_log.setLevel(logging.INFO)
        access_log.propagate = False
    logs.setup(tz)


log = logging.getLogger("closeloop.web.serve")

# How long a thread waiting for the GIL lets the running one go on before asking it to stop
# (CPython's default: 5 ms). Every database call gives the GIL up and takes it back: a
# writer among busy request threads (the event loop, the readers) then waited up to 5 ms after
# many of its statements, and on SQLite every write of the process queues behind that one
# writer thread. Measured under 32 clients on a shared machine, four interleaved pairs: the
# writer's wall time per write 4.85 ms on average at 5 ms, 4.39 ms at 1 ms; more requests per
# second and a lower writes p99 in three pairs of four (docs/performance.md).
SWITCH_INTERVAL = 0.001


def shorten_gil_switch() -> None:
    sys.setswitchinterval(SWITCH_INTERVAL)


def why_gone(pid: int | None, exitcode: int | None, was_alive: bool, healthcheck: int) -> str:
    """One line on why a web worker went (the supervisor replaces it)."""
    if was_alive:
        return (
            f"web worker {pid} did not answer the health check within {healthcheck} s "
            "(hung, or starved of CPU); killed and replaced ([web] worker_healthcheck_seconds)"
        )
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"web worker {pid} was killed by {name}; replaced"
    return f"web worker {pid} exited with status {exitcode}; replaced"


class ForkedWorker(Process):
    """A web worker forked from the supervisor, not spawned.

    uvicorn spawns each worker: a fresh interpreter that imports the whole service before it
    answers (10 s at load average 9 on a 2-core machine, 1.5 s idle), so a killed worker left
    the service at half capacity for as long. The supervisor of `serve` has imported all of it
    already (this module imports the app), so a fork starts serving after building the app
    alone. What a fork would wrongly share is left behind: the supervisor holds no database
    connection when it forks (:func:`serve` disposes its engine first) and runs no other
    thread; the worker closes its copies of the other workers' pipes and takes back the
    default action of the signals the supervisor traps, as a spawned worker would have them.
    (The workers uvicorn itself adds on SIGHUP's restart or SIGTTIN are spawned as before.)
    """

    def __init__(self, config: uvicorn.Config, sockets: list[socket], siblings: list[Process]):
        super().__init__(config, sockets)
        self.siblings = [(p.parent_conn, p.child_conn) for p in siblings]
        # Built as uvicorn's own start-up (logging configured again, then serve these sockets),
        # in the fork context instead of spawn.
        self.process = _FORK.Process(
            target=subprocess_started,
            kwargs={"config": config, "target": self.target, "sockets": sockets,
                    "stdin_fileno": None},
        )  # type: ignore[assignment]  # fmt: skip

    def target(self, sockets: list[socket] | None = None) -> None:
        for conns in self.siblings:
            for conn in conns:
                conn.close()
        # Its own pipe's parent end stays open, as in a spawned worker: the health check
        # thread would otherwise end in EOFError when the supervisor closes its end on exit.
        for sig in SUPERVISOR_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        super().target(sockets)


class Supervisor(Multiprocess):
    """uvicorn's supervisor of `--workers N`, with forked workers (:class:`ForkedWorker`), and
    a line on why a worker went: the signal or exit status it died with, or the health check
    it missed (uvicorn only logs "Child process [pid] died")."""

    def new_worker(self) -> ForkedWorker:
        worker = ForkedWorker(self.config, self.sockets, self.processes)
        worker.start()
        return worker

    def init_processes(self) -> None:
        for _ in range(self.processes_num):
            self.processes.append(self.new_worker())

    def keep_subprocess_alive(self) -> None:
        """uvicorn's check of its workers, replacing a dead or silent one by a fork."""
        if self.should_exit.is_set():
            return
        for idx, process in enumerate(self.processes):
            was_alive = process.process.is_alive()
            if was_alive and process.ping(self.config.timeout_worker_healthcheck):
                continue
            process.kill()
            process.join()
            if process.exitcode == STARTUP_FAILURE:
                # It failed before serving: the app or the socket is broken, and every
                # replacement would fail the same way.
                log.error("web worker %s failed to start; stopping", process.pid)
                self.should_exit.set()
                return
            if self.should_exit.is_set():
                return
            log.error(
                why_gone(
                    process.pid, process.exitcode, was_alive, self.config.timeout_worker_healthcheck
                )
            )
            self.processes[idx] = self.new_worker()


def listening_socket(config: uvicorn.Config) -> socket:
    """The socket the workers share, as uvicorn binds it, remade from its descriptor so that
    it says what it is.

    uvicorn creates it with protocol 0, and asyncio switches Nagle's algorithm off
    (TCP_NODELAY) only on connections whose socket names IPPROTO_TCP: every answer on a
    kept-alive connection (uvicorn writes the head and the body apart) then waited for the
    client's delayed ACK, some 40 ms. From a bare descriptor Python asks the kernel, which
    names the protocol. One process is served by uvicorn's own `create_server`, which names it.
    """
    return socket(fileno=config.bind_socket().detach())


def run_workers(config: uvicorn.Config) -> None:
    """What `uvicorn.run` does for workers > 1, with the :class:`Supervisor`."""
    sock = listening_socket(config)
    supervisor = Supervisor(config, sockets=[sock])
    try:
        supervisor.run()
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()


def worker_app() -> FastAPI:
    """The app of one web worker (uvicorn imports this in each worker process); config and
    database come from CLOSELOOP_CONFIG and CLOSELOOP_DB, set by `serve`."""
    app = bootstrap()
    configure_logging(app.tz)
    shorten_gil_switch()
    return create_app(app, run_background=False)


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
        raise Invalid("database.missing_tables", tables=", ".join(missing))


def proxy_options(cfg: WebSettings) -> dict[str, Any]:
    """uvicorn's options for the client address and scheme.

    X-Forwarded-For and X-Forwarded-Proto are believed only from the proxies named in
    `[web] forwarded_allow_ips`; with none named (the default) they are ignored whoever sends
    them, and the client address is the socket's peer. Trusting them from any local client let a
    made-up X-Forwarded-For escape the login limit.
    """
    proxies = cfg.forwarded_allow_ips
    return {
        "access_log": False,  # closeloop.web.access writes one JSON line per request
        "proxy_headers": bool(proxies),
        "forwarded_allow_ips": proxies or None,
    }


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
        raise Invalid("option.workers")
    if sqlite and workers > 1:
        raise Invalid("option.sqlite_workers")
    check_schema(app)
    configure_logging(app.tz)
    shorten_gil_switch()  # forked workers inherit it
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "timeout_graceful_shutdown": cfg.graceful_shutdown_seconds,
        "timeout_worker_healthcheck": cfg.worker_healthcheck_seconds,
        "log_level": "info",
        "log_config": logs.uvicorn_config(app.tz),
        **proxy_options(cfg),
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
        "PostgreSQL: no jobs run in the web workers; run `closeloop scheduler` as a process "
        "of its own: it sweeps and delivers the notices"
    )
    target = "closeloop.web.serve:worker_app"
    if workers == 1:
        uvicorn.run(target, factory=True, **options)
        return
    # The workers are forked from this process: none may inherit a connection of its pool.
    app.engine.dispose()
    run_workers(uvicorn.Config(target, factory=True, workers=workers, **options))
