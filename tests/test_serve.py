"""`closeloop serve` as a real process: it answers, logs one JSON line per request, and stops
cleanly on SIGTERM (SQLite: one process with the jobs; PostgreSQL: several workers, no jobs)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from closeloop.app import App
from closeloop.models import tickets
from tests.conftest import CONFIG, REPO

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config_in(folder: Path) -> Path:
    """The example config in a folder of its own, so files the jobs write (notices, evidence)
    land there and not in the repository."""
    text = CONFIG.read_text(encoding="utf-8")
    for relative in (
        "workflows/environmental.toml",
        "zones/example/grids.csv",
        "zones/example/grids.geojson",
    ):
        text = text.replace(f'"{relative}"', f'"{REPO / relative}"')
    path = folder / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


class Served:
    def __init__(self, config: Path, db: str, *extra: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "closeloop",
                "--config",
                str(config),
                "--db",
                db,
                "serve",
                "--port",
                str(self.port),
                *extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # Its own process group, so kill() also ends the workers: SIGKILL of the supervisor
            # alone leaves them serving, orphaned, into the rest of the run.
            start_new_session=True,
        )
        self.err: list[str] = []

    def wait_ready(self, marker: str = "Uvicorn running on", times: int = 1) -> None:
        """Read the server's log until `marker` has appeared `times` times (no polling, no
        sleeping; the test's timeout bounds a server that says nothing)."""
        assert self.proc.stderr is not None
        seen = 0
        for line in self.proc.stderr:
            self.err.append(line)
            seen += marker in line
            if seen == times:
                return
        raise AssertionError("the server did not start:\n" + "".join(self.err))

    def wait_listening(self, deadline: float = 30) -> None:
        """uvicorn's workers listen on the parent's socket only after their start-up; until
        then a connection is refused. Ask until one is accepted (bounded)."""
        end = time.monotonic() + deadline
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=5).close()
                return
            except ConnectionRefusedError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.02)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.communicate()

    def stop(self) -> tuple[int, str, str]:
        self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=60)
        return self.proc.returncode, out, "".join(self.err) + err


@pytest.fixture
def served_sqlite(sqlite_app: App, tmp_path: Path) -> Iterator[Served]:
    sqlite_app.engine.dispose()
    s = Served(config_in(tmp_path), sqlite_app.settings.database_url)
    yield s
    s.kill()


@pytest.mark.timeout(120)
def test_sqlite_serves_runs_the_jobs_and_stops_gracefully(served_sqlite: Served) -> None:
    s = served_sqlite
    s.wait_ready()
    with httpx.Client(base_url=s.url, timeout=10) as client:
        health = client.get("/healthz")
        assert health.status_code == 200
        assert health.json() == {"status": "ok", "database": "sqlite"}
        made = client.post(
            "/api/tickets",
            json={"grid": "JS-A1-V01-G03", "category": "sanitation", "title": "墙角垃圾"},
        )
        assert made.status_code == 201
        assert client.get(made.json()["url"]).json()["state"] == "assigned"
    code, out, err = s.stop()
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    requests: list[dict[str, Any]] = [
        {k: line[k] for k in ("method", "path", "status")} for line in lines
    ]
    assert requests == [
        {"method": "GET", "path": "/healthz", "status": 200},
        {"method": "POST", "path": "/api/tickets", "status": 201},
        {"method": "GET", "path": f"/api/tickets/{made.json()['ref']}", "status": 200},
    ]
    assert "SQLite: the scheduler" in out
    jobs = re.search(r"background jobs: (.*)", err)
    assert jobs is not None and "sweep" in jobs.group(1).split(", ")
    assert "Application shutdown complete" in err


@pytest.mark.postgres
@pytest.mark.timeout(120)
def test_postgres_runs_several_workers_and_no_jobs(
    pg_session_app: tuple[App, Any], tmp_path: Path
) -> None:
    app, _ = pg_session_app
    s = Served(config_in(tmp_path), app.settings.database_url, "--workers", "2")
    try:
        # Each worker listens once its application has started.
        s.wait_ready("Application startup complete", times=2)
        s.wait_listening()
        with httpx.Client(base_url=s.url, timeout=10) as client:
            health = client.get("/healthz")
            assert health.json() == {"status": "ok", "database": "postgresql"}
        code, out, err = s.stop()
        assert code == 0, err
        assert "closeloop scheduler" in out  # the hint to run the jobs elsewhere
        assert "background jobs" not in err
    finally:
        s.kill()


