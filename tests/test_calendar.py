"""Working-time calendar: hand-computed deadlines, reminders, config and the official holiday list.

Times in the tables are Asia/Shanghai wall times. Default hours: 08:30-12:00 and 13:30-17:30,
so one working day is 7.5 h. Reference days (checked in /work/shared/data/cn_holidays.csv):
- National Day 2025: 10-01..10-08 off; make-up workdays Sun 09-28 and Sat 10-11.
- Spring Festival 2026: 02-15..02-23 off; make-up workdays Sat 02-14 and Sat 02-28.
- 2025-03-07 is a Friday, 2025-03-10 a Monday, with no holiday nearby.
"""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from closeloop.calendar import Limit, WorkCalendar
from tests.conftest import skip_or_fail

SH = ZoneInfo("Asia/Shanghai")
CAL = WorkCalendar.from_config({})
SHARED_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "cn_holidays.csv"


def sh(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH)


def lim(text: str, clock: str = "working") -> Limit:
    return Limit.parse(text, clock)


# -- deadlines ------------------------------------------------------------------------------

ADD_CASES = [
    # (start, limit, clock, expected deadline)
    ("2025-03-07T16:30", "2h", "working", "2025-03-10T09:30"),  # Friday evening over the weekend
    ("2025-03-10T11:00", "2h", "working", "2025-03-10T14:30"),  # across the lunch break
    ("2025-03-10T11:00", "90m", "working", "2025-03-10T14:00"),
    ("2025-03-10T12:00", "1h", "working", "2025-03-10T14:30"),  # start exactly at 12:00
    ("2025-03-10T17:30", "1h", "working", "2025-03-11T09:30"),  # start exactly at 17:30
    ("2025-03-10T08:30", "1d", "working", "2025-03-10T17:30"),  # a full day ends at 17:30
    ("2025-03-10T08:30", "7.5h", "working", "2025-03-10T17:30"),
    ("2025-03-11T00:00", "1h", "working", "2025-03-11T09:30"),  # midnight
    ("2025-03-10T23:59", "1h", "working", "2025-03-11T09:30"),
    ("2025-03-10T10:00", "5d", "working", "2025-03-17T10:00"),
    ("2025-03-08T10:00", "5d", "working", "2025-03-14T17:30"),  # from a Saturday
    ("2025-03-08T10:00", "1d", "working", "2025-03-10T17:30"),
    # National Day 2025
    ("2025-09-30T23:59", "1d", "working", "2025-10-09T17:30"),  # 23:59 on the eve
    ("2025-09-30T16:00", "2h", "working", "2025-10-09T09:00"),
    ("2025-09-27T10:00", "1h", "working", "2025-09-28T09:30"),  # Saturday off, Sunday make-up
    ("2025-09-28T10:00", "1h", "working", "2025-09-28T11:00"),  # start on the make-up Sunday
    ("2025-10-10T17:00", "1h", "working", "2025-10-11T09:00"),  # into the make-up Saturday
    ("2025-09-26T10:00", "5d", "working", "2025-10-10T10:00"),
    ("2025-10-01T00:00", "15d", "working", "2025-10-28T17:30"),
    # Spring Festival 2026
    ("2026-02-13T16:00", "1d", "working", "2026-02-14T16:00"),  # into the make-up Saturday
    ("2026-02-14T16:00", "2h", "working", "2026-02-24T09:00"),  # over the nine days off
    ("2026-02-15T09:00", "1h", "working", "2026-02-24T09:30"),  # start inside the holiday
    ("2026-02-27T17:00", "1h", "working", "2026-02-28T09:00"),  # second make-up Saturday
    ("2026-02-13T10:00", "15d", "working", "2026-03-12T10:00"),
    # natural time: plain arithmetic, holidays and nights count
    ("2025-09-30T23:30", "2h", "natural", "2025-10-01T01:30"),
    ("2026-02-14T10:00", "24h", "natural", "2026-02-15T10:00"),
    ("2026-02-14T10:00", "5d", "natural", "2026-02-19T10:00"),
    ("2025-03-10T23:00", "90m", "natural", "2025-03-11T00:30"),
]


