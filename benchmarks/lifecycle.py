"""N tickets through submit → fix → verify → close via the engine, against a baseline.

The baseline writes the same rows (ticket insert and updates, events, outbox rows, the ref
counter) with SQLAlchemy Core in the same transactions, with no reads and no rules. Both run in
this process on fresh databases of the same kind, so the ratio says what the engine's rules,
reads and state machine cost. Live objects are counted after each quarter of the engine run:
with one shared state machine they must not grow with N.

    python benchmarks/lifecycle.py [-n 20000] [--db sqlite|postgresql+psycopg://...]

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, insert, text, update

# This folder holds http.py, which would shadow the standard library's http module for
# everything imported after (httpx, starlette): the repository takes the folder's place.
sys.path.remove(str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from closeloop import service, zone
from closeloop.app import App
from closeloop.bootstrap import bootstrap
from closeloop.config import load_settings
from closeloop.db import upsert_increment
from closeloop.models import (
    metadata,
    notifications,
    ref_counters,
    ticket_events,
    tickets,
)
from closeloop.tickets import StepInput

CONFIG = Path(__file__).resolve().parents[1] / "config.toml"
START = datetime(2026, 4, 1, 1, 0, tzinfo=UTC)
# Micro grids of one village and its leaders: the fixer leads the micro grid, the village
# leader verifies and closes.
GRIDS = [(f"JS-A1-V01-G0{i}", f"yantou.g{i}") for i in range(1, 5)]


def fresh_app(db: str, tag: str, workdir: Path) -> App:
    if db == "sqlite":
        url = f"sqlite:///{workdir / f'{tag}.db'}"
    else:
        name = f"closeloop_bench_{tag}"
        admin = create_engine(db, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        url = db.rsplit("/", 1)[0] + f"/{name}"
    app = bootstrap(load_settings(CONFIG, url))
    metadata.create_all(app.engine)
    from alembic import command

    from closeloop.schema import alembic_config

    with app.engine.begin() as conn:
        command.stamp(alembic_config(conn), "head")
    zone.init(app, START)
    return app


def run_engine(app: App, n: int, progress: bool) -> tuple[float, list[int]]:
    memory: list[int] = []
    began = time.perf_counter()
    for i in range(n):
        grid, fixer = GRIDS[i % len(GRIDS)]
        now = START + timedelta(seconds=i)
        ref = service.submit(
            app, service.NewProblem(grid=grid, category="random_piling", title=f"堆放 {i}"), now
        )
        service.run_step(app, ref, "fix", fixer, StepInput(note="已清理"), now)
        service.run_step(app, ref, "verify", "yantou.lead", StepInput(), now)
        service.run_step(app, ref, "close", "yantou.lead", StepInput(), now)
        if (i + 1) % max(1, n // 4) == 0:
            # Live objects, counted without tracing every allocation (which would skew the time).
            gc.collect()
            memory.append(len(gc.get_objects()))
            if progress:
                print(f"  engine {i + 1}/{n}", file=sys.stderr)
    return time.perf_counter() - began, memory


def _event(conn, now, tid, step, frm, to, actor):  # type: ignore[no-untyped-def]
    return conn.execute(
        insert(ticket_events)
        .values(
            ticket_id=tid,
            at=now,
            recorded_at=now,
            step=step,
            actor_id=actor,
            from_state=frm,
            to_state=to,
        )
        .returning(ticket_events.c.id)
    ).scalar_one()


def _notice(conn, now, tid, kind, person, key):  # type: ignore[no-untyped-def]
    conn.execute(
        insert(notifications).values(
            ticket_id=tid,
            recipient_id=person,
            channel="file",
            kind=kind,
            locale="zh_CN",
            payload={},
            idempotency_key=key,
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )


def run_baseline(app: App, n: int, progress: bool) -> float:
    """The same rows in the same transactions, written blind."""
    eng = app.engine
    with eng.connect() as conn:
        grid_ids = dict(conn.execute(text("select code, id from grids")).all())
        person_ids = dict(conn.execute(text("select handle, id from people")).all())
    lead = person_ids["yantou.lead"]
    began = time.perf_counter()
    for i in range(n):
        grid, fixer = GRIDS[i % len(GRIDS)]
        gid, fid = grid_ids[grid], person_ids[fixer]
        now = START + timedelta(seconds=i)
        due = now + timedelta(hours=24)

        with eng.begin() as conn:
            n_ref = upsert_increment(conn, ref_counters, "prefix", "EP-2026", "last")
            tid = conn.execute(
                insert(tickets)
                .values(
                    ref=f"EP-2026-{n_ref:06d}",
                    workflow="environmental",
                    category="random_piling",
                    title=f"堆放 {i}",
                    description="",
                    grid_id=gid,
                    responsible_grid_id=gid,
                    assignee_id=fid,
                    state="assigned",
                    stage="fix",
                    stage_no=1,
                    stage_started_at=now,
                    due_at=due,
                    next_check_at=now + timedelta(hours=12),
                    created_at=now,
                    updated_at=now,
                    version=1,
                )
                .returning(tickets.c.id)
            ).scalar_one()
            eid = _event(conn, now, tid, "submit", "reported", "assigned", None)
            _notice(conn, now, tid, "assignment", fid, f"a:{tid}:{eid}")
        for step, frm, to, actor, stage, stage_no in (
            ("fix", "assigned", "fixed", fid, "verify", 2),
            ("verify", "fixed", "verified", lead, "close", 3),
            ("close", "verified", "closed", lead, None, 3),
        ):
            with eng.begin() as conn:
                conn.execute(
                    update(tickets)
                    .where(tickets.c.id == tid)
                    .values(
                        state=to,
                        stage=stage,
                        stage_no=stage_no,
                        due_at=due,
                        next_check_at=due,
                        updated_at=now,
                        version=tickets.c.version + 1,
                    )
                )
                eid = _event(conn, now, tid, step, frm, to, actor)
                if step == "fix":
                    _notice(conn, now, tid, "verification_request", lead, f"v:{tid}:{eid}")
        if progress and (i + 1) % max(1, n // 4) == 0:
            print(f"  baseline {i + 1}/{n}", file=sys.stderr)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=20_000, help="tickets (default 20000)")
    parser.add_argument("--db", default="sqlite", help="sqlite, or a PostgreSQL admin URL")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        base_app = fresh_app(args.db, "baseline", work)
        engine_app = fresh_app(args.db, "engine", work)
        print(f"lifecycles: {args.n} on {base_app.engine.dialect.name}", file=sys.stderr)
        base_s = run_baseline(base_app, args.n, not args.quiet)
        engine_s, memory = run_engine(engine_app, args.n, not args.quiet)
        models_left = len(engine_app.workflow.machine.models)
        base_app.engine.dispose()
        engine_app.engine.dispose()
    base_rate, engine_rate = args.n / base_s, args.n / engine_s
    growth = memory[-1] / memory[0] if memory and memory[0] else None
    print(f"baseline (Core, same rows, same transactions): {base_rate:9.1f} lifecycles/s")
    print(f"engine   (rules, state machine, reads):        {engine_rate:9.1f} lifecycles/s")
    print(f"ratio engine/baseline: {engine_rate / base_rate:.2f} (target >= 0.3)")
    print(f"live objects after each quarter: {memory}; models bound to the machine: {models_left}")
    print(
        json.dumps(
            {
                "benchmark": "lifecycle",
                "backend": args.db.split(":")[0],
                "n": args.n,
                "baseline_per_s": round(base_rate, 1),
                "engine_per_s": round(engine_rate, 1),
                "ratio": round(engine_rate / base_rate, 3),
                "live_objects_by_quarter": memory,
                "memory_growth_last_vs_first_quarter": round(growth, 3) if growth else None,
                "machine_models": models_left,
            }
        )
    )


if __name__ == "__main__":
    main()
