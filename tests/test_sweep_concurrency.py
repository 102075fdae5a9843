"""Four processes sweep the same 5,000 overdue tickets on one PostgreSQL database at once:
each rung is written exactly once, each ticket is claimed by exactly one of them, and the result
is the same as one process sweeping a copy of the data alone."""

from __future__ import annotations

import multiprocessing
import os
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, select, text

from benchmarks.bulk import add_overdue
from closeloop import escalation, zone
from closeloop.app import App
from closeloop.bootstrap import bootstrap
from closeloop.config import load_settings
from closeloop.models import escalations, grids, notifications, people, tickets
from tests.conftest import CONFIG, NOW, PG_ADMIN_URL, _pg_available, skip_or_fail

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

WORKERS = 4
GRIDS = ("JS-A1-V01-G03", "JS-A1-V02-G01", "JS-A2-V08-G01", "JS-E01-S01-Q1", "JS-A3-V15-G01")
PER_GRID = 1_000  # 5 grids x 1,000 = 5,000 tickets
SWEEP_AT = NOW + timedelta(days=1)
BATCH = 50


def _database(name: str) -> str:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"


def _drop(name: str) -> None:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def two_databases() -> Iterator[tuple[App, App]]:
    """Two PostgreSQL databases with the same zone and the same 5,000 overdue tickets."""
    reason = _pg_available()
    if reason:
        skip_or_fail(reason)
    names = [f"closeloop_sweep_{os.getpid()}_{uuid.uuid4().hex[:6]}_{i}" for i in (4, 1)]
    apps = []
    try:
        for name in names:
            app = bootstrap(load_settings(CONFIG, _database(name)))
            zone.init(app, NOW)
            for i, code in enumerate(GRIDS):
                # deadlines spread over the two days before the sweep: 1 to 12 rungs each
                add_overdue(
                    app,
                    PER_GRID,
                    SWEEP_AT - timedelta(days=2, minutes=10 + i),
                    grid_code=code,
                    prefix=f"G{i}",
                    spread=timedelta(days=2),
                )
            apps.append(app)
        yield apps[0], apps[1]
    finally:
        for app in apps:
            app.engine.dispose()
        for name in names:
            _drop(name)


def _worker(url: str, barrier: Any, results: Any) -> None:
    app = bootstrap(load_settings(CONFIG, url))
    try:
        barrier.wait(timeout=60)
        results.put(escalation.sweep(app, SWEEP_AT, batch=BATCH).as_dict())
    except Exception as exc:  # reported to the test, which fails on it
        results.put({"error": repr(exc)})
    finally:
        app.engine.dispose()


def _outcome(app: App) -> dict[str, Any]:
    """Everything the sweep wrote, with database ids replaced by what they name."""
    g, p = grids.alias("g"), people.alias("p")
    with app.engine.connect() as conn:
        rungs = conn.execute(
            select(
                tickets.c.ref,
                escalations.c.stage_no,
                escalations.c.level,
                escalations.c.round,
                g.c.code,
                p.c.handle,
                escalations.c.deadline,
                escalations.c.at,
                escalations.c.id,
            ).select_from(
                escalations.join(tickets, tickets.c.id == escalations.c.ticket_id)
                .join(g, g.c.id == escalations.c.grid_id)
                .join(p, p.c.id == escalations.c.supervisor_id)
            )
        ).all()
        by_id = {r.id: tuple(r)[:4] for r in rungs}
        states = conn.execute(
            select(
                tickets.c.ref,
                tickets.c.due_at,
                tickets.c.next_check_at,
                tickets.c.escalation_level,
                tickets.c.escalation_round,
                g.c.code,
                p.c.handle,
            ).select_from(
                tickets.outerjoin(g, g.c.id == tickets.c.supervising_grid_id).outerjoin(
                    p, p.c.id == tickets.c.supervisor_id
                )
            )
        ).all()
        sent = conn.execute(
            select(
                notifications.c.idempotency_key,
                notifications.c.kind,
                p.c.handle,
                notifications.c.payload,
            ).select_from(notifications.join(p, p.c.id == notifications.c.recipient_id))
        ).all()

    def payload(data: dict[str, Any]) -> tuple[Any, ...]:
        named = {k: v for k, v in data.items() if k != "escalation_id"}
        # A daily summary is one row per supervisor and day, whichever of their tickets the
        # sweeps reached first; what it lists is read at delivery. So which rung it was first
        # written for depends on how the processes were scheduled: compare it by its key alone.
        if "escalation_id" in data and not data.get("summary"):
            named["escalation"] = by_id[data["escalation_id"]]
        return tuple(sorted((k, str(v)) for k, v in named.items()))

    return {
        "rungs": sorted(tuple(r)[:8] for r in rungs),
        "tickets": sorted(tuple(s) for s in states),
        "notices": sorted((key, kind, who, payload(data)) for key, kind, who, data in sent),
    }


def test_four_processes_write_each_rung_once_and_as_one_process(
    two_databases: tuple[App, App],
) -> None:
    shared, alone = two_databases
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(WORKERS)
    results = ctx.Queue()
    url = shared.engine.url.render_as_string(hide_password=False)
    procs = [ctx.Process(target=_worker, args=(url, barrier, results)) for _ in range(WORKERS)]
    for proc in procs:
        proc.start()
    outcomes = [results.get(timeout=300) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    assert not [o for o in outcomes if "error" in o], outcomes
    single = escalation.sweep(alone, SWEEP_AT, batch=BATCH).as_dict()

    total = len(GRIDS) * PER_GRID
    # Each ticket was claimed by exactly one process (SKIP LOCKED), and more than one worked.
    assert sum(o["tickets_checked"] for o in outcomes) == total == single["tickets_checked"]
    assert sum(1 for o in outcomes if o["tickets_checked"]) > 1, outcomes
    assert sum(o["escalations"] for o in outcomes) == single["escalations"]
    with shared.engine.connect() as conn:
        dupes = conn.execute(
            text(
                "SELECT count(*) FROM (SELECT ticket_id, stage_no, level, round FROM escalations "
                "GROUP BY 1, 2, 3, 4 HAVING count(*) > 1) d"
            )
        ).scalar_one()
    assert dupes == 0
    four, one = _outcome(shared), _outcome(alone)
    assert len(four["rungs"]) == single["escalations"] > total
    assert four["rungs"] == one["rungs"]
    assert four["tickets"] == one["tickets"]
    assert four["notices"] == one["notices"]
