"""What the field-work pages (patrols, meetings, campaigns) share: who may see them, the grids
a person picks from, the words of a refused form."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import or_, select

from closeloop import service
from closeloop.app import App
from closeloop.db import read_only
from closeloop.grid import in_subtree
from closeloop.models import grids
from closeloop.tickets import NotPermitted
from closeloop.web.auth import Principal
from closeloop.web.pages import base as pages

# A refused form: the domain's errors and a number that is not one.
FORM_ERRORS: tuple[type[Exception], ...] = (*pages.FORM_ERRORS, ValueError)


def signed_in(request: Request, principal: Principal | None) -> Principal | Response:
    if principal is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method != "GET":
            target = "/"
        return RedirectResponse(f"/login?{urlencode({'next': target})}", status_code=303)
    return principal


def field_staff(request: Request, principal: Principal | None) -> Principal | Response:
    """Grid leaders, members and supervisors."""
    who = signed_in(request, principal)
    if isinstance(who, Principal) and not (who.has_inbox or who.is_supervisor):
        raise NotPermitted("person.no_role", handle=who.handle)
    return who


def supervisor(request: Request, principal: Principal | None, what: str) -> Principal | Response:
    who = signed_in(request, principal)
    if isinstance(who, Principal) and not who.is_supervisor:
        raise NotPermitted("person.supervisor_only", handle=who.handle, what=what)
    return who


def done(target: str, key: str) -> RedirectResponse:
    sep = "&" if "?" in target else "?"
    return RedirectResponse(f"{target}{sep}{urlencode({'done': key})}", status_code=303)


def message(request: Request, exc: BaseException) -> str:
    return pages._message(request, exc)


def status_of(exc: BaseException) -> int:
    return pages._status_of(exc)


def grid_options(app: App, principal: Principal | None, *, max_level: int = 4) -> list[Any]:
    """Grids to pick from: those under the person's own grids (all of them for a supervisor or
    someone leading the zone), in tree order, as (code, name, level)."""
    with read_only(app.engine) as conn:
        q = select(grids.c.code, grids.c.name, grids.c.level).where(grids.c.level <= max_level)
        own = () if principal is None else (*principal.led_paths, *principal.member_paths)
        if principal is not None and not principal.is_supervisor and own:
            q = q.where(or_(*(in_subtree(grids.c.path, p) for p in own)))
        return list(conn.execute(q.order_by(grids.c.path)))


def problem_form(
    grid: Annotated[str, Form(max_length=64)],
    category: Annotated[str, Form(max_length=64)],
    title: Annotated[str, Form(max_length=200)],
    description: Annotated[str, Form(max_length=5000)] = "",
    address: Annotated[str, Form(max_length=300)] = "",
) -> service.NewProblem:
    """The fields of a problem reported from the field (a patrol, a campaign day)."""
    return service.NewProblem(
        grid=grid,
        category=category,
        title=title,
        description=description,
        address=address or None,
    )


ProblemForm = Annotated[service.NewProblem, Depends(problem_form)]
