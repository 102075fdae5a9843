"""The indicators on the fixed week of tests/report_data.py, on SQLite and PostgreSQL.

Expected figures are literals worked out by hand from the stories in report_data.py; the
arithmetic is in the comments.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from closeloop.app import App
from closeloop.db import read_only
from closeloop.models import grids, metadata
from closeloop.reports import indicators as ind
from closeloop.reports.indicators import Figures
from closeloop.tickets import Invalid, NotFound
from tests.report_data import build_week14, z

ZONE = ZoneInfo("Asia/Shanghai")
W13 = ind.week_period("2026-W13", ZONE)
W14 = ind.week_period("2026-W14", ZONE)


@pytest.fixture
def week(app: App) -> dict[str, str]:
    metadata.create_all(app.engine)
    return build_week14(app)


def paths(app: App) -> dict[str, str]:
    with app.engine.connect() as conn:
        return dict(conn.execute(select(grids.c.code, grids.c.path)).all())


# --------------------------------------------------------------------------- periods


def test_iso_weeks_in_the_zone() -> None:
    assert W14.start == datetime(2026, 3, 30, tzinfo=ZONE).astimezone(UTC)
    assert W14.end == datetime(2026, 4, 6, tzinfo=ZONE).astimezone(UTC)
    assert ind.week_period("2026-W01", ZONE).start == datetime(2025, 12, 29, tzinfo=ZONE)
    # Wednesday 1 April: the last full week is W13; on Monday 6 April 08:00 it is W14.
    assert ind.last_full_week(z(4, 1, 9), ZONE).label == "2026-W13"
    assert ind.last_full_week(z(4, 6, 8), ZONE).label == "2026-W14"
    # Sunday 23:30 in the zone is still that week, though it is Sunday 15:30 UTC.
    assert ind.week_of(z(4, 5, 23, 30), ZONE).label == "2026-W14"
    assert [p.label for p in ind.weeks_before(ind.week_period("2026-W02", ZONE), 3, ZONE)] == [
        "2025-W51",
        "2025-W52",
        "2026-W01",
    ]


@pytest.mark.parametrize("bad", ["2026-14", "2026-W1", "W14", ""])
def test_bad_weeks_are_refused(bad: str) -> None:
    with pytest.raises(Invalid, match="week"):
        ind.week_period(bad, ZONE)


def test_a_week_the_year_does_not_have_is_not_found() -> None:
    # Well formed but absent (2026 has 53 ISO weeks): the API answers 404, not 422.
    with pytest.raises(NotFound, match="2026-W54"):
        ind.week_period("2026-W54", ZONE)


def test_months_in_the_zone() -> None:
    dec = ind.month_period("2026-12", ZONE)
    assert (dec.start, dec.end) == (
        datetime(2026, 12, 1, tzinfo=ZONE),
        datetime(2027, 1, 1, tzinfo=ZONE),
    )
    with pytest.raises(Invalid, match="YYYY-MM"):
        ind.month_period("2026-13", ZONE)


def test_rates_are_none_without_a_denominator() -> None:
    f = Figures(due=2, deferred=2)
    assert (f.closure_rate, f.on_time_rate) == (None, None)
    assert (f.rework_rate, f.extension_rate) == (0.0, 0.0)
    assert Figures().rework_rate is None
    total = Figures(due=1, escalations={3: 1}) + Figures(due=2, escalations={3: 2, 2: 1})
    assert (total.due, dict(total.escalations)) == (3, {3: 3, 2: 1})


def test_a_change_of_the_limits_does_not_rejudge_a_past_week(
    app: App, week: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deadlines are read as they were stored: new workflow limits (here: every stage due a
    year after it starts) leave the figures of W14 as they were."""
    p = paths(app)
    with read_only(app.engine) as conn:
        before = ind.compute(conn, app, [W13, W14])
    monkeypatch.setattr(
        type(app.deadlines), "due", lambda self, category, stage, start: start + timedelta(365)
    )
    assert app.deadlines.due("other", "fix", z(4, 1, 9)) == z(4, 1, 9) + timedelta(365)
    with read_only(app.engine) as conn:
        after = ind.compute(conn, app, [W13, W14])
    for code in ("JS", "JS-A1-V01", "JS-A1-V02", "JS-A1-V03"):
        for k in (0, 1):
            assert after.figures(p[code], k) == before.figures(p[code], k), (code, k)


# --------------------------------------------------------------------------- golden week


# The figures of issue 16 (disposal, checks, supervision, sources, answers) have their own
# golden week in tests/test_assessment.py; this week's goldens compare the figures it counts.
ISSUE16 = (*ind.FIGURES[ind.FIGURES.index("by_source") :],)


