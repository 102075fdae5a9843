"""The monthly exam (月考): cross-inspection scores, the month's score, the red and yellow boards,
reward tiers and the three-month penalty.

Everything here is a pure function of its arguments; the database, the SQL indicators and the
rendering call in from outside.

Rules decided here (the board shows their results to people who will ask why):

- A month is the string ``"YYYY-MM"``. ``add_months("2026-11", 2) == "2027-01"``.
- The CSV (``month,inspector_grid,grid,sheet,item,score,max_score,note``) is refused whole when
  any line has a problem, and every problem is listed with its physical line number (the header
  is line 1). A UTF-8 byte-order mark is accepted; blank lines are skipped; the sheet may be
  written ``basic``/``required``/``bonus`` or 基础卷/必答卷/加分卷. Lines of several months in one
  file are allowed: every line carries its own month and the key of a duplicate includes it.
  Inspectors of the same item of the same grid must agree on its ``max_score``.
- Exam: each item's points are the mean over the inspectors who scored it; a sheet's points are
  the sum of its items. The exam total is ``(basic + required) / (their max) * 100 + bonus``,
  capped at 100: the bonus sheet (加分卷) makes up for points lost elsewhere but never lifts the
  exam past the full mark, so the exam stays on 0..100 like the other parts. A grid must have at
  least one basic or required item. Arithmetic is exact (fractions) and the total is rounded
  once, half up, to 2 decimal places.
- Month's score: ``weights["exam"] * exam + weights["on_time_rate"] * on_time * 100
  + weights["closure_rate"] * closure * 100``. A rate is ``None`` when the grid had no ticket
  due that month; its weight is then left out and the remaining weights are scaled back to a sum
  of 1, so having no tickets neither helps nor hurts. The score is computed from the published
  (rounded) exam total and is itself rounded half up to 2 places; tiers and the floor compare
  against that published figure, so what is shown is what decides.
- Ranking: score descending, then exam descending, then grid code ascending; ranks are 1..n.
- Boards: the red board (红榜) is the top ``red_size`` grids and the yellow board (黄榜) the bottom
  ``yellow_size``, but each board takes at most half of the ranked grids (rounded down). So no
  grid is on both boards, a grid on the red board is always in the better half, and with an odd
  count the middle grid is on neither; a single grid is on no board.
- Tiers: a grid's tier is the highest tier whose ``min_score`` its score reaches.
- Penalty: a grid scoring below ``floor`` in month M is flagged for accountability (问责) in M and
  loses its reward in M, M+1 and M+2 (across year ends). The tier it reaches is still shown; its
  reward is 0 and the withheld amount is shown as ``reward_lost``. Earlier months' low scores come
  from ``history`` (only the two months before M are consulted); when several apply, the latest
  low month is named as the source. Penalties of grids not examined in M are listed too.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from itertools import pairwise
from types import MappingProxyType
from typing import Any

SHEETS: tuple[str, ...] = ("basic", "required", "bonus")
SHEET_NAMES_ZH: Mapping[str, str] = MappingProxyType(
    {"basic": "基础卷", "required": "必答卷", "bonus": "加分卷"}
)
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
INDICATORS: tuple[str, ...] = ("on_time_rate", "closure_rate")
WEIGHT_KEYS: tuple[str, ...] = ("exam", *INDICATORS)
EXAM_FULL_MARK = Decimal(100)

_SHEET_ALIASES: Mapping[str, str] = {
    **{name: name for name in SHEETS},
    **{zh: name for name, zh in SHEET_NAMES_ZH.items()},
}
_MONTH_RE = re.compile(r"(\d{4})-(\d{2})")
# Plain decimal numbers only: Decimal() alone would also take "NaN", "1e3" and "1_000".
_NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")


# --------------------------------------------------------------------------- months


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


def parse_sheet(name: str) -> str:
    """Return the canonical sheet name for ``basic``/``required``/``bonus`` or their zh names."""
    key = name.strip()
    sheet = _SHEET_ALIASES.get(key.lower()) or _SHEET_ALIASES.get(key)
    if sheet is None:
        raise ValueError(
            f"unknown sheet {name!r} (expected basic/基础卷, required/必答卷 or bonus/加分卷)"
        )
    return sheet


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
) -> list[ExamLine]:
    """Parse and check an exam CSV; return its lines or raise ExamFileError listing all problems.

    ``known_grids`` are all grid codes; ``exam_grids``, when given, are the grids under exam (a
    line grading any other grid is refused); ``inspectors``, when given, are the inspecting grids.
    """
    known = set(known_grids)
    graded = set(exam_grids) if exam_grids is not None else None
    inspecting = set(inspectors) if inspectors is not None else None

    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        raise ExamFileError(["the file is empty"])

    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    problems: list[str] = []
    lines: list[ExamLine] = []
    header: list[str] | None = None
    header_line = 0
    try:
        while True:
            start = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                break
            if not any(cell.strip() for cell in row):
                continue
            if header is None:
                header, header_line = [cell.strip().lower() for cell in row], start
                header_problems = _header_problems(header, start)
                if header_problems:
                    raise ExamFileError(header_problems)
                continue
            line, line_problems = _parse_row(row, header, start, known, graded, inspecting)
            problems.extend(line_problems)
            if line is not None:
                lines.append(line)
    except csv.Error as exc:
        problems.append(f"line {reader.line_num}: malformed CSV ({exc}); reading stopped here")

    if header is not None and not lines and not problems:
        problems.append(f"line {header_line}: the header is not followed by any exam line")
    problems.extend(_consistency_problems(lines))
    if problems:
        raise ExamFileError(sorted(problems, key=_problem_line))
    return lines


def _problem_line(problem: str) -> int:
    match = re.match(r"line (\d+):", problem)
    return int(match.group(1)) if match else 0


def _header_problems(header: list[str], line: int) -> list[str]:
    problems = []
    missing = [col for col in CSV_COLUMNS if col not in header]
    if missing:
        problems.append(f"line {line}: missing column(s) {', '.join(missing)}")
    unknown = [col for col in header if col not in CSV_COLUMNS]
    if unknown:
        problems.append(
            f"line {line}: unknown column(s) {', '.join(repr(c) for c in unknown)}"
            f" (expected {','.join(CSV_COLUMNS)})"
        )
    repeated = sorted({col for col in header if col in CSV_COLUMNS and header.count(col) > 1})
    if repeated:
        problems.append(f"line {line}: column(s) given twice: {', '.join(repeated)}")
    return problems


def _parse_number(text: str) -> Decimal | None:
    return Decimal(text) if _NUMBER_RE.fullmatch(text) else None


def _parse_row(
    row: list[str],
    header: list[str],
    n: int,
    known: set[str],
    graded: set[str] | None,
    inspecting: set[str] | None,
) -> tuple[ExamLine | None, list[str]]:
    if len(row) != len(header):
        return None, [f"line {n}: expected {len(header)} fields, found {len(row)}"]
    cell = {col: value.strip() for col, value in zip(header, row, strict=True)}
    problems: list[str] = []

    def problem(text: str) -> None:
        problems.append(f"line {n}: {text}")

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
    if not item:
        problem("item is empty")

    score = _parse_number(cell["score"])
    if score is None:
        problem(f"score {cell['score']!r} is not a number")
    max_score = _parse_number(cell["max_score"])
    if max_score is None:
        problem(f"max_score {cell['max_score']!r} is not a number")
    elif max_score <= 0:
        problem(f"max_score {cell['max_score']} must be greater than 0")
    elif score is not None and not 0 <= score <= max_score:
        problem(f"score {cell['score']} is out of range 0..{cell['max_score']}")

    if problems or score is None or max_score is None:
        return None, problems
    line = ExamLine(
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
    return line, []


def _consistency_problems(lines: Iterable[ExamLine]) -> list[str]:
    """Problems between lines: duplicates, disagreeing max_score, a grid with only bonus items."""
    problems = []
    first_of: dict[tuple[str, str, str, str, str], int] = {}
    max_of: dict[tuple[str, str, str, str], tuple[Decimal, int]] = {}
    sheets_of: dict[tuple[str, str], set[str]] = {}
    first_line_of: dict[tuple[str, str], int] = {}
    for ln in lines:
        key = (ln.month, ln.inspector_grid, ln.grid, ln.sheet, ln.item)
        if key in first_of:
            problems.append(
                f"line {ln.line}: duplicate of line {first_of[key]}"
                " (same month, inspector_grid, grid, sheet and item)"
            )
            continue
        first_of[key] = ln.line
        item_key = (ln.month, ln.grid, ln.sheet, ln.item)
        if item_key in max_of and max_of[item_key][0] != ln.max_score:
            earlier, where = max_of[item_key]
            problems.append(
                f"line {ln.line}: max_score {ln.max_score} differs from {earlier} on line {where}"
                " for the same month, grid, sheet and item"
            )
        max_of.setdefault(item_key, (ln.max_score, ln.line))
        sheets_of.setdefault((ln.month, ln.grid), set()).add(ln.sheet)
        first_line_of.setdefault((ln.month, ln.grid), ln.line)
    for (month, grid), sheets in sheets_of.items():
        if sheets == {"bonus"}:
            problems.append(
                f"line {first_line_of[month, grid]}: grid {grid!r} has bonus items in {month}"
                " but no basic or required item, so it has no exam score"
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


# --------------------------------------------------------------------------- configuration


class ScoringConfigError(ValueError):
    """The scoring section of the configuration is not usable; the message names the key."""


@dataclass(frozen=True)
class Tier:
    """A reward tier: reached by a score of at least ``min_score``; ``reward`` in yuan."""

    name_zh: str
    name_en: str
    min_score: Decimal
    reward: Decimal


DEFAULT_WEIGHTS: Mapping[str, Decimal] = MappingProxyType(
    {"exam": Decimal("0.7"), "on_time_rate": Decimal("0.2"), "closure_rate": Decimal("0.1")}
)
DEFAULT_TIERS: tuple[Tier, ...] = (
    Tier("一档", "Tier 1", Decimal(90), Decimal(30000)),
    Tier("二档", "Tier 2", Decimal(80), Decimal(20000)),
    Tier("三档", "Tier 3", Decimal(70), Decimal(10000)),
)
_CONFIG_KEYS = ("weights", "tiers", "floor", "red_size", "yellow_size")
_TIER_KEYS = ("name_zh", "name_en", "min_score", "reward")


@dataclass(frozen=True)
class ScoringConfig:
    """How the month's score, tiers, penalty floor and board sizes are decided."""

    weights: Mapping[str, Decimal] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    tiers: tuple[Tier, ...] = DEFAULT_TIERS
    floor: Decimal = Decimal(60)
    red_size: int = 5
    yellow_size: int = 5

    def __post_init__(self) -> None:
        _check_weights(self.weights)
        _check_tiers(self.tiers, self.floor)
        for name in ("red_size", "yellow_size"):
            size = getattr(self, name)
            if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                raise ScoringConfigError(f"{name}: must be a whole number >= 0, got {size!r}")
        object.__setattr__(self, "weights", MappingProxyType(dict(self.weights)))
        object.__setattr__(self, "tiers", tuple(self.tiers))

    @classmethod
    def from_config(cls, section: Mapping[str, Any], *, where: str = "exam") -> ScoringConfig:
        """Build from a config section (e.g. ``[exam]`` of config.toml); missing keys default.

        ``weights`` is a table of the three weights; ``tiers`` an array of tables with
        ``name_zh``, ``name_en``, ``min_score``, ``reward`` (or 4-item arrays in that order).
        """
        if not isinstance(section, Mapping):
            raise ScoringConfigError(f"{where}: must be a table, got {type(section).__name__}")
        unknown = sorted(set(section) - set(_CONFIG_KEYS))
        if unknown:
            raise ScoringConfigError(
                f"{where}: unknown key(s) {', '.join(unknown)} (expected {', '.join(_CONFIG_KEYS)})"
            )
        kwargs: dict[str, Any] = {}
        try:
            if "weights" in section:
                kwargs["weights"] = _read_weights(section["weights"], f"{where}.weights")
            if "tiers" in section:
                kwargs["tiers"] = _read_tiers(section["tiers"], f"{where}.tiers")
            if "floor" in section:
                kwargs["floor"] = _to_decimal(section["floor"], f"{where}.floor")
            for name in ("red_size", "yellow_size"):
                if name in section:
                    kwargs[name] = section[name]
            return cls(**kwargs)
        except ScoringConfigError as exc:
            message = str(exc)
            if not message.startswith(where):
                message = f"{where}.{message}"
            raise ScoringConfigError(message) from None


