"""A map as inline SVG (pure): grid areas coloured by a figure, late tickets, recurrence spots.

Drawn from the zone's own geometry on a local equirectangular projection (longitude scaled by
the cosine of the middle latitude), so it needs no map library and no internet. Base tiles are
optional: with a URL template (``{z}/{x}/{y}``) the tiles under the zone are laid beneath the
areas as <image> elements; when they do not load, the map is the same without them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Literal

from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

Metric = Literal["overdue", "on_time"]
METRICS: tuple[Metric, ...] = ("overdue", "on_time")

NO_DATA = "#e6e6e6"
# Counts of overdue tickets: none, then light to dark red.
OVERDUE_COLOURS = ("#f7f7f7", "#fcbba1", "#fc9272", "#ef3b2c", "#a50f15")
OVERDUE_BREAKS = (1, 2, 4, 7)  # 0 | 1 | 2-3 | 4-6 | 7+
# On-time rates: red (low) to green (high).
RATE_COLOURS = ("#d7191c", "#fdae61", "#ffffbf", "#a6d96a", "#1a9641")
RATE_BREAKS = (0.5, 0.7, 0.85, 0.95)
# Late tickets by the number of rungs they climbed (0: late, not escalated yet).
PIN_COLOURS = ("#424242", "#fb8c00", "#e53935", "#8e24aa", "#000000")

TEXT = {
    "zh_CN": {
        "overdue": "超时未办结（件）",
        "on_time": "按期办结率",
        "no_data": "无数据",
        "pin": "超时工单：督办级别",
        "pin_level": "升{n}级",
        "pin_none": "未升级",
        "spot": "复发热点（件）",
        "title": "网格地图",
    },
    "en": {
        "overdue": "overdue, not done (tickets)",
        "on_time": "on-time closure rate",
        "no_data": "no data",
        "pin": "late tickets: supervision level",
        "pin_level": "+{n}",
        "pin_none": "not escalated",
        "spot": "recurrence hot spots (tickets)",
        "title": "grid map",
    },
}


@dataclass(frozen=True)
class Area:
    code: str
    name: str
    geometry: BaseGeometry
    value: float | None  # the figure coloured: a count, or a rate in 0..1; None = no data
    note: str = ""  # shown on hover after the name


@dataclass(frozen=True)
class Pin:
    lon: float
    lat: float
    level: int  # rungs climbed
    ref: str
    title: str


@dataclass(frozen=True)
class Spot:
    lon: float
    lat: float
    count: int
    label: str


@dataclass(frozen=True)
class MapView:
    metric: Metric
    areas: tuple[Area, ...]
    pins: tuple[Pin, ...] = ()
    spots: tuple[Spot, ...] = ()
    outline: BaseGeometry | None = None  # the zone, drawn on top
    extra: Mapping[str, str] = field(default_factory=dict)


def _class_of(value: float, breaks: Sequence[float]) -> int:
    for i, b in enumerate(breaks):
        if value < b:
            return i
    return len(breaks)


def colour(metric: Metric, value: float | None) -> str:
    if value is None:
        return NO_DATA
    if metric == "overdue":
        return OVERDUE_COLOURS[_class_of(value, OVERDUE_BREAKS)]
    return RATE_COLOURS[_class_of(value, RATE_BREAKS)]


class Projection:
    """Longitude/latitude to SVG pixels for a box, keeping the ground's proportions."""

    def __init__(self, bounds: tuple[float, float, float, float], width: float, pad: float):
        minx, miny, maxx, maxy = bounds
        self.minx, self.maxy, self.pad = minx, maxy, pad
        self.kx = math.cos(math.radians((miny + maxy) / 2))
        span_x = max((maxx - minx) * self.kx, 1e-9)
        self.scale = (width - 2 * pad) / span_x
        self.width = width
        self.height = (maxy - miny) * self.scale + 2 * pad

    def xy(self, lon: float, lat: float) -> tuple[float, float]:
        return (
            self.pad + (lon - self.minx) * self.kx * self.scale,
            self.pad + (self.maxy - lat) * self.scale,
        )

    def lonlat(self, x: float, y: float) -> tuple[float, float]:
        return (
            self.minx + (x - self.pad) / (self.kx * self.scale),
            self.maxy - (y - self.pad) / self.scale,
        )


