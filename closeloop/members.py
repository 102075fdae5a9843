"""The people of a grid beside its leader (网格长): members with a role and a duty.

Members see the grid's inbox and act as its leader for the steps the workflow gives
"responsible" (`closeloop.tickets.authorize`, `closeloop.views.load_actor`). The file
`members.csv` is read by `closeloop.memberfile`; a bad file writes nothing. For every grid named
in the file the file's rows are its members afterwards (a person left out is no longer one).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select

from closeloop.app import App
from closeloop.csvfile import read_file
from closeloop.db import read_only
from closeloop.grid import UnknownGrid, get_grid, in_subtree, upsert_person
from closeloop.memberfile import read_members_csv
from closeloop.models import grid_members, grids, people
from closeloop.tickets import Invalid


@dataclass(frozen=True)
class MembersImported:
    grids: int
    members: int
    people_created: int


def import_members_text(app: App, text: str, now: datetime) -> MembersImported:
    """Check the whole file, then write it in one transaction."""
    with app.engine.begin() as conn:
        codes = {r.code: r.id for r in conn.execute(select(grids.c.code, grids.c.id))}
        rows = read_members_csv(text, codes)
        created = 0
        ids: dict[str, int] = {}
        for r in rows:
            if r.handle not in ids:
                ids[r.handle], new = upsert_person(
                    conn, r.handle, r.name, now, phone=r.phone, email=r.email
                )
                created += new
        touched = sorted({codes[r.grid_code] for r in rows})
        conn.execute(delete(grid_members).where(grid_members.c.grid_id.in_(touched)))
        conn.execute(
            insert(grid_members),
            [
                {
                    "grid_id": codes[r.grid_code],
                    "person_id": ids[r.handle],
                    "role": r.role,
                    "duty": r.duty,
                    "created_at": now,
                }
                for r in rows
            ],
        )
    return MembersImported(len(touched), len(rows), created)


def import_members_file(app: App, path: Path, now: datetime) -> MembersImported:
    return import_members_text(app, read_file(path), now)


def list_members(
    app: App, grid: str | None = None, *, subtree: bool = False
) -> list[dict[str, Any]]:
    """Members of a grid (or of its subtree, or of every grid), grid by grid."""
    with read_only(app.engine) as conn:
        q = (
            select(
                grids.c.code,
                grids.c.name.label("grid_name"),
                people.c.handle,
                people.c.name,
                people.c.phone,
                people.c.email,
                grid_members.c.role,
                grid_members.c.duty,
            )
            .select_from(
                grid_members.join(grids, grids.c.id == grid_members.c.grid_id).join(
                    people, people.c.id == grid_members.c.person_id
                )
            )
            .order_by(grids.c.path, grid_members.c.id)
        )
        if grid is not None:
            try:
                g = get_grid(conn, grid)
            except UnknownGrid as exc:
                raise Invalid(exc.code, **exc.params) from None
            q = q.where(in_subtree(grids.c.path, g.path) if subtree else grids.c.id == g.id)
        return [
            {
                "grid": r.code,
                "grid_name": r.grid_name,
                "handle": r.handle,
                "name": r.name,
                "phone": r.phone,
                "email": r.email,
                "role": r.role,
                "duty": r.duty,
            }
            for r in conn.execute(q)
        ]
