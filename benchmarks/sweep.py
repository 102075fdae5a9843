"""The sweep's cost grows with the due work, not with the tickets ever filed.

The same 1,000 newly overdue tickets are swept in a database of 10,000 tickets and in one of
1,000,000 (almost all closed, 1% open and not yet due), in one run; the script prints both
times and their ratio, and the time of a sweep that finds nothing in the large database.
Then --burst tickets (default 10,000) fall overdue in the same minute and one sweep climbs a rung
for each, with its supervision row and notices: `rungs_per_s`. Each timing is the best of
--repeat runs (the overdue tickets are put back between runs), so a busy machine disturbs the
ratio less. The last line is one JSON object with the figures.

    .venv/bin/python benchmarks/sweep.py                       # SQLite files in a temp folder
    .venv/bin/python benchmarks/sweep.py --db postgresql://postgres@127.0.0.1:5432/test
        # PostgreSQL: makes (and drops) two databases next to the one named

Targets: ratio at most 1.5; an empty sweep of the large database under 50 ms; a burst swept at
10,000 rungs/s or more on SQLite.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# This folder holds http.py, which would shadow the standard library's http module for
# everything imported after (httpx, starlette): the repository takes the folder's place.
sys.path.remove(str(Path(__file__).resolve().parent))
sys.path.insert(0, str(REPO))

from sqlalchemy import create_engine, delete, func, select, text, update  # noqa: E402

from benchmarks.bulk import add_closed, add_overdue, assigned_row, insert_rows  # noqa: E402
from closeloop import escalation, zone  # noqa: E402
from closeloop.app import App  # noqa: E402
from closeloop.bootstrap import bootstrap  # noqa: E402
from closeloop.config import load_settings  # noqa: E402
from closeloop.grid import get_grid, lineage, nearest_led  # noqa: E402
from closeloop.models import escalations, notifications, tickets  # noqa: E402

CONFIG = REPO / "config.toml"
SWEEP_AT = datetime(2026, 4, 1, 1, 0, tzinfo=UTC)
OVERDUE = 1_000
GRIDS = ("JS-A1-V01-G03", "JS-A1-V02-G01", "JS-A2-V08-G01", "JS-E01-S01-Q1")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextmanager
def database(base: str | None, label: str, keep: bool) -> Iterator[str]:
    """A new empty database: an SQLite file, or a PostgreSQL database beside `base`."""
    if base is None:
        with tempfile.TemporaryDirectory(prefix="closeloop-bench-") as folder:
            yield f"sqlite:///{Path(folder) / f'{label}.db'}"
        return
    name = f"closeloop_bench_{label}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{base.rsplit('/', 1)[0]}/{name}"
    finally:
        if not keep:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _every_100k(done: int, code: str) -> None:
    if done % 100_000 == 0:
        log(f"  {code}: {done:,} closed tickets written")


def populate(app: App, total: int, overdue: int = OVERDUE) -> float:
    """`total` tickets: the `overdue` ones, 1% open and not yet due, the rest closed."""
    started = time.perf_counter()
    zone.init(app, SWEEP_AT - timedelta(days=400))
    open_later = total // 100
    closed = total - overdue - open_later
    share = closed // len(GRIDS)
    for i, code in enumerate(GRIDS):
        n = share if i < len(GRIDS) - 1 else closed - share * (len(GRIDS) - 1)
        add_closed(
            app,
            n,
            SWEEP_AT - timedelta(days=1),
            grid_code=code,
            prefix=f"C{i}",
            progress=functools.partial(_every_100k, code=code),
        )
    _add_open_later(app, open_later)
    # The same overdue tickets in both databases: due over the minute before the sweep.
    for i, code in enumerate(GRIDS):
        add_overdue(
            app,
            overdue // len(GRIDS),
            SWEEP_AT - timedelta(minutes=1),
            grid_code=code,
            prefix=f"O{i}",
            spread=timedelta(seconds=50),
        )
    # Statistics as a running database has them, and no bulk-load leftovers: SQLite would
    # otherwise read every page through the write-ahead log of the million-row load.
    if app.engine.dialect.name == "sqlite":
        with app.engine.begin() as conn:
            conn.execute(text("ANALYZE"))
        raw = app.engine.raw_connection()  # outside any transaction, as the pragma needs
        try:
            raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]
        finally:
            raw.close()
    else:
        with app.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    return time.perf_counter() - started


def _add_open_later(app: App, n: int) -> None:
    with app.engine.begin() as conn:
        home = get_grid(conn, GRIDS[0])
        led = nearest_led(lineage(conn, home))
        assert led is not None
        base = {
            "workflow": app.workflow.name,
            "category": "road",
            "description": "",
            "grid_id": home.id,
            "responsible_grid_id": led.id,
            "assignee_id": led.leader_id,
            "escalation_level": 0,
            "escalation_round": 0,
            "rework_count": 0,
            "extension_count": 0,
        }
        due = SWEEP_AT + timedelta(days=10)
        rows = (
            assigned_row(app, base, f"L-{i:08d}", due, SWEEP_AT + timedelta(hours=1 + i % 50))
            for i in range(n)
        )
        insert_rows(conn, rows)


def snapshot(app: App) -> list[dict[str, Any]]:
    with app.engine.connect() as conn:
        rows = conn.execute(
            select(tickets.c.id, tickets.c.due_at, tickets.c.next_check_at).where(
                tickets.c.next_check_at <= SWEEP_AT
            )
        ).all()
    return [{"b_id": r.id, "b_due": r.due_at, "b_next": r.next_check_at} for r in rows]


def put_back(app: App, overdue: list[dict[str, Any]]) -> None:
    """Undo a sweep of the overdue tickets, so it can be timed again."""
    from sqlalchemy import bindparam

    ids = [r["b_id"] for r in overdue]
    with app.engine.begin() as conn:
        conn.execute(delete(escalations).where(escalations.c.ticket_id.in_(ids)))
        conn.execute(delete(notifications).where(notifications.c.ticket_id.in_(ids)))
        conn.execute(
            update(tickets)
            .where(tickets.c.id == bindparam("b_id"))
            .values(
                due_at=bindparam("b_due"),
                next_check_at=bindparam("b_next"),
                next_escalation_at=None,
                escalation_level=0,
                escalation_round=0,
                supervising_grid_id=None,
                supervisor_id=None,
                version=1,
            ),
            overdue,
        )


def time_sweep(app: App, overdue: list[dict[str, Any]]) -> tuple[float, float, dict[str, Any]]:
    """One timed sweep of the overdue tickets, put back first if an earlier run swept them:
    (wall seconds, this process's CPU seconds, counts)."""
    if snapshot(app) != overdue:
        put_back(app, overdue)
    started, cpu = time.perf_counter(), time.process_time()
    out = escalation.sweep(app, SWEEP_AT)
    took, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert (out.tickets_checked, out.escalations) == (len(overdue), len(overdue)), out
    return took, cpu, out.as_dict()


def notices_of(app: App) -> int:
    with app.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(notifications)).scalar_one()