def _ring(proj: Projection, coords: Sequence[tuple[float, ...]]) -> str:
    pts = [proj.xy(c[0], c[1]) for c in coords]
    return "M" + "L".join(f"{x:.1f} {y:.1f}" for x, y in pts) + "Z"


def path_data(proj: Projection, geom: BaseGeometry) -> str:
    polys: Sequence[Polygon]
    if isinstance(geom, Polygon):
        polys = [geom]
    elif isinstance(geom, MultiPolygon):
        polys = list(geom.geoms)
    else:
        return ""
    parts = []
    for p in polys:
        parts.append(_ring(proj, list(p.exterior.coords)))
        parts.extend(_ring(proj, list(r.coords)) for r in p.interiors)
    return "".join(parts)


def tile_images(proj: Projection, url: str, max_tiles: int = 64) -> list[str]:
    """<image> elements of Web Mercator tiles covering the map (a few tiles across)."""
    west, north = proj.lonlat(0, 0)
    east, south = proj.lonlat(proj.width, proj.height)
    span = max(east - west, 1e-9)
    z = max(0, min(19, math.floor(math.log2(360 / span * 3))))

    def tile_x(lon: float) -> float:
        return (lon + 180) / 360 * 2**z

    def tile_y(lat: float) -> float:
        r = math.radians(lat)
        return (1 - math.log(math.tan(r) + 1 / math.cos(r)) / math.pi) / 2 * 2**z

    def lon_of(x: float) -> float:
        return x / 2**z * 360 - 180

    def lat_of(y: float) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * y / 2**z))))

    x0, x1 = math.floor(tile_x(west)), math.floor(tile_x(east))
    y0, y1 = math.floor(tile_y(north)), math.floor(tile_y(south))
    if (x1 - x0 + 1) * (y1 - y0 + 1) > max_tiles:
        return []
    out = []
    for tx in range(x0, x1 + 1):
        for ty in range(y0, y1 + 1):
            ax, ay = proj.xy(lon_of(tx), lat_of(ty))
            bx, by = proj.xy(lon_of(tx + 1), lat_of(ty + 1))
            href = url.replace("{z}", str(z)).replace("{x}", str(tx)).replace("{y}", str(ty))
            out.append(
                f'<image class="tile" href="{escape(href)}" x="{ax:.1f}" y="{ay:.1f}" '
                f'width="{bx - ax:.1f}" height="{by - ay:.1f}" preserveAspectRatio="none"/>'
            )
    return out


def _legend(view: MapView, t: Mapping[str, str], y: float) -> list[str]:
    out = [f'<g class="legend" transform="translate(8 {y:.0f})" font-size="11">']
    if view.metric == "overdue":
        labels = ["0", "1", "2-3", "4-6", "7+"]
        colours: Sequence[str] = OVERDUE_COLOURS
    else:
        labels = ["<50%", "50-70%", "70-85%", "85-95%", "≥95%"]
        colours = RATE_COLOURS
    out.append(f'<text x="0" y="10">{escape(t[view.metric])}</text>')
    x = 0.0
    for label, c in [*zip(labels, colours, strict=True), (t["no_data"], NO_DATA)]:
        out.append(
            f'<rect x="{x:.0f}" y="16" width="14" height="12" fill="{c}" stroke="#888"/>'
            f'<text x="{x + 18:.0f}" y="26">{escape(label)}</text>'
        )
        x += 26 + 7 * len(label)
    out.append(f'<text x="0" y="46">{escape(t["pin"])}</text>')
    x = 0.0
    for n, c in enumerate(PIN_COLOURS):
        label = t["pin_none"] if n == 0 else t["pin_level"].format(n=n)
        out.append(
            f'<circle cx="{x + 6:.0f}" cy="57" r="5" fill="{c}" stroke="#fff"/>'
            f'<text x="{x + 15:.0f}" y="61">{escape(label)}</text>'
        )
        x += 30 + 7 * len(label)
    out.append(
        '<circle cx="7" cy="77" r="7" fill="none" stroke="#6a1b9a" stroke-width="2"/>'
        f'<text x="20" y="81">{escape(t["spot"])}</text>'
    )
    out.append("</g>")
    return out


