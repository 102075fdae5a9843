"""Grid geometry in the database: import (one transaction), the process's locator, routing.

The locator is built once per process and database from every stored geometry and kept until
the geometry changes: each use reads one small stamp (how many geometries, the newest change);
an import bumps the newest change strictly and forgets this process's locator at once.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, Engine, delete, func, insert, select

from closeloop import grid as grid_mod
from closeloop.app import App
from closeloop.config import ConfigError
from closeloop.db import read_only
from closeloop.geo.locator import Locator, Placed
from closeloop.geo.rules import DEFAULT_TOLERANCE_M, GridInfo, check_file
from closeloop.grid import UnknownGrid
from closeloop.models import grid_geometries, grids
from closeloop.tickets import Invalid, NotFound


class NotLocated(Invalid):
    """No grid could be found for a point: outside the zone, or no geometry stored."""


@dataclass(frozen=True)
class GeometryImport:
    grids: int
    replaced: int


@dataclass(frozen=True)
class Location:
    code: str
    name: str
    level: int
    lineage: list[dict[str, Any]]  # zone first, down to the grid itself

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "name": self.name, "level": self.level, "path": self.lineage}


def tolerance_m(app: App) -> float:
    value = app.settings.section("geometry").get("tolerance_m", DEFAULT_TOLERANCE_M)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError("config.tolerance", value=value)
    return float(value)


def grid_infos(conn: Connection) -> dict[str, GridInfo]:
    parent = grids.alias("parent")
    rows = conn.execute(
        select(grids.c.code, grids.c.level, parent.c.code.label("parent_code")).select_from(
            grids.outerjoin(parent, parent.c.id == grids.c.parent_id)
        )
    )
    return {r.code: GridInfo(r.code, r.level, r.parent_code) for r in rows}


def stored_shapes(conn: Connection) -> dict[str, BaseGeometry]:
    rows = conn.execute(
        select(grids.c.code, grid_geometries.c.geojson).select_from(
            grid_geometries.join(grids, grids.c.id == grid_geometries.c.grid_id)
        )
    )
    return {r.code: shape(json.loads(r.geojson)) for r in rows}


def import_geometry_text(app: App, text: str, now: datetime) -> GeometryImport:
    """Check the whole file against the grid and the stored geometry, then store it in one
    transaction; a grid named again gets its new geometry."""
    tol = tolerance_m(app)
    with app.engine.begin() as conn:
        shapes = check_file(text, grid_infos(conn), stored_shapes(conn), tol)
        ids = dict(conn.execute(select(grids.c.code, grids.c.id)).all())
        wanted = [ids[s.code] for s in shapes]
        newest = conn.execute(select(func.max(grid_geometries.c.updated_at))).scalar()
        # Strictly newer than anything stored, so other processes see a new stamp.
        at = now if newest is None or now > newest else newest + timedelta(microseconds=1)
        replaced = conn.execute(
            delete(grid_geometries).where(grid_geometries.c.grid_id.in_(wanted))
        ).rowcount
        if shapes:
            conn.execute(
                insert(grid_geometries),
                [
                    {
                        "grid_id": ids[s.code],
                        "geojson": json.dumps(s.geojson(), separators=(",", ":")),
                        "updated_at": at,
                    }
                    for s in shapes
                ],
            )
    forget(app.engine)
    return GeometryImport(len(shapes), replaced or 0)


def import_geometry_file(app: App, path: Path, now: datetime) -> GeometryImport:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise Invalid("file.not_found", path=path) from None
    except IsADirectoryError:
        raise Invalid("file.folder_not_geojson", path=path) from None
    except UnicodeDecodeError:
        raise Invalid("file.not_utf8", path=path) from None
    return import_geometry_text(app, text, now)


# --- the locator of this process -----------------------------------------------------------------

_lock = threading.Lock()
_locators: dict[int, tuple[tuple[Any, ...], Locator]] = {}


def forget(engine: Engine) -> None:
    with _lock:
        _locators.pop(id(engine), None)


def _stamp(conn: Connection) -> tuple[Any, ...]:
    row = conn.execute(
        select(func.count(), func.max(grid_geometries.c.updated_at)).select_from(grid_geometries)
    ).one()
    return (row[0], row[1])


def _locator(conn: Connection, engine: Engine) -> Locator:
    stamp = _stamp(conn)
    with _lock:
        known = _locators.get(id(engine))
        if known is not None and known[0] == stamp:
            return known[1]
    rows = conn.execute(
        select(grids.c.code, grids.c.level, grid_geometries.c.geojson).select_from(
            grid_geometries.join(grids, grids.c.id == grid_geometries.c.grid_id)
        )
    )
    built = Locator(Placed(r.code, r.level, shape(json.loads(r.geojson))) for r in rows)
    with _lock:
        _locators[id(engine)] = (stamp, built)
    return built


def locator(app: App) -> Locator:
    """The locator for this database, built once and rebuilt only when the geometry changed."""
    with read_only(app.engine) as conn:
        return _locator(conn, app.engine)


def locate(app: App, lat: float, lon: float) -> Location | None:
    """The deepest grid containing the point and its lineage, or None."""
    with read_only(app.engine) as conn:
        code = _locator(conn, app.engine).locate(lat, lon)
        if code is None:
            return None
        g = grid_mod.get_grid(conn, code)
        chain = grid_mod.lineage(conn, g)
    return Location(
        g.code,
        g.name,
        g.level,
        [{"code": c.code, "name": c.name, "level": c.level} for c in chain],
    )


def route(app: App, lat: float | None, lon: float | None) -> str:
    """The grid a problem reported at (lat, lon) goes to; NotLocated says to name a grid."""
    if lat is None or lon is None:
        raise Invalid("geo.grid_or_point")
    found = locate(app, lat, lon)
    if found is not None:
        return found.code
    if len(locator(app)) == 0:
        raise NotLocated("geo.no_geometry")
    raise NotLocated("geo.outside", lat=lat, lon=lon)


def geometry_of(app: App, code: str) -> dict[str, Any] | None:
    """A grid's GeoJSON geometry, None when it has none; NotFound for an unknown grid."""
    with read_only(app.engine) as conn:
        try:
            g = grid_mod.get_grid(conn, code)
        except UnknownGrid as exc:
            raise NotFound(exc.code, **exc.params) from None
        text = conn.execute(
            select(grid_geometries.c.geojson).where(grid_geometries.c.grid_id == g.id)
        ).scalar()
    return json.loads(text) if text else None


@dataclass(frozen=True)
class Shape:
    code: str
    name: str
    level: int
    path: str
    geometry: BaseGeometry


def shapes(app: App, level: int | None = None) -> list[Shape]:
    """Grids with geometry (of one level, or all), in tree order."""
    q = (
        select(grids.c.code, grids.c.name, grids.c.level, grids.c.path, grid_geometries.c.geojson)
        .select_from(grid_geometries.join(grids, grids.c.id == grid_geometries.c.grid_id))
        .order_by(grids.c.path)
    )
    if level is not None:
        q = q.where(grids.c.level == level)
    with read_only(app.engine) as conn:
        rows = conn.execute(q).all()
    return [Shape(r.code, r.name, r.level, r.path, shape(json.loads(r.geojson))) for r in rows]


def geojson(geom: BaseGeometry) -> dict[str, Any]:
    return dict(mapping(geom))
