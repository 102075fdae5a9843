"""Reading a GeoJSON file of grid polygons and checking it against the grid (pure).

The file is a FeatureCollection; each feature names its grid in ``properties.code`` and has a
Polygon or MultiPolygon in WGS 84 longitude/latitude (GeoJSON's order: x = longitude). The file
is refused whole, every problem named, when

- it is not a FeatureCollection of such features, or a code appears twice;
- a code is not a stored grid;
- a geometry is not valid (self-intersecting rings, too few points, out of range, empty);
- a grid pokes out of its parent by more than the tolerance, or two grids under the same parent
  overlap by a strip wider than the tolerance (nesting is checked against the geometries already
  stored for the grids the file does not name, so a file may bring one village at a time).

Distances are in metres on a local equirectangular projection around the geometries: ample for
a development zone a few tens of kilometres across.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import shapely
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from closeloop.errors import CodedError, text

DEFAULT_TOLERANCE_M = 1.0
GEOMETRY_TYPES = ("Polygon", "MultiPolygon")
METRES_PER_DEGREE = 111_320.0
MAX_PROBLEMS = 200


class GeometryProblem(CodedError, ValueError):
    """One problem of a geometry file (or of one geometry), by its code."""


class GeometryFileError(CodedError, ValueError):
    """The geometry file is refused: ``items`` are every problem found, each by its code, said
    one a line under a head that counts them; ``problems`` are their English texts."""

    def __init__(self, items: Sequence[CodedError]) -> None:
        self.items = list(items)
        count = len(self.items)
        super().__init__("geometry.refused", count=count, s="s" if count != 1 else "")
        self.args = (self.text("en"),)

    @property
    def problems(self) -> list[str]:
        return [str(p) for p in self.items]

    def head(self, locale: str) -> str:
        """The line that counts the problems."""
        return text(self.code, self.params, locale)

    def lines(self, locale: str, words: Callable[[str], str] | None = None) -> list[str]:
        """A line per problem (the first MAX_PROBLEMS, then how many more)."""
        shown = self.items[:MAX_PROBLEMS]
        lines = [p.text(locale, words) for p in shown]
        if len(self.items) > len(shown):
            lines.append(text("geometry.more", {"n": len(self.items) - len(shown)}, locale))
        return lines

    def text(self, locale: str, words: Callable[[str], str] | None = None) -> str:
        lines = self.lines(locale, words)
        return "\n".join([self.head(locale), *(f"  {line}" for line in lines)])

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.items,))


@dataclass(frozen=True, slots=True)
class GridInfo:
    """What the checks need to know about a stored grid."""

    code: str
    level: int
    parent_code: str | None


@dataclass(frozen=True, slots=True)
class GridShape:
    """A grid's checked geometry (longitude/latitude)."""

    code: str
    geometry: BaseGeometry

    def geojson(self) -> dict[str, Any]:
        return dict(mapping(self.geometry))


def parse_geometry(value: Any) -> BaseGeometry:
    """A GeoJSON geometry object as a shapely geometry; GeometryProblem says what is wrong."""
    if not isinstance(value, Mapping):
        raise GeometryProblem("geometry.not_object")
    kind = value.get("type")
    if kind not in GEOMETRY_TYPES:
        raise GeometryProblem("geometry.type", kind=kind)
    try:
        geom = shape(value)
    except (ValueError, TypeError, IndexError, AttributeError, shapely.errors.ShapelyError) as e:
        raise GeometryProblem("geometry.coordinates", kind=kind, reason=e) from None
    if geom.is_empty:
        raise GeometryProblem("geometry.empty")
    coords = shapely.get_coordinates(geom)
    if not (coords[:, 0].min() >= -180 and coords[:, 0].max() <= 180):
        raise GeometryProblem("geometry.longitude")
    if not (coords[:, 1].min() >= -90 and coords[:, 1].max() <= 90):
        raise GeometryProblem("geometry.latitude")
    if not geom.is_valid:
        raise GeometryProblem("geometry.invalid", reason=explain_validity(geom))
    return geom