ISSUE16_KEYS = {
    "by_source",
    "dispose_rate",
    "on_time_dispose_rate",
    "late_disposed",
    "late_closed",
    "on_time_verify_rate",
    "failed_verifications",
    "urgent",
    "supervised_on_time_rate",
    "satisfaction_rate",
    "solved_rate",
    "top_categories",
}


def counted(f: Figures) -> Figures:
    return replace(f, **{name: Figures.__dataclass_fields__[name].default for name in ISSUE16
                         if name not in ind.KEYED}, by_source={}, by_category={})  # fmt: skip


def test_week14_golden_figures(app: App, week: dict[str, str]) -> None:
    p = paths(app)
    with read_only(app.engine) as conn:
        res = ind.compute(conn, app, [W13, W14])
    yantou = counted(res.figures(p["JS-A1-V01"]))
    # reported: T1 T2 T3 T4 T5 T6 T8 T10 R1 = 9 (T7, T9 in W13; D1 now belongs to Donghe)
    # due: T7 T1 T2 T3 T4 T5 T9 R1 = 8 (T6: 6 Apr; T8 extended to 8 Apr; T10 paused 6 days)
    # closed: T7 T1 T2 T3 T9 R1 = 6; on time: all but T2 (fixed 2 h late) = 5
    assert yantou == Figures(
        reported=9,
        dispatched=9,
        due=8,
        deferred=1,  # T5
        closed=6,
        closed_on_time=5,
        rework=1,  # T3
        extended=1,  # T9 (T8 is not due this week)
        overdue_open=1,  # T4; T5 is deferred, T6/T8/T10 are not late yet
        recurrences=1,  # R1
        escalations={3: 1},  # T4
    )
    assert yantou.closure_rate == pytest.approx(6 / 7)  # 6 / (8 - 1)
    assert yantou.on_time_rate == pytest.approx(5 / 7)
    assert yantou.rework_rate == 1 / 8 and yantou.extension_rate == 1 / 8

    caoyuan = counted(res.figures(p["JS-A1-V02"]))
    # reported: C1 C2 C3 X1 W1 P1 = 6; due: C1 C2 C3 P1 = 4 (X1 dismissed, W1 due 7 Apr)
    # closed: C1 P1 = 2 (C2 closed on 7 Apr), both on time
    assert caoyuan == Figures(
        reported=6,
        dispatched=6,
        due=4,
        closed=2,
        closed_on_time=2,
        # C3; C2, verified 1 Apr 10:30 and closed only on 7 Apr: its closing stage (due 2 Apr
        # 10:30) was late and not done at the end of the week, though the ticket is closed now
        overdue_open=2,
        recurrences=1,  # C3
        escalations={3: 1, 2: 1},
    )
    assert (caoyuan.closure_rate, caoyuan.on_time_rate) == (0.5, 0.5)  # 2/4

    donghe = counted(res.figures(p["JS-A1-V03"]))
    # D1: reassigned on 2 Apr (dispatched), its fresh deadline 3 Apr 10:00 passed, still open
    assert donghe == Figures(dispatched=1, due=1, overdue_open=1)
    assert (donghe.closure_rate, donghe.on_time_rate) == (0.0, 0.0)

    xitang = counted(res.figures(p["JS-A1-V04"]))
    assert xitang == Figures(escalations={})
    assert xitang.as_json()["closure_rate"] is None

    zone = res.figures(None)
    assert zone == res.figures(p["JS"]) == res.figures(p["JS-A1"])
    # 9+6+0 reported, 9+6+1 dispatched, 8+4+1 due, 6+2 closed, 5+2 on time, 1+2+1 overdue
    assert counted(zone) == Figures(
        reported=15,
        dispatched=16,
        due=13,
        deferred=1,
        closed=8,
        closed_on_time=7,
        rework=1,
        extended=1,
        overdue_open=4,
        recurrences=2,
        escalations={3: 2, 2: 1},
    )
    assert {k: v for k, v in zone.as_json().items() if k not in ISSUE16_KEYS} == {
        "reported": 15,
        "dispatched": 16,
        "due": 13,
        "deferred": 1,
        "closed": 8,
        "closed_on_time": 7,
        "closure_rate": 0.6667,  # 8 / 12
        "on_time_rate": 0.5833,  # 7 / 12
        "rework_rate": 0.0769,  # 1 / 13
        "extension_rate": 0.0769,
        "overdue_open": 4,
        "escalations": {"3": 2, "2": 1, "1": 0},
        "recurrences": 2,
    }

    # W13 in the same call: D1's latest dispatch (2 Apr) gives it its W14 case deadline; at the
    # end of W13 its first fix stage (due 28 Mar 10:00, escalated) was late and not done.
    assert counted(res.figures(p["JS-A1-V01"], 0)) == Figures(reported=2, dispatched=2)
    assert counted(res.figures(p["JS-A1-V03"], 0)) == Figures(
        reported=1, dispatched=1, overdue_open=1, escalations={3: 1}
    )