@pytest.mark.parametrize(("start", "limit", "clock", "expected"), ADD_CASES)
def test_add(start: str, limit: str, clock: str, expected: str) -> None:
    deadline = CAL.add(sh(start), lim(limit, clock))
    assert deadline == sh(expected)
    assert deadline.tzinfo is UTC


def test_add_accepts_any_zone_and_answers_in_utc() -> None:
    start = datetime(2025, 3, 7, 8, 30, tzinfo=UTC)  # Friday 16:30 in Shanghai
    assert CAL.add(start, lim("2h")) == datetime(2025, 3, 10, 1, 30, tzinfo=UTC)


def test_long_limit_steps_by_day_not_by_minute() -> None:
    start = sh("2025-01-02T09:00")
    deadline = CAL.add(start, lim("1000d"))
    assert deadline.astimezone(SH).time().isoformat() == "09:00:00"
    assert CAL.elapsed(start, deadline, "working") == timedelta(hours=7.5) * 1000


def test_natural_time_in_a_zone_with_daylight_saving() -> None:
    berlin = WorkCalendar.from_config({"timezone": "Europe/Berlin", "builtin": False})
    be = ZoneInfo("Europe/Berlin")
    start = datetime(2025, 3, 29, 12, 0, tzinfo=be)
    # 24 real hours across the spring-forward night read 13:00 on the wall.
    assert berlin.add(start, lim("24h", "natural")) == datetime(2025, 3, 30, 13, 0, tzinfo=be)
    friday = datetime(2025, 3, 28, 17, 0, tzinfo=be)
    assert berlin.add(friday, lim("1h")) == datetime(2025, 3, 31, 9, 0, tzinfo=be)


# -- elapsed time ---------------------------------------------------------------------------

ELAPSED_CASES = [
    ("2025-03-07T16:00", "2025-03-10T09:00", "working", timedelta(hours=2)),
    ("2025-03-07T16:00", "2025-03-10T09:00", "natural", timedelta(hours=65)),
    ("2025-09-30T17:00", "2025-10-09T09:00", "working", timedelta(hours=1)),
    ("2025-03-10T12:10", "2025-03-10T13:20", "working", timedelta()),  # inside lunch
    ("2025-03-10T00:00", "2025-03-17T00:00", "working", timedelta(hours=37.5)),
    ("2026-02-14T00:00", "2026-03-01T00:00", "working", timedelta(hours=7.5 * 6)),
    ("2025-03-10T10:00", "2025-03-10T10:00", "working", timedelta()),
    ("2025-03-10T10:00", "2025-03-10T09:00", "working", timedelta(hours=-1)),
    ("2025-03-10T10:00", "2025-03-10T09:00", "natural", timedelta(hours=-1)),
]


@pytest.mark.parametrize(("start", "end", "clock", "expected"), ELAPSED_CASES)
def test_elapsed(start: str, end: str, clock: str, expected: timedelta) -> None:
    assert CAL.elapsed(sh(start), sh(end), clock) == expected


# -- working moments ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "working"),
    [
        ("2025-03-10T08:30", True),
        ("2025-03-10T08:29:59", False),
        ("2025-03-10T11:59:59", True),
        ("2025-03-10T12:00", False),
        ("2025-03-10T13:30", True),
        ("2025-03-10T17:30", False),
        ("2025-03-08T10:00", False),  # Saturday
        ("2025-10-08T10:00", False),  # last day of National Day week (a Wednesday)
        ("2025-10-11T10:00", True),  # make-up Saturday
        ("2026-02-28T10:00", True),  # make-up Saturday
        ("2026-02-23T10:00", False),  # Spring Festival Monday
    ],
)
def test_is_working_time(moment: str, working: bool) -> None:
    assert CAL.is_working_time(sh(moment)) is working


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        ("2025-03-10T10:00", "2025-03-10T10:00"),
        ("2025-03-10T12:00", "2025-03-10T13:30"),
        ("2025-03-10T17:30", "2025-03-11T08:30"),
        ("2025-03-08T10:00", "2025-03-10T08:30"),
        ("2025-09-30T18:00", "2025-10-09T08:30"),
        ("2026-02-13T23:59", "2026-02-14T08:30"),
    ],
)
def test_next_working_moment(moment: str, expected: str) -> None:
    assert CAL.next_working_moment(sh(moment)) == sh(expected)


