"""What a map shows, put together: areas of one level with their figure, late tickets where
they were reported (or, without coordinates, inside their grid), recurrence spots in their grid.

The figures come from the caller (the supervisors' map page, the weekly report); this module
only places them, reading the geometry and the tickets' coordinates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from shapely.geometry.base import BaseGeometry
from sqlalchemy import select

from closeloop.app import App
from closeloop.db import read_only
from closeloop.geo import service as geo
from closeloop.geo.svgmap import Area, MapView, Metric, Pin, Spot
from closeloop.models import grids, tickets


@dataclass(frozen=True)
class Late:
    ref: str
    title: str
    grid_code: str
    level: int  # rungs climbed


@dataclass(frozen=True)
class Recurring:
    grid_code: str
    count: int
    label: str


class Places:
    """Where a grid is on the map: its own geometry, else its nearest ancestor's."""

    def __init__(self, app: App) -> None:
        self.shapes = geo.shapes(app)
        self._by_code = {s.code: s for s in self.shapes}
        with read_only(app.engine) as conn:
            rows = conn.execute(select(grids.c.id, grids.c.code, grids.c.path)).all()
        self._path = {r.code: r.path for r in rows}
        self._code_of_id = {r.id: r.code for r in rows}
        self._points: dict[str, tuple[float, float] | None] = {}

    def geometry(self, code: str) -> BaseGeometry | None:
        path = self._path.get(code)
        if path is None:
            return None
        for gid in reversed([int(p) for p in path.strip("/").split("/")]):
            s = self._by_code.get(self._code_of_id.get(gid, ""))
            if s is not None:
                return s.geometry
        return None

    def point(self, code: str) -> tuple[float, float] | None:
        """(lon, lat) inside the grid (or the nearest ancestor that has geometry)."""
        if code not in self._points:
            g = self.geometry(code)
            p = g.representative_point() if g is not None else None
            self._points[code] = (p.x, p.y) if p is not None else None
        return self._points[code]

    def area_of(self, code: str, level: int) -> str | None:
        """The code of the grid of `level` above (or at) `code`."""
        path = self._path.get(code)
        if path is None:
            return None
        ids = [int(p) for p in path.strip("/").split("/")]
        return self._code_of_id.get(ids[level - 1]) if len(ids) >= level else None

    def zone(self) -> BaseGeometry | None:
        return next((s.geometry for s in self.shapes if s.level == 1), None)


def ticket_points(app: App, refs: Iterable[str]) -> dict[str, tuple[float, float]]:
    """(lon, lat) of the tickets reported with coordinates."""
    wanted = list(dict.fromkeys(refs))
    if not wanted:
        return {}
    with read_only(app.engine) as conn:
        rows = conn.execute(
            select(tickets.c.ref, tickets.c.lat, tickets.c.lon).where(
                tickets.c.ref.in_(wanted), tickets.c.lat.is_not(None), tickets.c.lon.is_not(None)
            )
        ).all()
    return {r.ref: (float(r.lon), float(r.lat)) for r in rows}


def build_view(
    app: App,
    *,
    level: int,
    metric: Metric,
    values: Mapping[str, float | None],
    notes: Mapping[str, str] | None = None,
    late: Iterable[Late] = (),
    recurring: Iterable[Recurring] = (),
    places: Places | None = None,
) -> MapView:
    """The map of the grids of `level`, each coloured by `values[code]` (missing: no data)."""
    places = places or Places(app)
    notes = notes or {}
    areas = tuple(
        Area(s.code, s.name, s.geometry, values.get(s.code), notes.get(s.code, ""))
        for s in places.shapes
        if s.level == level
    )
    late = list(late)
    coords = ticket_points(app, (t.ref for t in late))
    pins = []
    for t in late:
        at = coords.get(t.ref) or places.point(t.grid_code)
        if at is not None:
            pins.append(Pin(at[0], at[1], t.level, t.ref, t.title))
    spots = []
    for r in recurring:
        at = places.point(r.grid_code)
        if at is not None:
            spots.append(Spot(at[0], at[1], r.count, r.label))
    return MapView(metric, areas, tuple(pins), tuple(spots), places.zone())
