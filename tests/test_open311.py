"""Open311 GeoReport v2: services, posting with an api_key, reading requests; JSON and XML."""

from __future__ import annotations

from datetime import timedelta
from xml.etree import ElementTree as ET

import pytest
from fastapi.testclient import TestClient

from closeloop.app import App
from closeloop.web.app import create_app
from tests.conftest import NOW
from tests.webtools import MICRO, OTHER_MICRO, PNG, Web, make_web, with_config

BASE = "/open311/v2"
ZONE = "jinshan.example.org"


def post(web: Web, key: str | None, **fields: str):  # type: ignore[no-untyped-def]
    form = {
        "service_code": "sanitation",
        "lat": "29.1",
        "long": "119.6",
        "attribute[grid]": MICRO,
        "description": "墙角堆满垃圾\n已经一周了",
        **fields,
    }
    if key is not None:
        form["api_key"] = key
    return web.client.post(f"{BASE}/requests.json", data=form)


class TestServices:
    def test_categories_are_services(self, web: Web) -> None:
        services = web.client.get(f"{BASE}/services.json").json()
        assert [s["service_code"] for s in services] == list(web.app.workflow.categories)
        piling = next(s for s in services if s["service_code"] == "random_piling")
        assert piling["service_name"] == "乱堆乱放" and piling["group"] == "大清理"
        assert piling["metadata"] is True and piling["type"] == "realtime"

    def test_xml(self, web: Web) -> None:
        r = web.client.get(f"{BASE}/services.xml")
        assert r.headers["content-type"].startswith("text/xml")
        root = ET.fromstring(r.content)
        assert root.tag == "services"
        assert root.find("service/service_code").text == "illegal_construction"  # type: ignore[union-attr]
        assert root.find("service/metadata").text == "true"  # type: ignore[union-attr]

    def test_definition_names_the_grid_attribute(self, web: Web) -> None:
        d = web.client.get(f"{BASE}/services/sanitation.json").json()
        assert d["service_code"] == "sanitation"
        # Optional: a request with lat/long goes to the grid there (the zone has geometry).
        assert [(a["code"], a["required"]) for a in d["attributes"]] == [("grid", False)]
        assert "lat/long" in d["attributes"][0]["datatype_description"]
        x = ET.fromstring(web.client.get(f"{BASE}/services/sanitation.xml").content)
        assert x.find("attributes/attribute/code").text == "grid"  # type: ignore[union-attr]

    def test_unknown_service_and_jurisdiction_are_404_in_the_spec_format(self, web: Web) -> None:
        r = web.client.get(f"{BASE}/services/noise.json")
        assert r.status_code == 404
        assert r.json() == [{"code": 404, "description": "service_code 'noise' was not found"}]
        r = web.client.get(f"{BASE}/services.json", params={"jurisdiction_id": "other.org"})
        assert r.status_code == 404 and "jurisdiction_id 'other.org'" in r.json()[0]["description"]
        r = web.client.get(f"{BASE}/services.xml", params={"jurisdiction_id": "other.org"})
        error = ET.fromstring(r.content)
        assert error.tag == "errors" and error.find("error/code").text == "404"  # type: ignore[union-attr]
        ok = web.client.get(f"{BASE}/services.json", params={"jurisdiction_id": ZONE})
        assert ok.status_code == 200

    def test_an_unknown_format_is_400(self, web: Web) -> None:
        r = web.client.get(f"{BASE}/services.csv")
        assert r.status_code == 400 and r.json()[0]["code"] == 400


