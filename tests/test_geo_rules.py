"""Grid geometry without a database: the file's checks, and locating points (boundaries, holes)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
import shapely
from shapely.geometry import Point, Polygon, box, mapping

from closeloop.geo.locator import Locator, Placed
from closeloop.geo.rules import GeometryFileError, GridInfo, check_file
from closeloop.gridfile import read_grid_csv

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "zones" / "example"
M = 1 / 111_320  # about one metre of latitude, in degrees

GRIDS = {
    "Z": GridInfo("Z", 1, None),
    "A": GridInfo("A", 2, "Z"),
    "B": GridInfo("B", 2, "Z"),
    "A1": GridInfo("A1", 3, "A"),
    "A2": GridInfo("A2", 3, "A"),
}
# A zone of 0.02 x 0.01 degrees near the example zone, cut in two halves, A cut in two.
BOXES: dict[str, Any] = {
    "Z": box(120.00, 29.30, 120.02, 29.31),
    "A": box(120.00, 29.30, 120.01, 29.31),
    "B": box(120.01, 29.30, 120.02, 29.31),
    "A1": box(120.00, 29.30, 120.01, 29.305),
    "A2": box(120.00, 29.305, 120.01, 29.31),
}


def collection(shapes: dict[str, Any]) -> str:
    features = [
        {
            "type": "Feature",
            "properties": {"code": code},
            "geometry": g if isinstance(g, dict) else mapping(g),
        }
        for code, g in shapes.items()
    ]
    return json.dumps({"type": "FeatureCollection", "features": features})


def problems_of(shapes: dict[str, Any], stored: dict[str, Any] | None = None) -> list[str]:
    with pytest.raises(GeometryFileError) as info:
        check_file(collection(shapes), GRIDS, stored or {})
    return info.value.problems


def test_a_nested_file_is_accepted() -> None:
    shapes = check_file(collection(BOXES), GRIDS, {})
    assert sorted(s.code for s in shapes) == sorted(BOXES)


def test_unknown_code_is_named() -> None:
    problems = problems_of({**BOXES, "NOPE": box(120.0, 29.3, 120.001, 29.301)})
    assert problems == ["feature 6 'NOPE': unknown grid code"]


def test_invalid_geometry_is_named_with_the_reason() -> None:
    bowtie = Polygon([(120.0, 29.30), (120.01, 29.31), (120.01, 29.30), (120.0, 29.31)])
    problems = problems_of({**BOXES, "A1": bowtie})
    assert len(problems) == 1
    assert problems[0].startswith("feature 4 'A1': the geometry is not valid: Self-intersection")


def test_wrong_types_and_ranges_are_named() -> None:
    problems = problems_of(
        {
            "Z": mapping(Point(120.0, 29.3)),
            "A": {"type": "Polygon", "coordinates": [[[29.3, 200.0], [29.4, 200.0], [29.4, 201]]]},
            "B": {"type": "Polygon", "coordinates": "nonsense"},
        }
    )
    assert problems[0] == "feature 1 'Z': the geometry is a 'Point', not a Polygon or MultiPolygon"
    assert problems[1].startswith("feature 2 'A': ")
    assert problems[2].startswith("feature 3 'B': the coordinates are not a Polygon")
    assert len(problems) == 3


def test_not_a_feature_collection() -> None:
    for text, said in (
        ("{", "not JSON"),
        ('{"type": "Feature"}', "not a GeoJSON FeatureCollection"),
        ('{"type": "FeatureCollection", "features": []}', "has no features"),
        ('{"type": "FeatureCollection", "features": [{"properties": {}}]}', "no properties.code"),
    ):
        with pytest.raises(GeometryFileError) as info:
            check_file(text, GRIDS, {})
        assert said in str(info.value)


def test_child_poking_out_of_its_parent_is_refused() -> None:
    out = box(120.00, 29.30, 120.0105, 29.305)  # 0.0005 degrees (about 48 m) into B
    problems = problems_of({**BOXES, "A1": out})
    assert any(p.startswith("grid 'A1' pokes out of its parent 'A' by ") for p in problems)


def test_siblings_overlapping_beyond_tolerance_are_refused() -> None:
    wide = box(120.00, 29.30, 120.0103, 29.31)  # A reaches 30 m into B
    problems = problems_of({"A": wide, "B": BOXES["B"]}, stored={"Z": BOXES["Z"]})
    assert len(problems) == 1 and problems[0].startswith("grids 'A' and 'B' overlap by ")


def test_within_tolerance_is_accepted() -> None:
    # Half a metre of overlap and of poking out: a digitising error, not a problem.
    a = box(120.00, 29.30, 120.01 + 0.5 * M, 29.31)
    a1 = box(120.00, 29.30 - 0.3 * M, 120.01, 29.305)
    shapes = check_file(collection({**BOXES, "A": a, "A1": a1}), GRIDS, {})
    assert len(shapes) == 5


def test_every_problem_of_a_file_at_once() -> None:
    bowtie = Polygon([(120.0, 29.30), (120.01, 29.31), (120.01, 29.30), (120.0, 29.31)])
    problems = problems_of(
        {**BOXES, "X": BOXES["A"], "A2": bowtie, "A1": box(120.00, 29.29, 120.01, 29.305)}
    )
    assert len(problems) == 3, problems
    assert any("unknown grid code" in p for p in problems)
    assert any("'A2': the geometry is not valid" in p for p in problems)
    assert any("grid 'A1' pokes out" in p for p in problems)


def test_nesting_is_checked_against_stored_geometry() -> None:
    stored = {"Z": BOXES["Z"], "A": BOXES["A"]}
    problems = problems_of({"A1": box(120.005, 29.30, 120.015, 29.305)}, stored)
    assert problems[0].startswith("grid 'A1' pokes out of its parent 'A'")
    # and a sibling stored earlier is a sibling all the same
    problems = problems_of({"B": box(120.005, 29.30, 120.02, 29.31)}, stored)
    assert problems[0].startswith("grids 'A' and 'B' overlap")


# --- locating ----------------------------------------------------------------------------------


def locator(shapes: dict[str, Any]) -> Locator:
    return Locator(Placed(code, GRIDS[code].level, g) for code, g in shapes.items())


def test_deepest_grid_wins() -> None:
    loc = locator(BOXES)
    assert loc.locate(29.302, 120.005) == "A1"
    assert loc.locate(29.308, 120.005) == "A2"
    assert loc.locate(29.305, 120.015) == "B"  # B has no children
    assert loc.locate(29.32, 120.005) is None
    assert loc.locate(29.305, 119.99) is None


def test_boundaries_belong_to_the_grids_on_both_sides() -> None:
    loc = locator(BOXES)
    # On the edge between A1 and A2 (both level 3): the smaller code, every time.
    assert loc.locate(29.305, 120.005) == "A1"
    # On the edge between A (its children A1/A2) and B: the deepest, A1 or A2, wins over B.
    assert loc.locate(29.302, 120.01) == "A1"
    # On the zone's outer edge, and at its corner: still in the zone.
    assert loc.locate(29.31, 120.015) == "B"
    assert loc.locate(29.30, 120.02) == "B"


def test_a_point_in_a_hole_belongs_to_the_grid_around() -> None:
    lake = box(120.003, 29.302, 120.006, 29.304)
    holed = Polygon(BOXES["A1"].exterior.coords, [lake.exterior.coords])
    loc = locator({**BOXES, "A1": holed})
    assert loc.locate(29.303, 120.0045) == "A"  # in the hole: A1's parent
    assert loc.locate(29.304, 120.0045) == "A1"  # on the hole's rim: A1 itself
    assert loc.locate(29.3015, 120.0045) == "A1"
    # A hole in the zone itself: outside every grid.
    zone_only = locator({"Z": Polygon(BOXES["Z"].exterior.coords, [lake.exterior.coords])})
    assert zone_only.locate(29.303, 120.0045) is None


def test_an_empty_locator_finds_nothing() -> None:
    assert Locator([]).locate(29.3, 120.0) is None and Locator([]).bounds() is None


# --- the example zone --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def example() -> tuple[dict[str, GridInfo], list[Any]]:
    rows = read_grid_csv((EXAMPLE / "grids.csv").read_text(encoding="utf-8-sig"))
    infos = {r.code: GridInfo(r.code, r.level, r.parent_code) for r in rows}
    shapes = check_file((EXAMPLE / "grids.geojson").read_text(encoding="utf-8"), infos, {})
    return infos, shapes


def test_example_zone_has_a_polygon_for_every_grid_in_zhejiang(
    example: tuple[dict[str, GridInfo], list[Any]],
) -> None:
    infos, shapes = example
    assert {s.code for s in shapes} == set(infos) and len(shapes) == 428
    zone = next(s.geometry for s in shapes if infos[s.code].level == 1)
    minx, miny, maxx, maxy = zone.bounds
    assert 119.9 < minx < maxx < 120.3 and 29.3 < miny < maxy < 29.5  # central Zhejiang
    assert 10 < (maxx - minx) * 97 < 40  # kilometres east-west


def test_example_zone_children_tile_their_parents(
    example: tuple[dict[str, GridInfo], list[Any]],
) -> None:
    infos, shapes = example
    by_code = {s.code: s.geometry for s in shapes}
    for code in infos:
        kids = [by_code[c] for c, i in infos.items() if i.parent_code == code]
        if not kids:
            continue
        covered = sum(k.area for k in kids) / by_code[code].area
        assert 0.999 < covered < 1.001, (code, covered)


def test_example_zone_routes_every_micro_grid_to_itself(
    example: tuple[dict[str, GridInfo], list[Any]],
) -> None:
    infos, shapes = example
    loc = Locator(Placed(s.code, infos[s.code].level, s.geometry) for s in shapes)
    for s in shapes:
        if infos[s.code].level == 4:
            p = s.geometry.representative_point()
            assert loc.locate(p.y, p.x) == s.code


def test_a_locate_tests_only_the_few_grids_near_the_point(
    example: tuple[dict[str, GridInfo], list[Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # How fast locating is, is benchmarks/locate.py's figure; what a test can hold without a
    # clock is why it is fast: the tree hands each point only the grids whose boxes hold it,
    # so the exact geometry test runs on a handful of grids, not on the whole zone.
    infos, shapes = example
    loc = Locator(Placed(s.code, infos[s.code].level, s.geometry) for s in shapes)
    minx, miny, maxx, maxy = loc.bounds() or (0, 0, 0, 0)
    points = [
        (miny + (maxy - miny) * (i % 100) / 100, minx + (maxx - minx) * (i // 100) / 100)
        for i in range(10_000)
    ]
    tested: list[int] = []
    covers = shapely.covers

    def counting(geoms: Any, point: Any) -> Any:
        tested.append(len(geoms))
        return covers(geoms, point)

    monkeypatch.setattr(shapely, "covers", counting)
    found = [loc.locate(lat, lon) for lat, lon in points]
    assert sum(f is not None for f in found) > 5000
    # The example zone has 428 grids; a point meets its chain of nested grids (zone, medium,
    # small, micro) and, near a boundary, the neighbours whose boxes reach over it: 4.5 on
    # average and 13 at most when this was written.
    assert len(loc) > 400
    assert max(tested) <= 20, max(tested)
    assert sum(tested) / len(points) < 6


def test_generator_writes_the_shipped_geometry() -> None:
    spec = importlib.util.spec_from_file_location(
        "make_example_zone", ROOT / "tools" / "make_example_zone.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = module.build_rows()
    assert module.render_geometry(rows) == (EXAMPLE / "grids.geojson").read_text(encoding="utf-8")
