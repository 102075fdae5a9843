"""一村一月大整治: every village, every month, a rectification record ticked off to zero.

`plan` opens the month's record for every village (or every grid of a level): its focus and its
items, pulled from the grid's open tickets and its recurrence hot spots (recurrences filed in
the 60 days before the month, by micro grid and category); a village adds items of its own.
An item that is a ticket is done when the ticket is closed or dismissed; other items are ticked
off by the grid's leader, a member, a leader above or a supervisor. Planning twice adds only
what is new. One transaction per use case.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, func, insert, select, update

from closeloop import views
from closeloop.app import App
from closeloop.db import read_only
from closeloop.grid import Grid, UnknownGrid, get_grid, in_subtree
from closeloop.models import grids, rectification_items, rectifications, tickets
from closeloop.periods import month_bounds
from closeloop.tickets import Invalid, NotFound, NotPermitted

HOTSPOT_DAYS = 60
TITLE_MAX = 200
DONE_STATES = ("closed", "dismissed")


def _grids_to_plan(conn: Connection, level: int | None) -> list[Grid]:
    q = select(grids.c.code)
    q = q.where(grids.c.kind == "village") if level is None else q.where(grids.c.level == level)
    return [get_grid(conn, code) for code in conn.execute(q.order_by(grids.c.code)).scalars()]


def _open_tickets(conn: Connection, g: Grid) -> list[Any]:
    return list(
        conn.execute(
            select(tickets.c.id, tickets.c.ref, tickets.c.title)
            .select_from(tickets.join(grids, grids.c.id == tickets.c.grid_id))
            .where(in_subtree(grids.c.path, g.path), tickets.c.state.not_in(DONE_STATES))
            .order_by(tickets.c.id)
        )
    )


def _hotspots(conn: Connection, app: App, g: Grid, start: datetime) -> list[str]:
    rows = conn.execute(
        select(grids.c.name, tickets.c.category, func.count())
        .select_from(tickets.join(grids, grids.c.id == tickets.c.grid_id))
        .where(
            in_subtree(grids.c.path, g.path),
            tickets.c.recurrence_of_id.is_not(None),
            tickets.c.created_at >= start - timedelta(days=HOTSPOT_DAYS),
            tickets.c.created_at < start,
        )
        .group_by(grids.c.name, tickets.c.category)
        .order_by(func.count().desc(), grids.c.name)
    )
    locale = app.settings.locale
    return [
        f"{name} · {app.workflow.category(cat).label.get(locale)} ×{n}" for name, cat, n in rows
    ]


def plan(
    app: App, month: str, now: datetime, *, level: int | None = None, focus: str | None = None
) -> dict[str, Any]:
    """Open (or complete) the month's records; returns how many records and items are new."""
    if level is not None and level not in (2, 3, 4):
        raise Invalid("rectify.level", level=level)
    if focus is not None and len(focus) > TITLE_MAX:
        raise Invalid("rectify.focus_long", n=TITLE_MAX)
    start, _ = month_bounds(month, app.tz)
    new_records = new_items = 0
    with app.engine.begin() as conn:
        for g in _grids_to_plan(conn, level):
            rid = conn.execute(
                select(rectifications.c.id).where(
                    rectifications.c.month == month, rectifications.c.grid_id == g.id
                )
            ).scalar()
            if rid is None:
                rid = conn.execute(
                    insert(rectifications)
                    .values(month=month, grid_id=g.id, focus=focus, created_at=now)
                    .returning(rectifications.c.id)
                ).scalar_one()
                new_records += 1
            have = conn.execute(
                select(rectification_items.c.ticket_id, rectification_items.c.title).where(
                    rectification_items.c.rectification_id == rid
                )
            ).all()
            have_tickets = {r.ticket_id for r in have if r.ticket_id is not None}
            have_titles = {r.title for r in have}
            items = [
                {"source": "ticket", "title": f"{t.ref} {t.title}"[:TITLE_MAX], "ticket_id": t.id}
                for t in _open_tickets(conn, g)
                if t.id not in have_tickets
            ] + [
                {"source": "hotspot", "title": title, "ticket_id": None}
                for title in _hotspots(conn, app, g, start)
                if title not in have_titles
            ]
            if items:
                conn.execute(
                    insert(rectification_items),
                    [{**i, "rectification_id": rid, "created_at": now} for i in items],
                )
                new_items += len(items)
    return {"month": month, "records_created": new_records, "items_created": new_items}


