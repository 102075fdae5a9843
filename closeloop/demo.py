"""A short walk through the loop on the example zone, for a first look and for the README."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from shapely.geometry import shape

from closeloop import delivery, service, views, zone
from closeloop.app import App
from closeloop.campaigns import service as campaigns
from closeloop.db import read_only
from closeloop.geo import service as geo
from closeloop.meetings import service as meetings
from closeloop.patrols import service as patrols
from closeloop.tickets import DomainError, StepInput

Echo = Callable[[str], None]


def run(app: App, now: datetime, *, fresh: bool = False, echo: Echo = print) -> list[str]:
    """Submit a few problems, walk them through the loop, print an inbox and a timeline."""
    if fresh:
        db = Path(app.settings.database_url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    result = zone.init(app, now)
    echo(
        f"== {app.settings.zone_name}: schema {result.revision}, "
        f"{result.grids.grids_created + result.grids.grids_updated} grids, "
        f"{result.people_total} people"
    )

    t0 = now - timedelta(hours=6)

    def at(hours: float) -> datetime:
        return t0 + timedelta(hours=hours)

    def step(ref: str, name: str, by: str, when: float, **given: str) -> None:
        service.run_step(app, ref, name, by, StepInput(**given), now, at=at(when))  # type: ignore[arg-type]
        echo(f"   {ref}: {name:<8} by {by}")

    echo("\n== 即交即办: problems reported and assigned at once")
    pile = service.submit(
        app,
        service.NewProblem(
            grid="JS-A1-V01-G03",
            category="random_piling",
            title="村口河边堆放建筑垃圾",
            description="约两车建筑垃圾堆在河堤边",
            address="堰头村村口桥东",
            reporter="村民李大伯",
        ),
        now,
        at=at(0),
    )
    # Reported from a phone's location: the grid is the one containing the point.
    lat, lon = _point_in(app, "JS-A1-V02-G02")
    shed_grid = geo.route(app, lat, lon) if lat is not None else "JS-A1-V02-G02"
    echo(f"   located {lat}, {lon} → grid {shed_grid}")
    shed = service.submit(
        app,
        service.NewProblem(
            grid=shed_grid,
            category="illegal_construction",
            title="农房旁违章搭建铁皮棚",
            address="曹园村2组38号旁",
            lat=lat,
            lon=lon,
        ),
        now,
        at=at(0.5),
    )
    parking = service.submit(
        app,
        service.NewProblem(
            grid="JS-A1-V01",
            category="random_parking",
            title="村委会门口货车乱停",
            address="堰头村村委会",
        ),
        now,
        at=at(5),
    )
    for ref in (pile, shed, parking):
        t = views.show(app, ref)
        echo(
            f"   {ref} {t['category_name']} → {t['grid_name']} {t['assignee_name']} "
            f"({t['assignee']}), due {t['due_at']}"
        )

    echo("\n== 整改、核查、销号: the loop")
    step(pile, "fix", "yantou.g3", 2, note="已组织清运，河堤恢复整洁")
    try:
        service.run_step(app, pile, "verify", "yantou.g3", StepInput(), now, at=at(2.5))
    except DomainError as exc:
        echo(f"   refused, as it must be: {exc}")
    step(pile, "verify", "yantou.lead", 3, note="现场核查，已清理干净")
    step(pile, "close", "yantou.lead", 3.2)
    step(shed, "fix", "caoyuan.g2", 3.5, note="已拆除一半")
    step(shed, "reject", "caoyuan.lead", 4, reason="铁皮棚未全部拆除，需返工")

    echo("\n== 问题复发: the same problem comes back")
    again = service.submit(
        app,
        service.NewProblem(
            grid="JS-A1-V01-G03", category="random_piling", title="河边又见垃圾堆放"
        ),
        now,
        at=at(5.5),
    )
    echo(f"   {again} is linked to {views.show(app, again)['recurrence_of']}")

    for handle in ("yantou.lead", "caoyuan.g2"):
        echo(f"\n== 待办 inbox of {handle}")
        for t in views.inbox(app, handle):
            echo(
                f"   {t['ref']}  {t['state_name']}  {t['category_name']}  due {t['due_at']}  "
                f"{t['title']}"
            )

    echo(f"\n== 时间线 timeline of {pile}")
    for e in views.show(app, pile)["events"]:
        echo(
            f"   {e['at']}  {e['step']:<8} {e['from'] or '-':>9} → {e['to']:<9} "
            f"{e['by'] or ''}  {e['note'] or ''}"
        )
    _field_work(app, now, at, pile, echo)
    sent = delivery.deliver_due(app, now)
    where = app.settings.section("notifiers").get("file", {}).get("path")
    echo(
        f"\n== 通知 notices: {sent.sent} sent" + (f" to {where}" if where else "")
        + (f", {sent.dead} dead (closeloop outbox --status dead)" if sent.dead else "")
    )  # fmt: skip
    return [pile, shed, parking, again]


def _field_work(
    app: App, now: datetime, at: Callable[[float], datetime], pile: str, echo: Echo
) -> None:
    """One campaign, one patrol and one meeting: how problems are found and pushed."""
    day = at(5.8).astimezone(app.tz).date().isoformat()
    echo(f"\n== 一月一村大会战: a campaign day on {day}")
    c = campaigns.add_campaign(
        app,
        day=day,
        grid_codes=["JS-A1-V01", "JS-A1-V02"],
        theme="堰头曹园环境大会战",
        actions=["clean-up", "demolition"],
        teams=["一组:zone.lead,area1.lead", "二组:duban.wang,yantou.lead"],
        focus="乱堆乱放",
        now=now,
    )
    found = campaigns.file_findings(
        app,
        c.id,
        "grid,category,title\n"
        "JS-A1-V01-G02,sanitation,祠堂后卫生死角\n"
        "JS-A1-V02-G04,illegal_construction,河边违建棚\n",
        now,
        by="zone.lead",
        at=at(5.8),
    )
    shown = campaigns.show_campaign(app, c.id, now)
    echo(f"   campaign {c.id}: {len(found)} findings filed ({', '.join(found)})")
    for code, n in shown["by_grid"].items():
        name = shown["grid_names"][code]
        echo(f"   {name}: found {n['found']}, fixed {n['fixed']}, open {n['open']}")

    echo("\n== 巡查: a village leader's patrol")
    p = patrols.add_patrol(
        app,
        by="yantou.lead",
        at=at(1),
        checkins=[patrols.CheckIn("JS-A1-V01-G01"), patrols.CheckIn("JS-A1-V01-G03")],
        note="沿河巡查",
        found=[pile],
        now=now,
    )
    echo(f"   patrol {p['id']}: {', '.join(v['name'] for v in p['visits'])}; found {pile}")
    month = at(1).astimezone(app.tz).strftime("%Y-%m")
    coverage = patrols.month_coverage(app, month, 3)
    visited = [r["name"] for r in coverage if r["visits"]]
    echo(
        f"   {month}: {len(visited)} of {len(coverage)} small grids visited ({', '.join(visited)})"
    )

    echo("\n== 定期例会: the example meeting and its decision")
    m = meetings.add_meeting(
        app,
        kind="example",
        at=now,
        place="JS-A3-V15",
        attendees=["zone.lead", "duban.wang", "yantou.lead", "caoyuan.lead"],
        now=now,
    )
    d = meetings.decide(
        app,
        m["id"],
        grid="JS-A1-V02",
        title="河边违建棚三日内拆除",
        category="illegal_construction",
        due=now + timedelta(days=3),
        now=now,
    )
    echo(f"   meeting {m['id']} at {m['place']['name']}, agenda from week {m['week']}")
    echo(f"   decision {d['ref']} → {d['grid']} ({d['assignee']}), due {d['due_at']}")
    echo(f"   minutes queued for {meetings.send_minutes(app, m['id'], now)} attendees' channels")


# One account per role the pages serve; reporters need none.
DEMO_LOGINS = (
    ("微网格长 micro-grid leader", "yantou.g3"),
    ("村网格长 village leader", "yantou.lead"),
    ("督查 supervisor", "duban.wang"),
    ("管理员 administrator", "admin"),
)


def _point_in(app: App, code: str) -> tuple[float | None, float | None]:
    """A point inside the grid (None, None when the zone has no geometry for it)."""
    found = geo.geometry_of(app, code)
    if found is None:
        return None, None
    p = shape(found).representative_point()
    return round(p.y, 6), round(p.x, 6)


def prepare_service(app: App, now: datetime, *, echo: Echo = print) -> list[tuple[str, str, str]]:
    """Set up the example zone with demo tickets (once) and give each demo account a fresh
    password, returned so the caller can print it: nothing is stored in clear."""
    import secrets

    from sqlalchemy import func, select

    from closeloop.models import tickets
    from closeloop.web import auth

    zone.init(app, now)
    with read_only(app.engine) as conn:
        empty = conn.execute(select(func.count()).select_from(tickets)).scalar_one() == 0
    if empty:
        run(app, now, echo=echo)
    logins = []
    for label, handle in DEMO_LOGINS:
        password = secrets.token_urlsafe(9)
        auth.set_password(app, handle, password)
        logins.append((label, handle, password))
    return logins