def time_empty(app: App, repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        out = escalation.sweep(app, SWEEP_AT + timedelta(seconds=1))
        times.append(time.perf_counter() - started)
        assert out.tickets_checked == 0
    return min(times), statistics.median(times)


def burst(base: str | None, n: int, repeat: int, keep: bool) -> dict[str, Any]:
    """`n` tickets fall overdue in the same minute (2% more open and not yet due): one sweep
    climbs a rung for each and writes its supervision row and notices."""
    with database(base, "burst", keep) as url:
        app = bootstrap(load_settings(CONFIG, url))
        try:
            log(f"burst: {n:,} tickets overdue at once ...")
            populate(app, n + n // 50 + 1, overdue=n)
            overdue = snapshot(app)
            assert len(overdue) == n // len(GRIDS) * len(GRIDS)
            times, cpus = [], []
            for _ in range(repeat):
                took, cpu, counts = time_sweep(app, overdue)
                times.append(took)
                cpus.append(cpu)
            notices = notices_of(app)
        finally:
            app.engine.dispose()
    best = min(times)
    rungs = counts["escalations"]
    print(
        f"sweep of {rungs:,} tickets overdue at once: {best * 1000:.0f} ms, {rungs:,} rungs and "
        f"{notices:,} notices (best of {repeat}; median {statistics.median(times) * 1000:.0f} ms; "
        f"CPU {statistics.median(cpus) * 1000:.0f} ms, median)",
        flush=True,
    )
    return {
        "burst_tickets": rungs,
        "burst_sweep_ms": round(best * 1000, 1),
        "burst_sweep_median_ms": round(statistics.median(times) * 1000, 1),
        "burst_notices": notices,
        "rungs_per_s": round(rungs / best),
        "rungs_per_s_median": round(rungs / statistics.median(times)),
        # CPU seconds of this process (SQLite runs in it): what a loaded machine disturbs least.
        "burst_cpu_median_ms": round(statistics.median(cpus) * 1000, 1),
        "rungs_per_cpu_s": round(rungs / statistics.median(cpus)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", help="PostgreSQL URL of an existing database (default: SQLite)")
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--burst", type=int, default=10_000, help="tickets overdue at once")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of each sweep")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL databases")
    args = parser.parse_args()
    base = args.db
    if base and base.startswith("postgresql://"):
        base = "postgresql+psycopg://" + base.removeprefix("postgresql://")
    figures: dict[str, Any] = {"backend": "postgresql" if base else "sqlite"}
    sizes = {"small": args.small, "large": args.large}
    figures.update(burst(base, args.burst, args.repeat, args.keep))
    with ExitStack() as stack:
        apps: dict[str, App] = {}
        overdue: dict[str, list[dict[str, Any]]] = {}
        for label, total in sizes.items():
            url = stack.enter_context(database(base, label, args.keep))
            apps[label] = app = bootstrap(load_settings(CONFIG, url))
            stack.callback(app.engine.dispose)
            log(f"{label}: building a database of {total:,} tickets ...")
            figures[f"{label}_tickets"] = total
            figures[f"{label}_setup_s"] = round(populate(app, total), 1)
            overdue[label] = snapshot(app)
            assert len(overdue[label]) == OVERDUE
            print(f"database of {total:,} tickets built in {figures[f'{label}_setup_s']} s")
        # Timed runs alternate between the databases, so a busy moment hits both alike.
        times: dict[str, list[float]] = {label: [] for label in sizes}
        for _ in range(args.repeat):
            for label in sizes:
                took, _, counts = time_sweep(apps[label], overdue[label])
                times[label].append(took)
                figures[f"{label}_sweep"] = counts
        for label, total in sizes.items():
            best = min(times[label])
            figures[f"{label}_sweep_ms"] = round(best * 1000, 1)
            figures[f"{label}_sweep_median_ms"] = round(statistics.median(times[label]) * 1000, 1)
            print(
                f"sweep of {OVERDUE:,} newly overdue in {total:,} tickets: {best * 1000:.0f} ms "
                f"(best of {args.repeat}; median {figures[f'{label}_sweep_median_ms']:.0f} ms)",
                flush=True,
            )
        best, median = time_empty(apps["large"], 5)
        figures["empty_sweep_ms"] = round(median * 1000, 2)
        figures["empty_sweep_best_ms"] = round(best * 1000, 2)
        print(
            f"sweep finding nothing in {sizes['large']:,} tickets: {median * 1000:.1f} ms "
            f"(median of 5; best {best * 1000:.1f} ms; target < 50 ms)",
            flush=True,
        )
    ratio = figures["large_sweep_ms"] / figures["small_sweep_ms"]
    figures["ratio"] = round(ratio, 2)
    figures["ratio_median"] = round(
        figures["large_sweep_median_ms"] / figures["small_sweep_median_ms"], 2
    )
    figures["ratio_ok"] = ratio <= 1.5
    figures["empty_ok"] = figures["empty_sweep_ms"] < 50
    print(f"ratio large/small: {ratio:.2f} (target <= 1.5)", flush=True)
    print(f"burst: {figures['rungs_per_s']:,} rungs/s (target >= 10,000 on SQLite)", flush=True)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
