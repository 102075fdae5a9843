"""Exam scores (月考): the inspectors' lines, read from a CSV or entered on the phone, and each
grid's exam total.

Everything here is a pure function of its arguments.

- The CSV (``month,inspector_grid,grid,sheet,item,score,max_score,note``) is refused whole when
  any line has a problem, and every problem is listed with its physical line number (the header
  is line 1). A UTF-8 byte-order mark is accepted; blank lines are skipped; the sheet may be
  written ``basic``/``required``/``bonus`` or 基础卷/必答卷/加分卷. Lines of several months in one
  file are allowed: every line carries its own month and the key of a duplicate includes it.
  Inspectors of the same item of the same grid must agree on its ``max_score``.
- With the zone's answer sheets (``closeloop.exam.sheets``) the item must be one of the sheet's
  items (by key or name; it is stored by key), ``max_score`` may be left empty and is otherwise
  the item's maximum, and a score above the item's maximum is refused.
- Exam: each item's points are the mean over the inspectors who scored it; a sheet's points are
  the sum of its items. The exam total is ``(basic + required) / (their max) * 100 + bonus``,
  capped at 100: the bonus sheet (加分卷) makes up for points lost elsewhere but never lifts the
  exam past the full mark. A grid must have at least one basic or required item. Arithmetic is
  exact (fractions) and the total is rounded once, half up, to 2 decimal places.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from types import MappingProxyType

from closeloop.csvfile import Problems, Row, read_rows
from closeloop.exam.sheets import SHEET_NAMES_ZH, SHEETS, AnswerSheets, parse_sheet
from closeloop.months import parse_month

CSV_COLUMNS: tuple[str, ...] = (
    "month",
    "inspector_grid",
    "grid",
    "sheet",
    "item",
    "score",
    "max_score",
    "note",
)
EXAM_FULL_MARK = Decimal(100)

# Plain decimal numbers only: Decimal() alone would also take "NaN", "1e3" and "1_000".
_NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")


# --------------------------------------------------------------------------- CSV import


@dataclass(frozen=True)
class ExamLine:
    """One inspector's score for one item of one sheet of one grid in one month."""

    line: int
    month: str
    inspector_grid: str
    grid: str
    sheet: str
    item: str
    score: Decimal
    max_score: Decimal
    note: str | None = None


