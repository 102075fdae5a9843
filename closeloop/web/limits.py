"""Two walls every request meets before a handler reads its body.

`BodyLimit` caps the body as it arrives. A declared `Content-Length` over the cap is refused at
once; a chunked body (no length) is counted message by message and refused with 413 the moment
it passes the cap, so a 200 MB chunked JSON body never sits in memory. The cap depends on the
route: routes that take photos (`UPLOAD_ROUTES`) get room for `max_photos` files, every other
route and every other kind of body (JSON, URL-encoded forms) `[web] max_body_bytes`.

`CredentialsFirst` checks who is asking before the body is read, for every unsafe request to a
route that needs a logged-in person (its dependencies include `current_principal`). No token and
no session: 401 without reading a byte of the body. A token or a session cookie that does not
hold: 401 too. What it found is handed to `optional_principal`, which then only checks CSRF.
(FastAPI reads a JSON or form body before it resolves dependencies; this runs before that.)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from closeloop.errors import CodedError
from closeloop.web import auth, i18n

# (method, path pattern) of the routes that take photos or files in multipart form data.
UPLOAD_ROUTES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (method, re.compile(pattern))
    for method, pattern in (
        ("POST", r"/api/tickets"),
        ("POST", r"/api/tickets/[^/]+/steps/[^/]+"),
        ("POST", r"/report"),
        ("POST", r"/tickets/[^/]+/steps/[^/]+"),
        ("POST", r"/admin/import"),
        ("POST", r"/open311/v2/requests\.(json|xml)"),  # media, one photo
    )
)


def plain_error(scope: Scope, status: int, error: CodedError, **headers: str) -> Response:
    """An error answered by a middleware, in the dialect of the path (Open311 or the API)."""
    if scope["path"].startswith("/open311/"):
        return JSONResponse([{"code": status, "description": str(error)}], status, headers)
    request = Request(scope)
    locale = i18n.api_locale(
        request.query_params.get("lang"), request.headers.get("accept-language")
    )
    body = {"error": {"code": error.code, "message": error.text(locale)}}
    return JSONResponse(body, status, headers)


def upload_route(method: str, path: str) -> bool:
    return any(m == method and p.fullmatch(path) for m, p in UPLOAD_ROUTES)


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyLimit:
    def __init__(self, app: ASGIApp, max_body: int, max_upload_body: int) -> None:
        self.app = app
        self.max_body = max_body
        self.max_upload_body = max_upload_body

    def cap(self, scope: Scope) -> int:
        """Room for photos only where photos may come: multipart bodies to UPLOAD_ROUTES."""
        ctype = next((v for k, v in scope.get("headers", ()) if k == b"content-type"), b"")
        multipart = ctype.lower().startswith(b"multipart/form-data")
        upload = multipart and upload_route(scope["method"], scope["path"])
        return self.max_upload_body if upload else self.max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cap = self.cap(scope)
        length = _content_length(scope)
        if length is not None and length > cap:
            too_large = CodedError("request.too_large", length=length, cap=cap)
            await plain_error(scope, 413, too_large)(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > cap:
                    # Raised where the handler reads: the app's handlers answer 413.
                    raise HTTPException(413, f"the request body is larger than the {cap} allowed")
            return message

        await self.app(scope, counted, send)


def api_routes(routes: Iterable[Any]) -> list[APIRoute]:
    """The routes of the app, with those of included routers (FastAPI keeps them nested)."""
    found: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif hasattr(route, "original_router"):
            found.extend(api_routes(route.original_router.routes))
    return found


def needs_login_of(dependencies: Iterable[Any]) -> bool:
    for dep in dependencies:
        if dep.call in (auth.current_principal, auth.admin_principal):
            return True
        if needs_login_of(dep.dependencies):
            return True
    return False


class CredentialsFirst:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._routes: list[tuple[APIRoute, bool]] | None = None

    def routes(self, scope: Scope) -> list[tuple[APIRoute, bool]]:
        if self._routes is None:
            found = api_routes(scope["app"].router.routes)
            self._routes = [(r, needs_login_of(r.dependant.dependencies)) for r in found]
        return self._routes

    def needs_login(self, scope: Scope) -> bool:
        for route, needs in self.routes(scope):
            match, _ = route.matches(scope)
            if match == Match.FULL:
                return needs
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] in auth.SAFE_METHODS
            or not self.needs_login(scope)
        ):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        refusal: CodedError | None = None
        try:
            principal = await auth.identify(request)
        except auth.NotAuthenticated as exc:
            principal, refusal = None, exc
        if principal is None:
            www = 'Bearer realm="closeloop"'
            refused = refusal or auth.NotAuthenticated("auth.login_needed")
            await plain_error(scope, 401, refused, **{"WWW-Authenticate": www})(
                scope, receive, send
            )
            return
        scope.setdefault("state", {})[auth.PRE_PRINCIPAL] = principal
        await self.app(scope, receive, send)