def _record(conn: Connection, grid: str, month: str) -> tuple[Any, Grid]:
    try:
        g = get_grid(conn, grid)
    except UnknownGrid as exc:
        raise Invalid(exc.code, **exc.params) from None
    row = conn.execute(
        select(rectifications).where(
            rectifications.c.month == month, rectifications.c.grid_id == g.id
        )
    ).first()
    if row is None:
        raise NotFound("rectify.not_found", grid=grid, month=month)
    return row, g


def _describe(conn: Connection, app: App, row: Any, g: Grid) -> dict[str, Any]:
    items = conn.execute(
        select(rectification_items, tickets.c.ref, tickets.c.state)
        .select_from(
            rectification_items.outerjoin(tickets, tickets.c.id == rectification_items.c.ticket_id)
        )
        .where(rectification_items.c.rectification_id == row.id)
        .order_by(rectification_items.c.id)
    ).all()

    def done(i: Any) -> bool:
        return i.done_at is not None or (i.state is not None and i.state in DONE_STATES)

    listed = [
        {
            "id": i.id,
            "source": i.source,
            "title": i.title,
            "ref": i.ref,
            "state": i.state,
            "done": done(i),
            "done_at": i.done_at.astimezone(app.tz).isoformat(timespec="seconds")
            if i.done_at
            else None,
        }
        for i in items
    ]
    n_done = sum(1 for i in listed if i["done"])
    return {
        "id": row.id,
        "month": row.month,
        "grid": g.code,
        "name": g.name,
        "focus": row.focus,
        "items": listed,
        "total": len(listed),
        "done": n_done,
        "remaining": len(listed) - n_done,
    }


def show(app: App, grid: str, month: str) -> dict[str, Any]:
    month_bounds(month, app.tz)
    with read_only(app.engine) as conn:
        row, g = _record(conn, grid, month)
        return _describe(conn, app, row, g)


def list_month(app: App, month: str) -> list[dict[str, Any]]:
    """Every record of the month with its counts (the items themselves: `show`)."""
    month_bounds(month, app.tz)
    with read_only(app.engine) as conn:
        rows = conn.execute(
            select(rectifications, grids.c.code)
            .join(grids, grids.c.id == rectifications.c.grid_id)
            .where(rectifications.c.month == month)
            .order_by(grids.c.code)
        ).all()
        out = []
        for r in rows:
            d = _describe(conn, app, r, get_grid(conn, r.code))
            d.pop("items")
            out.append(d)
        return out


def add_items(
    app: App, grid: str, month: str, titles: Sequence[str], now: datetime
) -> dict[str, Any]:
    """Items the village adds to its record; every bad title named, none added on error."""
    problems = [
        Invalid("rectify.item_empty", n=i) for i, t in enumerate(titles, 1) if not t.strip()
    ]
    problems += [
        Invalid("rectify.item_long", n=i, most=TITLE_MAX)
        for i, t in enumerate(titles, 1)
        if len(t) > TITLE_MAX
    ]
    if not titles:
        problems.append(Invalid("rectify.items_none"))
    month_bounds(month, app.tz)
    with app.engine.begin() as conn:
        row, g = _record(conn, grid, month)
        if problems:
            raise Invalid("rectify.problems", problems=problems)
        conn.execute(
            insert(rectification_items),
            [
                {"rectification_id": row.id, "source": "added", "title": t.strip(),
                 "created_at": now}
                for t in titles
            ],
        )  # fmt: skip
        return _describe(conn, app, row, g)


def tick(app: App, item_id: int, by: str, now: datetime) -> dict[str, Any]:
    """Tick an item off (销号). A ticket's item is ticked by closing the ticket."""
    with app.engine.begin() as conn:
        item = conn.execute(
            select(rectification_items, rectifications.c.grid_id, rectifications.c.month)
            .join(rectifications, rectifications.c.id == rectification_items.c.rectification_id)
            .where(rectification_items.c.id == item_id)
        ).first()
        if item is None:
            raise NotFound("rectify.no_item", item_id=item_id)
        g = conn.execute(select(grids.c.code).where(grids.c.id == item.grid_id)).scalar_one()
        grid = get_grid(conn, g)
        actor = views.load_actor(conn, by)
        if not (
            actor.is_supervisor or actor.answers_for(grid.path) or actor.leads_above(grid.path)
        ):
            raise NotPermitted("rectify.not_permitted", by=by, code=grid.code)
        if item.ticket_id is not None:
            raise Invalid("rectify.item_is_ticket", item_id=item_id)
        if item.done_at is not None:
            raise Invalid("rectify.item_done", item_id=item_id)
        conn.execute(
            update(rectification_items)
            .where(
                and_(rectification_items.c.id == item_id, rectification_items.c.done_at.is_(None))
            )
            .values(done_at=now)
        )
        row, _ = _record(conn, grid.code, item.month)
        return _describe(conn, app, row, grid)
