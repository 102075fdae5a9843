"""N problems filed through `service.submit`, one transaction each, against a baseline.

The baseline writes the same rows in the same transactions (the reference counter, the ticket,
its first stage, its submit event, its notices) with statements built once, as an application
that knew every answer beforehand would: no grid lookup, no recurrence check, no rules. Both run
in this process on fresh databases of the same kind, taking turns chunk by chunk (1,000 submits
each), so a change of load on a shared machine touches both alike. The engine's rate is also
given per chunk, so a query that gets slower as the table grows shows as a falling rate.

    .venv/bin/python benchmarks/submit.py [-n 6000] [--db postgresql://postgres@127.0.0.1:5432/test]
    .venv/bin/python benchmarks/submit.py --profile 1000    # cProfile of 1,000 engine submits

Targets on SQLite: at least 1,500 submits/s, the last chunk within 15% of the first, the ratio
to the baseline at least 0.5. The last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# This folder holds http.py, which would shadow the standard library's http module for
# everything imported after (httpx, starlette): the repository takes the folder's place.
sys.path.remove(str(Path(__file__).resolve().parent))
sys.path.insert(0, str(REPO))

from alembic import command  # noqa: E402
from sqlalchemy import bindparam, create_engine, insert, select, text  # noqa: E402
from sqlalchemy.dialects.postgresql import insert as pg_insert  # noqa: E402
from sqlalchemy.dialects.sqlite import insert as sqlite_insert  # noqa: E402

from closeloop import service, zone  # noqa: E402
from closeloop.app import App  # noqa: E402
from closeloop.bootstrap import bootstrap  # noqa: E402
from closeloop.config import load_settings  # noqa: E402
from closeloop.grid import get_grid, lineage, nearest_led  # noqa: E402
from closeloop.models import (  # noqa: E402
    metadata,
    notifications,
    people,
    ref_counters,
    stages,
    ticket_events,
    tickets,
)
from closeloop.schema import alembic_config  # noqa: E402

CONFIG = REPO / "config.toml"
# A Wednesday 10:00 in Shanghai: working time, so notices are not held for quiet hours.
START = datetime(2026, 4, 1, 2, 0, tzinfo=UTC)
CHUNK = 1_000
CATEGORY = "random_piling"  # natural time: 24 h to fix
# Micro grids of several villages and an enterprise, each with its own leader.
GRIDS = (
    "JS-A1-V01-G01",
    "JS-A1-V01-G02",
    "JS-A1-V02-G01",
    "JS-A2-V08-G01",
    "JS-E01-S01-Q1",
)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextmanager
def fresh_app(base: str | None, label: str, folder: Path) -> Iterator[App]:
    """The example zone in a new empty database: an SQLite file, or a PostgreSQL database
    beside `base` (dropped afterwards)."""
    admin = None
    if base is None:
        url = f"sqlite:///{folder / f'{label}.db'}"
    else:
        name = f"closeloop_bench_{label}_{uuid.uuid4().hex[:6]}"
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = f"{base.rsplit('/', 1)[0]}/{name}"
    app = bootstrap(load_settings(CONFIG, url))
    try:
        metadata.create_all(app.engine)
        with app.engine.begin() as conn:
            command.stamp(alembic_config(conn), "head")
        zone.init(app, START)
        yield app
    finally:
        app.engine.dispose()
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


def problem(i: int) -> service.NewProblem:
    return service.NewProblem(
        grid=GRIDS[i % len(GRIDS)],
        category=CATEGORY,
        title=f"堆放 {i}",
        description="路边堆放建筑垃圾",
        reporter="张三",
    )


def engine_submit(app: App) -> Callable[[int], None]:
    """Submit problem i through the engine."""

    def submit(i: int) -> None:
        service.submit(app, problem(i), START + timedelta(seconds=i))

    return submit


def baseline_submit(app: App) -> Callable[[int], None]:
    """The same rows as the engine's submit of problem i, in the same transaction, written blind
    with statements built once."""
    eng = app.engine
    dialect_insert = pg_insert if eng.dialect.name == "postgresql" else sqlite_insert
    counter = (
        dialect_insert(ref_counters)
        .values(prefix=bindparam("prefix"), last=1)
        .on_conflict_do_update(index_elements=["prefix"], set_={"last": ref_counters.c.last + 1})
        .returning(ref_counters.c.last)
    )
    ticket = insert(tickets).returning(tickets.c.id)
    stage = insert(stages)
    event = insert(ticket_events).returning(ticket_events.c.id)
    notice = insert(notifications)
    # What the engine looks up, known beforehand: each grid's leader and their channels.
    leaders = {}
    with eng.connect() as conn:
        for code in GRIDS:
            home = get_grid(conn, code)
            led = nearest_led(lineage(conn, home))
            assert led is not None and led.leader_id is not None
            person = conn.execute(
                select(people.c.channels, people.c.locale).where(people.c.id == led.leader_id)
            ).one()
            channels = [c.strip() for c in person.channels.split(",") if c.strip()] or ["file"]
            leaders[code] = (home.id, led.id, led.code, led.leader_id, person.locale, channels)

    def submit(i: int) -> None:
        p = problem(i)
        grid_id, led_id, led_code, leader, locale, channels = leaders[p.grid]
        now = START + timedelta(seconds=i)
        due = now + timedelta(hours=24)
        with eng.begin() as conn:
            number = conn.execute(counter, {"prefix": "EP-2026"}).scalar_one()
            ref = f"EP-2026-{number:06d}"
            tid = conn.execute(
                ticket,
                {
                    "ref": ref,
                    "workflow": "environmental",
                    "category": p.category,
                    "title": p.title,
                    "description": p.description,
                    "grid_id": grid_id,
                    "responsible_grid_id": led_id,
                    "assignee_id": leader,
                    "state": "assigned",
                    "stage": "fix",
                    "stage_no": 1,
                    "stage_started_at": now,
                    "due_at": due,
                    "next_escalation_at": due,
                    "next_check_at": now + timedelta(hours=12),
                    "escalation_level": 0,
                    "escalation_round": 0,
                    "rework_count": 0,
                    "extension_count": 0,
                    "reporter_name": p.reporter,
                    "created_at": now,
                    "updated_at": now,
                    "version": 1,
                    "source": "public",
                },
            ).scalar_one()
            conn.execute(
                stage,
                {
                    "ticket_id": tid,
                    "stage_no": 1,
                    "stage": "fix",
                    "started_at": now,
                    "started_by": "submit",
                    "due_at": due,
                    "grid_id": led_id,
                    "owner_id": leader,
                },
            )
            eid = conn.execute(
                event,
                {
                    "ticket_id": tid,
                    "at": now,
                    "recorded_at": now,
                    "step": "submit",
                    "actor_label": p.reporter,
                    "from_state": "reported",
                    "to_state": "assigned",
                    "note": p.description,
                    "data": {"assigned_grid": led_code},
                },
            ).scalar_one()
            conn.execute(
                notice,
                [
                    {
                        "ticket_id": tid,
                        "recipient_id": leader,
                        "channel": channel,
                        "kind": "assignment",
                        "locale": locale,
                        "payload": {"event_id": eid, "assigned_grid": led_code},
                        "idempotency_key": f"assignment:{ref}:{eid}:{leader}:{channel}",
                        "status": "pending",
                        "attempts": 0,
                        "next_attempt_at": now,
                        "not_before": now,
                        "created_at": now,
                    }
                    for channel in channels
                ],
            )

    return submit


def run(
    base: Callable[[int], None], engine: Callable[[int], None], n: int
) -> tuple[float, list[float]]:
    """Seconds of the baseline in all, and of the engine per chunk of CHUNK submits."""
    base_s, chunks = 0.0, []
    for first in range(0, n, CHUNK):
        last = min(n, first + CHUNK)
        began = time.perf_counter()
        for i in range(first, last):
            base(i)
        ended = time.perf_counter()
        base_s += ended - began
        for i in range(first, last):
            engine(i)
        chunks.append(time.perf_counter() - ended)
        log(
            f"  {last}/{n}: baseline {(last - first) / (ended - began):7.1f}/s, "
            f"engine {(last - first) / chunks[-1]:7.1f}/s"
        )
    return base_s, chunks


def same_rows(engine_app: App, base_app: App) -> None:
    """Both runs wrote the same number of rows to each table (the baseline is a fair one)."""
    for table in (tickets, stages, ticket_events, notifications):
        counts = []
        for app in (engine_app, base_app):
            with app.engine.connect() as conn:
                counts.append(conn.execute(select(text("count(*)")).select_from(table)).scalar())
        if counts[0] != counts[1]:
            raise SystemExit(f"{table.name}: engine wrote {counts[0]} rows, baseline {counts[1]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=6_000, help="submits (default 6000)")
    parser.add_argument("--db", help="a PostgreSQL URL (databases are made beside it)")
    parser.add_argument("--profile", type=int, metavar="N", help="profile N engine submits")
    args = parser.parse_args()
    backend = "postgresql" if args.db else "sqlite"
    with tempfile.TemporaryDirectory(prefix="closeloop-bench-") as tmp:
        folder = Path(tmp)
        if args.profile:
            with fresh_app(args.db, "profile", folder) as app:
                submit = engine_submit(app)
                profiler = cProfile.Profile()
                profiler.enable()
                for i in range(args.profile):
                    submit(i)
                profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
            return
        with (
            fresh_app(args.db, "baseline", folder) as base_app,
            fresh_app(args.db, "engine", folder) as engine_app,
        ):
            log(f"submits: {args.n} on {backend}")
            base_s, chunks = run(baseline_submit(base_app), engine_submit(engine_app), args.n)
            same_rows(engine_app, base_app)
    engine_s = sum(chunks)
    base_rate, engine_rate = args.n / base_s, args.n / engine_s
    full = [c for c in chunks if c > 0][: max(1, args.n // CHUNK)]
    flat = full[0] / full[-1]  # rate of the last chunk over the rate of the first
    print(f"baseline (Core, same rows, same transactions): {base_rate:8.1f} submits/s")
    print(f"engine   (service.submit):                      {engine_rate:8.1f} submits/s")
    print(f"chunks of {CHUNK}: " + ", ".join(f"{CHUNK / c:.0f}/s" for c in full))
    print(f"ratio engine/baseline {engine_rate / base_rate:.2f} (target >= 0.5); ", end="")
    print(f"last/first chunk {flat:.2f} (target >= 0.85)")
    print(
        json.dumps(
            {
                "benchmark": "submit",
                "backend": backend,
                "n": args.n,
                "submits_per_s": round(engine_rate, 1),
                "baseline_per_s": round(base_rate, 1),
                "ratio": round(engine_rate / base_rate, 3),
                "chunks_per_s": [round(CHUNK / c, 1) for c in full],
                "flat": round(flat, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
