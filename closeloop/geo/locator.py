"""The deepest grid containing a point (pure).

Built once from every grid's geometry: an STRtree over the bounding boxes finds the few
candidates, and prepared geometries answer "covers" for them. A point on a boundary belongs to
the grids on both sides; the deepest wins, then the smaller code, so the answer is the same on
every call. A point in a hole of a grid is not in that grid (nor in its children, which lie
inside it): the parent answers if it covers the point.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry


@dataclass(frozen=True, slots=True)
class Placed:
    code: str
    level: int
    geometry: BaseGeometry


class Locator:
    def __init__(self, grids: Iterable[Placed]) -> None:
        # Deepest first, then by code: the first covering candidate in this order wins.
        items = sorted(grids, key=lambda g: (-g.level, g.code))
        self.codes: list[str] = [g.code for g in items]
        self.levels: list[int] = [g.level for g in items]
        self._geoms = np.array([g.geometry for g in items], dtype=object)
        shapely.prepare(self._geoms)
        self._tree = shapely.STRtree(self._geoms)

    def __len__(self) -> int:
        return len(self.codes)

    def locate(self, lat: float, lon: float) -> str | None:
        """The code of the deepest grid covering (lat, lon), or None outside every grid."""
        if not self.codes:
            return None
        point = shapely.Point(lon, lat)
        candidates = self._tree.query(point)
        if len(candidates) == 0:
            return None
        candidates.sort()  # tree order is deepest first
        hits = candidates[shapely.covers(self._geoms[candidates], point)]
        return self.codes[hits[0]] if len(hits) else None

    def bounds(self) -> tuple[float, float, float, float] | None:
        """(min lon, min lat, max lon, max lat) of every grid, None when there is none."""
        if not self.codes:
            return None
        b = shapely.total_bounds(self._geoms)
        return float(b[0]), float(b[1]), float(b[2]), float(b[3])