class ExamFileError(ValueError):
    """The exam file is refused whole; ``problems`` lists every problem found."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems: list[str] = list(problems)
        count = len(self.problems)
        summary = f"exam file refused, {count} problem{'s' if count != 1 else ''}:"
        super().__init__("\n".join([summary, *self.problems]))


def read_exam_csv(
    text: str,
    known_grids: Collection[str],
    exam_grids: Collection[str] | None = None,
    *,
    inspectors: Collection[str] | None = None,
    sheets: AnswerSheets | None = None,
) -> list[ExamLine]:
    """Parse and check an exam CSV; return its lines or raise ExamFileError listing all problems.

    ``known_grids`` are all grid codes; ``exam_grids``, when given, are the grids under exam (a
    line grading any other grid is refused); ``inspectors``, when given, are the inspecting
    grids; ``sheets``, when given, are the zone's answer sheets: items must be theirs and
    scores within their maxima.
    """
    known = set(known_grids)
    graded = set(exam_grids) if exam_grids is not None else None
    inspecting = set(inspectors) if inspectors is not None else None

    problems = Problems()
    table = read_rows(text, CSV_COLUMNS, problems=problems)
    lines: list[ExamLine] = []
    for row in table.rows:
        line = _parse_row(row, known, graded, inspecting, sheets, problems)
        if line is not None:
            lines.append(line)
    for n, message in _consistency_problems(lines):
        problems.add(n, message)
    if problems:
        raise ExamFileError(problems.rendered())
    return lines


def _parse_number(text: str) -> Decimal | None:
    return Decimal(text) if _NUMBER_RE.fullmatch(text) else None


def _parse_row(
    row: Row,
    known: set[str],
    graded: set[str] | None,
    inspecting: set[str] | None,
    sheets: AnswerSheets | None,
    problems: Problems,
) -> ExamLine | None:
    cell, n = row.cells, row.line
    before = len(problems)

    def problem(text: str) -> None:
        problems.add(n, text)

    month = cell["month"]
    try:
        parse_month(month)
    except ValueError as exc:
        problem(str(exc))

    inspector = cell["inspector_grid"]
    if not inspector:
        problem("inspector_grid is empty")
    elif inspector not in known:
        problem(f"unknown inspector grid {inspector!r}")
    elif inspecting is not None and inspector not in inspecting:
        problem(f"grid {inspector!r} is not an inspecting grid")

    grid = cell["grid"]
    if not grid:
        problem("grid is empty")
    elif grid not in known:
        problem(f"unknown grid {grid!r}")
    elif graded is not None and grid not in graded:
        problem(f"grid {grid!r} is not under exam")
    if grid and grid == inspector:
        problem(f"grid {grid!r} scores itself")

    sheet = ""
    try:
        sheet = parse_sheet(cell["sheet"])
    except ValueError as exc:
        problem(str(exc))

    item = cell["item"]
    known_item = None
    if not item:
        problem("item is empty")
    elif sheets is not None and sheet:
        known_item = sheets.find(sheet, item)
        if known_item is None:
            keys = ", ".join(i.key for i in sheets.of(sheet)) or "none"
            problem(f"unknown item {item!r} of the {sheet} sheet (its items: {keys})")
        else:
            item = known_item.key

    score = _parse_number(cell["score"])
    if score is None:
        problem(f"score {cell['score']!r} is not a number")
    from_sheet = sheets is not None and not cell["max_score"]
    if from_sheet:  # the item's maximum (an unknown item is already a problem)
        max_score = known_item.max_points if known_item is not None else None
    else:
        max_score = _parse_number(cell["max_score"])
    if max_score is None:
        if not from_sheet:
            problem(f"max_score {cell['max_score']!r} is not a number")
    elif max_score <= 0:
        problem(f"max_score {cell['max_score']} must be greater than 0")
    elif known_item is not None and max_score != known_item.max_points:
        problem(
            f"max_score {cell['max_score']} is not the maximum {known_item.max_points}"
            f" of item {known_item.key!r}"
        )
    elif score is not None and not 0 <= score <= max_score:
        problem(f"score {cell['score']} is out of range 0..{max_score}")

    if len(problems) > before or score is None or max_score is None:
        return None
    return ExamLine(
        line=n,
        month=month,
        inspector_grid=inspector,
        grid=grid,
        sheet=sheet,
        item=item,
        score=score,
        max_score=max_score,
        note=cell["note"] or None,
    )


def _consistency_problems(lines: Iterable[ExamLine]) -> list[tuple[int, str]]:
    """Problems between lines: duplicates, disagreeing max_score, a grid with only bonus items."""
    problems: list[tuple[int, str]] = []
    first_of: dict[tuple[str, str, str, str, str], int] = {}
    max_of: dict[tuple[str, str, str, str], tuple[Decimal, int]] = {}
    sheets_of: dict[tuple[str, str], set[str]] = {}
    first_line_of: dict[tuple[str, str], int] = {}
    for ln in lines:
        key = (ln.month, ln.inspector_grid, ln.grid, ln.sheet, ln.item)
        if key in first_of:
            problems.append(
                (
                    ln.line,
                    f"duplicate of line {first_of[key]}"
                    " (same month, inspector_grid, grid, sheet and item)",
                )
            )
            continue
        first_of[key] = ln.line
        item_key = (ln.month, ln.grid, ln.sheet, ln.item)
        if item_key in max_of and max_of[item_key][0] != ln.max_score:
            earlier, where = max_of[item_key]
            problems.append(
                (
                    ln.line,
                    f"max_score {ln.max_score} differs from {earlier} on line {where}"
                    " for the same month, grid, sheet and item",
                )
            )
        max_of.setdefault(item_key, (ln.max_score, ln.line))
        sheets_of.setdefault((ln.month, ln.grid), set()).add(ln.sheet)
        first_line_of.setdefault((ln.month, ln.grid), ln.line)
    for (month, grid), sheets in sheets_of.items():
        if sheets == {"bonus"}:
            problems.append(
                (
                    first_line_of[month, grid],
                    f"grid {grid!r} has bonus items in {month}"
                    " but no basic or required item, so it has no exam score",
                )
            )
    return problems


# --------------------------------------------------------------------------- exam scores


@dataclass(frozen=True)
class ItemScore:
    """An item's points: the mean over the inspectors who scored it (exact)."""

    item: str
    points: Fraction
    max_score: Decimal
    inspectors: tuple[str, ...]

    @property
    def shown(self) -> Decimal:
        """The points rounded half up to 2 places, for display."""
        return round_half_up(self.points)


