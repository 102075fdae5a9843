"""Calendar months in the zone's time zone (pure): where a month starts and ends."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from closeloop.months import add_months, parse_month
from closeloop.tickets import Invalid


def month_bounds(month: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of the calendar month ``YYYY-MM`` in the zone."""
    try:
        parse_month(month)
    except ValueError as exc:
        raise Invalid("month.malformed", reason=str(exc)) from None
    nxt = add_months(month, 1)
    return (
        datetime.combine(date(int(month[:4]), int(month[5:]), 1), time(), tz),
        datetime.combine(date(int(nxt[:4]), int(nxt[5:]), 1), time(), tz),
    )
