"""The supervisors' pages: the board of late and escalated tickets, the extension requests,
the deferral register.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy import select

from closeloop import escalation, feedback, views
from closeloop.app import App
from closeloop.db import read_only
from closeloop.models import grids, tickets
from closeloop.web import access, api, i18n, registers
from closeloop.web.auth import (
    OptionalUser,
    Principal,
    request_now,
    web_app,
)
from closeloop.web.pages.base import Labels, _names_of, _staff, page_locale, render

router = APIRouter(include_in_schema=False)


def supervision_board(
    app: App, principal: Principal, now: datetime, *, grid: str | None, level: int | None
) -> list[dict[str, Any]]:
    """The tickets this person may see that missed a deadline or climbed the ladder (the
    escalation module's overdue list), the latest first, with how late each is counted from
    the first deadline its stage missed."""
    items = api.only_visible(app, principal, escalation.overdue(app, now, grid=grid, level=level))
    for item in items:
        missed = datetime.fromisoformat(item["missed_deadline"])
        item["missed_at"] = missed
        item["late_seconds"] = max(0.0, (now - missed).total_seconds())
        item["overdue_now"] = item["overdue"]
    items.sort(key=lambda i: (-i["late_seconds"], i["ref"]))
    return items


def _board_filters(app: App) -> list[dict[str, Any]]:
    with read_only(app.engine) as conn:
        rows = conn.execute(
            select(grids.c.code, grids.c.name, grids.c.level)
            .where(grids.c.level.in_((2, 3)))
            .order_by(grids.c.path)
        ).all()
    groups: list[dict[str, Any]] = []
    for r in rows:
        if r.level == 2:
            groups.append({"code": r.code, "name": r.name, "smalls": []})
        elif groups:
            groups[-1]["smalls"].append({"code": r.code, "name": r.name})
    return groups


def _area_of(labels: Labels, code: str) -> tuple[str, str] | None:
    """The medium grid (level 2) a grid lies in, as (code, name)."""
    row = labels.grids.get(code)
    if row is None:
        return None
    ids = [int(p) for p in row.path.strip("/").split("/")]
    area = labels.grids_by_id.get(ids[1]) if len(ids) >= 2 else None
    return (area.code, area.name) if area is not None else None


@router.get("/board")
def board(
    request: Request,
    principal: OptionalUser,
    grid: Annotated[str | None, Query(max_length=64)] = None,
    level: Annotated[str | None, Query(max_length=3)] = None,
) -> Response:
    who = _staff(request, principal)
    if isinstance(who, Response):
        return who
    app, now = web_app(request), request_now(request)
    grid = grid or None
    chosen_level = int(level) if level and level.isdigit() else None
    items = supervision_board(app, who, now, grid=grid, level=chosen_level)
    labels = Labels(app, page_locale(request))
    by_level: dict[int, int] = {}
    by_area: dict[tuple[str, str], int] = {}
    for item in items:
        by_level[item["escalation_level"]] = by_level.get(item["escalation_level"], 0) + 1
        area = _area_of(labels, item["grid"])
        if area is not None:
            by_area[area] = by_area.get(area, 0) + 1
    return render(
        request,
        "board.html",
        principal=who,
        names=_names_of(app, (i["supervisor"] for i in items)),
        items=items,
        by_level=sorted(by_level.items()),
        by_area=sorted(by_area.items(), key=lambda kv: (-kv[1], kv[0][0])),
        filters=_board_filters(app),
        grid=grid or "",
        level=chosen_level,
        late_text=lambda s: i18n.duration(s, page_locale(request)),
        # Closed tickets whose reporter said "not solved" (回访): for a supervisor to decide.
        unsolved=feedback.unsolved(app) if who.is_supervisor else [],
    )


def _allowed_by_ref(app: App, principal: Principal, refs: Iterable[str]) -> dict[str, list[str]]:
    wanted = list(dict.fromkeys(refs))
    if not wanted:
        return {}
    with read_only(app.engine) as conn:
        rows = conn.execute(
            views.listing_select().where(tickets.c.ref.in_(wanted), access.scope_clause(principal))
        ).all()
    return {r.ref: access.allowed_steps(app, r, principal) for r in rows}


def _extensions_page(
    request: Request,
    who: Principal,
    status: str = "pending",
    *,
    code: int = 200,
    error: str | None = None,
) -> Response:
    app = web_app(request)
    status = status if status in ("pending", "approved", "refused", "lapsed", "all") else "pending"
    items = registers.extension_requests(
        app, access.scope_clause(who), None if status == "all" else status
    )
    allowed = _allowed_by_ref(
        app, who, [i["ticket"]["ref"] for i in items if i["status"] == "pending"]
    )
    return render(
        request,
        "extensions.html",
        status=code,
        principal=who,
        error=error,
        names=_names_of(app, (h for i in items for h in (i["requested_by"], i["decided_by"]))),
        items=items,
        allowed=allowed,
        status_filter=status,
    )


@router.get("/extensions")
def extension_list(
    request: Request,
    principal: OptionalUser,
    status: Annotated[str, Query(max_length=10)] = "pending",
) -> Response:
    who = _staff(request, principal)
    if isinstance(who, Response):
        return who
    return _extensions_page(request, who, status)


def _deferred_page(
    request: Request, who: Principal, *, code: int = 200, error: str | None = None
) -> Response:
    app, now = web_app(request), request_now(request)
    items = registers.deferred(app, access.scope_clause(who), now)
    allowed = _allowed_by_ref(app, who, [i["ticket"]["ref"] for i in items])
    return render(
        request,
        "deferred.html",
        status=code,
        principal=who,
        error=error,
        names=_names_of(app, (i["by"] for i in items)),
        items=items,
        allowed=allowed,
    )


@router.get("/deferred")
def deferred_list(request: Request, principal: OptionalUser) -> Response:
    who = _staff(request, principal)
    if isinstance(who, Response):
        return who
    return _deferred_page(request, who)


# Lists with step buttons: after a step they show again, with its error if it failed.
LIST_PAGES: dict[str, Callable[..., Response]] = {
    "/extensions": _extensions_page,
    "/deferred": _deferred_page,
}
