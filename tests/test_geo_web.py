"""Routing by location over HTTP (JSON API, Open311), Open311 public reads and media files,
the supervisors' map and the weekly report's map; both backends."""

from __future__ import annotations

import html
import json
import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from shapely.geometry import shape
from sqlalchemy import delete, select

from closeloop.app import App
from closeloop.geo import service as geo
from closeloop.models import grid_geometries, grids, metadata
from closeloop.reports.render import render_weekly
from closeloop.reports.weekly import build_weekly
from tests.report_data import REAL_NOW, build_week14
from tests.webtools import MICRO, OTHER_MICRO, PNG, Web, browser, make_web, with_config

BASE = "/open311/v2"
FAR = {"lat": 31.23, "lon": 121.47}  # Shanghai: outside the zone


def inside(app: App, code: str) -> tuple[float, float]:
    g = geo.geometry_of(app, code)
    assert g is not None
    p = shape(g).representative_point()
    return round(p.y, 6), round(p.x, 6)


def ticket(web: Web, ref: str) -> dict[str, Any]:
    r = web.get(f"/api/tickets/{ref}", "duban.wang")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


# --- the JSON API ------------------------------------------------------------------------------


def test_api_submit_without_grid_goes_to_the_grid_at_the_point(web: Web) -> None:
    lat, lon = inside(web.app, OTHER_MICRO)
    body = {"category": "random_piling", "title": "河边垃圾堆", "lat": lat, "lon": lon}
    r = web.client.post("/api/tickets", json=body)
    assert r.status_code == 201, r.text
    t = ticket(web, r.json()["ref"])
    assert t["grid"] == OTHER_MICRO and t["assignee"] == "caoyuan.g1"
    # A form (as the report page sends it) routes the same way.
    form = {k: str(v) for k, v in body.items()}
    r = web.client.post("/api/tickets", data=form, files=[("photos", ("p.png", PNG, "image/png"))])
    assert r.status_code == 201 and ticket(web, r.json()["ref"])["grid"] == OTHER_MICRO
    # The grid named wins over the point.
    r = web.client.post("/api/tickets", json={**body, "grid": MICRO})
    assert ticket(web, r.json()["ref"])["grid"] == MICRO


def test_api_refuses_a_point_outside_and_no_place_at_all(web: Web) -> None:
    body = {"category": "random_piling", "title": "x"}
    r = web.client.post("/api/tickets", json={**body, **FAR})
    assert r.status_code == 422
    assert "outside every grid: name a grid" in r.json()["error"]["message"]
    r = web.client.post("/api/tickets", json=body)
    assert r.status_code == 422 and "name a grid" in r.json()["error"]["message"]
    assert web.get("/api/tickets", "duban.wang").json()["items"] == []


def test_locate_endpoint(web: Web) -> None:
    lat, lon = inside(web.app, MICRO)
    r = web.client.get("/api/locate", params={"lat": lat, "lon": lon})
    assert r.status_code == 200
    found = r.json()
    assert found["code"] == MICRO and found["level"] == 4
    assert [p["code"] for p in found["path"]] == ["JS", "JS-A1", "JS-A1-V01", MICRO]
    r = web.client.get("/api/locate", params=FAR)
    assert r.status_code == 404 and "outside every grid" in r.json()["error"]["message"]
    assert web.client.get("/api/locate", params={"lat": 91, "lon": 0}).status_code == 422


def test_without_geometry_every_door_says_to_name_a_grid(web: Web) -> None:
    lat, lon = inside(web.app, MICRO)
    with web.app.engine.begin() as conn:
        conn.execute(delete(grid_geometries))
    body = {"category": "random_piling", "title": "x", "lat": lat, "lon": lon}
    r = web.client.post("/api/tickets", json=body)
    assert r.status_code == 422 and "no grid geometry" in r.json()["error"]["message"]
    r = open311_post(web, lat=str(lat), long=str(lon))
    assert r.status_code == 400
    assert "no grid geometry" in r.json()[0]["description"]
    assert "attribute[grid]" in r.json()[0]["description"]
    d = web.client.get(f"{BASE}/services/sanitation.json").json()
    assert d["attributes"][0]["required"] is True


# --- Open311 -----------------------------------------------------------------------------------


def open311_post(web: Web, files: Any = None, **fields: str) -> Any:
    form = {
        "service_code": "sanitation",
        "description": "墙角堆满垃圾",
        "api_key": web.token("admin"),
        **fields,
    }
    return web.client.post(f"{BASE}/requests.json", data=form, files=files)


def test_open311_post_with_lat_long_is_routed(web: Web) -> None:
    lat, lon = inside(web.app, OTHER_MICRO)
    r = open311_post(web, lat=str(lat), long=str(lon))
    assert r.status_code == 200, r.text
    ref = r.json()[0]["service_request_id"]
    assert ticket(web, ref)["grid"] == OTHER_MICRO
    r = open311_post(web, lat=str(FAR["lat"]), long=str(FAR["lon"]))
    assert r.status_code == 400
    said = r.json()[0]["description"]
    assert "outside every grid: name a grid" in said and "attribute[grid]" in said


