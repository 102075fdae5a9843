"""A request body of the JSON API refuses a field it does not know (422, `request.invalid`, the
field named in the reader's language) instead of doing something other than asked; Open311 and
the pages stay lenient. SQLite only: the check runs before any database work.

The routes are found in the app's own OpenAPI schema, so a new write route is covered without
touching this file.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from closeloop.app import App
from closeloop.bootstrap import bootstrap
from closeloop.config import load_settings
from closeloop.errors import CATALOGUE
from closeloop.web.app import create_app
from tests.conftest import CONFIG
from tests.webtools import MICRO, PNG, Web, make_web

ZH, EN = CATALOGUE["request.unknown_field"]
UNKNOWN = "gird"


def _json_bodies() -> list[tuple[str, str]]:
    """Every operation of the API with a JSON request body (building the app needs no data)."""
    paths = create_app(bootstrap(load_settings(CONFIG, "sqlite://"))).openapi()["paths"]
    return sorted(
        (path, method.upper())
        for path, item in paths.items()
        if path.startswith("/api/")
        for method, operation in item.items()
        if "application/json" in operation.get("requestBody", {}).get("content", {})
    )


JSON_BODIES = _json_bodies()


@pytest.fixture
def web(sqlite_app: App) -> Iterator[Web]:
    yield from make_web(sqlite_app)


def _url(web: Web, path: str) -> str:
    values = {"ref": web.submit()["ref"], "handle": "yantou.g3"}
    names = {part[1:-1] for part in path.split("/") if part.startswith("{")}
    assert names <= values.keys(), f"{path}: give this test a value for {names - values.keys()}"
    for name in names:
        path = path.replace("{" + name + "}", values[name])
    return path


def test_the_routes_were_found() -> None:
    found = dict.fromkeys(path for path, _ in JSON_BODIES)
    assert {"/api/tickets", "/api/tokens", "/api/me/password"} <= found.keys()
    assert "/api/tickets/{ref}/steps/fix" in found


@pytest.mark.parametrize(("path", "method"), JSON_BODIES)
def test_an_unknown_field_is_refused_and_named(web: Web, path: str, method: str) -> None:
    r = web.client.request(
        method,
        _url(web, path),
        headers=web.auth("admin"),
        json={UNKNOWN: MICRO},
    )
    assert r.status_code == 422, r.text
    answer = r.json()
    assert answer["error"]["code"] == "request.invalid"
    assert {"field": UNKNOWN, "problem": EN} in answer["details"]
    assert f"{UNKNOWN}: {EN}" in answer["error"]["message"]


def test_the_problem_is_said_in_the_readers_language(web: Web) -> None:
    body = {"grid": MICRO, "category": "sanitation", "title": "墙角垃圾", "catgory": "road"}
    zh = web.client.post("/api/tickets", params={"lang": "zh_CN"}, json=body).json()
    assert zh["details"] == [{"field": "catgory", "problem": ZH}]
    assert zh["error"] == {"code": "request.invalid", "message": f"catgory：{ZH}"}  # one: 。
    assert "拼写" in ZH and "Extra inputs" not in str(zh)
    en = web.client.post("/api/tickets", headers={"Accept-Language": "en"}, json=body).json()
    assert en["details"] == [{"field": "catgory", "problem": EN}]


def test_only_known_fields_still_work(web: Web) -> None:
    r = web.client.post(
        "/api/tickets",
        json={"grid": MICRO, "category": "sanitation", "title": "墙角垃圾", "urgent": False},
    )
    assert r.status_code == 201, r.text
    fix = web.step(r.json()["ref"], "fix", "yantou.g3", note="已清理")
    assert fix.status_code == 200, fix.text


def _form(**extra: Any) -> dict[str, str]:
    return {"grid": MICRO, "category": "sanitation", "title": "墙角垃圾", **extra}


def test_a_form_refuses_unknown_names_even_empty_or_as_a_file(web: Web) -> None:
    r = web.client.post("/api/tickets", data=_form(gird=""))
    assert r.status_code == 422 and {"field": "gird", "problem": EN} in r.json()["details"]
    # `photo` for `photos`: the photo would have been dropped and the report made without it.
    r = web.client.post(
        "/api/tickets", data=_form(), files=[("photo", ("a.png", PNG, "image/png"))]
    )
    assert r.status_code == 422 and {"field": "photo", "problem": EN} in r.json()["details"]


def test_a_form_with_known_names_empty_fields_and_a_csrf_token_works(web: Web) -> None:
    r = web.client.post(
        "/api/tickets",
        data=_form(address="", csrf_token="x"),
        files=[("photos", ("a.png", PNG, "image/png"))],
    )
    assert r.status_code == 201, r.text


def test_open311_still_takes_what_georeport_clients_send(web: Web) -> None:
    r = web.client.post(
        "/open311/v2/requests.json",
        data={
            "api_key": web.token("admin"),
            "jurisdiction_id": "jinshan.example.org",
            "service_code": "sanitation",
            "address_string": "x",
            "attribute[grid]": MICRO,
            "attribute[unknown]": "1",
            "x_client_build": "7",
        },
    )
    assert r.status_code == 200, r.text


def test_the_schema_says_what_is_refused() -> None:
    """JSON and form bodies of the API say additionalProperties: false (the form knows the CSRF
    token); Open311 and the pages' login say nothing, as they take what they do not know."""
    schema = create_app(bootstrap(load_settings(CONFIG, "sqlite://"))).openapi()
    components = schema["components"]["schemas"]

    def resolved(media: dict[str, Any]) -> dict[str, Any]:
        ref = media["schema"].get("$ref", "")
        return components[ref.rsplit("/", 1)[-1]] if ref else media["schema"]  # type: ignore[no-any-return]

    seen = 0
    for path, item in schema["paths"].items():
        for operation in item.values():
            for kind, media in operation.get("requestBody", {}).get("content", {}).items():
                body = resolved(media)
                if path.startswith("/api/"):
                    assert body.get("additionalProperties") is False, (path, kind)
                    if kind == "multipart/form-data":
                        assert "csrf_token" in body["properties"], path
                    seen += 1
                else:
                    assert "additionalProperties" not in body, (path, kind)
    assert seen > len(JSON_BODIES)
