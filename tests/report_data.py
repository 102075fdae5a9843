"""A fixed week of tickets for the report tests (ISO week 2026-W14: Mon 30 Mar to Sun 5 Apr,
Asia/Shanghai), built through the service layer with explicit times; escalations, extensions
and deferrals (written by modules of their own) are inserted as rows.

Every ticket's story, with its case deadline worked out by hand (categories: random_piling,
sanitation and street_business have 24 h of natural time to fix, random_parking 2 h, other 3
working days; 4-6 Apr is the Qingming holiday):

Yantou village JS-A1-V01 (micro grids G01-G04)
  T7  G01 random_piling  filed Sun 29 Mar 20:00 (W13) -> deadline 30 Mar 20:00; fixed 30 Mar 18:00,
      closed 31 Mar 09:30                                    due W14, closed, on time
  T1  G02 random_piling  filed 30 Mar 10:00 -> 31 Mar 10:00; fixed 31 Mar 09:00, closed 31 Mar 16:00
                                                             due, closed, on time (fix counts)
  T2  G03 random_piling  filed 31 Mar 08:00 -> 1 Apr 08:00; fixed 1 Apr 10:00 (late), closed 12:00
                                                             due, closed, late
  T3  G04 random_piling  filed 1 Apr 09:00 -> 2 Apr 09:00; fixed 1 Apr 12:00, rejected 14:00,
      fixed again 2 Apr 08:00, closed 2 Apr 11:00           due, closed, on time, rework
  T4  G01 sanitation     filed 2 Apr 09:00 -> 3 Apr 09:00; still open; escalated to level 3
      on 3 Apr 10:00                                         due, open, overdue
  T5  G02 sanitation     filed 2 Apr 10:00 -> 3 Apr 10:00; deferred 2 Apr 15:00, not resumed
                                                             due, deferred
  T6  G03 sanitation     filed Sun 5 Apr 12:00 -> 6 Apr 12:00 (W15)   reported only
  T8  G04 sanitation     filed 1 Apr 08:00 -> 2 Apr 08:00, extended to 8 Apr 18:00
                                                             reported only (due W15)
  T9  G03 street_business filed 25 Mar 10:00 (W13) -> 26 Mar 10:00, extended (asked 25 Mar 20:00,
      approved 21:00) to 3 Apr 18:00; fixed 3 Apr 17:00, closed 17:30
                                                             due W14, extended, closed, on time
  T10 G04 street_business filed 30 Mar 09:00 -> 31 Mar 09:00; deferred 30 Mar 12:00, resumed
      5 Apr 12:00: +6 days -> 6 Apr 09:00                    reported only (due W15)
  R1  G01 random_piling  filed 3 Apr 09:00: a recurrence of T7 -> 4 Apr 09:00; fixed 3 Apr 12:00,
      closed 3 Apr 15:00                                     due, closed, on time, recurrence
Caoyuan village JS-A1-V02
  C1  G02 sanitation     filed 31 Mar 10:00 -> 1 Apr 10:00; fixed 1 Apr 09:00, closed 09:45
                                                             due, closed, on time
  C2  G03 sanitation     filed 31 Mar 11:00 -> 1 Apr 11:00; fixed 1 Apr 10:00, closed 7 Apr (W15)
                                                             due, not closed in W14
  C3  G02 sanitation     filed 2 Apr 12:00: a recurrence of C1 -> 3 Apr 12:00; open; escalated
      to level 3 on 3 Apr 13:00 and level 2 on 4 Apr 13:00  due, open, overdue, recurrence
  X1  G03 random_parking filed 1 Apr 10:00, dismissed 11:00  reported only
  W1  G01 other          filed Wed 1 Apr 14:00 -> 3 working days: 3.5 h Wed + 7.5 h Thu +
      7.5 h Fri, holiday, 3.5 h Tue -> Tue 7 Apr 12:00 (W15)  reported only
  P1  G04 random_parking filed 3 Apr 08:00 -> 3 Apr 10:00; fixed 09:00, closed 11:30
                                                             due, closed, on time
Donghe village JS-A1-V03
  D1  filed on Yantou G01 (street_business) 27 Mar 10:00 (W13) -> 28 Mar 10:00, escalated to
      level 3 on 28 Mar 11:00; reassigned 2 Apr 10:00 to Donghe G01: a fresh clock -> 3 Apr 10:00;
      open                                                   due W14 for Donghe, dispatched W14,
                                                             overdue; reported in W13
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select, update

from closeloop import service
from closeloop.app import App
from closeloop.models import escalations, extensions, grids, people, tickets
from tests.factories import step

ZONE = ZoneInfo("Asia/Shanghai")
REAL_NOW = datetime(2026, 4, 20, 9, 0, tzinfo=ZONE)  # when the data is written and reported


def z(month: int, day: int, hour: int, minute: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ZONE)


def submit(app: App, grid: str, category: str, when: datetime, title: str = "问题") -> str:
    return service.submit(
        app, service.NewProblem(grid=grid, category=category, title=title), REAL_NOW, at=when
    )


def loop(app: App, ref: str, fixer: str, checker: str, fixed: datetime, closed: datetime) -> None:
    step(app, ref, "fix", fixer, fixed, now=REAL_NOW, note="已整改")
    step(app, ref, "verify", checker, closed - timedelta(minutes=10), now=REAL_NOW)
    step(app, ref, "close", checker, closed, now=REAL_NOW)


def _ids(app: App, ref: str) -> tuple[int, int]:
    with app.engine.connect() as conn:
        row = conn.execute(
            select(tickets.c.id, tickets.c.stage_no).where(tickets.c.ref == ref)
        ).one()
    return row.id, row.stage_no


def _person(app: App, handle: str) -> int:
    with app.engine.connect() as conn:
        return conn.execute(select(people.c.id).where(people.c.handle == handle)).scalar_one()


def _grid(app: App, code: str) -> int:
    with app.engine.connect() as conn:
        return conn.execute(select(grids.c.id).where(grids.c.code == code)).scalar_one()


def escalate(app: App, ref: str, level: int, at: datetime, grid: str, deadline: datetime) -> None:
    ticket_id, stage_no = _ids(app, ref)
    grid_id = _grid(app, grid)
    with app.engine.begin() as conn:
        conn.execute(
            insert(escalations).values(
                ticket_id=ticket_id,
                stage="fix",
                stage_no=stage_no,
                level=level,
                round=1,
                grid_id=grid_id,
                deadline=deadline,
                at=at,
            )
        )


def extend(
    app: App,
    ref: str,
    requested: datetime,
    decided: datetime,
    until: datetime,
    *,
    status: str = "approved",
) -> None:
    ticket_id, stage_no = _ids(app, ref)
    asker, decider = _person(app, "yantou.lead"), _person(app, "duban.wang")
    with app.engine.begin() as conn:
        conn.execute(
            insert(extensions).values(
                ticket_id=ticket_id,
                stage_no=stage_no,
                requested_by_id=asker,
                requested_at=requested,
                reason="需要更多时间",
                until=until,
                status=status,
                decided_by_id=decider,
                decided_at=decided,
            )
        )
        if status == "approved":
            conn.execute(
                update(tickets)
                .where(tickets.c.id == ticket_id)
                .values(due_at=until, extension_count=tickets.c.extension_count + 1)
            )


def defer(
    app: App, ref: str, at: datetime, resumed: datetime | None, new_due: datetime | None = None
) -> None:
    """Defer (and resume) through the steps, so the stage instances are stored as the engine
    stores them; `new_due` is the hand-worked deadline after the resume, checked here."""
    step(
        app,
        ref,
        "defer",
        "duban.wang",
        at,
        now=REAL_NOW,
        reason="待拆迁",
        review_on=at + timedelta(days=30),
    )
    if resumed is not None:
        step(app, ref, "resume", "duban.wang", resumed, now=REAL_NOW)
        with app.engine.connect() as conn:
            due = conn.execute(select(tickets.c.due_at).where(tickets.c.ref == ref)).scalar_one()
        assert due == new_due, (ref, due, new_due)


def build_week14(app: App) -> dict[str, str]:
    """Write the week described above; returns name -> ticket ref."""
    r: dict[str, str] = {}
    y, c = "JS-A1-V01", "JS-A1-V02"

    r["T9"] = submit(app, f"{y}-G03", "street_business", z(3, 25, 10))
    extend(app, r["T9"], z(3, 25, 20), z(3, 25, 21), z(4, 3, 18))
    r["D1"] = submit(app, f"{y}-G01", "street_business", z(3, 27, 10))
    escalate(app, r["D1"], 3, z(3, 28, 11), y, z(3, 28, 10))
    r["T7"] = submit(app, f"{y}-G01", "random_piling", z(3, 29, 20))
    r["T10"] = submit(app, f"{y}-G04", "street_business", z(3, 30, 9))
    defer(app, r["T10"], z(3, 30, 12), z(4, 5, 12), new_due=z(4, 6, 9))
    r["T1"] = submit(app, f"{y}-G02", "random_piling", z(3, 30, 10))
    loop(app, r["T7"], "yantou.g1", "yantou.lead", z(3, 30, 18), z(3, 31, 9, 30))
    r["T2"] = submit(app, f"{y}-G03", "random_piling", z(3, 31, 8))
    r["C1"] = submit(app, f"{c}-G02", "sanitation", z(3, 31, 10))
    r["C2"] = submit(app, f"{c}-G03", "sanitation", z(3, 31, 11))
    loop(app, r["T1"], "yantou.g2", "yantou.lead", z(3, 31, 9), z(3, 31, 16))
    r["T8"] = submit(app, f"{y}-G04", "sanitation", z(4, 1, 8))
    r["T3"] = submit(app, f"{y}-G04", "random_piling", z(4, 1, 9))
    r["X1"] = submit(app, f"{c}-G03", "random_parking", z(4, 1, 10))
    step(app, r["X1"], "dismiss", "duban.wang", z(4, 1, 11), now=REAL_NOW, reason="重复上报")
    r["W1"] = submit(app, f"{c}-G01", "other", z(4, 1, 14))
    extend(app, r["T8"], z(4, 1, 20), z(4, 1, 21), z(4, 8, 18))
    loop(app, r["T2"], "yantou.g3", "yantou.lead", z(4, 1, 10), z(4, 1, 12))
    loop(app, r["C1"], "caoyuan.g2", "caoyuan.lead", z(4, 1, 9), z(4, 1, 9, 45))
    step(app, r["C2"], "fix", "caoyuan.g3", z(4, 1, 10), now=REAL_NOW, note="已清理")
    step(app, r["C2"], "verify", "caoyuan.lead", z(4, 1, 10, 30), now=REAL_NOW)
    step(app, r["T3"], "fix", "yantou.g4", z(4, 1, 12), now=REAL_NOW, note="已清理")
    step(app, r["T3"], "reject", "yantou.lead", z(4, 1, 14), now=REAL_NOW, reason="未清理干净")
    step(app, r["T3"], "fix", "yantou.g4", z(4, 2, 8), now=REAL_NOW, note="再次清理")
    step(app, r["T3"], "verify", "yantou.lead", z(4, 2, 10), now=REAL_NOW)
    step(app, r["T3"], "close", "yantou.lead", z(4, 2, 11), now=REAL_NOW)
    r["T4"] = submit(app, f"{y}-G01", "sanitation", z(4, 2, 9))
    r["T5"] = submit(app, f"{y}-G02", "sanitation", z(4, 2, 10))
    step(app, r["D1"], "reassign", "duban.wang", z(4, 2, 10), now=REAL_NOW, to_grid="JS-A1-V03-G01")
    r["C3"] = submit(app, f"{c}-G02", "sanitation", z(4, 2, 12))
    defer(app, r["T5"], z(4, 2, 15), None)
    r["R1"] = submit(app, f"{y}-G01", "random_piling", z(4, 3, 9))
    r["P1"] = submit(app, f"{c}-G04", "random_parking", z(4, 3, 8))
    loop(app, r["P1"], "caoyuan.g4", "caoyuan.lead", z(4, 3, 9), z(4, 3, 11, 30))
    escalate(app, r["T4"], 3, z(4, 3, 10), y, z(4, 3, 9))
    loop(app, r["R1"], "yantou.g1", "yantou.lead", z(4, 3, 12), z(4, 3, 15))
    escalate(app, r["C3"], 3, z(4, 3, 13), c, z(4, 3, 12))
    escalate(app, r["C3"], 2, z(4, 4, 13), "JS-A1", z(4, 3, 12))
    loop(app, r["T9"], "yantou.g3", "yantou.lead", z(4, 3, 17), z(4, 3, 17, 30))
    r["T6"] = submit(app, f"{y}-G03", "sanitation", z(4, 5, 12))
    step(app, r["C2"], "close", "caoyuan.lead", z(4, 7, 9), now=REAL_NOW)
    return r
