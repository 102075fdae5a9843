"""What tests make and count, in one place: instants in the zone's time, a ticket stepped at an
instant, rows counted.

Time has one unit here: an instant (an aware datetime). A step is run *at* an instant; there
are no offsets in hours in one module and minutes in another. `now` is the test clock; a step
given both `when` and `now` is recorded at `now` and dated `when` (back-filled).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from closeloop import service
from closeloop.app import App
from closeloop.tickets import StepInput

ZONE = ZoneInfo("Asia/Shanghai")
# A Wednesday, a working day, at 09:00 in the zone: tests pass it (or a time after it) as `now`.
NOW = datetime(2026, 4, 1, 1, 0, tzinfo=UTC)


def cn(day: int, hour: int, minute: int = 0, month: int = 4) -> datetime:
    """An instant of 2026 in the zone's time: cn(2, 9) is 2 April, 09:00 in Shanghai."""
    return datetime(2026, month, day, hour, minute, tzinfo=ZONE)


def hours(h: float) -> timedelta:
    return timedelta(hours=h)


def minutes(m: float) -> timedelta:
    return timedelta(minutes=m)


def count(app: App, table: Any, *where: Any) -> int:
    """Rows of `table` (those matching `where`, if given)."""
    with app.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def step(
    app: App,
    ref: str,
    name: str,
    by: str,
    when: datetime,
    *,
    now: datetime | None = None,
    **given: Any,
) -> None:
    """Run step `name` of ticket `ref` as `by` at `when` (recorded at `now`, if given)."""
    if now is None:
        service.run_step(app, ref, name, by, StepInput(**given), when)
    else:
        service.run_step(app, ref, name, by, StepInput(**given), now, at=when)