class TestPost:
    def test_form_encoded_with_api_key(self, web: Web) -> None:
        r = post(web, web.token("admin"), first_name="李", last_name="大伯", email="li@example.org")
        assert r.status_code == 200, r.text
        [created] = r.json()
        ref = created["service_request_id"]
        assert ref == "EP-2026-000001"
        t = web.get(f"/api/tickets/{ref}", "duban.wang").json()
        assert (t["grid"], t["category"], t["state"]) == (MICRO, "sanitation", "assigned")
        assert t["title"] == "墙角堆满垃圾" and t["reporter"] == "李 大伯"
        assert (t["lat"], t["lon"]) == (29.1, 119.6)
        assert [i["ref"] for i in web.get("/api/inbox", "yantou.g3").json()["items"]] == [ref]

    def test_json_with_an_attribute_object_and_xml_answer(self, web: Web) -> None:
        r = web.client.post(
            f"{BASE}/requests.xml",
            json={
                "api_key": web.token("admin"),
                "service_code": "road",
                "address_string": "九龙村邵塘路口",
                "attribute": {"grid": "JS-A1-V01"},
                "media_url": "https://example.org/p.jpg",
            },
        )
        assert r.status_code == 200, r.text
        root = ET.fromstring(r.content)
        ref = root.find("request/service_request_id").text  # type: ignore[union-attr]
        t = web.get(f"/api/tickets/{ref}", "duban.wang").json()
        assert t["address"] == "九龙村邵塘路口"
        assert "media_url: https://example.org/p.jpg" in t["description"]

    def test_api_key_in_the_authorization_header(self, web: Web) -> None:
        r = web.client.post(
            f"{BASE}/requests.json",
            data={"service_code": "sanitation", "address_string": "x", "attribute[grid]": MICRO},
            headers=web.auth("admin"),
        )
        assert r.status_code == 200

    @pytest.mark.parametrize("key", [None, "cl_wrong", "nonsense"])
    def test_an_api_key_is_required(self, web: Web, key: str | None) -> None:
        r = post(web, key)
        assert r.status_code == 403
        assert r.json()[0]["code"] == 403 and "api_key" in r.json()[0]["description"]

    def test_a_revoked_key(self, web: Web) -> None:
        from closeloop.web import auth

        key = web.token("admin")
        auth.revoke_token(web.app, 1, NOW)
        assert post(web, key).status_code == 403

    @pytest.mark.parametrize(
        ("fields", "status", "words"),
        [
            ({"service_code": "noise"}, 404, "service_code 'noise' was not found"),
            ({"jurisdiction_id": "elsewhere"}, 404, "jurisdiction_id 'elsewhere'"),
            ({"attribute[grid]": ""}, 400, "attribute[grid]"),
            ({"attribute[grid]": "NOPE"}, 400, "unknown grid 'NOPE'"),
            ({"lat": "", "long": ""}, 400, "a location is required"),
            ({"long": ""}, 400, "lat and long go together"),
            ({"lat": "north"}, 400, "lat"),
            ({"lat": "95"}, 400, "lat"),
        ],
    )
    def test_bad_requests(self, web: Web, fields: dict[str, str], status: int, words: str) -> None:
        form_key = web.token("admin")
        data = {
            "service_code": "sanitation",
            "lat": "29.1",
            "long": "119.6",
            "attribute[grid]": MICRO,
            "api_key": form_key,
            **fields,
        }
        data = {k: v for k, v in data.items() if v != ""}
        r = web.client.post(f"{BASE}/requests.json", data=data)
        assert r.status_code == status, r.text
        assert words in r.json()[0]["description"]

    def test_default_grid_from_config(self, app: App) -> None:
        for web in make_web(with_config(app, "open311", default_grid="JS-A1-V02")):
            d = web.client.get(f"{BASE}/services/sanitation.json").json()
            assert d["attributes"][0]["required"] is False
            data = {
                "service_code": "sanitation",
                "address_string": "x",
                "api_key": web.token("admin"),
            }
            r = web.client.post(f"{BASE}/requests.json", data=data)
            assert r.status_code == 200, r.text
            ref = r.json()[0]["service_request_id"]
            assert web.get(f"/api/tickets/{ref}", "duban.wang").json()["grid"] == "JS-A1-V02"


