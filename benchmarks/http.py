"""The web service under load on loopback, against a bare endpoint of the same framework.

Three servers run one after the other as real processes under uvicorn, each for a fixed time
with the same concurrent clients:

- bare: a FastAPI app with one JSON endpoint and no database, in one process: what the
  framework, uvicorn and the client cost by themselves on this machine;
- sqlite: `closeloop serve` on SQLite (one process; the scheduler runs inside, as deployed);
- postgresql: `closeloop serve --workers N` on PostgreSQL (no jobs in the web workers).

Each closeloop client repeats the loop of one problem: report it (POST /api/tickets, JSON),
follow it with its secret, read the micro-grid leader's inbox, fix it as that leader, verify and
close it as the village leader, list the newest tickets as a supervisor: four writes, three
reads, all authenticated by API tokens but the reporter's. The bare run asks the bare endpoint
at the same concurrency. Printed: requests per second, p50 and p99 latency, errors, and each
service's throughput as a fraction of the bare endpoint's in this same run. The clients share
the machine with the servers.

    python benchmarks/http.py [--seconds 10] [--clients 32] [--workers 2] [--pg URL | --no-pg]

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# This file is named http.py: its folder must not shadow the standard library's `http`, which
# the closeloop modules it imports use (through starlette). The repository takes its place.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "config.toml"
DEFAULT_PG = os.environ.get(
    "CLOSELOOP_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
NOW = datetime(2026, 4, 1, 1, 0, tzinfo=UTC)
# The micro grids of one village with their leaders; the village leader verifies and closes.
MICRO_GRIDS = [(f"JS-A1-V01-G0{i}", f"yantou.g{i}") for i in range(1, 5)]

BARE_APP = """
from fastapi import FastAPI
app = FastAPI()

@app.get("/bare")
def bare() -> dict[str, bool]:
    return {"ok": True}
"""


# --- set-up ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config_in(folder: Path) -> Path:
    """The example config in a folder of its own (notices and evidence are written there)."""
    text = CONFIG.read_text(encoding="utf-8")
    for relative in (
        "workflows/environmental.toml",
        "zones/example/grids.csv",
        "zones/example/grids.geojson",
    ):
        text = text.replace(f'"{relative}"', f'"{REPO / relative}"')
    # The load comes from one address: lift the limit of anonymous reports per address.
    text = text.replace("anonymous_reports_per_hour = 60", "anonymous_reports_per_hour = 100000000")
    path = folder / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def prepare(config: Path, url: str) -> dict[str, str]:
    """Schema and example zone in a new database; tokens for a leader and a supervisor."""
    from alembic import command

    from closeloop import zone
    from closeloop.bootstrap import bootstrap
    from closeloop.config import load_settings
    from closeloop.models import metadata
    from closeloop.schema import alembic_config
    from closeloop.web import auth

    app = bootstrap(load_settings(config, url))
    # The tables from the models (the web tables may be newer than the migrations).
    metadata.create_all(app.engine)
    with app.engine.begin() as conn:
        command.stamp(alembic_config(conn), "head")
    zone.init(app, NOW)
    tokens = {
        handle: auth.create_token(app, handle, "benchmark", NOW).token
        for handle in ("yantou.lead", "duban.wang", *(h for _, h in MICRO_GRIDS))
    }
    app.engine.dispose()
    return tokens


def create_pg_database(admin_url: str) -> str:
    from sqlalchemy import create_engine, text

    name = f"closeloop_http_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def drop_pg_database(admin_url: str, url: str) -> None:
    from sqlalchemy import create_engine, text

    name = url.rsplit("/", 1)[1]
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


class Server:
    """A server process; ready when its log says so `times` times (one per worker)."""

    def __init__(self, args: list[str], cwd: Path, ready: str, times: int = 1) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [a.replace("{port}", str(self.port)) for a in args],
            cwd=cwd,
            stdout=subprocess.DEVNULL,  # the request log is written, as deployed, and dropped
            stderr=subprocess.PIPE,
            text=True,
        )
        seen = 0
        log: list[str] = []
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            log.append(line)
            seen += ready in line
            if seen == times:
                break
        else:
            raise SystemExit("server did not start:\n" + "".join(log))
        # The server keeps logging to the pipe: read it to the end, or once the pipe is full the
        # server stops at its next log line, and the load with it.
        threading.Thread(target=self.proc.stderr.read, daemon=True).start()
        # Workers of a multi-process uvicorn listen only after their start-up.
        end = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=5).close()
                break
            except ConnectionRefusedError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.02)

    def cpu_seconds(self) -> float:
        """CPU time (user and system) used so far by the server and its worker processes."""
        return sum(_cpu_seconds(pid) for pid in _tree(self.proc.pid))

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()


_TICKS = os.sysconf("SC_CLK_TCK")


def _tree(pid: int) -> list[int]:
    """A process and its descendants, from /proc (Linux)."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            todo += [int(c) for c in task.read_text().split()]
    return found


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime


# --- load ------------------------------------------------------------------------------------


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    by_kind: dict[str, list[float]] = field(default_factory=dict)
    errors: int = 0
    first_error: str | None = None
    server_cpu: float = 0.0  # CPU seconds of the server's processes during the measured load
    client_cpu: float = 0.0  # CPU seconds of this process (the clients) during it

    def add(self, kind: str, seconds: float) -> None:
        self.latencies.append(seconds)
        self.by_kind.setdefault(kind, []).append(seconds)

    def fail(self, what: str) -> None:
        self.errors += 1
        self.first_error = self.first_error or what


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


class Connection:
    """One keep-alive HTTP/1.1 connection, as small as a client can be, so that the clients
    cost little next to the servers they measure (the answers here always carry a length)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str):
        self.reader, self.writer, self.host = reader, writer, host

    @classmethod
    async def open(cls, url: str) -> Connection:
        hostport = url.removeprefix("http://")
        host, port = hostport.split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        return cls(reader, writer, hostport)

    async def request(
        self, method: str, path: str, *, token: str | None = None, body: Any = None
    ) -> tuple[int, bytes]:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}"]
        payload = b""
        if token:
            lines.append(f"Authorization: Bearer {token}")
        if body is not None:
            payload = json.dumps(body, ensure_ascii=False).encode()
            lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


Client = Callable[[Connection, Tally, Callable[[], bool]], Awaitable[None]]


async def timed(
    tally: Tally, kind: str, call: Awaitable[tuple[int, bytes]], expect: int
) -> Any | None:
    """Run one request; its JSON answer when the status is the expected one, else None."""
    started = time.perf_counter()
    try:
        status, body = await call
    except (OSError, asyncio.IncompleteReadError) as exc:
        tally.fail(f"{kind}: {type(exc).__name__}")
        return None
    tally.add(kind, time.perf_counter() - started)
    if status != expect:
        tally.fail(f"{kind}: {status} {body[:200]!r}")
        return None
    return json.loads(body) if body else {}


def bare_client() -> Client:
    async def run(conn: Connection, tally: Tally, running: Callable[[], bool]) -> None:
        while running():
            await timed(tally, "bare", conn.request("GET", "/bare"), 200)

    return run


def closeloop_client(tokens: dict[str, str], n: int) -> Client:
    """One reporter and the leaders of one micro grid: report, follow, and the loop to closed."""
    grid, fixer = MICRO_GRIDS[n % len(MICRO_GRIDS)]

    async def run(conn: Connection, tally: Tally, running: Callable[[], bool]) -> None:
        i = 0
        while running():
            i += 1
            body = {"grid": grid, "category": "random_piling", "title": f"负载 {n}-{i}"}
            made = await timed(
                tally, "submit", conn.request("POST", "/api/tickets", body=body), 201
            )
            if made is None:
                continue
            ref = made["ref"]
            village, sup = tokens["yantou.lead"], tokens["duban.wang"]
            calls: list[tuple[str, str, str, str, dict[str, str] | None]] = [
                ("follow", "GET", made["url"], "", None),
                ("inbox", "GET", "/api/inbox", tokens[fixer], None),
                (
                    "step",
                    "POST",
                    f"/api/tickets/{ref}/steps/fix",
                    tokens[fixer],
                    {"note": "已清理"},
                ),
                ("step", "POST", f"/api/tickets/{ref}/steps/verify", village, {}),
                ("step", "POST", f"/api/tickets/{ref}/steps/close", village, {}),
                ("list", "GET", "/api/tickets?limit=20", sup, None),
            ]
            for kind, method, path, token, payload in calls:
                if not running():
                    break
                call = conn.request(method, path, token=token or None, body=payload)
                if await timed(tally, kind, call, 201 if kind == "submit" else 200) is None:
                    break

    return run


async def load(server: Server, clients: list[Client], seconds: float) -> tuple[Tally, float]:
    tally = Tally()
    conns = [await Connection.open(server.url) for _ in clients]
    try:
        # A short warm-up: connections used once, first queries planned.
        warm_until = time.perf_counter() + min(1.0, seconds / 5)
        await asyncio.gather(
            *(
                c(conn, Tally(), lambda: time.perf_counter() < warm_until)
                for c, conn in zip(clients, conns, strict=True)
            )
        )
        server_cpu, client_cpu = server.cpu_seconds(), time.process_time()
        started = time.perf_counter()
        end = started + seconds
        await asyncio.gather(
            *(
                c(conn, tally, lambda: time.perf_counter() < end)
                for c, conn in zip(clients, conns, strict=True)
            )
        )
        elapsed = time.perf_counter() - started
        tally.server_cpu = server.cpu_seconds() - server_cpu
        tally.client_cpu = time.process_time() - client_cpu
    finally:
        for conn in conns:
            conn.close()
    return tally, elapsed


def summarise(name: str, tally: Tally, elapsed: float) -> dict[str, Any]:
    out: dict[str, Any] = {
        "requests": len(tally.latencies),
        "rps": round(len(tally.latencies) / elapsed, 1),
        "p50_ms": round(percentile(tally.latencies, 50) * 1000, 2),
        "p99_ms": round(percentile(tally.latencies, 99) * 1000, 2),
        "errors": tally.errors,
        # CPU per request, in ms: the server's processes, and the clients (this process).
        "server_cpu_ms": round(tally.server_cpu * 1000 / max(1, len(tally.latencies)), 3),
        "client_cpu_ms": round(tally.client_cpu * 1000 / max(1, len(tally.latencies)), 3),
    }
    writes = tally.by_kind.get("submit", []) + tally.by_kind.get("step", [])
    if writes:
        out["writes_p99_ms"] = round(percentile(writes, 99) * 1000, 2)
    if len(tally.by_kind) > 1:
        out["by_kind"] = {
            kind: {
                "n": len(values),
                "p50_ms": round(percentile(values, 50) * 1000, 2),
                "p99_ms": round(percentile(values, 99) * 1000, 2),
            }
            for kind, values in sorted(tally.by_kind.items())
        }
    line = (
        f"{name:<11} {out['rps']:>8.1f} req/s   p50 {out['p50_ms']:>7.2f} ms   "
        f"p99 {out['p99_ms']:>8.2f} ms   {out['requests']} requests, {tally.errors} errors; "
        f"CPU/request: server {out['server_cpu_ms']:.2f} ms, clients {out['client_cpu_ms']:.2f} ms"
    )
    if writes:
        line += f"\n{'':<11} writes p99 {out['writes_p99_ms']:.2f} ms"
    print(line, flush=True)
    if tally.first_error:
        print(f"            first error: {tally.first_error}", flush=True)
    return out


# --- main ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per server")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients")
    parser.add_argument("--workers", type=int, default=2, help="web workers on PostgreSQL")
    parser.add_argument("--pg", default=DEFAULT_PG, help="PostgreSQL admin URL")
    parser.add_argument("--no-pg", action="store_true", help="skip PostgreSQL")
    args = parser.parse_args()
    py = sys.executable
    results: dict[str, Any] = {
        "seconds": args.seconds,
        "clients": args.clients,
        "pg_workers": args.workers,
        "cpus": os.cpu_count(),
    }
    print(
        f"{args.clients} clients, {args.seconds:g} s per server, on {os.cpu_count()} CPUs "
        "(clients and servers share them)",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="closeloop-http-") as tmp:
        work = Path(tmp)
        (work / "bare_app.py").write_text(BARE_APP)
        uvicorn_args = ["--port", "{port}", "--no-access-log", "--log-level", "info"]
        bare = Server(
            [py, "-m", "uvicorn", "bare_app:app", *uvicorn_args], work, "Uvicorn running on"
        )
        try:
            clients = [bare_client() for _ in range(args.clients)]
            tally, elapsed = asyncio.run(load(bare, clients, args.seconds))
            results["bare"] = summarise("bare", tally, elapsed)
        finally:
            bare.stop()

        runs: list[tuple[str, str, list[str]]] = []
        sqlite_dir = work / "sqlite"
        sqlite_dir.mkdir()
        runs.append(("sqlite", f"sqlite:///{sqlite_dir / 'closeloop.db'}", []))
        pg_url = None
        if not args.no_pg:
            pg_url = create_pg_database(args.pg)
            runs.append(("postgresql", pg_url, ["--workers", str(args.workers)]))
        try:
            for name, url, extra in runs:
                folder = work / f"{name}-files"
                folder.mkdir()
                config = config_in(folder)
                tokens = prepare(config, url)
                # One process logs that it listens; workers each log their start-up.
                marker = "Application startup complete" if extra else "Uvicorn running on"
                server = Server(
                    [
                        py,
                        "-m",
                        "closeloop",
                        "--config",
                        str(config),
                        "--db",
                        url,
                        "serve",
                        "--port",
                        "{port}",
                        *extra,
                    ],
                    REPO,
                    marker,
                    times=args.workers if extra else 1,
                )
                try:
                    clients = [closeloop_client(tokens, n) for n in range(args.clients)]
                    tally, elapsed = asyncio.run(load(server, clients, args.seconds))
                    results[name] = summarise(name, tally, elapsed)
                finally:
                    server.stop()
        finally:
            if pg_url is not None:
                drop_pg_database(args.pg, pg_url)

    bare_rps = results["bare"]["rps"]
    for name in ("sqlite", "postgresql"):
        if name in results:
            ratio = round(results[name]["rps"] / bare_rps, 3)
            results[name]["ratio_to_bare"] = ratio
            print(f"{name}: {ratio:.3f} of the bare endpoint's requests per second", flush=True)
    print(json.dumps(results, ensure_ascii=False))


if __name__ == "__main__":
    main()