def _to_decimal(value: object, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise ScoringConfigError(f"{where}: must be a number, got {value!r}")
    text = repr(value) if isinstance(value, float) else str(value).strip()
    try:
        number = Decimal(text)
    except ArithmeticError:
        raise ScoringConfigError(f"{where}: must be a number, got {value!r}") from None
    if not number.is_finite():
        raise ScoringConfigError(f"{where}: must be a finite number, got {value!r}")
    return number


def _read_weights(value: object, where: str) -> dict[str, Decimal]:
    if not isinstance(value, Mapping):
        raise ScoringConfigError(f"{where}: must be a table of {', '.join(WEIGHT_KEYS)}")
    return {str(key): _to_decimal(weight, f"{where}.{key}") for key, weight in value.items()}


def _read_tiers(value: object, where: str) -> tuple[Tier, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise ScoringConfigError(f"{where}: must be an array of tiers")
    tiers = []
    for i, entry in enumerate(value):
        at = f"{where}[{i}]"
        if isinstance(entry, Mapping):
            missing = [k for k in _TIER_KEYS if k not in entry]
            extra = sorted(set(entry) - set(_TIER_KEYS))
            if missing or extra:
                raise ScoringConfigError(
                    f"{at}: needs exactly the keys {', '.join(_TIER_KEYS)}"
                    + (f"; missing {', '.join(missing)}" if missing else "")
                    + (f"; unknown {', '.join(extra)}" if extra else "")
                )
            fields = [entry[k] for k in _TIER_KEYS]
        elif isinstance(entry, Sequence) and not isinstance(entry, str) and len(entry) == 4:
            fields = list(entry)
        else:
            raise ScoringConfigError(
                f"{at}: must be a table or an array [name_zh, name_en, min_score, reward]"
            )
        name_zh, name_en, min_score, reward = fields
        for key, name in (("name_zh", name_zh), ("name_en", name_en)):
            if not isinstance(name, str) or not name.strip():
                raise ScoringConfigError(f"{at}.{key}: must be a non-empty string")
        tiers.append(
            Tier(
                name_zh=name_zh.strip(),
                name_en=name_en.strip(),
                min_score=_to_decimal(min_score, f"{at}.min_score"),
                reward=_to_decimal(reward, f"{at}.reward"),
            )
        )
    return tuple(tiers)


def _check_weights(weights: Mapping[str, Decimal]) -> None:
    keys = set(weights)
    if keys != set(WEIGHT_KEYS):
        missing = [k for k in WEIGHT_KEYS if k not in keys]
        unknown = sorted(keys - set(WEIGHT_KEYS))
        raise ScoringConfigError(
            f"weights: needs exactly {', '.join(WEIGHT_KEYS)}"
            + (f"; missing {', '.join(missing)}" if missing else "")
            + (f"; unknown {', '.join(unknown)}" if unknown else "")
        )
    for key in WEIGHT_KEYS:
        weight = weights[key]
        if not isinstance(weight, Decimal) or not weight.is_finite() or weight < 0:
            raise ScoringConfigError(f"weights.{key}: must be a number >= 0, got {weight!r}")
    # Indicator weights drop out when a grid has no due tickets; the exam weight never does,
    # so it alone keeps the rescaled sum away from zero.
    if weights["exam"] <= 0:
        raise ScoringConfigError("weights.exam: must be greater than 0")
    total = sum(weights.values(), Decimal(0))
    if abs(total - 1) > Decimal("1e-9"):
        raise ScoringConfigError(f"weights: must sum to 1, they sum to {total}")


def _check_tiers(tiers: Sequence[Tier], floor: Decimal) -> None:
    if not isinstance(floor, Decimal) or not floor.is_finite() or floor < 0:
        raise ScoringConfigError(f"floor: must be a number >= 0, got {floor!r}")
    if not tiers:
        raise ScoringConfigError("tiers: at least one tier is needed")
    for i, tier in enumerate(tiers):
        if not isinstance(tier, Tier):
            raise ScoringConfigError(f"tiers[{i}]: must be a Tier, got {tier!r}")
        if not 0 <= tier.min_score <= 100:
            raise ScoringConfigError(f"tiers[{i}].min_score: must be within 0..100")
        if tier.reward < 0:
            raise ScoringConfigError(f"tiers[{i}].reward: must be >= 0")
    for i in range(1, len(tiers)):
        upper, lower = tiers[i - 1], tiers[i]
        if not lower.min_score < upper.min_score:
            raise ScoringConfigError(
                f"tiers: min_score must strictly descend from the best tier, but tiers[{i}]"
                f" ({lower.name_en}, {lower.min_score}) follows {upper.min_score}"
            )
        if lower.reward > upper.reward:
            raise ScoringConfigError(
                f"tiers[{i}].reward: {lower.reward} is more than the better tier's {upper.reward}"
            )
    if floor > tiers[-1].min_score:
        raise ScoringConfigError(
            f"floor: {floor} is above the lowest tier's min_score {tiers[-1].min_score};"
            " a grid below the floor must not reach a reward tier"
        )


# --------------------------------------------------------------------------- the month's board


@dataclass(frozen=True)
class GridIndicators:
    """A grid's ticket indicators for the month, as fractions 0..1 (None: no ticket due)."""

    on_time_rate: float | Decimal | None = None
    closure_rate: float | Decimal | None = None


@dataclass(frozen=True)
class GridResult:
    """A grid's line on a month's board; also what is stored as its history for that month."""

    month: str
    grid: str
    rank: int
    score: Decimal
    exam: Decimal
    on_time_rate: float | Decimal | None
    closure_rate: float | Decimal | None
    tier_zh: str | None
    tier_en: str | None
    reward: Decimal  # earned: the tier's reward, or 0 when penalised
    reward_lost: Decimal  # the tier's reward withheld by a penalty
    below_floor: bool  # scored below the floor this month: accountability (问责) starts
    penalised: bool
    penalty_source_month: str | None
    penalty_until: str | None
    red: bool
    yellow: bool

    @property
    def accountability(self) -> bool:
        """问责 is started in the month of the low score only."""
        return self.below_floor


PastResult = GridResult


@dataclass(frozen=True)
class Penalty:
    """A reward penalty active in a month: caused by ``source_month``, lasting to ``until``."""

    grid: str
    source_month: str
    until: str
    examined: bool  # whether the grid is on this month's board


@dataclass(frozen=True)
class Board:
    """A month's ranked results, its red and yellow boards and its active penalties."""

    month: str
    rows: tuple[GridResult, ...]
    penalties: tuple[Penalty, ...]

    @property
    def red(self) -> tuple[GridResult, ...]:
        """The red board (红榜), best first."""
        return tuple(row for row in self.rows if row.red)

    @property
    def yellow(self) -> tuple[GridResult, ...]:
        """The yellow board (黄榜), in rank order (the worst grid last)."""
        return tuple(row for row in self.rows if row.yellow)

    @property
    def accountability(self) -> tuple[GridResult, ...]:
        """Grids for which an accountability procedure (问责) starts this month."""
        return tuple(row for row in self.rows if row.below_floor)

    @property
    def results(self) -> tuple[GridResult, ...]:
        """What to store as this month's history."""
        return self.rows


def month_score(
    exam: Decimal, indicators: GridIndicators, weights: Mapping[str, Decimal]
) -> Decimal:
    """The month's score on 0..100 from the exam total and the ticket indicators."""
    parts = [(Fraction(weights["exam"]), Fraction(exam))]
    for name in INDICATORS:
        rate = getattr(indicators, name)
        if rate is not None:
            parts.append((Fraction(weights[name]), _fraction(rate) * 100))
    weight_sum = sum((w for w, _ in parts), Fraction(0))
    return round_half_up(sum((w * v for w, v in parts), Fraction(0)) / weight_sum)


def tier_for(score: Decimal, tiers: Sequence[Tier]) -> Tier | None:
    """The best tier whose min_score the score reaches, or None."""
    return next((tier for tier in tiers if score >= tier.min_score), None)


def month_board(
    month: str,
    exam: Mapping[str, ExamScore],
    indicators: Mapping[str, GridIndicators | Mapping[str, float | Decimal | None]],
    config: ScoringConfig,
    history: Iterable[GridResult] = (),
) -> Board:
    """Rank the grids examined in ``month`` and decide tiers, rewards, boards and penalties.

    ``indicators`` may lack a grid (treated as no ticket due); indicators of grids not examined
    are ignored. ``history`` holds earlier months' results; those of M-1 and M-2 carry penalties.
    """
    parse_month(month)
    for grid, given in exam.items():
        if given.grid != grid or given.month != month:
            raise ValueError(
                f"exam score keyed {grid!r} is for grid {given.grid!r} in {given.month},"
                f" not for {month}"
            )
    rates = {grid: _indicators(grid, indicators.get(grid)) for grid in exam}

    earlier = {add_months(month, -2), add_months(month, -1)}
    low_months: dict[str, list[str]] = {}
    for past in history:
        parse_month(past.month)
        if past.month in earlier and past.below_floor:
            low_months.setdefault(past.grid, []).append(past.month)

    scored = [
        (grid, month_score(given.total, rates[grid], config.weights), given.total)
        for grid, given in exam.items()
    ]
    # Ties on score then exam go to the lower grid code: arbitrary but stable.
    scored.sort(key=lambda s: s[0])
    scored.sort(key=lambda s: (s[1], s[2]), reverse=True)

    for grid, score, _ in scored:
        if score < config.floor:
            low_months.setdefault(grid, []).append(month)
    sources = {grid: max(months, key=month_index) for grid, months in low_months.items()}

    n = len(scored)
    red_count = min(config.red_size, n // 2)
    yellow_count = min(config.yellow_size, n // 2)
    rows = []
    for rank, (grid, score, exam_total) in enumerate(scored, start=1):
        tier = tier_for(score, config.tiers)
        tier_reward = tier.reward if tier is not None else Decimal(0)
        source = sources.get(grid)
        penalised = source is not None
        rows.append(
            GridResult(
                month=month,
                grid=grid,
                rank=rank,
                score=score,
                exam=exam_total,
                on_time_rate=rates[grid].on_time_rate,
                closure_rate=rates[grid].closure_rate,
                tier_zh=tier.name_zh if tier else None,
                tier_en=tier.name_en if tier else None,
                reward=Decimal(0) if penalised else tier_reward,
                reward_lost=tier_reward if penalised else Decimal(0),
                below_floor=score < config.floor,
                penalised=penalised,
                penalty_source_month=source,
                penalty_until=add_months(source, 2) if source else None,
                red=rank <= red_count,
                yellow=rank > n - yellow_count,
            )
        )
    penalties = tuple(
        Penalty(grid=grid, source_month=src, until=add_months(src, 2), examined=grid in exam)
        for grid, src in sorted(sources.items())
    )
    return Board(month=month, rows=tuple(rows), penalties=penalties)


def grid_history(results: Iterable[GridResult], grid: str) -> list[GridResult]:
    """One grid's stored results in month order (the history page of a grid)."""
    mine = sorted((r for r in results if r.grid == grid), key=lambda r: month_index(r.month))
    for before, after in pairwise(mine):
        if before.month == after.month:
            raise ValueError(f"grid {grid!r} has two results for {before.month}")
    return mine


def _fraction(rate: float | Decimal) -> Fraction:
    # repr() gives the shortest decimal that round-trips, so 0.85 counts as 85/100, not as the
    # binary float nearest to it.
    return Fraction(repr(rate)) if isinstance(rate, float) else Fraction(rate)


def _indicators(
    grid: str, given: GridIndicators | Mapping[str, float | Decimal | None] | None
) -> GridIndicators:
    if given is None:
        return GridIndicators()
    if isinstance(given, GridIndicators):
        values = {name: getattr(given, name) for name in INDICATORS}
    else:
        unknown = sorted(set(given) - set(INDICATORS))
        if unknown:
            raise ValueError(f"indicators of grid {grid!r}: unknown key(s) {', '.join(unknown)}")
        values = {name: given.get(name) for name in INDICATORS}
    for name, rate in values.items():
        if rate is None:
            continue
        if isinstance(rate, bool) or not isinstance(rate, int | float | Decimal):
            raise ValueError(f"indicators of grid {grid!r}: {name} must be a number or None")
        if not (math.isfinite(rate) and 0 <= rate <= 1):
            raise ValueError(f"indicators of grid {grid!r}: {name} {rate} is not within 0..1")
    return GridIndicators(**values)
