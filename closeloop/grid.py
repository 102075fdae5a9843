"""The four-level grid in the database: import, lookup, ancestors and subtrees.

Each grid stores a materialised path of ids ("/1/5/23/"). A subtree is the index range
[path, path with its last "/" raised to "0"), because "/" sorts just below "0": one range scan,
never a walk down the tree row by row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Connection,
    FromClause,
    and_,
    bindparam,
    false,
    insert,
    or_,
    select,
    true,
    union_all,
    update,
)

from closeloop.errors import CodedError
from closeloop.gridfile import GridRow, StoredGrid
from closeloop.models import grid_members, grids, people

LEVEL_NAMES = {
    1: ("大网格", "zone grid"),
    2: ("中网格", "medium grid"),
    3: ("小网格", "small grid"),
    4: ("微网格", "micro grid"),
}


class UnknownGrid(CodedError, LookupError):
    pass


class UnknownPerson(CodedError, LookupError):
    pass


class BadChannels(CodedError, ValueError):
    """A person's channels or webhook address that cannot be used."""


@dataclass(frozen=True)
class Grid:
    id: int
    code: str
    name: str
    level: int
    kind: str
    parent_id: int | None
    path: str
    leader_id: int | None

    @property
    def ancestor_ids(self) -> tuple[int, ...]:
        """Ids from the zone down to the parent (excluding this grid)."""
        return tuple(int(p) for p in self.path.strip("/").split("/")[:-1])

    def contains(self, other_path: str) -> bool:
        return other_path.startswith(self.path)


def subtree_bounds(path: str) -> tuple[str, str]:
    return path, path[:-1] + "0"


def in_subtree(path_column: ColumnElement[str], path: str) -> ColumnElement[bool]:
    lo, hi = subtree_bounds(path)
    return and_(path_column >= lo, path_column < hi)


def led_or_member(person_id: ColumnElement[int]) -> ColumnElement[bool]:
    """Join condition: the grids the person leads or is a member of."""
    return or_(
        grids.c.leader_id == person_id,
        grids.c.id.in_(select(grid_members.c.grid_id).where(grid_members.c.person_id == person_id)),
    )


def with_own_grids(
    columns: Sequence[Any], base: FromClause, *where: ColumnElement[bool]
) -> CompoundSelect[Any]:
    """A person's row (from `base`, which holds `people`) once per grid they lead or once with
    no path, then once per grid they are a member of; `leads` tells which. Two index lookups
    joined by UNION ALL: an OR in one join condition would scan every grid."""
    led = (
        select(*columns, grids.c.path, true().label("leads"))
        .select_from(base.outerjoin(grids, grids.c.leader_id == people.c.id))
        .where(*where)
    )
    member = (
        select(*columns, grids.c.path, false().label("leads"))
        .select_from(
            base.join(grid_members, grid_members.c.person_id == people.c.id).join(
                grids, grids.c.id == grid_members.c.grid_id
            )
        )
        .where(*where)
    )
    return union_all(led, member)


def level_name(level: int, locale: str = "zh_CN") -> str:
    zh, en = LEVEL_NAMES[level]
    return en if locale.startswith("en") else zh


def grid_from_row(row: object) -> Grid:
    m = row._mapping  # type: ignore[attr-defined]
    return Grid(
        m["id"],
        m["code"],
        m["name"],
        m["level"],
        m["kind"],
        m["parent_id"],
        m["path"],
        m["leader_id"],
    )


# Built once: these run on every step.
_BY_CODE = select(grids).where(grids.c.code == bindparam("code"))
_BY_ID = select(grids).where(grids.c.id == bindparam("id"))
_BY_IDS = select(grids).where(grids.c.id.in_(bindparam("ids", expanding=True)))


def get_grid(conn: Connection, code: str) -> Grid:
    row = conn.execute(_BY_CODE, {"code": code}).first()
    if row is None:
        raise UnknownGrid("grid.unknown", code=code)
    return grid_from_row(row)


