"""Grid geometry on the command line: import it, locate a point in the grid."""

from __future__ import annotations

from pathlib import Path

import typer

from closeloop.cli.common import fail, get_app, now, print_json
from closeloop.geo import service as geo


def import_geometry(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="GeoJSON FeatureCollection; properties.code per grid"),
) -> None:
    """Store grid polygons from GeoJSON; a file with any problem is refused whole."""
    a = get_app(ctx)
    result = geo.import_geometry_text(a, _read(file), now(ctx))
    typer.echo(f"{file}: geometry of {result.grids} grids stored ({result.replaced} replaced)")


def _read(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        fail("file.not_found", path=file)
    except IsADirectoryError:
        fail("file.folder_not_geojson", path=file)
    except UnicodeDecodeError:
        fail("file.not_utf8", path=file)


def locate(
    ctx: typer.Context,
    lat: float = typer.Option(..., "--lat", help="Latitude (WGS 84), e.g. 29.39"),
    lon: float = typer.Option(..., "--lon", help="Longitude (WGS 84), e.g. 120.11"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The deepest grid containing the point, and the grids above it."""
    a = get_app(ctx)
    found = geo.locate(a, lat, lon)
    if found is None:
        geo.route(a, lat, lon)  # raises the reason: outside the zone, or no geometry
        return
    if as_json:
        print_json(found.as_dict())
        return
    typer.echo(f"{found.code}  {found.name}")
    typer.echo("  上级 path: " + " / ".join(f"{p['name']} ({p['code']})" for p in found.lineage))


def register(grid_app: typer.Typer) -> None:
    """Add the geometry commands to `closeloop grid` (core's grid group)."""
    grid_app.command("import-geometry")(import_geometry)
    grid_app.command("locate")(locate)