def test_open311_default_grid_takes_points_outside(app: App) -> None:
    configured = with_config(app, "open311", default_grid=MICRO)
    for web in make_web(configured):
        r = open311_post(web, lat=str(FAR["lat"]), long=str(FAR["lon"]))
        assert r.status_code == 200, r.text
        assert ticket(web, r.json()[0]["service_request_id"])["grid"] == MICRO


def test_open311_media_file_is_stored_like_the_pages_photos(web: Web) -> None:
    lat, lon = inside(web.app, MICRO)
    files = [("media", ("wall.png", PNG, "image/png"))]
    r = open311_post(web, files=files, lat=str(lat), long=str(lon))
    assert r.status_code == 200, r.text
    ref = r.json()[0]["service_request_id"]
    key = web.token("duban.wang")
    item = web.client.get(f"{BASE}/requests/{ref}.json", params={"api_key": key}).json()[0]
    assert item["media_url"].startswith("http://testserver/api/evidence/")
    assert web.client.get(item["media_url"], headers=web.auth("duban.wang")).content == PNG
    # Not an image: refused, nothing created.
    bad = [("media", ("wall.jpg", b"MZ\x90\x00 not an image at all", "image/jpeg"))]
    r = open311_post(web, files=bad, lat=str(lat), long=str(lon))
    assert 400 <= r.status_code < 500, r.text
    assert r.json()[0]["code"] == r.status_code
    listed = web.client.get(f"{BASE}/requests.json").json()
    assert [i["service_request_id"] for i in listed] == [ref]


def test_open311_reads_are_public_and_show_public_fields_only(web: Web) -> None:
    lat, lon = inside(web.app, MICRO)
    r = open311_post(
        web,
        lat=str(lat),
        long=str(lon),
        first_name="张",
        last_name="三丰",
        phone="13912345678",
        email="zhang.sanfeng@example.net",
    )
    ref = r.json()[0]["service_request_id"]
    other = open311_post(web, **{"attribute[grid]": OTHER_MICRO, "address_string": "曹园村口"})
    other_ref = other.json()[0]["service_request_id"]
    fixed = web.step(ref, "fix", "yantou.g3", note="内部备注：已联系保洁公司王经理")
    assert fixed.status_code == 200, fixed.text
    listed = web.client.get(f"{BASE}/requests.json")
    assert listed.status_code == 200
    assert {i["service_request_id"] for i in listed.json()} == {ref, other_ref}
    one = web.client.get(f"{BASE}/requests/{ref}.json")
    assert one.status_code == 200
    xml = web.client.get(f"{BASE}/requests.xml").text
    for text in (listed.text, one.text, xml):
        for secret in ("三丰", "13912345678", "zhang.sanfeng", "内部备注", "王经理"):
            assert secret not in text
    item = one.json()[0]
    assert item["media_url"] == "" and item["status"] == "open"
    assert item["lat"] == pytest.approx(lat) and item["agency_responsible"] == "堰头村第3户组"
    assert web.client.get(f"{BASE}/requests/EP-2099-999999.json").status_code == 404
    # A key still narrows the list to what its owner may see.
    key = web.token("caoyuan.g1")
    mine = web.client.get(f"{BASE}/requests.json", params={"api_key": key}).json()
    assert [i["service_request_id"] for i in mine] == [other_ref]
    bad = web.client.get(f"{BASE}/requests.json", params={"api_key": "nonsense"})
    assert bad.status_code == 403


# --- the supervisors' map ----------------------------------------------------------------------


def areas(html: str) -> list[str]:
    return re.findall(r'<path class="area" data-code="([^"]+)"', html)


