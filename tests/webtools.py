"""What the web tests share: the service on a test clock, with a client and helpers per role;
a browser-like client of the pages (its own cookies, the page's CSRF token); logging in.

The `web` fixture (tests/conftest.py) is `make_web` on the test's App; a module that needs
another configuration or clock overrides it with `make_web` too.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from fastapi.testclient import TestClient
from httpx2 import Response

from closeloop.app import App, ManualClock
from closeloop.web import auth
from closeloop.web.app import create_app
from tests.factories import NOW

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x01" * 64

# The example zone: a micro grid of Yantou village, the village above it, another village.
MICRO = "JS-A1-V01-G03"  # led by yantou.g3
VILLAGE = "JS-A1-V01"  # led by yantou.lead
OTHER_MICRO = "JS-A1-V02-G01"  # Caoyuan village, led by caoyuan.g1


@dataclass
class Web:
    app: App
    clock: ManualClock
    client: TestClient
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, handle: str) -> str:
        if handle not in self.tokens:
            self.tokens[handle] = auth.create_token(self.app, handle, "test", self.clock()).token
        return self.tokens[handle]

    def auth(self, handle: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(handle)}"} if handle else {}

    def get(self, url: str, as_: str | None = None, **kw: Any) -> Response:
        return self.client.get(url, headers={**self.auth(as_), **kw.pop("headers", {})}, **kw)

    def post(self, url: str, as_: str | None = None, **kw: Any) -> Response:
        return self.client.post(url, headers={**self.auth(as_), **kw.pop("headers", {})}, **kw)

    def submit(self, **fields: Any) -> dict[str, Any]:
        body = {"grid": MICRO, "category": "random_piling", "title": "河边垃圾堆", **fields}
        r = self.client.post("/api/tickets", json=body)
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]

    def step(self, ref: str, step: str, as_: str, **body: Any) -> Response:
        return self.post(f"/api/tickets/{ref}/steps/{step}", as_, json=body)

    def state(self, ref: str) -> str:
        r = self.get(f"/api/tickets/{ref}", "duban.wang")
        assert r.status_code == 200, r.text
        return r.json()["state"]  # type: ignore[no-any-return]


def with_config(app: App, section: str, **values: Any) -> App:
    """The app with some keys of a config section changed."""
    raw = dict(app.settings.raw)
    raw[section] = {**raw.get(section, {}), **values}
    return replace(app, settings=replace(app.settings, raw=raw))


def make_web(app: App) -> Iterator[Web]:
    clock = ManualClock(NOW)
    with TestClient(create_app(app, clock=clock)) as client:
        yield Web(app, clock, client)


# --- accounts ----------------------------------------------------------------------------------

PASSWORD = "correct horse 1"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def with_password(web: Web, handle: str = "yantou.g3", password: str = PASSWORD) -> str:
    auth.set_password(web.app, handle, password)
    return handle


def csrf(web: Web) -> str:
    r = web.client.get("/api/csrf")
    assert r.status_code == 200
    return r.json()["csrf_token"]  # type: ignore[no-any-return]


def login(web: Web, handle: str, password: str = PASSWORD, **extra: str) -> Response:
    form = {"handle": handle, "password": password, "csrf_token": csrf(web), **extra}
    return web.client.post("/login", data=form, follow_redirects=False)


# --- pages -------------------------------------------------------------------------------------


class Browser:
    """A client with its own cookies that asks for HTML, as a browser does."""

    def __init__(self, web: Web, *, raise_server_exceptions: bool = True) -> None:
        self.web = web
        self.client = TestClient(web.client.app, raise_server_exceptions=raise_server_exceptions)
        self.client.headers["accept"] = "text/html,application/xhtml+xml"

    def get(self, url: str, **kw: Any) -> Response:
        return self.client.get(url, follow_redirects=False, **kw)

    def csrf(self, url: str = "/login") -> str:
        found = CSRF_RE.search(self.get(url).text)
        assert found, f"no CSRF token on {url}"
        return found.group(1)

    def post(
        self,
        url: str,
        data: dict[str, Any] | None = None,
        *,
        files: list[tuple[str, tuple[str, bytes, str]]] | None = None,
        token: str | None = "page",
    ) -> Response:
        body = dict(data or {})
        if token == "page":
            body["csrf_token"] = self.csrf()
        elif token is not None:
            body["csrf_token"] = token
        return self.client.post(url, data=body, files=files, follow_redirects=False)

    def login(self, handle: str, password: str = PASSWORD) -> Browser:
        r = self.post("/login", {"handle": handle, "password": password, "next": "/"})
        assert r.status_code == 303, r.text
        return self


def browser(web: Web, handle: str | None = None, **options: bool) -> Browser:
    b = Browser(web, **options)
    if handle is not None:
        auth.set_password(web.app, handle, PASSWORD)
        b.login(handle)
    return b


def flash(r: Response, kind: str = "err") -> str:
    found = re.findall(rf'class="flash {kind}"[^>]*>(.*?)</', r.text, re.S)
    return html.unescape(" ".join(found))