# -- reminders ------------------------------------------------------------------------------

REMINDER_CASES = [
    # (start, limit, clock, expected reminders at the default 50% and 80%)
    ("2025-03-10T10:00", "2h", "natural", ("2025-03-10T11:00", "2025-03-10T11:36")),
    ("2025-03-07T14:00", "1d", "working", ("2025-03-10T08:45", "2025-03-10T11:00")),
    # 50% falls on 12:00 sharp: the reminder waits for 13:30.
    ("2025-03-10T11:00", "2h", "working", ("2025-03-10T13:30", "2025-03-10T14:06")),
    # Natural time reminds at night and on holidays.
    ("2025-09-30T22:00", "24h", "natural", ("2025-10-01T10:00", "2025-10-01T17:12")),
    # Working time never does: 3.75 h of the day before the holiday, 2.25 h after it.
    ("2025-09-30T14:00", "1d", "working", ("2025-10-09T08:45", "2025-10-09T11:00")),
]


@pytest.mark.parametrize(("start", "limit", "clock", "expected"), REMINDER_CASES)
def test_reminders(start: str, limit: str, clock: str, expected: tuple[str, str]) -> None:
    assert CAL.reminders(sh(start), lim(limit, clock)) == tuple(sh(e) for e in expected)


def test_point_full_range_moves_to_next_working_moment_but_deadline_does_not() -> None:
    start, limit = sh("2025-03-10T08:30"), lim("1d")
    assert CAL.add(start, limit) == sh("2025-03-10T17:30")
    assert CAL.point(start, limit, 1.0) == sh("2025-03-11T08:30")
    assert CAL.point(sh("2025-03-08T10:00"), limit, 0.0) == sh("2025-03-10T08:30")
    assert CAL.reminders(start, limit, (0.8, 0.2)) == (
        sh("2025-03-10T10:00"),
        sh("2025-03-10T16:00"),
    )


@pytest.mark.parametrize("fraction", [-0.1, 1.5])
def test_point_rejects_fraction_outside_0_1(fraction: float) -> None:
    with pytest.raises(ValueError, match="fraction"):
        CAL.point(sh("2025-03-10T10:00"), lim("1h"), fraction)


@pytest.mark.parametrize("fractions", [(0.0,), (1.0,), (0.5, 2.0)])
def test_reminders_reject_fraction_outside_open_interval(fractions: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        CAL.reminders(sh("2025-03-10T10:00"), lim("1h"), fractions)


# -- naive datetimes ------------------------------------------------------------------------


def test_naive_datetimes_are_rejected() -> None:
    naive = datetime(2025, 3, 10, 10, 0)
    aware = sh("2025-03-10T10:00")
    calls = [
        lambda: CAL.add(naive, lim("1h")),
        lambda: CAL.point(naive, lim("1h"), 0.5),
        lambda: CAL.elapsed(naive, aware, "working"),
        lambda: CAL.elapsed(aware, naive, "natural"),
        lambda: CAL.is_working_time(naive),
        lambda: CAL.next_working_moment(naive),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="timezone-aware"):
            call()


# -- limits ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "clock", "duration", "canonical"),
    [
        ("2h", "natural", timedelta(hours=2), "2h"),
        ("24h", "natural", timedelta(hours=24), "24h"),
        ("90m", "working", timedelta(minutes=90), "90m"),
        ("1.5h", "natural", timedelta(minutes=90), "1.5h"),
        (" 2 H ", "natural", timedelta(hours=2), "2h"),
        ("5d", "natural", timedelta(days=5), "5d"),
        ("5d", "working", timedelta(hours=37.5), "5d"),
        ("15d", "working", timedelta(hours=112.5), "15d"),
    ],
)
def test_limit_parse(text: str, clock: str, duration: timedelta, canonical: str) -> None:
    limit = Limit.parse(text, clock)
    assert limit.clock == clock
    assert CAL.duration(limit) == duration
    assert str(limit) == canonical