def render_svg(
    view: MapView,
    *,
    locale: str = "zh_CN",
    width: int = 680,
    tiles: str = "",
    element_id: str = "grid-map",
) -> str:
    """The map as one <svg> element, sized to `width` pixels, with a legend below."""
    t = TEXT["en" if locale.startswith("en") else "zh_CN"]
    geoms = [a.geometry for a in view.areas]
    if view.outline is not None:
        geoms.append(view.outline)
    if not geoms:
        return ""
    xs0, ys0, xs1, ys1 = zip(*(g.bounds for g in geoms), strict=True)
    proj = Projection((min(xs0), min(ys0), max(xs1), max(ys1)), width, 8)
    legend_h = 92
    height = proj.height + legend_h
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="{escape(element_id)}" class="grid-map" '
        f'viewBox="0 0 {width} {height:.0f}" width="100%" role="img" '
        f'aria-label="{escape(t["title"])}" font-family="sans-serif">',
        f'<rect width="{width}" height="{proj.height:.0f}" fill="#fbfbf8"/>',
    ]
    if tiles:
        out.extend(tile_images(proj, tiles))
    opacity = ' fill-opacity="0.75"' if tiles else ""
    out.append('<g class="areas" stroke="#555" stroke-width="0.6" fill-rule="evenodd">')
    for a in view.areas:
        note = f" — {a.note}" if a.note else ""
        out.append(
            f'<path class="area" data-code="{escape(a.code)}" d="{path_data(proj, a.geometry)}" '
            f'fill="{colour(view.metric, a.value)}"{opacity}>'
            f"<title>{escape(a.name)} ({escape(a.code)}){escape(note)}</title></path>"
        )
    out.append("</g>")
    if view.outline is not None:
        out.append(
            f'<path class="outline" d="{path_data(proj, view.outline)}" fill="none" '
            'stroke="#222" stroke-width="1.6"/>'
        )
    out.append('<g class="spots">')
    biggest = max((s.count for s in view.spots), default=1)
    for s in view.spots:
        x, y = proj.xy(s.lon, s.lat)
        r = 6 + 12 * math.sqrt(s.count / biggest)
        out.append(
            f'<g class="spot"><circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" fill="#6a1b9a" '
            f'fill-opacity="0.18" stroke="#6a1b9a" stroke-width="2"/>'
            f'<text x="{x:.1f}" y="{y + 4:.1f}" text-anchor="middle" font-size="11" '
            f'fill="#4a148c">{s.count}</text><title>{escape(s.label)}</title></g>'
        )
    out.append("</g>")
    out.append('<g class="pins">')
    for p in view.pins:
        x, y = proj.xy(p.lon, p.lat)
        c = PIN_COLOURS[min(max(p.level, 0), len(PIN_COLOURS) - 1)]
        out.append(
            f'<circle class="pin" data-ref="{escape(p.ref)}" data-level="{p.level}" '
            f'cx="{x:.1f}" cy="{y:.1f}" r="4.5" fill="{c}" stroke="#fff" stroke-width="1.2">'
            f"<title>{escape(p.ref)} {escape(p.title)}</title></circle>"
        )
    out.append("</g>")
    out.extend(_legend(view, t, proj.height + 4))
    out.append("</svg>")
    return "".join(out)
