"""What the schema says of the service that FastAPI leaves out.

- `AllowHeader`: a 405 names every method the path takes. Starlette answers from the first route
  whose path matched, so `OPTIONS /api/tokens` said `Allow: GET` although POST exists (GET and
  POST are two routes on one path).
- `declare_security`: the Bearer scheme in `components.securitySchemes`, and `security` on every
  operation that needs a logged-in person (the same test as closeloop.web.limits uses).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from closeloop.web.limits import api_routes, needs_login_of

BEARER = {
    "type": "http",
    "scheme": "bearer",
    "description": "an API token: `closeloop token create HANDLE`, or POST /api/tokens when "
    "logged in; Open311 also takes it as `api_key`",
}


def _methods(routes: list[Any], path: str) -> set[str]:
    found: set[str] = set()
    for route in routes:
        regex = getattr(route, "path_regex", None)
        if regex is not None and regex.match(path) and getattr(route, "methods", None):
            found |= set(route.methods)
    return found


class AllowHeader:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._routes: list[Any] | None = None

    def routes(self, scope: Scope) -> list[Any]:
        if self._routes is None:
            top = scope["app"].router.routes
            self._routes = [r for r in top if hasattr(r, "path_regex")] + api_routes(top)
        return self._routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_allow(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                allowed = _methods(self.routes(scope), scope["path"])
                if allowed:
                    headers = [(k, v) for k, v in message.get("headers", []) if k != b"allow"]
                    headers.append((b"allow", ", ".join(sorted(allowed)).encode()))
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_allow)


FORMS = ("multipart/form-data", "application/x-www-form-urlencoded")


def _no_null_in_forms(schema: dict[str, Any]) -> None:
    """A form field cannot say null (it is left out instead): drop null from form schemas."""
    for name, prop in list(schema.get("properties", {}).items()):
        options = prop.get("anyOf")
        if options and {"type": "null"} in options:
            rest = [o for o in options if o != {"type": "null"}]
            merged = {k: v for k, v in prop.items() if k not in ("anyOf", "default")}
            schema["properties"][name] = (
                {**merged, **rest[0]}
                if len(rest) == 1
                else {
                    **merged,
                    "anyOf": rest,
                }
            )


def declare_security(
    fa: FastAPI,
    max_photos: int,
    enums: Callable[[], dict[tuple[str, str, str], list[str]]] | None = None,
) -> None:
    """Wrap `fa.openapi` so the schema says what the server enforces: the Bearer scheme where
    it is needed, the number of photos a multipart body may carry (`[web] max_photos`), the
    values a field takes from the zone's workflow (`enums`: (path, method, field) -> values),
    and form fields without null (a form leaves a field out instead)."""
    build = fa.openapi

    def openapi() -> dict[str, Any]:
        # Built each time: the grid codes in it change when the grid is imported.
        fa.openapi_schema = None
        schema = build()
        known = enums() if enums is not None else {}
        schema.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = BEARER
        needs = {
            (route.path, method.lower())
            for route in api_routes(fa.router.routes)
            if needs_login_of(route.dependant.dependencies)
            for method in route.methods or ()
        }
        for path, item in schema.get("paths", {}).items():
            for method, operation in item.items():
                if (path, method) in needs:
                    operation["security"] = [{"bearer": []}]
                for param in operation.get("parameters", []):
                    values = known.get((path, method, param.get("name", "")))
                    if values:
                        target = param["schema"]
                        target = next(
                            (o for o in target.get("anyOf", []) if o.get("type") == "array"),
                            target,
                        )
                        if target.get("type") == "array":
                            target["items"] = {"type": "string", "enum": values}
                        elif target.get("type") == "string":
                            target["enum"] = values
                content = operation.get("requestBody", {}).get("content", {})
                for kind, media in content.items():
                    body = media.get("schema", {})
                    for name, prop in body.get("properties", {}).items():
                        values = known.get((path, method, name))
                        if values:
                            prop["enum"] = values
                    if kind in FORMS:
                        _no_null_in_forms(body)
                    for prop in media.get("schema", {}).get("properties", {}).values():
                        if prop.get("type") == "array" and prop.get("items", {}).get("format") in (
                            "binary",
                        ):
                            prop["maxItems"] = max_photos
        return schema

    fa.openapi = openapi  # type: ignore[method-assign]
