"""The monthly exam in the database: import the inspectors' scores, publish a month's board,
keep every grid's history of scores, tiers and penalties.

- `import_exam` checks the whole file (closeloop.reports.exam.read_exam_csv: self-scoring,
  unknown grids, grids not under exam, scores out of range, duplicates) and also refuses lines
  already imported; any problem refuses the file whole, with every problem by line, and nothing
  is written.
- `publish_board` computes a month's board from its stored exam lines and the month's ticket
  indicators (on-time and closure rates of each grid's subtree, closeloop.reports.indicators),
  and stores it as that month's results, replacing an earlier publication. Penalties come from
  the stored results of the two months before; a month with exam lines but no stored results
  is published first (oldest first), so a penalty is never lost because a board was skipped.
  A month already published stays as published: publish it again after importing late lines;
  the two months after it, when published, are published again with it, as their penalties
  depend on it (a month's own score never depends on earlier months, so that is enough).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.exc import IntegrityError

from closeloop.bootstrap import App
from closeloop.db import read_only
from closeloop.models import exam_lines, grids, month_results
from closeloop.reports import indicators as ind
from closeloop.reports.exam import (
    ExamFileError,
    ExamLine,
    GridIndicators,
    GridResult,
    Penalty,
    ScoringConfig,
    add_months,
    exam_scores,
    month_board,
    month_index,
    parse_month,
    read_exam_csv,
)
from closeloop.reports.settings import ExamSettings
from closeloop.tickets import Invalid, NotFound


class ExamRefused(Invalid):
    """The exam file is refused whole; ``problems`` lists every problem by line."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__(str(ExamFileError(self.problems)))


@dataclass(frozen=True)
class Imported:
    lines: int
    months: tuple[str, ...]
    grids: int

    def __str__(self) -> str:
        return f"{self.lines} exam lines for {self.grids} grids in {', '.join(self.months)}"


def exam_settings(app: App) -> ExamSettings:
    return ExamSettings.from_config(app.settings.section("exam"))


def import_exam(app: App, text: str, now: datetime, *, source: str = "") -> Imported:
    """Check and store an exam CSV in one transaction; all or nothing."""
    cfg = exam_settings(app)
    with app.engine.begin() as conn:
        codes = {
            r.code: (r.id, r.level)
            for r in conn.execute(select(grids.c.code, grids.c.id, grids.c.level))
        }
        unknown = [c for c in cfg.inspectors if c not in codes]
        if unknown:
            raise Invalid(f"[exam] inspectors: unknown grid(s) {', '.join(unknown)}")
        under_exam = [c for c, (_, level) in codes.items() if level == cfg.level]
        try:
            lines = read_exam_csv(text, codes, under_exam, inspectors=cfg.inspectors or None)
        except ExamFileError as exc:
            raise ExamRefused(exc.problems) from None
        months = sorted({ln.month for ln in lines})
        stored = {
            (r.month, r.inspector_grid_id, r.grid_id, r.sheet, r.item)
            for r in conn.execute(
                select(
                    exam_lines.c.month,
                    exam_lines.c.inspector_grid_id,
                    exam_lines.c.grid_id,
                    exam_lines.c.sheet,
                    exam_lines.c.item,
                ).where(exam_lines.c.month.in_(months))
            )
        }
        problems = [
            f"line {ln.line}: already imported (same month, inspector_grid, grid, sheet and item)"
            for ln in lines
            if (ln.month, codes[ln.inspector_grid][0], codes[ln.grid][0], ln.sheet, ln.item)
            in stored
        ]
        if problems:
            raise ExamRefused(problems)
        rows = [
            {
                "month": ln.month,
                "inspector_grid_id": codes[ln.inspector_grid][0],
                "grid_id": codes[ln.grid][0],
                "sheet": ln.sheet,
                "item": ln.item,
                "score": str(ln.score),
                "max_score": str(ln.max_score),
                "note": ln.note,
                "source": f"{source}:{ln.line}" if source else str(ln.line),
                "imported_at": now,
            }
            for ln in lines
        ]
        try:
            conn.execute(insert(exam_lines), rows)
        except IntegrityError:
            raise Invalid(
                "another import stored some of these lines meanwhile; nothing was written"
            ) from None
    return Imported(len(rows), tuple(months), len({ln.grid for ln in lines}))