class TestRead:
    def test_states_map_to_open_and_closed_with_notes(self, web: Web) -> None:
        key = web.token("duban.wang")
        ref = post(web, key).json()[0]["service_request_id"]
        web.step(ref, "fix", "yantou.g3", note="ok")
        r = web.client.get(f"{BASE}/requests/{ref}.json", params={"api_key": key})
        [item] = r.json()
        assert (item["status"], item["status_notes"]) == ("open", "待核查 (fixed)")
        assert item["agency_responsible"] == "堰头村第3户组"
        assert item["requested_datetime"] == "2026-04-01T09:00:00+08:00"
        assert item["expected_datetime"] is not None and item["media_url"] == ""
        web.step(ref, "verify", "yantou.lead")
        web.step(ref, "close", "yantou.lead")
        [item] = web.client.get(f"{BASE}/requests/{ref}.json", params={"api_key": key}).json()
        assert (item["status"], item["status_notes"]) == ("closed", "已销号 (closed)")

    def test_media_url_points_at_the_first_photo(self, web: Web) -> None:
        made = web.client.post(
            "/api/tickets",
            data={"grid": MICRO, "category": "sanitation", "title": "t"},
            files=[("photos", ("a.png", PNG, "image/png"))],
        ).json()
        key = web.token("duban.wang")
        [item] = web.client.get(
            f"{BASE}/requests/{made['ref']}.json", params={"api_key": key}
        ).json()
        assert item["media_url"] == "http://testserver/api/evidence/1"
        assert web.client.get(item["media_url"], headers=web.auth("duban.wang")).content == PNG

    def test_list_filters(self, web: Web) -> None:
        key = web.token("duban.wang")
        a = post(web, key).json()[0]["service_request_id"]
        web.clock.advance(timedelta(days=2))
        b = post(web, key, service_code="road").json()[0]["service_request_id"]
        c = post(web, key, **{"attribute[grid]": OTHER_MICRO}).json()[0]["service_request_id"]
        web.step(c, "dismiss", "duban.wang", reason="重复")

        def ids(**params: str) -> list[str]:
            r = web.client.get(f"{BASE}/requests.json", params={"api_key": key, **params})
            assert r.status_code == 200, r.text
            return [i["service_request_id"] for i in r.json()]

        assert ids() == [c, b, a]
        assert ids(service_code="road") == [b]
        assert ids(service_code="road,sanitation") == [c, b, a]
        assert ids(status="closed") == [c]
        assert ids(status="open") == [b, a]
        assert ids(service_request_id=f"{a},{c}") == [c, a]
        start = (NOW + timedelta(days=1)).isoformat()
        assert ids(start_date=start) == [c, b]
        assert ids(end_date=start) == [a]
        web.clock.advance(timedelta(days=100))
        assert ids() == []  # the default window is the last 90 days
        assert ids(service_request_id=a) == [a]

    def test_list_errors(self, web: Web) -> None:
        key = web.token("duban.wang")
        for params in (
            {"status": "pending"},
            {"start_date": "2026-04-01T00:00:00"},  # no offset
            {"start_date": "yesterday"},
        ):
            r = web.client.get(f"{BASE}/requests.json", params={"api_key": key, **params})
            assert r.status_code == 400, params
            assert r.json()[0]["code"] == 400
        # Reads are public by default; a zone may want a key for them too.
        assert web.client.get(f"{BASE}/requests.json").status_code == 200
        with TestClient(create_app(with_config(web.app, "open311", read_requires_key=True))) as c:
            r = c.get(f"{BASE}/requests.json")
            assert r.status_code == 403 and "api_key" in r.json()[0]["description"]
            assert c.get(f"{BASE}/requests/EP-2026-000001.json").status_code == 403
            assert c.get(f"{BASE}/services.json").status_code == 200

    def test_a_key_sees_what_its_owner_may_see(self, web: Web) -> None:
        admin = web.token("admin")
        mine = post(web, admin).json()[0]["service_request_id"]
        theirs = post(web, admin, **{"attribute[grid]": OTHER_MICRO}).json()[0][
            "service_request_id"
        ]
        key = web.token("yantou.lead")
        listed = web.client.get(f"{BASE}/requests.json", params={"api_key": key}).json()
        assert [i["service_request_id"] for i in listed] == [mine]
        r = web.client.get(f"{BASE}/requests/{theirs}.json", params={"api_key": key})
        assert r.status_code == 404
        assert r.json() == [
            {"code": 404, "description": f"service_request_id '{theirs}' was not found"}
        ]

    def test_xml_list(self, web: Web) -> None:
        key = web.token("duban.wang")
        ref = post(web, key).json()[0]["service_request_id"]
        r = web.client.get(f"{BASE}/requests.xml", params={"api_key": key})
        root = ET.fromstring(r.content)
        assert root.tag == "service_requests"
        assert [e.text for e in root.iter("service_request_id")] == [ref]
        assert root.find("request/status").text == "open"  # type: ignore[union-attr]
