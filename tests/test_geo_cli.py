"""Grid geometry on the command line, both backends: import refusals, locate, submit by location."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from shapely.geometry import mapping, shape
from sqlalchemy import delete, func, select

from closeloop.app import App
from closeloop.geo import service as geo
from closeloop.models import grid_geometries
from tests.cli_support import Run, command_line

MICRO = "JS-A1-V01-G01"
VILLAGE = "JS-A1-V01"


@pytest.fixture
def cli(app: App, tmp_path: Path) -> Run:
    return command_line(app, tmp_path)


def inside(app: App, code: str) -> tuple[float, float]:
    g = geo.geometry_of(app, code)
    assert g is not None
    p = shape(g).representative_point()
    return p.y, p.x


def test_locate_answers_the_deepest_grid_and_its_lineage(app: App, cli: Run) -> None:
    lat, lon = inside(app, MICRO)
    found = json.loads(cli("grid", "locate", "--lat", str(lat), "--lon", str(lon), "--json").stdout)
    assert found["code"] == MICRO and found["level"] == 4
    assert [p["code"] for p in found["path"]] == ["JS", "JS-A1", VILLAGE, MICRO]
    text = cli("grid", "locate", "--lat", str(lat), "--lon", str(lon)).stdout
    assert text.startswith(f"{MICRO}  堰头村第1户组") and "金山经济开发区 (JS)" in text
    outside = cli("grid", "locate", "--lat", "30.5", "--lon", "120.1", ok=False)
    assert "outside every grid" in outside.stderr and "name a grid" in outside.stderr


def test_submit_by_location_goes_to_the_grid_there(app: App, cli: Run) -> None:
    lat, lon = inside(app, MICRO)
    made = cli(
        "submit",
        "--lat",
        str(lat),
        "--lon",
        str(lon),
        "--category",
        "random_piling",
        "--title",
        "路边堆放垃圾",
        "--json",
    )
    ticket = json.loads(made.stdout)
    assert ticket["grid"] == MICRO and ticket["assignee"] == "yantou.g1"
    assert ticket["lat"] == pytest.approx(lat)
    # Outside the zone, or with nothing to go by: a clear error, nothing written.
    far = cli(
        "submit",
        "--lat",
        "31.2",
        "--lon",
        "121.5",
        "--category",
        "random_piling",
        "--title",
        "x",
        ok=False,
    )
    assert "outside every grid: name a grid" in far.stderr
    none = cli("submit", "--category", "random_piling", "--title", "x", ok=False)
    assert "--grid" in none.stderr and "--lat" in none.stderr
    listed = json.loads(cli("tickets", "--json").stdout)
    assert [t["ref"] for t in listed] == [ticket["ref"]]


def test_without_geometry_the_error_says_to_name_a_grid(app: App, cli: Run) -> None:
    with app.engine.begin() as conn:
        conn.execute(delete(grid_geometries))
    proc = cli(
        "submit",
        "--lat",
        "29.39",
        "--lon",
        "120.11",
        "--category",
        "random_piling",
        "--title",
        "x",
        ok=False,
    )
    assert "no grid geometry" in proc.stderr and "name a grid" in proc.stderr
    shown = json.loads(cli("grid", "show", MICRO, "--json").stdout)
    assert shown["geometry"] is None


def test_import_geometry_refuses_a_bad_file_whole(app: App, cli: Run, tmp_path: Path) -> None:
    micro = shape(geo.geometry_of(app, MICRO))
    village = shape(geo.geometry_of(app, VILLAGE))
    before = _stored(app)
    features = [
        {"type": "Feature", "properties": {"code": "NO-SUCH"}, "geometry": mapping(micro)},
        # a micro grid blown up well past its village, over its siblings
        {
            "type": "Feature",
            "properties": {"code": MICRO},
            "geometry": mapping(micro.buffer(0.01).simplify(0.0005)),
        },
        {
            "type": "Feature",
            "properties": {"code": "JS-A1-V01-G02"},
            "geometry": {
                "type": "Polygon",
                "coordinates": [
                    [[120.0, 29.3], [120.1, 29.4], [120.1, 29.3], [120.0, 29.4], [120.0, 29.3]]
                ],
            },
        },
    ]
    bad = tmp_path / "bad.geojson"
    bad.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    proc = cli("grid", "import-geometry", str(bad), ok=False)
    err = proc.stderr
    assert err.startswith("error: the geometry file is refused, ")
    assert "feature 1 'NO-SUCH': unknown grid code" in err
    assert "feature 3 'JS-A1-V01-G02': the geometry is not valid: Self-intersection" in err
    assert f"grid '{MICRO}' pokes out of its parent '{VILLAGE}'" in err
    assert f"grids '{MICRO}' and 'JS-A1-V01-G03' overlap by" in err
    assert _stored(app) == before
    # A village with a hole where its household groups are: they would poke out of it.
    lake = micro.buffer(-0.0003)
    holed = village.difference(lake)
    one = tmp_path / "village.geojson"
    one.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {"type": "Feature", "properties": {"code": VILLAGE}, "geometry": mapping(holed)}
                ],
            }
        )
    )
    proc = cli("grid", "import-geometry", str(one), ok=False)
    assert f"grid '{MICRO}' pokes out of its parent '{VILLAGE}'" in proc.stderr
    assert _stored(app) == before


def test_import_geometry_replaces_and_routing_follows(app: App, cli: Run, tmp_path: Path) -> None:
    micro = shape(geo.geometry_of(app, MICRO))
    shrunk = micro.buffer(-0.0005)  # about 50 m in from every edge
    edge = micro.difference(shrunk).representative_point()
    lat, lon = edge.y, edge.x
    before = json.loads(
        cli("grid", "locate", "--lat", str(lat), "--lon", str(lon), "--json").stdout
    )
    assert before["code"] == MICRO
    path = tmp_path / "micro.geojson"
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {"type": "Feature", "properties": {"code": MICRO}, "geometry": mapping(shrunk)}
                ],
            }
        )
    )
    said = cli("grid", "import-geometry", str(path)).stdout
    assert said.strip().endswith("geometry of 1 grids stored (1 replaced)")
    after = json.loads(cli("grid", "locate", "--lat", str(lat), "--lon", str(lon), "--json").stdout)
    assert after["code"] == VILLAGE  # the strip left between the groups is the village's
    shown = json.loads(cli("grid", "show", MICRO, "--json").stdout)
    assert shape(shown["geometry"]).equals_exact(shrunk, 1e-9)
    # In this process too, the locator sees the new geometry.
    assert geo.locate(app, lat, lon).code == VILLAGE  # type: ignore[union-attr]


def _stored(app: App) -> tuple[int, object]:
    with app.engine.connect() as conn:
        row = conn.execute(select(func.count(), func.max(grid_geometries.c.updated_at))).one()
    return row[0], row[1]