@pytest.mark.parametrize("text", ["", "2", "h", "-2h", "0h", "0.0d", "2w", "2hh", "1,5h", "two"])
def test_limit_parse_rejects_junk(text: str) -> None:
    with pytest.raises(ValueError, match=r"cannot read limit|must be positive"):
        Limit.parse(text)


def test_limit_rejects_unknown_clock_and_non_text() -> None:
    with pytest.raises(ValueError, match="clock must be"):
        Limit.parse("2h", "work")
    with pytest.raises(ValueError, match="text like"):
        Limit.parse(2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="clock must be"):
        CAL.elapsed(sh("2025-03-10T10:00"), sh("2025-03-10T11:00"), "wall")


# -- configuration --------------------------------------------------------------------------


def test_default_config() -> None:
    assert CAL.tz == SH
    assert CAL.working_day == timedelta(hours=7.5)
    assert [f"{s:%H:%M}-{e:%H:%M}" for s, e in CAL.hours] == ["08:30-12:00", "13:30-17:30"]


def test_zone_days_from_config_override_the_builtin_list() -> None:
    cal = WorkCalendar.from_config(
        {
            "holidays": ["2026-05-13", date(2025, 10, 10)],
            "workdays": ["2026-05-10", "2025-10-08"],
        }
    )
    assert not cal.is_working_day(date(2026, 5, 13))  # a Wednesday the zone takes off
    assert not cal.is_working_day(date(2025, 10, 10))
    assert cal.is_working_day(date(2026, 5, 10))  # a Sunday the zone works
    assert cal.is_working_day(date(2025, 10, 8))  # even inside the national holiday
    assert cal.add(sh("2026-05-12T17:00"), lim("1h")) == sh("2026-05-14T09:00")


def test_builtin_off_leaves_plain_weekdays() -> None:
    cal = WorkCalendar.from_config({"builtin": False})
    assert cal.is_working_day(date(2025, 10, 1))
    assert not cal.is_working_day(date(2025, 10, 11))


def test_six_day_week_still_keeps_holidays_that_fall_on_saturday() -> None:
    cal = WorkCalendar.from_config({"weekdays": [1, 2, 3, 4, 5, 6]})
    assert cal.is_working_day(date(2025, 3, 8))  # an ordinary Saturday
    assert not cal.is_working_day(date(2025, 10, 4))  # Saturday in National Day week
    assert not cal.is_working_day(date(2022, 12, 31))  # New Year 2023 began on this Saturday
    assert cal.is_working_day(date(2025, 10, 11))  # make-up Saturday
    assert not cal.is_working_day(date(2025, 3, 9))


