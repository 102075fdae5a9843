"""A grid leader's pages: the inbox and the list of tickets."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from closeloop import views
from closeloop.web import api
from closeloop.web.auth import (
    OptionalUser,
    request_now,
    web_app,
)
from closeloop.web.pages.base import _staff, render

router = APIRouter(include_in_schema=False)


LIST_PAGE = 50


@router.get("/inbox")
def inbox(request: Request, principal: OptionalUser) -> Response:
    who = _staff(request, principal)
    if isinstance(who, Response):
        return who
    app, now = web_app(request), request_now(request)
    items = api.with_left(views.inbox(app, who.handle, now), now)
    todo = [i for i in items if i["state"] == "assigned"]
    check = [i for i in items if i["state"] != "assigned"]
    return render(
        request,
        "inbox.html",
        principal=who,
        todo=todo,
        check=check,
        late=sum(1 for i in items if (i["seconds_left"] or 0) < 0),
    )


@router.get("/tickets")
def ticket_list(
    request: Request,
    principal: OptionalUser,
    state: Annotated[str | None, Query(max_length=32)] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Response:
    who = _staff(request, principal)
    if isinstance(who, Response):
        return who
    app = web_app(request)
    states = [state] if state is not None and state in app.workflow.states else []
    found = api.list_tickets(request, who, state=states, limit=LIST_PAGE + 1, offset=offset)
    items = found["items"]
    return render(
        request,
        "tickets.html",
        principal=who,
        items=items[:LIST_PAGE],
        more=len(items) > LIST_PAGE,
        state=states[0] if states else "",
        states=list(app.workflow.states),
        offset=offset,
        page=LIST_PAGE,
    )
