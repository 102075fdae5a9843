"""Fast set-up of many tickets for the sweep benchmark and the large sweep tests.

Rows are written with Core `executemany` in chunks, shaped as `service.submit` and the steps
would leave them (an assigned ticket in its fix stage, or a closed one), without going through
one transaction per ticket.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert

from closeloop.app import App
from closeloop.grid import get_grid, lineage, nearest_led
from closeloop.models import tickets

CHUNK = 10_000


def _base(app: App, conn: Connection, grid_code: str, category: str) -> dict[str, Any]:
    home = get_grid(conn, grid_code)
    led = nearest_led(lineage(conn, home))
    assert led is not None, f"no leader above {grid_code}"
    app.workflow.category(category)  # fails on an unknown category
    return {
        "workflow": app.workflow.name,
        "category": category,
        "description": "",
        "grid_id": home.id,
        "responsible_grid_id": led.id,
        "assignee_id": led.leader_id,
        "escalation_level": 0,
        "escalation_round": 0,
        "rework_count": 0,
        "extension_count": 0,
    }


def assigned_row(
    app: App, base: dict[str, Any], ref: str, due_at: datetime, next_check_at: datetime
) -> dict[str, Any]:
    """An assigned ticket whose fix stage is due at `due_at` (its start is one limit earlier)."""
    limit = app.deadlines.limit(base["category"], "fix")
    started = due_at - app.calendar.duration(limit)
    return {
        **base,
        "ref": ref,
        "title": f"bulk {ref}",
        "state": "assigned",
        "stage": "fix",
        "stage_no": 1,
        "stage_started_at": started,
        "due_at": due_at,
        "next_check_at": next_check_at,
        "created_at": started,
        "updated_at": started,
        "closed_at": None,
        "version": 1,
    }


def closed_row(app: App, base: dict[str, Any], ref: str, closed_at: datetime) -> dict[str, Any]:
    created = closed_at - timedelta(hours=20)
    return {
        **base,
        "ref": ref,
        "title": f"bulk {ref}",
        "state": "closed",
        "stage": None,
        "stage_no": 3,
        "stage_started_at": None,
        "due_at": None,
        "next_check_at": None,
        "created_at": created,
        "updated_at": closed_at,
        "closed_at": closed_at,
        "version": 4,
    }


def insert_rows(
    conn: Connection,
    rows: Iterator[dict[str, Any]],
    *,
    chunk: int = CHUNK,
    progress: Callable[[int], None] | None = None,
) -> int:
    written = 0
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= chunk:
            conn.execute(insert(tickets), batch)
            written += len(batch)
            batch = []
            if progress is not None:
                progress(written)
    if batch:
        conn.execute(insert(tickets), batch)
        written += len(batch)
        if progress is not None:
            progress(written)
    return written


def add_overdue(
    app: App,
    n: int,
    due_at: datetime,
    *,
    grid_code: str = "JS-A1-V01-G03",
    category: str = "random_parking",
    prefix: str = "BULK",
    spread: timedelta = timedelta(0),
    progress: Callable[[int], None] | None = None,
) -> int:
    """Add `n` assigned tickets (refs PREFIX-00000001 ...; a new prefix per call) whose fix
    deadline is `due_at` (plus i * spread / n), checked next at their deadline (their reminders
    are behind them)."""
    with app.engine.begin() as conn:
        base = _base(app, conn, grid_code, category)

        def rows() -> Iterator[dict[str, Any]]:
            for i in range(n):
                due = due_at + spread * i / max(n, 1)
                yield assigned_row(app, base, f"{prefix}-{i + 1:08d}", due, due)

        return insert_rows(conn, rows(), progress=progress)


def add_closed(
    app: App,
    n: int,
    closed_before: datetime,
    *,
    grid_code: str = "JS-A1-V01-G03",
    category: str = "random_parking",
    prefix: str = "DONE",
    progress: Callable[[int], None] | None = None,
) -> int:
    """Add `n` closed tickets, closed over the year before `closed_before`."""
    with app.engine.begin() as conn:
        base = _base(app, conn, grid_code, category)
        year = timedelta(days=365)

        def rows() -> Iterator[dict[str, Any]]:
            for i in range(n):
                yield closed_row(app, base, f"{prefix}-{i + 1:08d}", closed_before - year * i / n)

        return insert_rows(conn, rows(), progress=progress)
