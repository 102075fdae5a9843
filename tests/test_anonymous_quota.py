"""Issue 10, item 9: anonymous reports are limited per address, and so are their photos per day.

Reports without a token or a session count per client address: `[web]
anonymous_reports_per_hour` (generous by default: a village office behind one NAT is one
address) and `anonymous_photo_bytes_per_day`. Over a limit: 429 with Retry-After, nothing
stored; a logged-in person or a token is not counted; the window passes.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from closeloop.bootstrap import App
from closeloop.models import evidence, tickets
from closeloop.web.settings import WebSettings
from tests.factories import count
from tests.webtools import MICRO, PNG, Web, make_web, with_config

REPORT = {"grid": MICRO, "category": "random_piling", "title": "河边垃圾堆"}


@pytest.fixture
def web(app: App) -> Iterator[Web]:
    small = with_config(app, "web", anonymous_reports_per_hour=3, anonymous_photo_bytes_per_day=300)
    yield from make_web(small)


def test_the_default_is_generous() -> None:
    from closeloop.config import load_settings
    from tests.conftest import CONFIG

    cfg = WebSettings.from_settings(load_settings(CONFIG, "sqlite://"))
    assert cfg.anonymous_reports_per_hour >= 60
    assert cfg.anonymous_photo_bytes_per_day >= 20 * cfg.max_upload_bytes


def test_anonymous_reports_per_address_per_hour(web: Web) -> None:
    for _ in range(3):
        assert web.client.post("/api/tickets", json=REPORT).status_code == 201
    r = web.client.post("/api/tickets", json=REPORT)
    assert r.status_code == 429, r.text
    assert "too many reports from this address" in r.json()["error"]["message"]
    assert 1 <= int(r.headers["retry-after"]) <= 3601
    assert count(web.app, tickets) == 3
    # A token's owner is not anonymous, and the hour passes.
    assert web.post("/api/tickets", "yantou.g3", json=REPORT).status_code == 201
    web.clock.advance(timedelta(hours=1, seconds=1))
    assert web.client.post("/api/tickets", json=REPORT).status_code == 201


def test_anonymous_photos_per_address_per_day(web: Web) -> None:
    def send(size: int):  # type: ignore[no-untyped-def]
        photo = PNG + b"\x01" * (size - len(PNG))
        return web.client.post(
            "/api/tickets", data=REPORT, files=[("photos", ("a.png", photo, "image/png"))]
        )

    assert send(200).status_code == 201
    r = send(200)  # 400 bytes in a day: over the 300 allowed
    assert r.status_code == 429, r.text
    assert "photos from this address" in r.json()["error"]["message"]
    assert count(web.app, evidence) == 1
    # Without photos it still goes through; the next day the photos do too.
    assert web.client.post("/api/tickets", json=REPORT).status_code == 201
    web.clock.advance(timedelta(days=1, seconds=1))
    assert send(200).status_code == 201


def test_the_report_page_is_limited_too(web: Web) -> None:
    for _ in range(3):
        web.client.post("/api/tickets", json=REPORT)
    page = web.client.get("/report")
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    r = web.client.post("/report", data={**REPORT, "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 429
    assert count(web.app, tickets) == 3