def test_hours_may_touch_and_are_sorted() -> None:
    cal = WorkCalendar.from_config({"hours": ["13:00-17:00", "08:00-12:00", "12:00-13:00"]})
    assert cal.working_day == timedelta(hours=9)
    assert cal.add(sh("2025-03-10T11:00"), lim("2h")) == sh("2025-03-10T13:00")


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"hours": ["8:30-12:00"]}, "must look like"),
        ({"hours": ["08:30-12"]}, "must look like"),
        ({"hours": ["25:00-26:00"]}, "not a time of day"),
        ({"hours": ["12:00-08:30"]}, "start must be before the end"),
        ({"hours": ["08:30-08:30"]}, "start must be before the end"),
        ({"hours": ["08:00-12:00", "11:00-13:00"]}, "overlap"),
        ({"hours": []}, "at least one range"),
        ({"hours": "08:30-12:00"}, "must be a list"),
        ({"timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"holiday": ["2026-05-06"]}, "unknown calendar setting"),
        ({"holidays": ["2026-13-01"]}, "is not a date"),
        ({"holidays": "2026-05-06"}, "must be a list of dates"),
        (
            {"holidays": ["2026-05-06"], "workdays": ["2026-05-06"]},
            "both as holiday and as workday",
        ),
        ({"builtin": "yes"}, "true or false"),
        ({"weekdays": [0, 1]}, "ISO numbers 1-7"),
        ({"weekdays": []}, "ISO numbers 1-7"),
        ({"weekdays": ["Mon"]}, "numbers 1-7"),
    ],
)
def test_bad_config_is_a_clear_error(section: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WorkCalendar.from_config(section)


def test_calendar_without_working_days_stops_instead_of_looping() -> None:
    mondays = frozenset(date(2025, 3, 10) + timedelta(weeks=w) for w in range(600))
    cal = WorkCalendar(weekdays=frozenset({1}), holidays=mondays, builtin=False)
    with pytest.raises(ValueError, match="no working day"):
        cal.add(sh("2025-03-10T10:00"), lim("1h"))


# -- the official list against holiday-cn ---------------------------------------------------


def test_builtin_list_matches_holiday_cn_2020_to_2026() -> None:
    if not SHARED_CSV.is_file():
        skip_or_fail(f"{SHARED_CSV} is missing (needs the shared/ folder beside the repository)")
    with SHARED_CSV.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    off = {date.fromisoformat(r["date"]) for r in rows if r["isOffDay"] == "True"}
    makeup = {date.fromisoformat(r["date"]) for r in rows if r["isOffDay"] == "False"}
    assert {d.year for d in off} >= set(range(2020, 2027))
    assert {d.year for d in makeup} >= set(range(2020, 2027))
    assert date(2025, 9, 28) in makeup and date(2025, 10, 11) in makeup
    assert {date(2026, 2, 14), date(2026, 2, 28)} <= makeup

    wrong = []
    day = date(2020, 1, 1)
    while day <= date(2026, 12, 31):
        expected = day in makeup or (day not in off and day.weekday() < 5)
        if CAL.is_working_day(day) is not expected:
            wrong.append(day.isoformat())
        day += timedelta(days=1)
    assert wrong == []


# -- properties -----------------------------------------------------------------------------

starts = st.datetimes(
    min_value=datetime(2020, 1, 1),
    max_value=datetime(2026, 12, 31),
    timezones=st.sampled_from([SH, UTC]),
)
limits = st.one_of(
    st.builds(Limit, st.integers(1, 900), st.just("m"), st.sampled_from(["natural", "working"])),
    st.builds(Limit, st.integers(1, 48), st.just("h"), st.sampled_from(["natural", "working"])),
    st.builds(Limit, st.integers(1, 20), st.just("d"), st.sampled_from(["natural", "working"])),
)


@settings(max_examples=150, deadline=None)
@given(start=starts, limit=limits)
def test_add_then_elapsed_gives_the_limit_back(start: datetime, limit: Limit) -> None:
    deadline = CAL.add(start, limit)
    assert deadline >= start
    assert CAL.elapsed(start, deadline, limit.clock) == CAL.duration(limit)


@settings(max_examples=150, deadline=None)
@given(a=starts, b=starts, limit=limits)
def test_deadline_is_monotonic_in_start(a: datetime, b: datetime, limit: Limit) -> None:
    early, late = sorted((a, b))
    assert CAL.add(early, limit) <= CAL.add(late, limit)


@settings(max_examples=100, deadline=None)
@given(start=starts, limit=limits, fraction=st.floats(0, 1))
def test_working_reminder_points_are_working_time(
    start: datetime, limit: Limit, fraction: float
) -> None:
    moment = CAL.point(start, limit, fraction)
    if limit.clock == "working":
        assert CAL.is_working_time(moment)
    assert moment >= start
