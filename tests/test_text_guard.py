"""Issue 10, item 3: no 500 from text or JSON a client may send.

A lone surrogate ("\\ud800") in a title, note, Open311 description or token label was a 500
(UnicodeEncodeError in the database driver) and the keep-alive connection died; a body of
100,000 `[` was a 500 (RecursionError). Both are now 400/422 with a JSON error, on SQLite and
PostgreSQL, and the connection stays open. A title of zero-width characters only is refused
like a blank one; control characters other than newline and tab are dropped.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import pytest

from closeloop import service
from closeloop.bootstrap import App
from closeloop.textguard import (
    NO_NUL_PATTERN,
    BadJson,
    BadText,
    clean_text,
    has_visible,
    loads_json,
    nonblank_pattern,
    visible_pattern,
)
from tests.livetools import head, live_server, read_response
from tests.webtools import MICRO, Web

LONE = "\ud800"
DEEP = "[" * 100_000
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"


def test_the_guard_itself() -> None:
    with pytest.raises(BadText, match="surrogate"):
        clean_text("a" + LONE)
    with pytest.raises(BadText, match="NUL"):
        clean_text("a\x00")
    assert clean_text("a\x07b\x1bc\x7f\td\r\ne\rf") == "abc\td\ne\nf"
    assert not has_visible(ZERO_WIDTH + " \u3000\u3164\u2800")
    assert has_visible(ZERO_WIDTH + "垃")
    with pytest.raises(BadJson, match="nested"):
        loads_json(DEEP)
    with pytest.raises(BadJson, match="nested"):
        loads_json("[" * 40 + "]" * 40)
    assert loads_json('{"a": [[1]]}') == {"a": [[1]]}


def _json_error(r: Any, *statuses: int) -> dict[str, Any] | list[Any]:
    assert r.status_code in statuses, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    body: dict[str, Any] | list[Any] = r.json()
    return body


SUBMIT = {"grid": MICRO, "category": "random_piling", "title": "河边垃圾堆"}


@pytest.mark.parametrize(
    "field", ["title", "description", "address", "reporter_name", "reporter_phone"]
)
def test_a_lone_surrogate_in_a_report_is_422(web: Web, field: str) -> None:
    body = json.dumps({**SUBMIT, field: "垃圾" + LONE})  # json.dumps writes it as \ud800
    r = web.client.post("/api/tickets", content=body, headers={"content-type": "application/json"})
    error = _json_error(r, 422)
    assert "surrogate" in error["error"]["message"]  # type: ignore[call-overload]


def test_a_lone_surrogate_in_a_note_a_label_or_a_key_is_422(web: Web) -> None:
    ref = web.submit()["ref"]
    auth = {**web.auth("yantou.g3"), "content-type": "application/json"}
    r = web.client.post(
        f"/api/tickets/{ref}/steps/fix", content=json.dumps({"note": LONE}), headers=auth
    )
    _json_error(r, 422)
    r = web.client.post("/api/tokens", content=json.dumps({"label": LONE}), headers=auth)
    _json_error(r, 422)
    # A field whose name is a lone surrogate: refused, and the error can still be written.
    r = web.client.post("/api/tokens", content=json.dumps({LONE: 1}), headers=auth)
    _json_error(r, 422)


def test_a_lone_surrogate_in_an_open311_description_is_400(web: Web) -> None:
    body = {
        "service_code": "random_piling",
        "description": "垃圾" + LONE,
        "address_string": "x",
        "attribute": {"grid": MICRO},
        "api_key": web.token("duban.wang"),
    }
    r = web.client.post(
        "/open311/v2/requests.json",
        content=json.dumps(body),
        headers={"content-type": "application/json"},
    )
    error = _json_error(r, 400)
    assert error[0]["code"] == 400  # type: ignore[index]


@pytest.mark.parametrize(
    ("path", "as_"),
    [
        ("/api/tickets", None),
        ("/api/tokens", "duban.wang"),
        ("/api/me/password", "duban.wang"),
        ("/api/tickets/EP-2026-000001/steps/fix", "yantou.g3"),
        ("/open311/v2/requests.json", "duban.wang"),
    ],
)
def test_a_body_of_100000_brackets_is_400(web: Web, path: str, as_: str | None) -> None:
    if "EP-" in path:
        path = path.replace("EP-2026-000001", web.submit()["ref"])
    headers = {**web.auth(as_), "content-type": "application/json"}
    r = web.client.post(path, content=DEEP, headers=headers)
    _json_error(r, 400)


def test_a_title_of_zero_width_characters_is_refused(web: Web) -> None:
    r = web.client.post("/api/tickets", json={**SUBMIT, "title": ZERO_WIDTH})
    assert "visible" in _json_error(r, 422)["error"]["message"]  # type: ignore[call-overload]
    with pytest.raises(Exception, match="title is needed"):
        service.submit(web.app, service.NewProblem(MICRO, "random_piling", ZERO_WIDTH), web.clock())


def test_control_characters_are_dropped(web: Web) -> None:
    made = web.submit(title="河边\x07垃圾\x1b堆", description="一\r\n二\x0b\t三")
    r = web.get(f"/api/tickets/{made['ref']}", "duban.wang")
    assert r.json()["title"] == "河边垃圾堆"
    assert r.json()["description"] == "一\n二\t三"


def test_the_connection_stays_open_after_a_bad_body(app: App) -> None:
    """Keep-alive on a real server: a lone surrogate, then 100,000 `[`, then a good report,
    all on one connection."""
    bad_text = json.dumps({**SUBMIT, "title": LONE}).encode()
    good = json.dumps(SUBMIT).encode()
    with live_server(app) as live:
        conn = live.connect()
        statuses = []
        for body in (bad_text, DEEP.encode(), good):
            headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
            conn.sendall(head("POST", "/api/tickets", headers) + body)
            status, answer_headers, _ = read_response(conn)
            statuses.append(status)
            assert answer_headers.get("connection", "").lower() != "close"
        conn.close()
    assert statuses == [422, 400, 201]


def test_the_schemas_patterns_say_what_the_guard_refuses() -> None:
    """The OpenAPI schema states these rules as patterns (issue 10, item 8): each pattern holds
    for exactly the characters the guard lets through, over every code point."""
    visible = re.compile(visible_pattern())
    nonblank = re.compile(nonblank_pattern())
    no_nul = re.compile(NO_NUL_PATTERN)
    for cp in range(sys.maxunicode + 1):
        if 0xD800 <= cp <= 0xDFFF:
            continue  # lone surrogates are refused before any of this
        ch = chr(cp)
        if cp == 0:
            assert not (visible.search(ch) or nonblank.search(ch) or no_nul.search(ch))
            continue
        assert bool(visible.search(ch)) == has_visible(ch), hex(cp)
        assert bool(nonblank.search(ch)) == (clean_text(ch).strip() != ""), hex(cp)
    assert visible.search(" 垃圾 ") and not visible.search("垃\x00圾")
    assert nonblank.search(" a ") and not nonblank.search(" \u3000\t\x01")