def stored_lines(conn: Connection, month: str) -> list[ExamLine]:
    inspector = grids.alias("inspector")
    graded = grids.alias("graded")
    rows = conn.execute(
        select(
            exam_lines.c.id,
            exam_lines.c.month,
            inspector.c.code.label("inspector_code"),
            graded.c.code.label("grid_code"),
            exam_lines.c.sheet,
            exam_lines.c.item,
            exam_lines.c.score,
            exam_lines.c.max_score,
            exam_lines.c.note,
        )
        .select_from(
            exam_lines.join(inspector, inspector.c.id == exam_lines.c.inspector_grid_id).join(
                graded, graded.c.id == exam_lines.c.grid_id
            )
        )
        .where(exam_lines.c.month == month)
        .order_by(exam_lines.c.id)
    )
    return [
        ExamLine(
            line=r.id,
            month=r.month,
            inspector_grid=r.inspector_code,
            grid=r.grid_code,
            sheet=r.sheet,
            item=r.item,
            score=Decimal(r.score),
            max_score=Decimal(r.max_score),
            note=r.note,
        )
        for r in rows
    ]


def _result(row: Any, code: str) -> GridResult:
    return GridResult(
        month=row.month,
        grid=code,
        rank=row.rank,
        score=Decimal(row.score),
        exam=Decimal(row.exam),
        on_time_rate=row.on_time_rate,
        closure_rate=row.closure_rate,
        tier_zh=row.tier_zh,
        tier_en=row.tier_en,
        reward=Decimal(row.reward),
        reward_lost=Decimal(row.reward_lost),
        below_floor=bool(row.below_floor),
        penalised=bool(row.penalised),
        penalty_source_month=row.penalty_source_month,
        penalty_until=row.penalty_until,
        red=bool(row.red),
        yellow=bool(row.yellow),
    )


def stored_results(
    conn: Connection, months: Iterable[str] = (), grid: str | None = None
) -> list[GridResult]:
    q = select(month_results, grids.c.code).select_from(
        month_results.join(grids, grids.c.id == month_results.c.grid_id)
    )
    wanted = list(months)
    if wanted:
        q = q.where(month_results.c.month.in_(wanted))
    if grid is not None:
        q = q.where(grids.c.code == grid)
    rows = conn.execute(q.order_by(month_results.c.month, month_results.c.rank))
    return [_result(r, r.code) for r in rows]


def _month_indicators(
    conn: Connection, app: App, month: str, codes: Iterable[str]
) -> dict[str, GridIndicators]:
    period = ind.month_period(month, app.tz)
    result = ind.compute(conn, app, [period])
    paths = dict(conn.execute(select(grids.c.code, grids.c.path)).all())
    out = {}
    for code in codes:
        f = result.figures(paths[code])
        out[code] = GridIndicators(on_time_rate=f.on_time_rate, closure_rate=f.closure_rate)
    return out


def _publish_one(conn: Connection, app: App, month: str, cfg: ScoringConfig, now: datetime) -> None:
    lines = stored_lines(conn, month)
    if not lines:
        raise NotFound(f"no exam lines for {month}; import them with `closeloop exam import`")
    scores = exam_scores(lines, month=month)
    rates = _month_indicators(conn, app, month, scores)
    history = stored_results(conn, [add_months(month, -2), add_months(month, -1)])
    board = month_board(month, scores, rates, cfg, history)
    ids = dict(conn.execute(select(grids.c.code, grids.c.id)).all())
    conn.execute(delete(month_results).where(month_results.c.month == month))
    conn.execute(
        insert(month_results),
        [
            {
                "month": r.month,
                "grid_id": ids[r.grid],
                "rank": r.rank,
                "score": str(r.score),
                "exam": str(r.exam),
                "on_time_rate": None if r.on_time_rate is None else float(r.on_time_rate),
                "closure_rate": None if r.closure_rate is None else float(r.closure_rate),
                "tier_zh": r.tier_zh,
                "tier_en": r.tier_en,
                "reward": str(r.reward),
                "reward_lost": str(r.reward_lost),
                "below_floor": r.below_floor,
                "penalised": r.penalised,
                "penalty_source_month": r.penalty_source_month,
                "penalty_until": r.penalty_until,
                "red": r.red,
                "yellow": r.yellow,
                "computed_at": now,
            }
            for r in board.rows
        ],
    )


@dataclass(frozen=True)
class BoardLine:
    result: GridResult
    name: str
    penalty: Penalty | None


@dataclass(frozen=True)
class PenaltyLine:
    penalty: Penalty
    name: str