def test_map_page_for_supervisors(web: Web) -> None:
    lat, lon = inside(web.app, MICRO)
    late = web.submit(lat=lat, lon=lon, title="迟迟未处理")["ref"]
    web.submit(grid=OTHER_MICRO, title="还在期限内", category="illegal_construction")
    web.clock.advance(timedelta(hours=30))  # random_piling: 24 h to fix
    r = web.get("/map", "duban.wang")
    assert r.status_code == 200
    html = r.text
    assert len(areas(html)) == 117  # the small grids
    assert re.search(rf'class="pin" data-ref="{late}" data-level="0"', html)
    assert html.count('class="pin"') == 1
    # The village of the late ticket is coloured as one overdue (1 ticket: the second class).
    village = re.search(r'data-code="JS-A1-V01" d="[^"]+" fill="([^"]+)"', html)
    assert village and village.group(1) == "#fcbba1"
    assert "<script" not in html.split('id="map"')[1].split("</figure>")[0]
    assert "http" not in re.sub(
        r'xmlns="http://www.w3.org/2000/svg"', "", html.split('id="map"')[1].split("</figure>")[0]
    )
    r = web.get("/map?level=2&metric=on_time&lang=en", "duban.wang")
    assert len(areas(r.text)) == 17 and "on-time closure rate" in r.text
    r = web.get("/map?level=4", "duban.wang")
    assert len(areas(r.text)) == 293
    assert web.get("/map", "yantou.lead").status_code == 403
    anonymous = web.client.get("/map", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")


def test_map_tiles_only_when_configured(app: App) -> None:
    url = "https://tiles.example.org/{z}/{x}/{y}.png"
    for web in make_web(with_config(app, "map", tiles=url)):
        html = web.get("/map", "duban.wang").text
        found = re.findall(
            r'<image class="tile" href="https://tiles.example.org/(\d+)/(\d+)/', html
        )
        assert 1 <= len(found) <= 64
        z, x = map(int, found[0])
        west = x / 2**z * 360 - 180
        assert 11 <= z <= 14 and 119.5 < west < 120.5  # tiles over the zone, a few across
    for web in make_web(app):
        assert "<image" not in web.get("/map", "duban.wang").text


# --- the weekly report's map -------------------------------------------------------------------


@pytest.fixture
def report_app(app: App, tmp_path: Path) -> App:
    metadata.create_all(app.engine)
    raw = dict(app.settings.raw)
    raw["report"] = {**raw.get("report", {}), "out_dir": str(tmp_path / "reports")}
    return replace(app, settings=replace(app.settings, raw=raw))


def test_weekly_report_html_has_the_map(report_app: App) -> None:
    refs = build_week14(report_app)
    report = build_weekly(report_app, now=REAL_NOW, week="2026-W14")
    assert report.map is not None
    assert len(report.map.areas) == len(report.rows) == 117
    assert {p.ref for p in report.map.pins} == {o.ref for o in report.overdue}
    assert {refs["T4"], refs["C3"]} <= {p.ref for p in report.map.pins}
    assert report.map.spots and sum(s.count for s in report.map.spots) == sum(
        h.count for h in report.hotspots
    )
    yantou = next(a for a in report.map.areas if a.code == "JS-A1-V01")
    assert (
        yantou.value == next(r for r in report.rows if r.code == "JS-A1-V01").figures.on_time_rate
    )
    html = render_weekly(report, "html", locale="zh_CN", workflow=report_app.workflow).decode()
    svg = html.split('id="weekly-map"')[1].split("</svg>")[0]
    assert svg.count('class="area"') == 117 and svg.count('class="pin"') == len(report.overdue)
    assert 'class="spot"' in svg and "按期办结率" in svg
    assert "<script" not in html


def collection(*features: tuple[str, dict[str, Any]]) -> bytes:
    return json.dumps(
        {
            "type": "FeatureCollection",
            "features": [
                {"type": "Feature", "properties": {"code": code}, "geometry": geometry}
                for code, geometry in features
            ],
        }
    ).encode()


def problems_on(page: str) -> list[str]:
    listed = page.split('id="problems"')[1].split("</ol>")[0]
    return [html.unescape(p) for p in re.findall(r"<li>(.*?)</li>", listed)]


def test_admin_uploads_grid_boundaries_and_reads_every_problem_in_the_pages_language(
    web: Web,
) -> None:
    adm = browser(web, "admin")
    token = adm.csrf("/admin/geometry")
    square = {
        "type": "Polygon",
        "coordinates": [[[120, 29], [120.01, 29], [120.01, 29.01], [120, 29]]],
    }
    bad = collection(("NOPE", square), (MICRO, {"type": "Point", "coordinates": [120, 29]}))
    upload = [("file", ("grids.geojson", bad, "application/geo+json"))]
    r = adm.post("/admin/geometry", files=upload, token=token)
    assert r.status_code == 422 and "地理边界文件未导入，共 2 个问题：" in r.text
    assert problems_on(r.text) == [
        "第 1 个要素 'NOPE'：没有这个网格代码",
        f"第 2 个要素 '{MICRO}'：几何类型是 'Point'，不是 Polygon 或 MultiPolygon",
    ]
    # The boundary stored for a grid, sent again: stored, nothing else changed.
    with web.app.engine.connect() as conn:
        stored = conn.execute(
            select(grid_geometries.c.geojson)
            .join(grids, grids.c.id == grid_geometries.c.grid_id)
            .where(grids.c.code == MICRO)
        ).scalar_one()
    good = [("file", ("grids.geojson", collection((MICRO, json.loads(stored))), "text/plain"))]
    r = adm.post("/admin/geometry", files=good, token=token)
    assert r.status_code == 200 and "已保存 1 个网格的边界（其中替换 1 个）" in r.text
    r = adm.post("/admin/geometry?lang=en", files=upload, token=token)
    assert r.status_code == 422 and "the geometry file is refused, 2 problems:" in r.text
    assert problems_on(r.text)[0] == "feature 1 'NOPE': unknown grid code"
    assert adm.post("/admin/geometry", token=token).status_code == 422  # no file
