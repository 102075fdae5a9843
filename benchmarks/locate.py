"""Locating points in the example zone's 428 grid polygons.

10,000 points spread over the zone's bounding box (a fixed seed; about 70% fall inside the
zone) are located three ways, and the answers must agree:

- `Locator.locate`: the STRtree built once, prepared polygons for the few candidates (what the
  service keeps per process);
- the baseline: the same prepared polygons, every one tested for every point, deepest first
  (no index);
- `geo.service.route` through a SQLite database made by `closeloop init` (1,000 of the points):
  the per-call stamp query and the grid's lineage, as a submission pays it.

    .venv/bin/python benchmarks/locate.py [--points 10000] [--seed 13]

The last line printed is one JSON object with the figures (target: 10,000 locates < 1 s).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import shapely

sys.path.remove(str(Path(__file__).resolve().parent))  # benchmarks/http.py shadows http
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from closeloop import zone
from closeloop.bootstrap import bootstrap
from closeloop.config import load_settings
from closeloop.geo import service as geo
from closeloop.geo.locator import Locator, Placed
from closeloop.geo.rules import GridInfo, check_file
from closeloop.gridfile import read_grid_csv

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "zones" / "example"
NOW = datetime(2026, 4, 1, 1, 0, tzinfo=UTC)


def brute_force(items: list[Placed]):  # type: ignore[no-untyped-def]
    ordered = sorted(items, key=lambda g: (-g.level, g.code))
    geoms = np.array([g.geometry for g in ordered], dtype=object)
    shapely.prepare(geoms)
    codes = [g.code for g in ordered]

    def locate(lat: float, lon: float) -> str | None:
        hits = np.flatnonzero(shapely.covers(geoms, shapely.Point(lon, lat)))
        return codes[hits[0]] if len(hits) else None

    return locate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()

    rows = read_grid_csv((EXAMPLE / "grids.csv").read_text(encoding="utf-8-sig"))
    infos = {r.code: GridInfo(r.code, r.level, r.parent_code) for r in rows}
    shapes = check_file((EXAMPLE / "grids.geojson").read_text(encoding="utf-8"), infos, {})
    items = [Placed(s.code, infos[s.code].level, s.geometry) for s in shapes]

    started = time.perf_counter()
    locator = Locator(items)
    build_s = time.perf_counter() - started
    minx, miny, maxx, maxy = locator.bounds() or (0.0, 0.0, 0.0, 0.0)
    rng = random.Random(args.seed)
    points = [(rng.uniform(miny, maxy), rng.uniform(minx, maxx)) for _ in range(args.points)]

    started = time.perf_counter()
    found = [locator.locate(lat, lon) for lat, lon in points]
    tree_s = time.perf_counter() - started

    baseline = brute_force(items)
    started = time.perf_counter()
    expected = [baseline(lat, lon) for lat, lon in points]
    brute_s = time.perf_counter() - started
    assert found == expected, "the locator and the baseline disagree"

    with tempfile.TemporaryDirectory() as tmp:
        app = bootstrap(load_settings(ROOT / "config.toml", f"sqlite:///{tmp}/zone.db"))
        zone.init(app, NOW)
        inside = [(p, f) for p, f in zip(points, found, strict=True) if f is not None][:1000]
        started = time.perf_counter()
        routed = [geo.route(app, lat, lon) for (lat, lon), _ in inside]
        service_s = time.perf_counter() - started
        assert routed == [f for _, f in inside]
        app.engine.dispose()

    n = len(points)
    result = {
        "benchmark": "locate",
        "grids": len(items),
        "points": n,
        "inside": sum(f is not None for f in found),
        "build_ms": round(build_s * 1000, 1),
        "locator_s": round(tree_s, 3),
        "locator_per_s": round(n / tree_s),
        "baseline_s": round(brute_s, 3),
        "baseline_per_s": round(n / brute_s),
        "speedup": round(brute_s / tree_s, 1),
        "service_route_per_s": round(len(inside) / service_s),
        "target_met": tree_s < 1.0,
    }
    print(
        f"{n} locates: STRtree {tree_s:.3f} s ({result['locator_per_s']:,}/s), "
        f"every polygon tested {brute_s:.3f} s ({result['baseline_per_s']:,}/s); "
        f"through the service (SQLite) {result['service_route_per_s']:,}/s"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