@dataclass(frozen=True)
class BoardView:
    """A published month's board, with grid names, ready to render."""

    zone_name: str
    month: str
    config: ScoringConfig
    lines: tuple[BoardLine, ...]
    penalties: tuple[PenaltyLine, ...]
    generated_at_text: str

    @property
    def red(self) -> tuple[BoardLine, ...]:
        return tuple(line for line in self.lines if line.result.red)

    @property
    def yellow(self) -> tuple[BoardLine, ...]:
        return tuple(line for line in self.lines if line.result.yellow)

    def as_json(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "rows": [_result_json(line.result, line.name) for line in self.lines],
            "red": [line.result.grid for line in self.red],
            "yellow": [line.result.grid for line in self.yellow],
            "accountability": [line.result.grid for line in self.lines if line.result.below_floor],
            "penalties": [
                {
                    "grid": p.penalty.grid,
                    "source_month": p.penalty.source_month,
                    "until": p.penalty.until,
                    "examined": p.penalty.examined,
                }
                for p in self.penalties
            ],
        }


def _num(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _result_json(r: GridResult, name: str) -> dict[str, Any]:
    return {
        "month": r.month,
        "grid": r.grid,
        "name": name,
        "rank": r.rank,
        "score": _num(r.score),
        "exam": _num(r.exam),
        "on_time_rate": None if r.on_time_rate is None else round(float(r.on_time_rate), 4),
        "closure_rate": None if r.closure_rate is None else round(float(r.closure_rate), 4),
        "tier": r.tier_zh,
        "tier_en": r.tier_en,
        "reward": _num(r.reward),
        "reward_lost": _num(r.reward_lost),
        "below_floor": r.below_floor,
        "accountability": r.below_floor,
        "penalised": r.penalised,
        "penalty_source_month": r.penalty_source_month,
        "penalty_until": r.penalty_until,
        "red": r.red,
        "yellow": r.yellow,
    }


def publish_board(app: App, month: str, now: datetime) -> BoardView:
    """Compute and store ``month``'s board (and any earlier unpublished month), and return it."""
    try:
        parse_month(month)
    except ValueError as exc:
        raise Invalid(str(exc)) from None
    cfg = exam_settings(app).scoring
    with app.engine.begin() as conn:
        published = set(conn.execute(select(month_results.c.month).distinct()).scalars())
        examined = set(
            conn.execute(
                select(exam_lines.c.month).where(exam_lines.c.month < month).distinct()
            ).scalars()
        )
        for earlier in sorted(examined - published, key=month_index):
            _publish_one(conn, app, earlier, cfg, now)
        _publish_one(conn, app, month, cfg, now)
        # The two months after carry this month's penalties: keep their published boards true.
        for later in (add_months(month, 1), add_months(month, 2)):
            if later in published:
                _publish_one(conn, app, later, cfg, now)
    return board_view(app, month, now)


def board_view(app: App, month: str, now: datetime) -> BoardView:
    """A published board as stored, with the penalties active in that month."""
    cfg = exam_settings(app).scoring
    with read_only(app.engine) as conn:
        results = stored_results(conn, [month])
        if not results:
            raise NotFound(f"the board of {month} is not published; run `closeloop exam board`")
        earlier = stored_results(conn, [add_months(month, -2), add_months(month, -1)])
        names = dict(conn.execute(select(grids.c.code, grids.c.name)).all())
    examined = {r.grid for r in results}
    sources: dict[str, str] = {}
    for r in [*earlier, *results]:
        if r.below_floor and month_index(r.month) > month_index(sources.get(r.grid, "0001-01")):
            sources[r.grid] = r.month
    penalties = {
        grid: Penalty(grid, src, add_months(src, 2), grid in examined)
        for grid, src in sorted(sources.items())
    }
    lines = tuple(BoardLine(r, names.get(r.grid, r.grid), penalties.get(r.grid)) for r in results)
    return BoardView(
        zone_name=app.settings.zone_name,
        month=month,
        config=cfg,
        lines=lines,
        penalties=tuple(PenaltyLine(p, names.get(g, g)) for g, p in penalties.items()),
        generated_at_text=now.astimezone(app.tz).strftime("%Y-%m-%d %H:%M"),
    )


def grid_history(app: App, code: str) -> tuple[str, list[GridResult]]:
    """A grid's name and its published results, oldest month first."""
    with read_only(app.engine) as conn:
        name = conn.execute(select(grids.c.name).where(grids.c.code == code)).scalar()
        if name is None:
            raise NotFound(f"unknown grid '{code}'")
        return name, stored_results(conn, grid=code)