@dataclass(frozen=True)
class SheetScore:
    """One answer sheet of one grid: its items and their sum."""

    sheet: str
    items: tuple[ItemScore, ...]

    @property
    def points(self) -> Fraction:
        return sum((item.points for item in self.items), Fraction(0))

    @property
    def max_points(self) -> Decimal:
        return sum((item.max_score for item in self.items), Decimal(0))

    @property
    def name_zh(self) -> str:
        return SHEET_NAMES_ZH[self.sheet]


@dataclass(frozen=True)
class ExamScore:
    """A grid's exam for one month, with the per-sheet breakdown and the 0..100 total."""

    month: str
    grid: str
    sheets: Mapping[str, SheetScore]
    base: Fraction  # (basic + required) / their max * 100, exact
    bonus: Fraction  # bonus sheet points, exact
    total: Decimal  # min(100, base + bonus), rounded half up to 2 places
    inspectors: tuple[str, ...]


def round_half_up(value: Fraction | Decimal | int, places: int = 2) -> Decimal:
    """Round half away from zero to ``places`` decimals, exactly (no float on the way)."""
    scaled = Fraction(value) * 10**places
    magnitude = math.floor(abs(scaled) + Fraction(1, 2))
    return Decimal(magnitude if scaled >= 0 else -magnitude).scaleb(-places)


def exam_scores(lines: Iterable[ExamLine], *, month: str | None = None) -> dict[str, ExamScore]:
    """Score every graded grid of one month (all lines, or those of ``month``)."""
    selected = list(lines)
    if month is not None:
        parse_month(month)
        selected = [ln for ln in selected if ln.month == month]
    months = sorted({ln.month for ln in selected})
    if len(months) > 1:
        raise ValueError(f"exam lines span several months ({', '.join(months)}); pass month=")
    problems = [
        f"line {ln.line}: grid {ln.grid!r} scores itself"
        for ln in selected
        if ln.grid == ln.inspector_grid
    ]
    problems += [
        f"line {ln.line}: score {ln.score} is out of range 0..{ln.max_score}"
        for ln in selected
        if not 0 <= ln.score <= ln.max_score
    ]
    problems += [
        f"line {ln.line}: unknown sheet {ln.sheet!r}" for ln in selected if ln.sheet not in SHEETS
    ]
    problems += [f"line {n}: {message}" for n, message in _consistency_problems(selected)]
    if problems:
        raise ExamFileError(problems)

    by_item: dict[str, dict[str, dict[str, list[ExamLine]]]] = {}
    for ln in selected:
        by_item.setdefault(ln.grid, {}).setdefault(ln.sheet, {}).setdefault(ln.item, []).append(ln)

    scores: dict[str, ExamScore] = {}
    for grid in sorted(by_item):
        sheets = {
            sheet: SheetScore(
                sheet=sheet,
                items=tuple(
                    _item_score(item, by_item[grid][sheet][item])
                    for item in sorted(by_item[grid][sheet])
                ),
            )
            for sheet in SHEETS
            if sheet in by_item[grid]
        }
        graded = [sheets[s] for s in ("basic", "required") if s in sheets]
        base = sum((s.points for s in graded), Fraction(0)) / Fraction(
            sum((s.max_points for s in graded), Decimal(0))
        )
        base *= 100
        bonus = sheets["bonus"].points if "bonus" in sheets else Fraction(0)
        total = round_half_up(min(Fraction(EXAM_FULL_MARK), base + bonus))
        inspectors = sorted(
            {ln.inspector_grid for s in by_item[grid].values() for g in s.values() for ln in g}
        )
        scores[grid] = ExamScore(
            month=months[0],
            grid=grid,
            sheets=MappingProxyType(sheets),
            base=base,
            bonus=bonus,
            total=total,
            inspectors=tuple(inspectors),
        )
    return scores


def _item_score(item: str, lines: list[ExamLine]) -> ItemScore:
    mean = sum((Fraction(ln.score) for ln in lines), Fraction(0)) / len(lines)
    return ItemScore(
        item=item,
        points=mean,
        max_score=lines[0].max_score,
        inspectors=tuple(sorted(ln.inspector_grid for ln in lines)),
    )
