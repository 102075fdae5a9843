"""Where the problem is, on the web: locating a point (the report page's "use my location") and
the supervisors' map (/map), drawn as inline SVG from the zone's own geometry."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from closeloop import escalation
from closeloop.app import App
from closeloop.geo import mapdata, svgmap
from closeloop.geo import service as geo
from closeloop.geo.svgmap import METRICS, Metric
from closeloop.reports.render import pct
from closeloop.reports.weekly import build_weekly
from closeloop.tickets import DomainError, NotFound, NotPermitted
from closeloop.web.auth import OptionalUser, request_now, web_app
from closeloop.web.pages.base import page_locale, render
from closeloop.web.schemas import ErrorBody

router = APIRouter()
MAP_LEVELS = (2, 3, 4)


class LineageItem(BaseModel):
    code: str
    name: str
    level: int


class Located(BaseModel):
    code: str
    name: str
    level: int
    path: list[LineageItem]


@router.get(
    "/api/locate",
    response_model=Located,
    summary="The deepest grid containing a point (public: the report page asks it)",
    responses={404: {"model": ErrorBody, "description": "no grid contains the point"}},
    tags=["zone"],
)
async def locate(
    request: Request,
    lat: Annotated[float, Query(ge=-90, le=90, allow_inf_nan=False)],
    lon: Annotated[float, Query(ge=-180, le=180, allow_inf_nan=False)],
) -> dict[str, Any]:
    app = web_app(request)

    def find() -> dict[str, Any]:
        found = geo.locate(app, lat, lon)
        if found is None:
            try:
                geo.route(app, lat, lon)  # raises why: outside every grid, or no geometry
            except DomainError as exc:  # no grid there: the lookup finds nothing, 404
                raise NotFound(exc.code, **exc.params) from None
        assert found is not None
        return found.as_dict()

    return await run_in_threadpool(find)


def tiles_url(app: App) -> str:
    value = app.settings.section("map").get("tiles", "")
    return value.strip() if isinstance(value, str) else ""


def supervision_map(
    app: App, now: Any, *, level: int, metric: Metric, locale: str
) -> tuple[str, list[dict[str, Any]]]:
    """The map's SVG and the rows of the table under it (the same figures, as text)."""
    places = mapdata.Places(app)
    overdue = escalation.overdue(app, now)
    report = build_weekly(app, now=now, level=level)
    counts: Counter[str] = Counter()
    for item in overdue:
        area = places.area_of(item["grid"], level)
        if area is not None:
            counts[area] += 1
    rates = {row.code: row.figures.on_time_rate for row in report.rows}
    values: dict[str, float | None]
    if metric == "overdue":
        values = {s.code: float(counts.get(s.code, 0)) for s in places.shapes if s.level == level}
    else:
        values = dict(rates)
    notes = {
        code: f"{counts.get(code, 0)} / {pct(rates.get(code))}"
        for code in {s.code for s in places.shapes if s.level == level}
    }
    late = [mapdata.Late(i["ref"], i["title"], i["grid"], i["escalation_level"]) for i in overdue]
    recurring = [
        mapdata.Recurring(h.grid_code, h.count, f"{h.grid_name} · {h.category_label.get(locale)}")
        for h in report.hotspots
    ]
    view = mapdata.build_view(
        app,
        level=level,
        metric=metric,
        values=values,
        notes=notes,
        late=late,
        recurring=recurring,
        places=places,
    )
    svg = svgmap.render_svg(view, locale=locale, tiles=tiles_url(app))
    rows: list[dict[str, Any]] = [
        {
            "code": s.code,
            "name": s.name,
            "overdue": counts.get(s.code, 0),
            "on_time": pct(rates.get(s.code)),
        }
        for s in places.shapes
        if s.level == level and (counts.get(s.code) or rates.get(s.code) is not None)
    ]
    rows.sort(key=lambda r: (-r["overdue"], r["code"]))
    return svg, rows


@router.get("/map", include_in_schema=False)
async def map_page(
    request: Request,
    principal: OptionalUser,
    level: Annotated[int, Query(ge=2, le=4)] = 3,
    metric: Annotated[str, Query(max_length=10)] = "overdue",
) -> Response:
    if principal is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?{urlencode({'next': target})}", status_code=303)
    if not principal.is_supervisor:
        raise NotPermitted("geo.map_supervisor_only", handle=principal.handle)
    chosen: Metric = "on_time" if metric == "on_time" else "overdue"
    app, now, locale = web_app(request), request_now(request), page_locale(request)
    svg, rows = await run_in_threadpool(
        supervision_map, app, now, level=level, metric=chosen, locale=locale
    )
    return render(
        request,
        "map.html",
        principal=principal,
        svg=svg,
        rows=rows,
        level=level,
        levels=MAP_LEVELS,
        metric=chosen,
        metrics=METRICS,
    )
