"""Working-time calendar and deadline arithmetic.

Pure functions of their arguments: nothing here reads the clock, the database or the network.

Conventions
-----------
- Every datetime going in must be timezone-aware (any zone); a naive one raises ValueError.
  Every datetime coming out is aware and in UTC.
- Working hours are wall-clock ranges in the calendar's zone, half-open: with 08:30-12:00 the
  moment 08:30 is working time and 12:00 is not.
- A deadline that uses up the last minute of a working range lands on the range's end (17:30),
  not on the start of the next one: "1 working day" from Monday 08:30 is Monday 17:30.
- A limit in working days ("5d" on the working clock) is that many times the calendar's
  working-day length (7.5 h for 08:30-12:00 + 13:30-17:30). Because every working day has the
  same hours, "5 working days" from Monday 10:00 is the following Monday 10:00 when no holiday
  intervenes, and from a Saturday it is the Friday at 17:30.
- Which days are worked: a zone's own holidays, then its own make-up workdays, then the built-in
  Chinese list (statutory holidays and 调休 make-up workdays from the `holidays` package, checked
  against NateScarlet/holiday-cn in the tests), then the weekday rule (Monday-Friday by default).
  For years whose State Council notice is not out yet the `holidays` package applies its
  rule-based estimate (the festivals without make-up days); zones can correct it in config.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from closeloop.errors import CodedError

__all__ = [
    "DEFAULT_HOURS",
    "DEFAULT_REMINDER_FRACTIONS",
    "DEFAULT_TIMEZONE",
    "Clock",
    "Limit",
    "WorkCalendar",
]

Clock = Literal["natural", "working"]
Unit = Literal["m", "h", "d"]

DEFAULT_TIMEZONE = "Asia/Shanghai"
DEFAULT_HOURS: tuple[str, ...] = ("08:30-12:00", "13:30-17:30")
DEFAULT_WEEKDAYS: frozenset[int] = frozenset({1, 2, 3, 4, 5})  # ISO: Monday=1 .. Sunday=7
DEFAULT_REMINDER_FRACTIONS: tuple[float, ...] = (0.5, 0.8)

_CLOCKS: tuple[Clock, ...] = ("natural", "working")
_LIMIT_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhd])\s*$", re.IGNORECASE)
_RANGE_RE = re.compile(r"^\s*(\d{2}):(\d{2})\s*-\s*(\d{2}):(\d{2})\s*$")
_CONFIG_KEYS = frozenset({"timezone", "hours", "holidays", "workdays", "weekdays", "builtin"})
# A calendar without a single working day in ten years is misconfigured; stop instead of looping.
_MAX_IDLE_DAYS = 3660


class CalendarError(CodedError, ValueError):
    """A calendar setting ([calendar] of config.toml) or a limit ("24h" of a workflow file) that
    cannot be read: a code of the catalogue, its parameters the value given."""


def _check_clock(clock: str) -> Clock:
    if clock not in _CLOCKS:
        raise CalendarError("calendar.clock", clock=clock)
    return cast(Clock, clock)


def _utc(t: datetime, name: str = "datetime") -> datetime:
    if t.tzinfo is None or t.tzinfo.utcoffset(t) is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {t.isoformat()}")
    return t.astimezone(UTC)


@dataclass(frozen=True)
class Limit:
    """The time allowed for a stage: a quantity, its unit and the clock it runs on.

    `unit` is "m" (minutes), "h" (hours) or "d" (days). On the natural clock a day is 24 hours;
    on the working clock it is one working day of the calendar (see `duration`).
    """

    value: float
    unit: Unit
    clock: Clock = "natural"

    def __post_init__(self) -> None:
        _check_clock(self.clock)
        if self.unit not in ("m", "h", "d"):
            raise CalendarError("calendar.limit_unit", unit=self.unit)
        if not self.value > 0:
            raise CalendarError("calendar.limit_positive", value=self.value)

    @classmethod
    def parse(cls, text: str, clock: str = "natural") -> Limit:
        """Parse "90m", "2h", "1.5h", "24h", "5d" (case and spaces around the unit ignored)."""
        if not isinstance(text, str):
            raise CalendarError("calendar.limit_not_text", text=text)
        m = _LIMIT_RE.match(text)
        if m is None:
            raise CalendarError("calendar.limit_unreadable", text=text)
        unit = cast(Unit, m.group(2).lower())
        return cls(float(m.group(1)), unit, _check_clock(clock))

    def duration(self, working_day: timedelta) -> timedelta:
        """The time this limit grants; `working_day` is the length of one working day."""
        if self.unit == "m":
            return timedelta(minutes=self.value)
        if self.unit == "h":
            return timedelta(hours=self.value)
        if self.clock == "working":
            return working_day * self.value
        return timedelta(days=self.value)

    def __str__(self) -> str:
        return f"{self.value:g}{self.unit}"


@functools.cache
def _china_year(year: int) -> tuple[frozenset[date], frozenset[date]]:
    """(days off, weekend make-up workdays) for one year of the official Chinese calendar.

    Days off are whole holiday periods: the statutory days plus the weekend days joined to them
    (National Day week's Saturday and Sunday), which only matters to zones that work Saturdays.
    """
    # Imported lazily: building the calendar costs a few ms per year and most runs need one year.
    import holidays

    cn = holidays.China(years=(year - 1, year, year + 1))
    off: set[date] = set()
    makeup: set[date] = set()
    run: list[date] = []  # consecutive national days off, to find the weekends inside a holiday
    day, last = date(year - 1, 12, 1), date(year + 1, 1, 31)
    while day <= last:
        working = cn.is_working_day(day)
        if not working:
            run.append(day)
        else:
            if any(d.weekday() < 5 for d in run):
                off.update(d for d in run if d.year == year)
            run = []
            if day.weekday() >= 5 and day.year == year:
                makeup.add(day)
        day += timedelta(days=1)
    return frozenset(off), frozenset(makeup)


def _parse_hours(ranges: Iterable[Any]) -> tuple[tuple[time, time], ...]:
    parsed: list[tuple[time, time]] = []
    for text in ranges:
        m = _RANGE_RE.match(text) if isinstance(text, str) else None
        if m is None:
            raise CalendarError("calendar.hours_form", text=text)
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        try:
            start, end = time(h1, m1), time(h2, m2)
        except ValueError:
            raise CalendarError("calendar.hours_time", text=text) from None
        parsed.append((start, end))
    return tuple(sorted(parsed))


def _parse_dates(values: Any, key: str) -> frozenset[date]:
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise CalendarError("calendar.dates_list", key=key, values=values)
    days: set[date] = set()
    for v in values:
        # TOML gives bare dates as date objects; JSON and env give strings.
        if isinstance(v, date) and not isinstance(v, datetime):
            days.add(v)
            continue
        try:
            days.add(date.fromisoformat(v))
        except (TypeError, ValueError):
            raise CalendarError("calendar.date", key=key, value=v) from None
    return frozenset(days)


@dataclass(frozen=True)
class WorkCalendar:
    """When people work: a time zone, daily hours, weekdays and the holiday lists."""

    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo(DEFAULT_TIMEZONE))
    hours: tuple[tuple[time, time], ...] = field(
        default_factory=lambda: _parse_hours(DEFAULT_HOURS)
    )
    holidays: frozenset[date] = frozenset()  # the zone's own extra days off
    makeup_workdays: frozenset[date] = frozenset()  # the zone's own extra working days
    weekdays: frozenset[int] = DEFAULT_WEEKDAYS
    builtin: bool = True  # apply the official Chinese holidays and make-up workdays

    def __post_init__(self) -> None:
        if not self.hours:
            raise CalendarError("calendar.no_hours")
        for start, end in self.hours:
            if not start < end:
                raise CalendarError("calendar.hours_order", start=start, end=end)
        for (s1, e1), (s2, e2) in zip(self.hours, self.hours[1:], strict=False):
            if s2 < e1 or s2 < s1:
                raise CalendarError("calendar.hours_overlap", s1=s1, e1=e1, s2=s2, e2=e2)
        if not self.weekdays or not self.weekdays <= DEFAULT_WEEKDAYS | {6, 7}:
            raise CalendarError("calendar.weekdays", weekdays=self.weekdays)
        both = self.holidays & self.makeup_workdays
        if both:
            listed = ", ".join(sorted(d.isoformat() for d in both))
            raise CalendarError("calendar.both", listed=listed)

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> WorkCalendar:
        """Build from the [calendar] section of the config.

        Keys (all optional): timezone = "Asia/Shanghai"; hours = ["08:30-12:00", "13:30-17:30"];
        holidays = [extra days off]; workdays = [extra working days]; weekdays = [1, 2, 3, 4, 5];
        builtin = true (apply the official Chinese list).
        """
        unknown = set(section) - _CONFIG_KEYS
        if unknown:
            raise CalendarError(
                "calendar.unknown_keys", unknown=sorted(unknown), known=sorted(_CONFIG_KEYS)
            )
        tz_name = section.get("timezone", DEFAULT_TIMEZONE)
        try:
            tz = ZoneInfo(tz_name)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise CalendarError("calendar.timezone", tz=tz_name) from None
        hours = section.get("hours", DEFAULT_HOURS)
        if isinstance(hours, str) or not isinstance(hours, Sequence):
            raise CalendarError("calendar.hours_list", example=list(DEFAULT_HOURS))
        weekdays = section.get("weekdays", sorted(DEFAULT_WEEKDAYS))
        if isinstance(weekdays, str) or not isinstance(weekdays, Sequence):
            raise CalendarError("calendar.weekdays_list")
        if not all(isinstance(w, int) and not isinstance(w, bool) for w in weekdays):
            raise CalendarError("calendar.weekdays_numbers", weekdays=weekdays)
        builtin = section.get("builtin", True)
        if not isinstance(builtin, bool):
            raise CalendarError("calendar.builtin", builtin=builtin)
        return cls(
            tz=tz,
            hours=_parse_hours(hours),
            holidays=_parse_dates(section.get("holidays", []), "holidays"),
            makeup_workdays=_parse_dates(section.get("workdays", []), "workdays"),
            weekdays=frozenset(weekdays),
            builtin=builtin,
        )

    @functools.cached_property
    def working_day(self) -> timedelta:
        """Length of one working day (7.5 h for 08:30-12:00 and 13:30-17:30)."""
        day = date(2000, 1, 3)
        return sum(
            (datetime.combine(day, e) - datetime.combine(day, s) for s, e in self.hours),
            timedelta(),
        )

    def duration(self, limit: Limit) -> timedelta:
        """The time `limit` grants on this calendar (working days use `working_day`)."""
        return limit.duration(self.working_day)

    # -- days and moments -------------------------------------------------------------------

    def is_working_day(self, d: date) -> bool:
        if d in self.holidays:
            return False
        if d in self.makeup_workdays:
            return True
        if self.builtin:
            off, makeup = _china_year(d.year)
            if d in off:
                return False
            if d in makeup:
                return True
        return d.isoweekday() in self.weekdays

    def is_working_time(self, t: datetime) -> bool:
        local = _utc(t).astimezone(self.tz)
        if not self.is_working_day(local.date()):
            return False
        wall = local.time()
        return any(s <= wall < e for s, e in self.hours)

    def next_working_moment(self, t: datetime) -> datetime:
        """`t` itself (in UTC) if it is working time, else the start of the next working range."""
        return self._advance(_utc(t), timedelta())

    @functools.cached_property
    def _days(self) -> dict[date, list[tuple[datetime, datetime]]]:
        return {}

    def _ranges(self, d: date) -> list[tuple[datetime, datetime]]:
        """The working ranges of day `d` as UTC instants (empty on a day off); each day worked
        out once (a replay asks for the same days hundreds of thousands of times)."""
        days = self._days
        if d not in days:
            days[d] = (
                [
                    (
                        datetime.combine(d, s, tzinfo=self.tz).astimezone(UTC),
                        datetime.combine(d, e, tzinfo=self.tz).astimezone(UTC),
                    )
                    for s, e in self.hours
                ]
                if self.is_working_day(d)
                else []
            )
        return days[d]

    def _ranges_from(self, t: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Working ranges that end after `t`, clipped to start no earlier than `t`, in order."""
        d = t.astimezone(self.tz).date()
        idle = 0
        while True:
            ranges = self._ranges(d)
            idle = 0 if ranges else idle + 1
            if idle > _MAX_IDLE_DAYS:
                raise ValueError(f"no working day in the ten years after {t.isoformat()}")
            for s, e in ranges:
                if e > t:
                    yield max(s, t), e
            d += timedelta(days=1)

    def _advance(self, t: datetime, amount: timedelta) -> datetime:
        """The moment when `amount` of working time has passed after `t` (both in UTC)."""
        remaining = amount
        for s, e in self._ranges_from(t):
            # `<=` makes a deadline that fills a range land on its end, not the next start.
            if remaining <= e - s:
                return s + remaining
            remaining -= e - s
        raise AssertionError("unreachable: _ranges_from never ends")  # pragma: no cover

    # -- deadlines --------------------------------------------------------------------------

    def add(self, start: datetime, limit: Limit) -> datetime:
        """The deadline of `limit` counted from `start` (UTC)."""
        t = _utc(start, "start")
        amount = self.duration(limit)
        if limit.clock == "natural":
            return t + amount
        return self._advance(t, amount)

    def point(self, start: datetime, limit: Limit, fraction: float) -> datetime:
        """The moment when `fraction` (0..1) of `limit` has passed since `start` (UTC).

        On the working clock the result is always working time: a point that falls on the end
        of a range (12:00, 17:30) or in a break moves to the next working moment, which is when
        a reminder should go out.
        """
        if not 0 <= fraction <= 1:
            raise ValueError(f"fraction must be between 0 and 1, got {fraction!r}")
        t = _utc(start, "start")
        amount = self.duration(limit) * fraction
        if limit.clock == "natural":
            return t + amount
        return self.next_working_moment(self._advance(t, amount))

    def reminders(
        self,
        start: datetime,
        limit: Limit,
        fractions: Sequence[float] = DEFAULT_REMINDER_FRACTIONS,
    ) -> tuple[datetime, ...]:
        """Reminder times before the deadline, one per fraction (default 50% and 80%)."""
        for f in fractions:
            if not 0 < f < 1:
                raise ValueError(f"reminder fractions must be strictly between 0 and 1, got {f!r}")
        return tuple(sorted(self.point(start, limit, f) for f in fractions))

    def elapsed(self, start: datetime, end: datetime, clock: str) -> timedelta:
        """Natural or working time between `start` and `end` (negative if `end` is earlier)."""
        c = _check_clock(clock)
        a, b = _utc(start, "start"), _utc(end, "end")
        if b < a:
            return -self.elapsed(b, a, c)
        if c == "natural":
            return b - a
        total = timedelta()
        d, last = a.astimezone(self.tz).date(), b.astimezone(self.tz).date()
        while d <= last:
            for s, e in self._ranges(d):
                lo, hi = max(s, a), min(e, b)
                if hi > lo:
                    total += hi - lo
            d += timedelta(days=1)
        return total
