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
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from types import MappingProxyType

from closeloop.csvfile import CsvFileError, Problem, Problems, Row, read_rows
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


class ExamFileError(CsvFileError):
    """The exam file is refused whole; ``problems`` lists every problem found."""

    refused = "examfile.refused"
    indent = ""


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
    problems.extend(_consistency_problems(lines))
    if problems:
        raise ExamFileError(problems.found())
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

    month = cell["month"]
    try:
        parse_month(month)
    except ValueError:
        problems.add(n, "examfile.month", month=month)

    inspector = cell["inspector_grid"]
    if not inspector:
        problems.add(n, "examfile.no_inspector")
    elif inspector not in known:
        problems.add(n, "examfile.unknown_inspector", grid=inspector)
    elif inspecting is not None and inspector not in inspecting:
        problems.add(n, "examfile.not_inspecting", grid=inspector)

    grid = cell["grid"]
    if not grid:
        problems.add(n, "examfile.no_grid")
    elif grid not in known:
        problems.add(n, "examfile.unknown_grid", grid=grid)
    elif graded is not None and grid not in graded:
        problems.add(n, "examfile.not_under_exam", grid=grid)
    if grid and grid == inspector:
        problems.add(n, "examfile.scores_itself", grid=grid)

    sheet = ""
    try:
        sheet = parse_sheet(cell["sheet"])
    except ValueError:
        problems.add(n, "examfile.sheet", sheet=cell["sheet"])

    item = cell["item"]
    known_item = None
    if not item:
        problems.add(n, "examfile.no_item")
    elif sheets is not None and sheet:
        known_item = sheets.find(sheet, item)
        if known_item is None:
            keys = ", ".join(i.key for i in sheets.of(sheet)) or "none"
            problems.add(
                n,
                "examfile.unknown_item",
                item=item,
                sheet=sheet,
                sheet_zh=SHEET_NAMES_ZH[sheet],
                keys=keys,
            )
        else:
            item = known_item.key

    score = _parse_number(cell["score"])
    if score is None:
        problems.add(n, "examfile.score_nan", score=cell["score"])
    from_sheet = sheets is not None and not cell["max_score"]
    if from_sheet:  # the item's maximum (an unknown item is already a problem)
        max_score = known_item.max_points if known_item is not None else None
    else:
        max_score = _parse_number(cell["max_score"])
    if max_score is None:
        if not from_sheet:
            problems.add(n, "examfile.max_nan", max_score=cell["max_score"])
    elif max_score <= 0:
        problems.add(n, "examfile.max_not_positive", max_score=cell["max_score"])
    elif known_item is not None and max_score != known_item.max_points:
        problems.add(
            n,
            "examfile.max_not_item",
            max_score=cell["max_score"],
            item_max=known_item.max_points,
            item=known_item.key,
        )
    elif score is not None and not 0 <= score <= max_score:
        problems.add(n, "examfile.score_range", score=cell["score"], max_score=max_score)

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


def _consistency_problems(lines: Iterable[ExamLine]) -> list[Problem]:
    """Problems between lines: duplicates, disagreeing max_score, a grid with only bonus items."""
    problems: list[Problem] = []
    first_of: dict[tuple[str, str, str, str, str], int] = {}
    max_of: dict[tuple[str, str, str, str], tuple[Decimal, int]] = {}
    sheets_of: dict[tuple[str, str], set[str]] = {}
    first_line_of: dict[tuple[str, str], int] = {}
    for ln in lines:
        key = (ln.month, ln.inspector_grid, ln.grid, ln.sheet, ln.item)
        if key in first_of:
            problems.append(Problem(ln.line, "examfile.duplicate", {"first": first_of[key]}))
            continue
        first_of[key] = ln.line
        item_key = (ln.month, ln.grid, ln.sheet, ln.item)
        if item_key in max_of and max_of[item_key][0] != ln.max_score:
            earlier, where = max_of[item_key]
            problems.append(
                Problem(
                    ln.line,
                    "examfile.max_differs",
                    {"max_score": ln.max_score, "earlier": earlier, "first": where},
                )
            )
        max_of.setdefault(item_key, (ln.max_score, ln.line))
        sheets_of.setdefault((ln.month, ln.grid), set()).add(ln.sheet)
        first_line_of.setdefault((ln.month, ln.grid), ln.line)
    for (month, grid), sheets in sheets_of.items():
        if sheets == {"bonus"}:
            problems.append(
                Problem(
                    first_line_of[month, grid],
                    "examfile.bonus_only",
                    {"grid": grid, "month": month},
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
        Problem(ln.line, "examfile.scores_itself", {"grid": ln.grid})
        for ln in selected
        if ln.grid == ln.inspector_grid
    ]
    problems += [
        Problem(ln.line, "examfile.score_range", {"score": ln.score, "max_score": ln.max_score})
        for ln in selected
        if not 0 <= ln.score <= ln.max_score
    ]
    problems += [
        Problem(ln.line, "examfile.unknown_sheet", {"sheet": ln.sheet})
        for ln in selected
        if ln.sheet not in SHEETS
    ]
    problems += _consistency_problems(selected)
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