def read_features(text: str) -> list[tuple[int, str, Any]]:
    """(feature number from 1, code, raw geometry) for each feature; GeometryFileError when the
    file itself is not a FeatureCollection of features with a code."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise GeometryFileError([GeometryProblem("geometry.not_json", reason=exc)]) from None
    if not isinstance(doc, Mapping) or doc.get("type") != "FeatureCollection":
        raise GeometryFileError([GeometryProblem("geometry.not_collection")])
    features = doc.get("features")
    if not isinstance(features, list) or not features:
        raise GeometryFileError([GeometryProblem("geometry.no_features")])
    out: list[tuple[int, str, Any]] = []
    problems: list[CodedError] = []
    for n, f in enumerate(features, start=1):
        props = f.get("properties") if isinstance(f, Mapping) else None
        code = props.get("code") if isinstance(props, Mapping) else None
        if not isinstance(code, str) or not code.strip():
            problems.append(GeometryProblem("geometry.no_code", n=n))
            continue
        out.append((n, code.strip(), f.get("geometry")))
    if problems:
        raise GeometryFileError(problems)
    return out


def local_scale(geoms: Iterable[BaseGeometry]) -> tuple[float, float]:
    """Metres per degree of longitude and of latitude around the geometries' centre."""
    bounds = shapely.total_bounds(list(geoms))
    lat0 = (bounds[1] + bounds[3]) / 2 if math.isfinite(bounds[1]) else 0.0
    return METRES_PER_DEGREE * math.cos(math.radians(lat0)), METRES_PER_DEGREE


def to_metres(geom: BaseGeometry, scale: tuple[float, float]) -> BaseGeometry:
    kx, ky = scale
    return shapely.transform(geom, lambda xy: xy * (kx, ky))


def check_file(
    text: str,
    grids: Mapping[str, GridInfo],
    stored: Mapping[str, BaseGeometry],
    tolerance_m: float = DEFAULT_TOLERANCE_M,
) -> list[GridShape]:
    """The file's grid shapes, checked; GeometryFileError lists every problem found."""
    problems: list[CodedError] = []
    given: dict[str, BaseGeometry] = {}
    first_seen: dict[str, int] = {}
    for n, code, raw in read_features(text):
        if code in first_seen:
            problems.append(
                GeometryProblem("geometry.code_twice", n=n, code=code, first=first_seen[code])
            )
            continue
        first_seen[code] = n
        if code not in grids:
            problems.append(GeometryProblem("geometry.unknown_grid", n=n, code=code))
            continue
        try:
            given[code] = parse_geometry(raw)
        except GeometryProblem as exc:
            problems.append(GeometryProblem("geometry.feature", n=n, code=code, problem=exc))
    # The features that could be read are checked for nesting too: every problem at once.
    problems += nesting_problems(given, grids, stored, tolerance_m)
    if problems:
        raise GeometryFileError(problems)
    return [GridShape(code, geom) for code, geom in given.items()]


def nesting_problems(
    given: Mapping[str, BaseGeometry],
    grids: Mapping[str, GridInfo],
    stored: Mapping[str, BaseGeometry],
    tolerance_m: float,
) -> list[CodedError]:
    """Children inside their parents and siblings apart, for every pair the file touches."""
    merged = {**stored, **given}
    if not merged:
        return []
    scale = local_scale(merged.values())
    metric: dict[str, BaseGeometry] = {}

    def m(code: str) -> BaseGeometry:
        if code not in metric:
            metric[code] = to_metres(merged[code], scale)
        return metric[code]

    problems: list[CodedError] = []
    # A child outside its parent: what is left of it outside the parent grown by the tolerance.
    for code in sorted(merged):
        info = grids.get(code)
        parent = info.parent_code if info else None
        if parent is None or parent not in merged or (code not in given and parent not in given):
            continue
        outside = m(code).difference(m(parent).buffer(tolerance_m))
        if not outside.is_empty and outside.area > 0:
            problems.append(
                GeometryProblem(
                    "geometry.outside_parent",
                    code=code,
                    parent=parent,
                    area=m(code).difference(m(parent)).area,
                    tolerance=tolerance_m,
                )
            )
    # Siblings overlapping: an overlap strip wider than twice the tolerance survives shrinking.
    by_parent: dict[str | None, list[str]] = {}
    for code in merged:
        info = grids.get(code)
        by_parent.setdefault(info.parent_code if info else None, []).append(code)
    for siblings in by_parent.values():
        siblings.sort()
        for i, a in enumerate(siblings):
            for b in siblings[i + 1 :]:
                if a not in given and b not in given:
                    continue
                if not m(a).intersects(m(b)):
                    continue
                overlap = m(a).intersection(m(b))
                if overlap.area > 0 and not overlap.buffer(-tolerance_m).is_empty:
                    problems.append(
                        GeometryProblem(
                            "geometry.overlap", a=a, b=b, area=overlap.area, tolerance=tolerance_m
                        )
                    )
    return problems


def feature_collection(shapes: Iterable[tuple[str, BaseGeometry, Mapping[str, Any]]]) -> str:
    """A FeatureCollection of (code, geometry, extra properties), as the reader reads it."""
    features = [
        {
            "type": "Feature",
            "properties": {"code": code, **props},
            "geometry": mapping(geom),
        }
        for code, geom, props in shapes
    ]
    return json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False)
