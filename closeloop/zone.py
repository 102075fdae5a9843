"""Setting up a zone: schema, grid file and staff from config; describing grids."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from closeloop import grid as grid_mod
from closeloop import schema
from closeloop.app import App
from closeloop.csvfile import read_file
from closeloop.db import read_only
from closeloop.geo import service as geo
from closeloop.grid import ImportSummary, UnknownGrid, level_name
from closeloop.gridfile import read_grid_csv
from closeloop.models import grids, people
from closeloop.tickets import NotFound


@dataclass(frozen=True)
class InitResult:
    revision: str | None
    grids: ImportSummary
    people_total: int
    geometry: int = 0  # grids whose geometry the zone's geometry file brought


def import_grid_text(app: App, text: str, now: datetime) -> ImportSummary:
    """Check the whole file against what is stored, then write it in one transaction."""
    with app.engine.begin() as conn:
        rows = read_grid_csv(text, grid_mod.stored_grids(conn))
        return grid_mod.import_rows(conn, rows, now)


def import_grid_file(app: App, path: Path, now: datetime) -> ImportSummary:
    return import_grid_text(app, read_file(path), now)


def init(app: App, now: datetime) -> InitResult:
    """Create or upgrade the schema, load the zone's grid file and staff. Safe to run twice."""
    if app.settings.database_url.startswith("sqlite:///"):
        Path(app.settings.database_url.removeprefix("sqlite:///")).parent.mkdir(
            parents=True, exist_ok=True
        )
    _, revision = schema.upgrade(app.engine)
    summary = ImportSummary(0, 0, 0, 0)
    if app.settings.grid_file is not None:
        summary = import_grid_file(app, app.settings.grid_file, now)
    with app.engine.begin() as conn:
        for person in app.settings.staff:
            grid_mod.upsert_person(
                conn,
                person.handle,
                person.name,
                now,
                phone=person.phone,
                email=person.email,
                roles=person.roles,
            )
        total = conn.execute(select(func.count()).select_from(people)).scalar_one()
    shapes = 0
    geometry_file = app.settings.section("zone").get("geometry_file")
    if geometry_file:
        shapes = geo.import_geometry_file(app, app.settings.resolve(geometry_file), now).grids
    return InitResult(revision, summary, total, shapes)


def _leader(conn: Any, leader_id: int | None) -> dict[str, Any] | None:
    if leader_id is None:
        return None
    p = conn.execute(select(people).where(people.c.id == leader_id)).one()
    return {"handle": p.handle, "name": p.name, "phone": p.phone, "email": p.email}


def describe(app: App, code: str | None) -> dict[str, Any]:
    """A grid with its leader, its ancestors, its children and the size of its subtree."""
    locale = app.settings.locale
    with read_only(app.engine) as conn:
        try:
            if code is None:
                top = grid_mod.children(conn, None)
                if not top:
                    raise NotFound("grid.none_stored")
                g = top[0]
            else:
                g = grid_mod.get_grid(conn, code)
        except UnknownGrid as exc:
            raise NotFound(exc.code, **exc.params) from None
        chain = grid_mod.lineage(conn, g)
        kids = grid_mod.children(conn, g)
        leaders = dict(
            conn.execute(
                select(people.c.id, people.c.handle).where(
                    people.c.id.in_([k.leader_id for k in kids if k.leader_id])
                )
            ).all()
        )
        size = conn.execute(
            select(func.count()).select_from(grids).where(grid_mod.in_subtree(grids.c.path, g.path))
        ).scalar_one()
        return {
            "code": g.code,
            "name": g.name,
            "level": g.level,
            "level_name": level_name(g.level, locale),
            "kind": g.kind,
            "parent": chain[-2].code if len(chain) > 1 else None,
            "leader": _leader(conn, g.leader_id),
            "path": [{"code": c.code, "name": c.name, "level": c.level} for c in chain],
            "children": [
                {
                    "code": k.code,
                    "name": k.name,
                    "level": k.level,
                    "kind": k.kind,
                    "leader": leaders.get(k.leader_id) if k.leader_id else None,
                }
                for k in kids
            ],
            "subtree_size": size - 1,
        }
