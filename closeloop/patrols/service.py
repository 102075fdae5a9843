"""Use cases of patrols, one transaction each.

A patrol belongs to the person who walks it; it holds a check-in per grid (time, optional
coordinates) and the tickets it found: problems reported during the patrol are filed through
`closeloop.service.submit` with the patrol as their link (source "patrol"); tickets already
filed that the patrol saw again are linked with `closeloop.service.link_ticket`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select

from closeloop import service
from closeloop.app import App
from closeloop.db import read_only
from closeloop.errors import CodedError
from closeloop.grid import UnknownGrid, get_grid, led_or_member
from closeloop.models import grids, patrol_visits, patrols, people, ticket_links, tickets
from closeloop.patrols.rules import (
    Coverage,
    GridPlace,
    Visit,
    coordinate_problems,
    coverage,
)
from closeloop.periods import month_bounds
from closeloop.tickets import Invalid, NotFound, NotPermitted

NOTE_MAX = 2000


@dataclass(frozen=True)
class CheckIn:
    grid: str
    lat: float | None = None
    lon: float | None = None


def _iso(app: App, value: datetime | None) -> str | None:
    return value.astimezone(app.tz).isoformat(timespec="seconds") if value else None


def _person(conn: Connection, handle: str) -> int:
    pid = conn.execute(select(people.c.id).where(people.c.handle == handle)).scalar()
    if pid is None:
        raise Invalid("patrol.unknown_person", handle=handle)
    return int(pid)


def _check_when(at: datetime, now: datetime) -> list[CodedError]:
    if at.tzinfo is None:
        return [Invalid("patrol.at_naive")]
    if at > now + service.FUTURE_TOLERANCE:
        return [Invalid("patrol.at_future", at=at.isoformat())]
    return []


def add_patrol(
    app: App,
    *,
    by: str,
    at: datetime,
    checkins: Sequence[CheckIn],
    now: datetime,
    note: str | None = None,
    found: Sequence[str] = (),
) -> dict[str, Any]:
    """Record a patrol that happened: who, when, the grids checked in at, the tickets it found.
    Every problem of the input is named at once and nothing is written on error."""
    problems = _check_when(at, now)
    if note is not None and len(note) > NOTE_MAX:
        problems.append(Invalid("patrol.note_long", n=NOTE_MAX))
    if not checkins:
        problems.append(Invalid("patrol.no_grid"))
    codes = [c.grid for c in checkins]
    twice = sorted({c for c in codes if codes.count(c) > 1})
    if twice:
        problems.append(Invalid("patrol.grid_twice", grids=", ".join(twice)))
    for c in checkins:
        problems += [
            Invalid("patrol.at_grid", grid=c.grid, problem=p)
            for p in coordinate_problems(c.lat, c.lon)
        ]
    with app.engine.begin() as conn:
        person_id = None
        try:
            person_id = _person(conn, by)
        except Invalid as exc:
            problems.append(exc)
        found_grids = []
        for c in checkins:
            try:
                found_grids.append((get_grid(conn, c.grid), c))
            except UnknownGrid:
                problems.append(Invalid("patrol.unknown_grid", code=c.grid))
        refs = list(dict.fromkeys(found))
        for ref in refs:
            if conn.execute(select(tickets.c.id).where(tickets.c.ref == ref)).first() is None:
                problems.append(Invalid("patrol.no_ticket", ref=ref))
        if problems:
            raise Invalid("patrol.problems", problems=problems)
        assert person_id is not None
        patrol_id = _insert_patrol(conn, person_id, at, note, now)
        for g, c in found_grids:
            conn.execute(
                insert(patrol_visits).values(
                    patrol_id=patrol_id, grid_id=g.id, at=at, lat=c.lat, lon=c.lon
                )
            )
        for ref in refs:
            service.link_ticket(conn, ref, "patrol", patrol_id, now)
        return _describe(conn, app, patrol_id)


def _insert_patrol(
    conn: Connection, person_id: int, at: datetime, note: str | None, now: datetime
) -> int:
    return int(
        conn.execute(
            insert(patrols)
            .values(
                person_id=person_id,
                started_at=at,
                note=(note or "").strip() or None,
                created_at=now,
            )
            .returning(patrols.c.id)
        ).scalar_one()
    )


def start_patrol(app: App, *, by: str, now: datetime, note: str | None = None) -> dict[str, Any]:
    """Start a patrol now (the phone page's "start patrol")."""
    if note is not None and len(note) > NOTE_MAX:
        raise Invalid("patrol.note_long", n=NOTE_MAX)
    with app.engine.begin() as conn:
        patrol_id = _insert_patrol(conn, _person(conn, by), now, note, now)
        return _describe(conn, app, patrol_id)


def _own_patrol(conn: Connection, patrol_id: int, by: str) -> Any:
    row = conn.execute(
        select(patrols, people.c.handle)
        .select_from(patrols.join(people, people.c.id == patrols.c.person_id))
        .where(patrols.c.id == patrol_id)
    ).first()
    if row is None:
        raise NotFound("patrol.not_found", patrol_id=patrol_id)
    if row.handle != by:
        raise NotPermitted("patrol.not_yours", patrol_id=patrol_id, handle=row.handle)
    return row


def check_in(
    app: App, patrol_id: int, *, by: str, checkin: CheckIn, now: datetime
) -> dict[str, Any]:
    """Check in at a grid on one's own patrol, now, with optional coordinates."""
    problems: list[CodedError] = [*coordinate_problems(checkin.lat, checkin.lon)]
    with app.engine.begin() as conn:
        _own_patrol(conn, patrol_id, by)
        try:
            g = get_grid(conn, checkin.grid)
        except UnknownGrid:
            problems.append(Invalid("patrol.unknown_grid", code=checkin.grid))
        else:
            done = conn.execute(
                select(patrol_visits.c.id).where(
                    patrol_visits.c.patrol_id == patrol_id, patrol_visits.c.grid_id == g.id
                )
            ).first()
            if done is not None:
                problems.append(Invalid("patrol.checked_in", patrol_id=patrol_id, code=g.code))
        if problems:
            raise Invalid("patrol.problems", problems=problems)
        conn.execute(
            insert(patrol_visits).values(
                patrol_id=patrol_id, grid_id=g.id, at=now, lat=checkin.lat, lon=checkin.lon
            )
        )
        return _describe(conn, app, patrol_id)


def report_problem(
    app: App, patrol_id: int, *, by: str, problem: service.NewProblem, now: datetime
) -> str:
    """A problem found on one's own patrol: a ticket linked to it (source "patrol")."""
    with read_only(app.engine) as conn:
        row = _own_patrol(conn, patrol_id, by)
        name = conn.execute(select(people.c.name).where(people.c.id == row.person_id)).scalar()
    linked = replace(
        problem, source="patrol", link=("patrol", patrol_id), reporter=problem.reporter or name
    )
    return service.submit(app, linked, now)


def _describe(conn: Connection, app: App, patrol_id: int) -> dict[str, Any]:
    row = conn.execute(
        select(patrols, people.c.handle, people.c.name)
        .select_from(patrols.join(people, people.c.id == patrols.c.person_id))
        .where(patrols.c.id == patrol_id)
    ).first()
    if row is None:
        raise NotFound("patrol.not_found", patrol_id=patrol_id)
    visits = conn.execute(
        select(
            grids.c.code,
            grids.c.name,
            grids.c.level,
            patrol_visits.c.at,
            patrol_visits.c.lat,
            patrol_visits.c.lon,
        )
        .select_from(patrol_visits.join(grids, grids.c.id == patrol_visits.c.grid_id))
        .where(patrol_visits.c.patrol_id == patrol_id)
        .order_by(patrol_visits.c.at, patrol_visits.c.id)
    )
    found = conn.execute(
        select(tickets.c.ref, tickets.c.title, tickets.c.state, tickets.c.source)
        .select_from(ticket_links.join(tickets, tickets.c.id == ticket_links.c.ticket_id))
        .where(ticket_links.c.kind == "patrol", ticket_links.c.target_id == patrol_id)
        .order_by(tickets.c.id)
    )
    return {
        "id": row.id,
        "by": row.handle,
        "by_name": row.name,
        "started_at": _iso(app, row.started_at),
        "note": row.note,
        "visits": [
            {
                "grid": v.code,
                "name": v.name,
                "level": v.level,
                "at": _iso(app, v.at),
                "lat": v.lat,
                "lon": v.lon,
            }
            for v in visits
        ],
        "found": [
            {
                "ref": f.ref,
                "title": f.title,
                "state": f.state,
                "filed_on_patrol": f.source == "patrol",
            }
            for f in found
        ],
    }


def show_patrol(app: App, patrol_id: int) -> dict[str, Any]:
    with read_only(app.engine) as conn:
        return _describe(conn, app, patrol_id)


def list_patrols(
    app: App, *, month: str | None = None, by: str | None = None
) -> list[dict[str, Any]]:
    with read_only(app.engine) as conn:
        q = select(patrols.c.id).select_from(
            patrols.join(people, people.c.id == patrols.c.person_id)
        )
        if month is not None:
            start, end = month_bounds(month, app.tz)
            q = q.where(patrols.c.started_at >= start, patrols.c.started_at < end)
        if by is not None:
            q = q.where(people.c.handle == by)
        ids = list(conn.execute(q.order_by(patrols.c.started_at, patrols.c.id)).scalars())
        return [_describe(conn, app, i) for i in ids]


def _patroller_levels(conn: Connection, person_ids: set[int]) -> dict[int, int]:
    """The highest level (smallest number) of a grid each person leads or is a member of."""
    if not person_ids:
        return {}
    rows = conn.execute(
        select(people.c.id, func.min(grids.c.level))
        .select_from(people.join(grids, led_or_member(people.c.id)))
        .where(people.c.id.in_(sorted(person_ids)))
        .group_by(people.c.id)
    )
    return {int(pid): int(level) for pid, level in rows}


def visits_between(conn: Connection, start: datetime, end: datetime) -> list[Visit]:
    rows = conn.execute(
        select(grids.c.path, patrol_visits.c.at, patrols.c.person_id)
        .select_from(
            patrol_visits.join(patrols, patrols.c.id == patrol_visits.c.patrol_id).join(
                grids, grids.c.id == patrol_visits.c.grid_id
            )
        )
        .where(patrol_visits.c.at >= start, patrol_visits.c.at < end)
    ).all()
    levels = _patroller_levels(conn, {r.person_id for r in rows})
    return [Visit(r.path, r.at, levels.get(r.person_id)) for r in rows]


def coverage_between(
    conn: Connection, start: datetime, end: datetime, level: int
) -> list[Coverage]:
    """Every grid of `level` with its check-ins in [start, end) (its own and below)."""
    places = [
        GridPlace(r.id, r.code, r.name, r.level, r.path)
        for r in conn.execute(
            select(grids.c.id, grids.c.code, grids.c.name, grids.c.level, grids.c.path)
            .where(grids.c.level == level)
            .order_by(grids.c.code)
        )
    ]
    return coverage(places, visits_between(conn, start, end))


@dataclass(frozen=True)
class PatrolPeriod:
    """Patrols of a period for a report: how many, how many check-ins, every grid of a level."""

    patrols: int
    visits: int
    grids: tuple[Coverage, ...]

    @property
    def unvisited(self) -> tuple[Coverage, ...]:
        return tuple(g for g in self.grids if g.visits == 0)


def period_summary(conn: Connection, start: datetime, end: datetime, level: int) -> PatrolPeriod:
    n_patrols, n_visits = conn.execute(
        select(func.count(func.distinct(patrol_visits.c.patrol_id)), func.count()).where(
            patrol_visits.c.at >= start, patrol_visits.c.at < end
        )
    ).one()
    rows = coverage_between(conn, start, end, level)
    return PatrolPeriod(int(n_patrols), int(n_visits), tuple(rows))


def month_coverage(app: App, month: str, level: int = 3) -> list[dict[str, Any]]:
    """`closeloop patrol coverage`: every grid of the level, visited or not, in the month."""
    if level not in (1, 2, 3, 4):
        raise Invalid("patrol.level", level=level)
    start, end = month_bounds(month, app.tz)
    with read_only(app.engine) as conn:
        rows = coverage_between(conn, start, end, level)
    return [
        {
            "grid": c.grid,
            "name": c.name,
            "level": c.level,
            "visits": c.visits,
            "visits_by_level": c.visits_by_level,
            "last_visit_at": _iso(app, c.last_visit_at),
        }
        for c in rows
    ]
