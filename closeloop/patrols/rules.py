"""Pure rules of patrols: what a check-in needs, months in zone time, coverage arithmetic."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from closeloop.tickets import Invalid

LEVELS = (1, 2, 3, 4)


def coordinate_problems(lat: float | None, lon: float | None) -> list[Invalid]:
    problems = []
    if (lat is None) != (lon is None):
        problems.append(Invalid("patrol.lat_lon_pair"))
    if lat is not None and not -90 <= lat <= 90:
        problems.append(Invalid("patrol.lat_range"))
    if lon is not None and not -180 <= lon <= 180:
        problems.append(Invalid("patrol.lon_range"))
    return problems


@dataclass(frozen=True)
class GridPlace:
    id: int
    code: str
    name: str
    level: int
    path: str


@dataclass(frozen=True)
class Visit:
    grid_path: str
    at: datetime
    patroller_level: int | None  # the highest grid level the patroller leads or serves


@dataclass
class Coverage:
    grid: str
    name: str
    level: int
    visits: int = 0
    visits_by_level: dict[str, int] = field(default_factory=dict)
    last_visit_at: datetime | None = None


def coverage(grids: Sequence[GridPlace], visits: Iterable[Visit]) -> list[Coverage]:
    """Every grid given, visited or not: a check-in at a grid counts for it and for every grid
    above it (a patrol of a micro grid is a visit to its village). `visits_by_level` counts by
    the level of the patroller's own grid ("1" the zone's leaders ... "4"; "none" for someone
    leading no grid)."""
    by_id: Mapping[int, Coverage] = {
        g.id: Coverage(g.code, g.name, g.level, 0, {str(lv): 0 for lv in LEVELS}) for g in grids
    }
    for v in visits:
        for part in v.grid_path.strip("/").split("/"):
            row = by_id.get(int(part))
            if row is None:
                continue
            row.visits += 1
            key = str(v.patroller_level) if v.patroller_level is not None else "none"
            row.visits_by_level[key] = row.visits_by_level.get(key, 0) + 1
            if row.last_visit_at is None or v.at > row.last_visit_at:
                row.last_visit_at = v.at
    return [by_id[g.id] for g in grids]