def get_grid_by_id(conn: Connection, grid_id: int) -> Grid:
    row = conn.execute(_BY_ID, {"id": grid_id}).first()
    if row is None:
        raise UnknownGrid("grid.unknown_id", grid_id=grid_id)
    return grid_from_row(row)


def grids_by_ids(conn: Connection, ids: Iterable[int]) -> dict[int, Grid]:
    wanted = list(set(ids))
    if not wanted:
        return {}
    rows = conn.execute(_BY_IDS, {"ids": wanted})
    return {g.id: g for g in map(grid_from_row, rows)}


def lineage(conn: Connection, grid: Grid) -> list[Grid]:
    """The grid and its ancestors, zone first, in one query."""
    found = grids_by_ids(conn, (*grid.ancestor_ids, grid.id))
    return [found[i] for i in (*grid.ancestor_ids, grid.id)]


# A lineage with each leader's channels and locale (`people`): a step's notice to a leader
# above (the verifier) then needs no read of its own.
_LED_BY_IDS = (
    select(
        grids,
        people.c.channels.label("leader_channels"),
        people.c.locale.label("leader_locale"),
    )
    .select_from(grids.outerjoin(people, people.c.id == grids.c.leader_id))
    .where(grids.c.id.in_(bindparam("ids", expanding=True)))
)


def lineage_with_leaders(
    conn: Connection, grid: Grid
) -> tuple[list[Grid], dict[int, tuple[str, str]]]:
    """`lineage`, and the channels and locale of its grids' leaders by person id."""
    ids = (*grid.ancestor_ids, grid.id)
    rows = conn.execute(_LED_BY_IDS, {"ids": list(set(ids))}).all()
    found = {r.id: grid_from_row(r) for r in rows}
    leaders = {
        r.leader_id: (r.leader_channels, r.leader_locale) for r in rows if r.leader_id is not None
    }
    return [found[i] for i in ids], leaders


def nearest_led(chain: Sequence[Grid]) -> Grid | None:
    """The deepest grid of a zone-first chain that has a leader."""
    for g in reversed(chain):
        if g.leader_id is not None:
            return g
    return None


def children(conn: Connection, grid: Grid | None) -> list[Grid]:
    cond = grids.c.parent_id.is_(None) if grid is None else grids.c.parent_id == grid.id
    return [
        grid_from_row(r) for r in conn.execute(select(grids).where(cond).order_by(grids.c.code))
    ]


def subtree(conn: Connection, grid: Grid) -> list[Grid]:
    rows = conn.execute(
        select(grids).where(in_subtree(grids.c.path, grid.path)).order_by(grids.c.path)
    )
    return [grid_from_row(r) for r in rows]


def stored_grids(conn: Connection) -> dict[str, StoredGrid]:
    """Every stored grid in the form the CSV reader checks new rows against."""
    parent = grids.alias("parent")
    rows = conn.execute(
        select(
            grids.c.code, grids.c.level, grids.c.kind, parent.c.code.label("parent_code")
        ).select_from(grids.outerjoin(parent, parent.c.id == grids.c.parent_id))
    )
    return {r.code: StoredGrid(r.code, r.level, r.kind, r.parent_code) for r in rows}


@dataclass(frozen=True)
class ImportSummary:
    grids_created: int
    grids_updated: int
    people_created: int
    people_updated: int


def upsert_person(
    conn: Connection,
    handle: str,
    name: str,
    now: datetime,
    *,
    phone: str | None = None,
    email: str | None = None,
    roles: Iterable[str] | None = None,
    channels: Iterable[str] | None = None,
    webhook: str | None = None,
) -> tuple[int, bool]:
    """Create or update a person by handle; returns (id, created)."""
    values: dict[str, object] = {"name": name, "phone": phone, "email": email}
    if roles is not None:
        values["roles"] = ",".join(sorted(set(roles)))
    if channels is not None:
        values["channels"] = ",".join(channels)
    if webhook is not None:
        values["webhook"] = webhook
    existing = conn.execute(select(people.c.id).where(people.c.handle == handle)).scalar()
    if existing is not None:
        conn.execute(update(people).where(people.c.id == existing).values(**values))
        return existing, False
    values.setdefault("roles", "")
    values.setdefault("channels", "")
    new_id = conn.execute(
        insert(people).values(handle=handle, created_at=now, **values).returning(people.c.id)
    ).scalar_one()
    return new_id, True