def test_serve_refuses_a_database_without_the_schema(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'empty.db'}"
    r = subprocess.run(
        [sys.executable, "-m", "closeloop", "--db", db, "serve", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert "lacks the table(s) tickets, api_tokens" in r.stderr and "closeloop init" in r.stderr


@pytest.mark.timeout(180)
def test_demo_start_prints_a_login_per_role_that_works(tmp_path: Path) -> None:
    """The README's first command ends in `serve --demo` on a new database: it creates the zone
    and demo tickets, prints the address and one login per role, and those logins work."""
    s = Served(config_in(tmp_path), f"sqlite:///{tmp_path / 'demo.db'}", "--demo")
    try:
        s.wait_ready()
        assert s.proc.stdout is not None
        printed: list[str] = []
        for line in s.proc.stdout:
            printed.append(line)
            if line.startswith("closeloop serving"):
                break
        text = "".join(printed)
        assert f"{s.url}/report" in text
        logins = dict(re.findall(r"\s(\S+)\s+password (\S+)", text))
        assert set(logins) == {"yantou.g3", "yantou.lead", "duban.wang", "admin"}
        for handle, password in logins.items():
            with httpx.Client(base_url=s.url, timeout=10) as client:
                token = client.get("/api/csrf").json()["csrf_token"]
                answer = client.post(
                    "/login",
                    data={"handle": handle, "password": password, "csrf_token": token},
                    follow_redirects=False,
                )
                assert answer.status_code == 303, (handle, answer.text[:200])
                me = client.get("/api/me")
                assert me.status_code == 200 and me.json()["handle"] == handle
                if handle == "yantou.lead":
                    inbox = client.get("/api/inbox").json()
                    assert inbox, "the demo leaves the village leader something to do"
    finally:
        s.kill()


# --- a web worker killed under load -------------------------------------------------------------


def web_workers(parent: int) -> set[int]:
    """The live web workers of a `serve` process: its children forked from it (not a helper
    process of multiprocessing, not a killed one waiting to be reaped)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        state, ppid = text.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == parent and state != "Z" and b"multiprocessing" not in cmdline:
            found.add(int(stat.parent.name))
    return found


class Drained:
    """Both pipes of a server read into lists in threads, so a chatty server never blocks."""

    def __init__(self, proc: subprocess.Popen[str], err: list[str]) -> None:
        self.out: list[str] = []
        self.err = err
        self.threads = [
            threading.Thread(target=self._read, args=(proc.stdout, self.out), daemon=True),
            threading.Thread(target=self._read, args=(proc.stderr, self.err), daemon=True),
        ]
        for t in self.threads:
            t.start()

    @staticmethod
    def _read(pipe: Any, into: list[str]) -> None:
        for line in pipe:
            into.append(line)

    def count(self, marker: str) -> int:
        return sum(marker in line for line in list(self.err))


def poll(condition: Callable[[], bool], seconds: float, what: str) -> float:
    """Wait for a real process's progress, bounded; returns the seconds it took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > seconds:
            raise AssertionError(f"gave up after {seconds} s waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - started


class LoadClients:
    """Threads submitting tickets over keep-alive connections, each request with an
    Idempotency-Key: a request whose connection broke (its worker was killed) is sent again
    with the same key until it is answered. Bounded: `per_client` reports each at most."""

    def __init__(self, url: str, clients: int, per_client: int) -> None:
        self.url, self.per_client = url, per_client
        self.acked: dict[str, str] = {}  # key -> ref, answered 201
        self.retries = 0
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(clients)
        ]
        for t in self.threads:
            t.start()

    def _run(self, client: int) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            for n in range(self.per_client):
                if self.stop.is_set():
                    return
                key = f"load-{client}-{n}"
                body = {"grid": "JS-A1-V01-G03", "category": "sanitation", "title": key}
                give_up = time.monotonic() + 60
                while True:
                    try:
                        r = http.post("/api/tickets", json=body, headers={"Idempotency-Key": key})
                    except httpx.TransportError:
                        r = None
                    if r is not None and r.status_code == 201:
                        with self.lock:
                            self.acked[key] = r.json()["ref"]
                        break
                    if r is not None and r.status_code != 409:  # 409: the first still runs
                        with self.lock:
                            self.errors.append(f"{key}: {r.status_code} {r.text[:200]}")
                        break
                    with self.lock:
                        self.retries += 1
                    if time.monotonic() > give_up:
                        with self.lock:
                            self.errors.append(f"{key}: no answer in 60 s")
                        break

    def done(self) -> int:
        with self.lock:
            return len(self.acked)

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=90)


@pytest.mark.postgres
@pytest.mark.timeout(240)
def test_a_killed_web_worker_loses_no_acknowledged_write_and_is_replaced(
    pg_session_app: tuple[App, Any], tmp_path: Path
) -> None:
    app, _ = pg_session_app
    config = config_in(tmp_path)
    # The load is anonymous reports from one address: lift the per-address hourly limit, which
    # would otherwise answer 429 after 60 and stop the clients before the kill is measured.
    text = config.read_text(encoding="utf-8")
    assert "anonymous_reports_per_hour = 60" in text
    config.write_text(
        text.replace("anonymous_reports_per_hour = 60", "anonymous_reports_per_hour = 100000"),
        encoding="utf-8",
    )
    s = Served(config, app.settings.database_url, "--workers", "2")
    load: LoadClients | None = None
    try:
        s.wait_ready("Application startup complete", times=2)
        s.wait_listening()
        drained = Drained(s.proc, s.err)
        [victim, survivor] = sorted(web_workers(s.proc.pid))
        load = LoadClients(s.url, clients=4, per_client=120)
        poll(lambda: load.done() >= 20, 60, "20 answered submits before the kill")

        os.kill(victim, signal.SIGKILL)
        # The replacement is forked from the supervisor, which has the service imported:
        # web_workers counts no spawned process (their command line names multiprocessing), so
        # a spawned replacement never satisfies this. How fast the fork serves is a figure, not
        # a bound: it is printed below (1-2 s idle; a CI run at full load once took over 6 s,
        # building the app while the other test workers held both cores), and the bound only
        # stops a hang.
        back = poll(
            lambda: (
                len(web_workers(s.proc.pid)) == 2
                and victim not in web_workers(s.proc.pid)
                and drained.count("Application startup complete") >= 3
            ),
            60,
            "the worker count back to 2, the new one serving",
        )
        assert survivor in web_workers(s.proc.pid)
        after_kill = load.done()
        poll(lambda: load.done() >= after_kill + 20, 60, "20 more answered submits")
        load.finish()

        assert load.errors == []
        assert load.done() >= 40
        with app.engine.connect() as conn:
            found = dict(
                conn.execute(
                    select(tickets.c.title, tickets.c.ref).where(tickets.c.title.like("load-%"))
                ).all()
            )
            titles = conn.execute(
                select(func.count()).where(tickets.c.title.like("load-%"))
            ).scalar_one()
        # Every acknowledged write is there, under the reference it was answered with, and a
        # request sent again after the kill made no second ticket.
        assert found == load.acked
        assert titles == len(found)
        code, _, err = s.stop()
        assert code == 0, err
        assert f"web worker {victim} was killed by SIGKILL; replaced" in err
        print(f"worker count back to 2 in {back:.1f} s; {load.done()} submits, "
              f"{load.retries} retries")  # fmt: skip
    finally:
        if load is not None:
            load.finish()
        s.kill()


@pytest.mark.postgres
@pytest.mark.timeout(180)
def test_a_hung_worker_is_replaced_after_the_configured_health_check_and_the_log_says_so(
    pg_session_app: tuple[App, Any], tmp_path: Path
) -> None:
    app, _ = pg_session_app
    config = config_in(tmp_path)
    text = config.read_text(encoding="utf-8")
    default = "worker_healthcheck_seconds = 30"
    assert default in text
    config.write_text(text.replace(default, "worker_healthcheck_seconds = 3"))
    s = Served(config, app.settings.database_url, "--workers", "2")
    try:
        s.wait_ready("Application startup complete", times=2)
        s.wait_listening()
        drained = Drained(s.proc, s.err)
        [victim, survivor] = sorted(web_workers(s.proc.pid))
        os.kill(victim, signal.SIGSTOP)  # alive, and silent: hung
        poll(
            lambda: (
                victim not in web_workers(s.proc.pid)
                and len(web_workers(s.proc.pid)) == 2
                and drained.count("Application startup complete") >= 3
            ),
            60,
            "the hung worker replaced",
        )
        assert survivor in web_workers(s.proc.pid)
        with httpx.Client(base_url=s.url, timeout=10) as client:
            assert client.get("/healthz").status_code == 200
        code, _, err = s.stop()
        assert code == 0, err
        assert f"web worker {victim} did not answer the health check within 3 s" in err
        # Every line on stderr, uvicorn's too, starts with an ISO 8601 time with an offset.
        timed = [line for line in err.splitlines() if line.strip()]
        iso = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d ")
        assert timed and all(iso.match(line) for line in timed), timed[:5]
    finally:
        s.kill()


def test_workers_answer_without_waiting_for_a_delayed_ack() -> None:
    """The socket `--workers N` shares names TCP, so asyncio turns Nagle's algorithm off on
    each connection it accepts: with it on, the body uvicorn writes after the head of an
    answer on a kept-alive connection waited ~40 ms for the client's delayed ACK."""
    import asyncio

    import uvicorn

    from closeloop.web.serve import listening_socket

    async def main() -> tuple[int, int]:
        listening = listening_socket(uvicorn.Config(app=None, host="127.0.0.1", port=0))
        seen: list[int] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            conn = writer.get_extra_info("socket")
            seen.append(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(handle, sock=listening)
        async with server:
            _, writer = await asyncio.open_connection(*listening.getsockname()[:2])
            while not seen:
                await asyncio.sleep(0)
            writer.close()
        return listening.proto, seen[0]

    proto, nodelay = asyncio.run(main())
    assert proto == socket.IPPROTO_TCP
    assert nodelay != 0
