"""What the schema says of the service that FastAPI leaves out.

- `AllowHeader`: a 405 names every method the path takes. Starlette answers from the first route
  whose path matched, so `OPTIONS /api/tokens` said `Allow: GET` although POST exists (GET and
  POST are two routes on one path).
- `declare_security`: the Bearer and session-cookie schemes in `components.securitySchemes`, and
  `security` on every operation that needs a logged-in person (the same test as
  closeloop.web.limits uses); one operation per step of the workflow, each with the fields that
  step requires.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from closeloop.textguard import nonblank_pattern
from closeloop.web.auth import SESSION_COOKIE
from closeloop.web.limits import api_routes, needs_login_of

BEARER = {
    "type": "http",
    "scheme": "bearer",
    "description": "an API token: `closeloop token create HANDLE`, or POST /api/tokens when "
    "logged in; Open311 also takes it as `api_key`",
}
SESSION = {
    "type": "apiKey",
    "in": "cookie",
    "name": SESSION_COOKIE,
    "description": "the session of the pages (POST /login); an unsafe request with it must also "
    "send `X-CSRF-Token` (GET /api/csrf gives it), else 403",
}
# An operation that says its own `security` keeps it (POST /api/tokens: a session only).
LOGGED_IN: list[dict[str, list[str]]] = [{"bearer": []}, {"session": []}]
STEP_PATH = "/api/tickets/{ref}/steps/{step}"


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


# How a form says true or false: what pydantic reads as a bool, in any case; an empty field is
# left out (closeloop.web.uploads.read_body).
FORM_BOOL = {"type": "string", "pattern": "^((?i:0|1|off|on|f|t|false|true|n|y|no|yes))?$"}


# In JSON pydantic reads a bool from true and false, 0 and 1, and the same strings (not "").
JSON_BOOL = {
    "anyOf": [
        {"type": "boolean"},
        {"enum": [0, 1]},
        {"type": "string", "pattern": "^(?i:0|1|off|on|f|t|false|true|n|y|no|yes)$"},
    ]
}


def _booleans(schema: dict[str, Any], as_text: dict[str, Any]) -> None:
    for name, prop in schema.get("properties", {}).items():
        if prop.get("type") == "boolean":
            schema["properties"][name] = {
                **{k: v for k, v in prop.items() if k not in ("type", "default")},
                **as_text,
            }


def _no_null_in_forms(schema: dict[str, Any]) -> None:
    """A form field cannot say null (it is left out instead): drop null from form schemas, also
    from the alternatives (`anyOf`) of the body. (Saying "absent" there with `not` made
    schemathesis 4.32 fail on the photos' binary values.)"""
    for option in schema.get("anyOf", []):
        props = option.get("properties", {})
        for name in [name for name, prop in props.items() if prop == {"type": "null"}]:
            del props[name]
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


def _required(prop: dict[str, Any]) -> dict[str, Any]:
    """A field's schema when it must be given: not null, and text not blank."""
    options = [o for o in prop.get("anyOf", [prop]) if o != {"type": "null"}]
    out = {k: v for k, v in prop.items() if k not in ("anyOf", "default")}
    out.update(options[0] if len(options) == 1 else {"anyOf": options})
    if out.get("type") == "string" and "format" not in out and "enum" not in out:
        out["pattern"] = nonblank_pattern()
    return out


def _per_step(schema: dict[str, Any], steps: Mapping[str, tuple[str, frozenset[str]]]) -> None:
    """One operation per step instead of `{step}`: what a step requires (the workflow's
    `requires`: `defer` a reason and a review date, `fix` a note) is `required` in its body."""
    item = schema.get("paths", {}).pop(STEP_PATH, None)
    if item is None:
        return
    for name, (summary, requires) in steps.items():
        operation = copy.deepcopy(item["post"])
        operation["operationId"] = f"step_{name}"
        operation["summary"] = summary
        operation["parameters"] = [p for p in operation["parameters"] if p["name"] != "step"]
        body = operation["requestBody"]
        body["required"] = bool(requires)
        for media in body["content"].values():
            target = media["schema"]
            for field, prop in target["properties"].items():
                if field not in requires:
                    prop.pop("enum", None)  # a field the step does not use is not looked up
            for field in requires:
                target["properties"][field] = _required(target["properties"][field])
            if requires:
                target["required"] = sorted(requires)
        schema["paths"][STEP_PATH.replace("{step}", name)] = {"post": operation}


def declare_security(
    fa: FastAPI,
    max_photos: int,
    enums: Callable[[], dict[tuple[str, str, str], list[str]]] | None = None,
    steps: Mapping[str, tuple[str, frozenset[str]]] | None = None,
) -> None:
    """Wrap `fa.openapi` so the schema says what the server enforces: the Bearer and session
    schemes where a login is needed, the number of photos a multipart body may carry (`[web]
    max_photos`), the values a field takes from the zone's workflow (`enums`: (path, method,
    field) -> values), form fields without null (a form leaves a field out instead), and one
    operation per step (`steps`: name -> (summary, the fields it requires))."""
    build = fa.openapi

    def openapi() -> dict[str, Any]:
        # Built each time: the grid codes in it change when the grid is imported.
        fa.openapi_schema = None
        schema = build()
        known = enums() if enums is not None else {}
        schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
        schemes.update(bearer=BEARER, session=SESSION)
        needs = {
            (route.path, method.lower())
            for route in api_routes(fa.router.routes)
            if needs_login_of(route.dependant.dependencies)
            for method in route.methods or ()
        }
        for path, item in schema.get("paths", {}).items():
            for method, operation in item.items():
                if (path, method) in needs:
                    operation.setdefault("security", LOGGED_IN)
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
                        _booleans(body, FORM_BOOL)
                    elif path.startswith("/api/"):
                        _booleans(body, JSON_BOOL)
                    for prop in media.get("schema", {}).get("properties", {}).values():
                        if prop.get("type") == "array" and prop.get("items", {}).get("format") in (
                            "binary",
                        ):
                            prop["maxItems"] = max_photos
        if steps is not None:
            _per_step(schema, steps)
        return schema

    fa.openapi = openapi  # type: ignore[method-assign]