def import_rows(conn: Connection, rows: Sequence[GridRow], now: datetime) -> ImportSummary:
    """Write checked rows (parents first, as `read_grid_csv` returns them) in the caller's
    transaction. Existing grids keep their place in the tree and get the new name and leader."""
    person_ids: dict[str, int] = {}
    p_created = p_updated = 0
    for row in rows:
        if row.leader_handle in person_ids:
            continue
        pid, created = upsert_person(
            conn,
            row.leader_handle,
            row.leader_name,
            now,
            phone=row.leader_phone,
            email=row.leader_email,
            channels=row.channels if row.channels else None,
            webhook=row.webhook,
        )
        person_ids[row.leader_handle] = pid
        p_created += created
        p_updated += not created

    existing = {
        r.code: (r.id, r.path) for r in conn.execute(select(grids.c.code, grids.c.id, grids.c.path))
    }
    g_created = g_updated = 0
    for row in rows:
        leader_id = person_ids[row.leader_handle]
        if row.code in existing:
            gid, _ = existing[row.code]
            conn.execute(
                update(grids)
                .where(grids.c.id == gid)
                .values(name=row.name, kind=row.kind, leader_id=leader_id)
            )
            g_updated += 1
            continue
        parent_id, parent_path = (None, "/")
        if row.parent_code is not None:
            parent_id, parent_path = existing[row.parent_code]
        gid = conn.execute(
            insert(grids)
            .values(
                code=row.code,
                name=row.name,
                level=row.level,
                kind=row.kind,
                parent_id=parent_id,
                path=f"pending:{row.code}",
                leader_id=leader_id,
            )
            .returning(grids.c.id)
        ).scalar_one()
        path = f"{parent_path}{gid}/"
        conn.execute(update(grids).where(grids.c.id == gid).values(path=path))
        existing[row.code] = (gid, path)
        g_created += 1
    return ImportSummary(g_created, g_updated, p_created, p_updated)


# --- administration (the admin pages): a grid's leader, a person's channels ---------------------


def set_leader(conn: Connection, code: str, handle: str) -> Grid:
    """Make the person `handle` the leader of grid `code`; tickets already assigned stay where
    they are (the next assignment, reminder or escalation reaches the new leader)."""
    grid = get_grid(conn, code)
    person_id = conn.execute(select(people.c.id).where(people.c.handle == handle)).scalar()
    if person_id is None:
        raise UnknownPerson("person.unknown", handle=handle)
    conn.execute(update(grids).where(grids.c.id == grid.id).values(leader_id=person_id))
    return get_grid(conn, code)


def set_channels(
    conn: Connection,
    handle: str,
    channels: Sequence[str],
    *,
    webhook: str | None,
    digest: bool,
) -> None:
    """How a person receives notices: their channels (empty: the zone's default), the webhook
    address the webhook channel posts to, and digest mode (notices collected into one)."""
    from urllib.parse import urlsplit

    from closeloop.gridfile import CHANNELS

    unknown = [c for c in channels if c not in CHANNELS]
    if unknown:
        raise BadChannels("channel.unknown", channels=", ".join(unknown), known=", ".join(CHANNELS))
    webhook = (webhook or "").strip() or None
    if webhook is not None:
        parts = urlsplit(webhook)
        if parts.scheme not in ("http", "https") or not parts.netloc or len(webhook) > 500:
            raise BadChannels("channel.webhook_address")
    if "webhook" in channels and webhook is None:
        raise BadChannels("channel.webhook_missing")
    person_id = conn.execute(select(people.c.id).where(people.c.handle == handle)).scalar()
    if person_id is None:
        raise UnknownPerson("person.unknown", handle=handle)
    conn.execute(
        update(people)
        .where(people.c.id == person_id)
        .values(channels=",".join(dict.fromkeys(channels)), webhook=webhook, digest=digest)
    )