def test_an_earlier_period_alone_sees_the_deadline_known_then(app: App, week: dict) -> None:
    p = paths(app)
    with read_only(app.engine) as conn:
        alone = ind.compute(conn, app, [W13])
    # At the end of W13, D1 had its first deadline (28 Mar 10:00), missed (escalated) and not
    # closed: it is overdue and open, escalated or not.
    assert counted(alone.figures(p["JS-A1-V03"])) == Figures(
        reported=1, dispatched=1, due=1, overdue_open=1, escalations={3: 1}
    )


def test_items_equal_their_figures(app: App, week: dict[str, str]) -> None:
    p = paths(app)
    name = {ref: n for n, ref in week.items()}
    with read_only(app.engine) as conn:
        res = ind.compute(conn, app, [W14])
        for code in ("JS-A1-V01", "JS-A1-V02", "JS-A1-V03", "JS-A1-V04", "JS"):
            f = res.figures(p[code])
            for figure in ind.FIGURES:
                listed = ind.items(conn, app, W14, figure, within=p[code])
                expected = (
                    f.escalation_total
                    if figure == "escalations"
                    else sum(getattr(f, figure).values())
                    if figure in ind.KEYED
                    else getattr(f, figure)
                )
                assert len(listed) == expected, (code, figure)
        due = ind.items(conn, app, W14, "due", within=p["JS-A1-V01"])
        on_time = ind.items(conn, app, W14, "closed_on_time")
        escalated = ind.items(conn, app, W14, "escalations")
        overdue = ind.items(conn, app, W14, "overdue-open")
        checks = ind.items(conn, app, W14, "verify_due")
    assert sorted(name[i.ref] for i in due) == sorted(
        ["T7", "T1", "T2", "T3", "T4", "T5", "T9", "R1"]
    )
    deadline = {name[i.ref]: i.due_at for i in due}
    assert deadline["T9"] == z(4, 3, 18)  # the extension's until
    assert deadline["T7"] == z(3, 30, 20)
    assert sorted(name[i.ref] for i in on_time) == sorted(
        ["T7", "T1", "T3", "T9", "R1", "C1", "P1"]
    )
    assert sorted((name[i.ref], i.level) for i in escalated) == [("C3", 2), ("C3", 3), ("T4", 3)]
    assert [(name[i.ref], i.grid_code, i.due_at) for i in overdue] == [
        ("T4", "JS-A1-V01-G01", z(4, 3, 9)),
        ("C3", "JS-A1-V02-G02", z(4, 3, 12)),  # escalated twice: the deadline it missed
        ("C2", "JS-A1-V02-G03", z(4, 2, 10, 30)),  # its closing stage
        ("D1", "JS-A1-V03-G01", z(4, 3, 10)),
    ]
    # who had to act in the late stage: C2 waited for 曹园村's leader to close it, not its fixer
    # who had to act in the late stage, as stored: C2 waited for 曹园村's leader to close it, not
    # for its fixer 叶艳; the others were late in their fix
    assert {name[i.ref]: i.assignee_name for i in overdue} == {
        "T4": "徐军艳",
        "C3": "梁涛磊",
        "C2": "谢燕超",
        "D1": "曹琴敏",
    }
    # a check is the village leader's, not the micro grid's whose fix it checks
    assert {(i.grid_code[:9], i.assignee_name) for i in checks} == {
        ("JS-A1-V01", "陈霞桂"),
        ("JS-A1-V02", "谢燕超"),
    }


def test_unknown_figure_is_refused(app: App) -> None:
    metadata.create_all(app.engine)
    with read_only(app.engine) as conn, pytest.raises(Invalid, match="unknown figure 'late'"):
        ind.items(conn, app, W14, "late")


def test_a_refused_or_pending_extension_does_not_move_the_deadline(app: App) -> None:
    from tests.report_data import extend, submit

    metadata.create_all(app.engine)
    refused = submit(app, "JS-A1-V01-G01", "sanitation", z(4, 1, 9))
    extend(app, refused, z(4, 1, 20), z(4, 1, 21), z(4, 9, 18), status="refused")
    with read_only(app.engine) as conn:
        f = ind.compute(conn, app, [W14]).figures(None)
    assert (f.due, f.extended) == (1, 0)  # due 2 Apr 09:00 as filed
