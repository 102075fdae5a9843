"""The campaign pages: the board of a campaign (found, fixed, open per village and action,
its teams) and the phone form for the campaign day's findings with the campaign preselected;
thin over `closeloop.campaigns.service`."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import or_, select
from starlette.concurrency import run_in_threadpool

from closeloop.campaigns import service as campaigns
from closeloop.db import read_only
from closeloop.grid import in_subtree
from closeloop.models import grids
from closeloop.web import staffpages
from closeloop.web.auth import OptionalUser, Principal, request_now, require_csrf, web_app
from closeloop.web.pages.base import page_locale, render

router = APIRouter(include_in_schema=False)


@router.get("/campaigns")
def campaign_list(request: Request, principal: OptionalUser) -> Response:
    who = staffpages.field_staff(request, principal)
    if isinstance(who, Response):
        return who
    app, now = web_app(request), request_now(request)
    with read_only(app.engine) as conn:
        shown = [campaigns.describe(conn, app, c, now) for c in campaigns.list_campaigns(conn)]
    return render(request, "campaigns.html", principal=who, campaigns=list(reversed(shown)))


def _board(
    request: Request,
    who: Principal,
    campaign_id: int,
    *,
    error: str | None = None,
    status: int = 200,
) -> Response:
    app, now, locale = web_app(request), request_now(request), page_locale(request)
    c = campaigns.show_campaign(app, campaign_id, now)
    with read_only(app.engine) as conn:
        paths = [
            p
            for p in conn.execute(
                select(grids.c.path).where(grids.c.code.in_(c["grids"]))
            ).scalars()
        ]
        places = list(
            conn.execute(
                select(grids.c.code, grids.c.name, grids.c.level)
                .where(or_(*(in_subtree(grids.c.path, p) for p in paths)))
                .order_by(grids.c.path)
            )
        )
    return render(
        request,
        "campaign.html",
        status=status,
        principal=who,
        error=error,
        campaign=c,
        places=places,
        action_names={a: n.get(locale) for a, n in app.workflow.actions.items()},
        categories=[
            {"key": k.key, "name": k.label.get(locale)} for k in app.workflow.categories.values()
        ],
    )


@router.get("/campaigns/{campaign_id}")
def campaign_board(request: Request, principal: OptionalUser, campaign_id: int) -> Response:
    who = staffpages.field_staff(request, principal)
    if isinstance(who, Response):
        return who
    return _board(request, who, campaign_id)


@router.post("/campaigns/{campaign_id}/findings", dependencies=[Depends(require_csrf)])
async def campaign_finding(
    request: Request,
    principal: OptionalUser,
    campaign_id: int,
    problem: staffpages.ProblemForm,
) -> Response:
    who = staffpages.field_staff(request, principal)
    if isinstance(who, Response):
        return who
    app, now = web_app(request), request_now(request)
    try:
        await run_in_threadpool(
            lambda: campaigns.file_finding(app, campaign_id, problem, now, by=who.handle)
        )
    except staffpages.FORM_ERRORS as exc:
        text, code = staffpages.message(request, exc), staffpages.status_of(exc)
        return await run_in_threadpool(
            lambda: _board(request, who, campaign_id, error=text, status=code)
        )
    return staffpages.done(f"/campaigns/{campaign_id}", "finding")
