"""Months as the zone counts them: the string ``"YYYY-MM"``.

``add_months("2026-11", 2) == "2027-01"``. Used by the exam (a month's board, the deduction over
the months after a low score) and by the reports (a month's ticket figures, campaigns).
"""

from __future__ import annotations

import re

_MONTH_RE = re.compile(r"(\d{4})-(\d{2})")


def parse_month(text: str) -> str:
    """Return ``text`` if it is a valid ``YYYY-MM`` month, else raise ValueError."""
    match = _MONTH_RE.fullmatch(text) if isinstance(text, str) else None
    if match is None or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) == 0:
        raise ValueError(f"month {text!r} is not of the form YYYY-MM (e.g. 2026-04)")
    return text


def month_index(month: str) -> int:
    """Count months since year 0 so that consecutive months differ by one."""
    parse_month(month)
    return int(month[:4]) * 12 + int(month[5:]) - 1


def add_months(month: str, n: int) -> str:
    """Return the month ``n`` months after ``month`` (``n`` may be negative)."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an int, not {type(n).__name__}")
    year, month0 = divmod(month_index(month) + n, 12)
    if not 1 <= year <= 9999:
        raise ValueError(f"{month} + {n} months leaves the years 0001..9999")
    return f"{year:04d}-{month0 + 1:02d}"
