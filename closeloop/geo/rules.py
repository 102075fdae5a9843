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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import shapely
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

DEFAULT_TOLERANCE_M = 1.0
GEOMETRY_TYPES = ("Polygon", "MultiPolygon")
METRES_PER_DEGREE = 111_320.0
MAX_PROBLEMS = 200


class GeometryFileError(ValueError):
    """The geometry file is refused; ``problems`` lists every problem found."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        head = f"the geometry file is refused, {count} problem{'s' if count != 1 else ''}:"
        shown = self.problems[:MAX_PROBLEMS]
        more = [f"  ... and {count - len(shown)} more"] if count > len(shown) else []
        super().__init__("\n".join([head, *(f"  {p}" for p in shown), *more]))


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
    """A GeoJSON geometry object as a shapely geometry; ValueError says what is wrong."""
    if not isinstance(value, Mapping):
        raise ValueError("the geometry is missing or not an object")
    kind = value.get("type")
    if kind not in GEOMETRY_TYPES:
        raise ValueError(f"the geometry is a {kind!r}, not a Polygon or MultiPolygon")
    try:
        geom = shape(value)
    except (ValueError, TypeError, IndexError, AttributeError, shapely.errors.ShapelyError) as e:
        raise ValueError(f"the coordinates are not a {kind}: {e}") from None
    if geom.is_empty:
        raise ValueError("the geometry is empty")
    coords = shapely.get_coordinates(geom)
    if not (coords[:, 0].min() >= -180 and coords[:, 0].max() <= 180):
        raise ValueError("a longitude is outside -180..180 (GeoJSON is longitude first)")
    if not (coords[:, 1].min() >= -90 and coords[:, 1].max() <= 90):
        raise ValueError("a latitude is outside -90..90 (GeoJSON is longitude first)")
    if not geom.is_valid:
        raise ValueError(f"the geometry is not valid: {explain_validity(geom)}")
    return geom


def read_features(text: str) -> list[tuple[int, str, Any]]:
    """(feature number from 1, code, raw geometry) for each feature; GeometryFileError when the
    file itself is not a FeatureCollection of features with a code."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise GeometryFileError([f"file: not JSON: {exc}"]) from None
    if not isinstance(doc, Mapping) or doc.get("type") != "FeatureCollection":
        raise GeometryFileError(["file: not a GeoJSON FeatureCollection"])
    features = doc.get("features")
    if not isinstance(features, list) or not features:
        raise GeometryFileError(["file: the FeatureCollection has no features"])
    out: list[tuple[int, str, Any]] = []
    problems: list[str] = []
    for n, f in enumerate(features, start=1):
        props = f.get("properties") if isinstance(f, Mapping) else None
        code = props.get("code") if isinstance(props, Mapping) else None
        if not isinstance(code, str) or not code.strip():
            problems.append(f"feature {n}: no properties.code naming its grid")
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
    problems: list[str] = []
    given: dict[str, BaseGeometry] = {}
    first_seen: dict[str, int] = {}
    for n, code, raw in read_features(text):
        label = f"feature {n} '{code}'"
        if code in first_seen:
            problems.append(f"{label}: code appears twice (first as feature {first_seen[code]})")
            continue
        first_seen[code] = n
        if code not in grids:
            problems.append(f"{label}: unknown grid code")
            continue
        try:
            given[code] = parse_geometry(raw)
        except ValueError as exc:
            problems.append(f"{label}: {exc}")
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
) -> list[str]:
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

    problems: list[str] = []
    # A child outside its parent: what is left of it outside the parent grown by the tolerance.
    for code in sorted(merged):
        info = grids.get(code)
        parent = info.parent_code if info else None
        if parent is None or parent not in merged or (code not in given and parent not in given):
            continue
        outside = m(code).difference(m(parent).buffer(tolerance_m))
        if not outside.is_empty and outside.area > 0:
            problems.append(
                f"grid '{code}' pokes out of its parent '{parent}' by "
                f"{m(code).difference(m(parent)).area:,.0f} m² (tolerance {tolerance_m:g} m)"
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
                        f"grids '{a}' and '{b}' overlap by {overlap.area:,.0f} m² "
                        f"(tolerance {tolerance_m:g} m)"
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
