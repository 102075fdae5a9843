"""What the JSON API finds wrong with a request body is said field by field in the reader's
language (`?lang=` or Accept-Language; English by default), by the kind of problem pydantic
found and never by parsing its English. SQLite only: the check runs before any database work."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from closeloop.app import App
from tests.webtools import MICRO, Web, make_web


@pytest.fixture
def web(sqlite_app: App) -> Iterator[Web]:
    yield from make_web(sqlite_app)


# One body with a problem of each kind in a field of its own.
BAD = {
    "grid": MICRO,
    "title": "x" * 201,  # too long
    "lat": True,  # a number, not true or false
    "lon": "east",  # not a number
    "source": "pigeon",  # not one of the sources
    "address": "街\x00道",  # a NUL character
    "urgent": "maybe",  # not true or false
}  # and no category: missing

# In English, closeloop's own refusals by their code; pydantic's words as scripts always read them.
EN = {
    "category": "Field required",
    "title": "Value should have at most 200 items after validation, not 201",
    "lat": "must be a number, not true or false",
    "lon": "Input should be a valid number, unable to parse string as a number",
    "address": "must not contain NUL characters",
    "urgent": "Input should be a valid boolean, unable to interpret input",
}
ZH = {
    "category": "缺少这个字段。",
    "title": "太长：最多 200 个字符。",
    "lat": "必须是数字，不能是 true 或 false。",
    "lon": "类型不对：应为数字。",
    "address": "不能含有 NUL 字符。",
    "urgent": "类型不对：应为布尔值（true 或 false）。",
}


def _problems(web: Web, **kw: object) -> dict[str, str]:
    r = web.client.post("/api/tickets", json=BAD, **kw)  # type: ignore[arg-type]
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "request.invalid"
    return {d["field"]: d["problem"] for d in r.json()["details"]}


def test_each_problem_is_said_in_english_by_default(web: Web) -> None:
    found = _problems(web)
    assert {k: found[k] for k in EN} == EN
    assert found["source"].startswith("Input should be 'public'")


def test_and_in_chinese_when_asked(web: Web) -> None:
    for asked in ({"params": {"lang": "zh_CN"}}, {"headers": {"Accept-Language": "zh-CN"}}):
        found = _problems(web, **asked)
        assert {k: found[k] for k in ZH} == ZH
        assert found["source"].startswith("只能是 ")
        message = web.client.post("/api/tickets", json=BAD, **asked).json()["error"]["message"]  # type: ignore[arg-type]
        assert message.startswith("category：缺少这个字段；") and message.endswith("。")
        assert "。；" not in message and "Input should" not in message


def test_a_body_that_is_not_json_says_so_in_the_readers_language(web: Web) -> None:
    headers = {"content-type": "application/json"}
    zh = web.client.post("/api/tickets?lang=zh_CN", content=b"{", headers=headers)
    assert zh.status_code == 400 and zh.json()["error"]["code"] == "request.malformed_json"
    assert zh.json()["error"]["message"].startswith("请求内容不是有效的 JSON：")
