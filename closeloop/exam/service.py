"""The monthly exam in the database: one transaction per use case.

- `import_exam` checks the whole file (closeloop.exam.scoring.read_exam_csv with the zone's
  answer sheets: self-scoring, unknown grids and items, grids not under exam, scores above the
  item's maximum, duplicates) and also refuses lines already stored; any problem refuses the
  file whole, with every problem by line, and nothing is written.
- `make_plan` stores the month's cross-inspection plan (closeloop.exam.plan), seeded by the
  month and avoiding the pairs of the month before; asked again it answers the stored plan.
- `publish_board` computes a month's board from its stored exam lines, the month's ticket
  indicators (closeloop.reports.indicators) and the city's assessment scores, and stores it as
  that month's results, replacing an earlier publication. Deductions come from the stored
  results of the three months before; a month with exam lines but no stored results is
  published first (oldest first), so a deduction is never lost because a board was skipped.
  The three months after it, when published, are published again with it, as their rewards
  depend on it. A grid assessed below the floor gets an accountability case (问责) in the same
  transaction; a case whose grid is no longer below the floor after a re-publication is closed
  with that outcome. Opening or closing a case queues its notice to the owner and the grid's
  leaders in that transaction too (closeloop.exam.accountability), once per case and person.
- Scoring on the pages (`save_grading`, `reopen_grading`) writes the same exam lines as the
  import, with the state of each grid's scoring and an event for every change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from closeloop import outbox
from closeloop.app import App
from closeloop.csvfile import Listed, Problem, Problems, read_rows
from closeloop.db import read_only
from closeloop.evidence import StoredFile
from closeloop.exam import accountability, funds
from closeloop.exam.boards import (
    GridIndicators,
    GridResult,
    ScoringConfig,
    month_board,
)
from closeloop.exam.plan import Assignment, Plan, PlanError
from closeloop.exam.plan import make_plan as plan_rules
from closeloop.exam.rewards import DEDUCTION_MONTHS, Penalty, covering_low_month
from closeloop.exam.scoring import ExamFileError, ExamLine, exam_scores, read_exam_csv
from closeloop.exam.settings import ExamSettings
from closeloop.exam.sheets import AnswerSheets, SheetItem
from closeloop.models import (
    accountability_cases,
    city_scores,
    exam_events,
    exam_gradings,
    exam_lines,
    exam_plans,
    fund_payments,
    fund_projects,
    grids,
    month_results,
    people,
)
from closeloop.months import add_months, month_index, parse_month
from closeloop.reports import indicators as ind
from closeloop.tickets import Actor, Conflict, Invalid, NotFound, NotPermitted


class ExamRefused(Listed, Invalid):
    """The exam file (or a grading form) is refused whole; ``items`` are every problem by line
    (by field for a form), ``problems`` them in English, :meth:`lines` in a reader's language."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.items = list(problems)
        super().__init__("exam.file_refused", problems=str(ExamFileError(self.items)))

    def text(self, locale: str, words: Callable[[str], str] | None = None) -> str:
        return ExamFileError(self.items).text(locale, words)


@dataclass(frozen=True)
class Imported:
    lines: int
    months: tuple[str, ...]
    grids: int

    def __str__(self) -> str:
        return f"{self.lines} exam lines for {self.grids} grids in {', '.join(self.months)}"


def exam_settings(app: App) -> ExamSettings:
    return ExamSettings.from_settings(app.settings)


def answer_sheets(app: App) -> AnswerSheets:
    return exam_settings(app).sheets()


def _month(month: str) -> str:
    try:
        return parse_month(month)
    except ValueError as exc:
        raise Invalid("month.malformed", reason=str(exc)) from None


def _codes(conn: Connection) -> dict[str, Any]:
    """Every grid by code: id, level, name, path, parent id."""
    return {
        r.code: r
        for r in conn.execute(
            select(
                grids.c.code,
                grids.c.id,
                grids.c.level,
                grids.c.name,
                grids.c.path,
                grids.c.parent_id,
            )
        )
    }


def _checked_inspectors(cfg: ExamSettings, codes: Mapping[str, Any]) -> None:
    unknown = [c for c in cfg.inspectors if c not in codes]
    if unknown:
        raise Invalid("exam.inspectors_unknown", codes=", ".join(unknown))


def import_exam(app: App, text: str, now: datetime, *, source: str = "") -> Imported:
    """Check and store an exam CSV in one transaction; all or nothing."""
    cfg = exam_settings(app)
    sheets = cfg.sheets()
    with app.engine.begin() as conn:
        codes = {code: (r.id, r.level) for code, r in _codes(conn).items()}
        _checked_inspectors(cfg, codes)
        under_exam = [c for c, (_, level) in codes.items() if level == cfg.level]
        try:
            lines = read_exam_csv(
                text, codes, under_exam, inspectors=cfg.inspectors or None, sheets=sheets
            )
        except ExamFileError as exc:
            raise ExamRefused(exc.items) from None
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
            Problem(ln.line, "examfile.stored")
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
            raise Invalid("exam.stored_meanwhile") from None
        conn.execute(
            insert(exam_events),
            [
                {
                    "month": month,
                    "grid_id": codes[grid][0],
                    "kind": "imported",
                    "actor": source or "import",
                    "reason": None,
                    "at": now,
                }
                for month, grid in sorted({(ln.month, ln.grid) for ln in lines})
            ],
        )
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
        city_score=None if row.city_score is None else Decimal(row.city_score),
        basis=row.basis or "exam",
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


def _city_scores(conn: Connection, month: str) -> dict[str, Decimal]:
    rows = conn.execute(
        select(grids.c.code, city_scores.c.score)
        .select_from(city_scores.join(grids, grids.c.id == city_scores.c.grid_id))
        .where(city_scores.c.month == month)
    )
    return {code: Decimal(score) for code, score in rows}


def _earlier_months(month: str) -> list[str]:
    return [add_months(month, -n) for n in range(DEDUCTION_MONTHS, 0, -1)]


def _publish_one(
    conn: Connection, app: App, month: str, cfg: ExamSettings, now: datetime
) -> list[GridResult]:
    lines = stored_lines(conn, month)
    if not lines:
        raise NotFound("exam.no_lines", month=month)
    scores = exam_scores(lines, month=month)
    rates = _month_indicators(conn, app, month, scores)
    history = stored_results(conn, _earlier_months(month))
    board = month_board(month, scores, rates, cfg.scoring, history, _city_scores(conn, month))
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
                "city_score": None if r.city_score is None else str(r.city_score),
                "basis": r.basis,
            }
            for r in board.rows
        ],
    )
    _open_cases(conn, app, cfg, month, board.rows, ids, now)
    return list(board.rows)


def _case_owner(conn: Connection, cfg: ExamSettings) -> str:
    if cfg.accountability_owner:
        return cfg.accountability_owner
    for handle, roles in conn.execute(
        select(people.c.handle, people.c.roles).order_by(people.c.id)
    ):
        if "supervisor" in (roles or "").split(","):
            return str(handle)
    raise Invalid("exam.no_owner")


def _leaders_of(conn: Connection, grid_id: int) -> list[dict[str, str]]:
    row = conn.execute(
        select(grids.c.code, people.c.handle, people.c.name)
        .select_from(grids.outerjoin(people, people.c.id == grids.c.leader_id))
        .where(grids.c.id == grid_id)
    ).one()
    return [{"grid": row.code, "handle": row.handle, "name": row.name}] if row.handle else []


def _open_cases(
    conn: Connection,
    app: App,
    cfg: ExamSettings,
    month: str,
    rows: Sequence[GridResult],
    ids: Mapping[str, int],
    now: datetime,
) -> None:
    """Open a 问责 case for each grid below the floor; close those no longer below it."""
    existing = {
        r.grid_id: r
        for r in conn.execute(
            select(accountability_cases).where(accountability_cases.c.month == month)
        )
    }
    low = {ids[r.grid]: r for r in rows if r.below_floor}
    floor = cfg.scoring.floor
    opening = [g for g in low if g not in existing]
    closing = [c for g, c in existing.items() if g not in low and c.closed_at is None]
    # The grids the notices name, read once for the whole publication.
    named = {
        gid: (str(code), str(name))
        for gid, code, name in conn.execute(
            select(grids.c.id, grids.c.code, grids.c.name).where(
                grids.c.id.in_([*opening, *(c.grid_id for c in closing)])
            )
        )
    }
    owner = _case_owner(conn, cfg) if opening else ""
    due_on = (now.astimezone(app.tz).date() + timedelta(cfg.accountability_days)).isoformat()
    for grid_id in opening:
        r = low[grid_id]
        basis = "市考核" if r.basis == "city" else "月考"
        leaders = _leaders_of(conn, grid_id)
        case_id = conn.execute(
            insert(accountability_cases)
            .returning(accountability_cases.c.id)
            .values(
                grid_id=grid_id,
                month=month,
                leaders=leaders,
                reason=f"{month} {basis}得分{r.assessment}，低于{floor}分"
                f" / {month}: assessed {r.assessment}, below the floor of {floor}",
                owner=owner,
                due_on=due_on,
                opened_at=now,
            )
        ).scalar_one()
        _tell(
            conn,
            app,
            now,
            case_id=case_id,
            grid=named[grid_id],
            month=month,
            owner=owner,
            leaders=leaders,
            due_on=due_on,
            event="opened",
            basis=r.basis,
            score=str(r.assessment),
            floor=str(floor),
        )
    lifted = "重新发布后不再低于底线 / no longer below the floor after re-publication"
    for case in closing:
        conn.execute(
            update(accountability_cases)
            .where(accountability_cases.c.id == case.id)
            .values(outcome=lifted, closed_by="closeloop", closed_at=now)
        )
        _tell(
            conn,
            app,
            now,
            case_id=case.id,
            grid=named[case.grid_id],
            month=month,
            owner=case.owner,
            leaders=case.leaders or (),
            due_on=case.due_on,
            event="closed",
            outcome=lifted,
        )


def _tell(
    conn: Connection,
    app: App,
    now: datetime,
    *,
    case_id: int,
    grid: tuple[str, str],
    month: str,
    owner: str,
    leaders: Iterable[Mapping[str, Any]],
    due_on: str,
    event: str,
    skip: str | None = None,
    **facts: str | None,
) -> int:
    """Queue the notice of a case's opening or closing to its owner and the grid's leaders, in
    the caller's transaction; someone with no person row any more is not told. Returns how many
    rows were new: the keys name the case and the recipient, so telling twice stores once."""
    who = accountability.recipients(owner, leaders, skip=skip)
    found = {
        row.handle: row
        for row in conn.execute(
            select(people.c.id, people.c.handle, people.c.name).where(
                people.c.handle.in_({owner} | {h for h, _ in who})
            )
        )
    }
    body = accountability.payload(
        event=event,
        case_id=case_id,
        grid=grid[0],
        grid_name=grid[1],
        month=month,
        due_on=due_on,
        owner_name=str(found[owner].name) if owner in found else owner,
        **facts,
    )
    defaults = app.settings.section("notifiers").get("default_channels", ["console"])
    not_before = outbox.quiet_until(app.calendar, now)
    return sum(
        outbox.enqueue(
            conn,
            kind=accountability.KIND,
            recipient_id=found[handle].id,
            key=accountability.notice_key(case_id, event, handle),
            now=now,
            default_channels=defaults,
            payload={**body, "role": role},
            not_before=not_before,
        )
        for handle, role in who
        if handle in found
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
            "rows": [result_json(line.result, line.name) for line in self.lines],
            "red": [line.result.grid for line in self.red],
            "yellow": [line.result.grid for line in self.yellow],
            "accountability": [line.result.grid for line in self.lines if line.result.below_floor],
            "weights": {k: float(v) for k, v in self.config.weights.items()},
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


def result_json(r: GridResult, name: str) -> dict[str, Any]:
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
        "city_score": None if r.city_score is None else _num(r.city_score),
        "basis": r.basis,
    }


def publish_board(app: App, month: str, now: datetime) -> BoardView:
    """Compute and store ``month``'s board (and any earlier unpublished month), and return it."""
    _month(month)
    cfg = exam_settings(app)
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
        # The three months after carry this month's deduction: keep their boards true.
        for n in range(1, DEDUCTION_MONTHS + 1):
            later = add_months(month, n)
            if later in published:
                _publish_one(conn, app, later, cfg, now)
    return board_view(app, month, now)


def board_view(app: App, month: str, now: datetime) -> BoardView:
    """A published board as stored, with the deductions active in that month."""
    cfg = exam_settings(app).scoring
    with read_only(app.engine) as conn:
        results = stored_results(conn, [month])
        if not results:
            raise NotFound("exam.board_missing", month=month)
        earlier = stored_results(conn, _earlier_months(month))
        names = dict(conn.execute(select(grids.c.code, grids.c.name)).all())
    examined = {r.grid for r in results}
    low: dict[str, list[str]] = {}
    for r in earlier:
        if r.below_floor:
            low.setdefault(r.grid, []).append(r.month)
    penalties = {}
    for grid, months in sorted(low.items()):
        source = covering_low_month(month, months)
        if source is not None:
            until = add_months(source, DEDUCTION_MONTHS)
            penalties[grid] = Penalty(grid, source, until, grid in examined)
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
            raise NotFound("grid.unknown", code=code)
        return name, stored_results(conn, grid=code)


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class PlanLine:
    inspector_grid: str
    inspector_name: str
    grid: str
    grid_name: str


@dataclass(frozen=True)
class PlanView:
    month: str
    lines: tuple[PlanLine, ...]  # by inspector, then grid
    repeats: int
    own_medium: int

    def by_inspector(self) -> dict[str, list[PlanLine]]:
        out: dict[str, list[PlanLine]] = {}
        for line in self.lines:
            out.setdefault(line.inspector_grid, []).append(line)
        return out

    def as_json(self) -> list[dict[str, str]]:
        return [{"inspector_grid": x.inspector_grid, "grid": x.grid} for x in self.lines]


def _medium_of(code: str, codes: Mapping[str, Any]) -> str | None:
    """The medium grid (level 2) a grid belongs to; a medium grid is its own."""
    by_id = {r.id: c for c, r in codes.items()}
    row = codes[code]
    while row is not None and row.level > 2:
        row = codes.get(by_id.get(row.parent_id, ""))
    return None if row is None or row.level != 2 else str(row.code)


def _stored_plan(conn: Connection, month: str) -> list[Assignment]:
    inspector, graded = grids.alias("inspector"), grids.alias("graded")
    rows = conn.execute(
        select(inspector.c.code, graded.c.code)
        .select_from(
            exam_plans.join(inspector, inspector.c.id == exam_plans.c.inspector_grid_id).join(
                graded, graded.c.id == exam_plans.c.grid_id
            )
        )
        .where(exam_plans.c.month == month)
    )
    return [Assignment(i, g) for i, g in rows]


def _plan_view(
    month: str, plan: Sequence[Assignment], codes: Mapping[str, Any], p: Plan | None
) -> PlanView:
    lines = sorted(
        (
            PlanLine(a.inspector_grid, codes[a.inspector_grid].name, a.grid, codes[a.grid].name)
            for a in plan
        ),
        key=lambda x: (codes[x.inspector_grid].path, codes[x.grid].path),
    )
    return PlanView(month, tuple(lines), p.repeats if p else 0, p.own_medium if p else 0)


def make_plan(app: App, month: str, now: datetime, *, replace: bool = False) -> PlanView:
    """Store the month's cross-inspection plan (or answer the stored one); one transaction."""
    _month(month)
    cfg = exam_settings(app)
    with app.engine.begin() as conn:
        codes = _codes(conn)
        stored = _stored_plan(conn, month)
        if stored and not replace:
            return _plan_view(month, stored, codes, None)
        if stored:
            started = conn.execute(
                select(exam_gradings.c.id).where(exam_gradings.c.month == month).limit(1)
            ).first()
            if started is not None:
                raise Invalid("exam.plan_started", month=month)
            conn.execute(delete(exam_plans).where(exam_plans.c.month == month))
        _checked_inspectors(cfg, codes)
        if not cfg.inspectors:
            raise Invalid("exam.inspectors_empty")
        examined = {c: _medium_of(c, codes) for c, r in codes.items() if r.level == cfg.level}
        previous = _stored_plan(conn, add_months(month, -1))
        try:
            plan = plan_rules(
                month,
                cfg.inspectors,
                examined,
                previous,
                {i: _medium_of(i, codes) for i in cfg.inspectors},
            )
        except PlanError as exc:
            raise Invalid("exam.plan_refused", reason=str(exc)) from None
        if plan.assignments:
            conn.execute(
                insert(exam_plans),
                [
                    {
                        "month": month,
                        "inspector_grid_id": codes[a.inspector_grid].id,
                        "grid_id": codes[a.grid].id,
                        "created_at": now,
                    }
                    for a in plan.assignments
                ],
            )
        return _plan_view(month, plan.assignments, codes, plan)


def plan_view(app: App, month: str) -> PlanView:
    _month(month)
    with read_only(app.engine) as conn:
        stored = _stored_plan(conn, month)
        if not stored:
            raise NotFound("exam.no_plan", month=month)
        return _plan_view(month, stored, _codes(conn), None)


# --------------------------------------------------------------------------- status


@dataclass(frozen=True)
class GridStatus:
    grid: str
    name: str
    inspector_grid: str | None
    status: str  # scored | in_progress | missing
    lines: int
    updated_by: str | None
    updated_at: datetime | None


STATUSES = ("scored", "in_progress", "missing")


def exam_status(app: App, month: str) -> list[GridStatus]:
    """Which grids are scored (submitted on a page or imported), in progress, missing.

    The grids are those of the month's plan, or without a plan every grid under exam."""
    _month(month)
    cfg = exam_settings(app)
    with read_only(app.engine) as conn:
        codes = _codes(conn)
        by_id = {r.id: c for c, r in codes.items()}
        plan = {a.grid: a.inspector_grid for a in _stored_plan(conn, month)}
        examined = sorted(plan) if plan else [c for c, r in codes.items() if r.level == cfg.level]
        gradings = {
            by_id[r.grid_id]: r
            for r in conn.execute(select(exam_gradings).where(exam_gradings.c.month == month))
        }
        counts: dict[str, int] = {}
        imported: set[str] = set()
        for grid_id, entered_by in conn.execute(
            select(exam_lines.c.grid_id, exam_lines.c.entered_by).where(exam_lines.c.month == month)
        ):
            code = by_id[grid_id]
            counts[code] = counts.get(code, 0) + 1
            if entered_by is None:
                imported.add(code)
    out = []
    for code in sorted(examined, key=lambda c: codes[c].path):
        g = gradings.get(code)
        if (g is not None and g.status == "submitted") or code in imported:
            status = "scored"
        elif g is not None:
            status = "in_progress"
        else:
            status = "missing"
        out.append(
            GridStatus(
                grid=code,
                name=codes[code].name,
                inspector_grid=plan.get(code),
                status=status,
                lines=counts.get(code, 0),
                updated_by=g.updated_by if g is not None else None,
                updated_at=g.updated_at if g is not None else None,
            )
        )
    return out


# --------------------------------------------------------------------------- the city's score


@dataclass(frozen=True)
class CityImported:
    rows: int
    replaced: int
    months: tuple[str, ...]

    def __str__(self) -> str:
        return (
            f"{self.rows} city scores in {', '.join(self.months)}"
            f" ({self.replaced} replaced earlier ones)"
        )


def read_city_csv(
    text: str, known: Mapping[str, Any], level: int
) -> list[tuple[int, str, str, Decimal]]:
    """Lines ``month,grid,score`` (0..100); refused whole, every bad line named."""
    problems = Problems()
    out: list[tuple[int, str, str, Decimal]] = []
    seen: dict[tuple[str, str], int] = {}
    for row in read_rows(text, ("month", "grid", "score"), problems=problems).rows:
        n, month, grid = row.line, row["month"], row["grid"]
        bad = len(problems)
        try:
            parse_month(month)
        except ValueError:
            problems.add(n, "examfile.month", month=month)
        if grid not in known:
            problems.add(n, "examfile.unknown_grid", grid=grid)
        elif known[grid].level != level:
            problems.add(n, "examfile.not_under_exam", grid=grid)
        try:
            score = Decimal(row["score"])
            if not score.is_finite() or not 0 <= score <= 100:
                raise ValueError
        except (ArithmeticError, ValueError):
            problems.add(n, "examfile.city_score", score=row["score"])
            score = Decimal(0)
        if (month, grid) in seen:
            problems.add(n, "examfile.city_duplicate", first=seen[month, grid])
        seen.setdefault((month, grid), n)
        if len(problems) == bad:
            out.append((n, month, grid, score))
    if problems:
        raise ExamRefused(problems.found())
    return out


def import_city_scores(app: App, text: str, now: datetime, *, source: str = "") -> CityImported:
    """Record the city's monthly assessment; a later import of a (month, grid) replaces it."""
    cfg = exam_settings(app)
    with app.engine.begin() as conn:
        codes = _codes(conn)
        rows = read_city_csv(text, codes, cfg.level)
        months = sorted({m for _, m, _, _ in rows})
        existing = {
            (r.month, r.grid_id): r.id
            for r in conn.execute(
                select(city_scores.c.id, city_scores.c.month, city_scores.c.grid_id).where(
                    city_scores.c.month.in_(months)
                )
            )
        }
        replaced = 0
        for n, month, grid, score in rows:
            values = {
                "score": str(score),
                "source": f"{source}:{n}" if source else str(n),
                "imported_at": now,
            }
            found = existing.get((month, codes[grid].id))
            if found is not None:
                replaced += 1
                conn.execute(update(city_scores).where(city_scores.c.id == found).values(**values))
            else:
                conn.execute(
                    insert(city_scores).values(month=month, grid_id=codes[grid].id, **values)
                )
    return CityImported(len(rows), replaced, tuple(months))


# --------------------------------------------------------------------------- scoring on the pages


@dataclass(frozen=True)
class ItemEntry:
    item: SheetItem
    points: Decimal | None
    note: str | None
    photo: str | None
    photo_label: str | None

    @property
    def deducted(self) -> bool:
        return (
            self.item.sheet != "bonus"
            and self.points is not None
            and self.points < self.item.max_points
        )


@dataclass(frozen=True)
class GradingForm:
    month: str
    grid: str
    grid_name: str
    inspector_grid: str
    inspector_name: str
    status: str  # missing | in_progress | submitted
    entries: tuple[ItemEntry, ...]
    updated_by: str | None
    updated_at: datetime | None
    events: tuple[dict[str, Any], ...]

    @property
    def total(self) -> Decimal | None:
        """The exam total of what is entered, as the board would compute it."""
        lines = [
            ExamLine(
                0,
                self.month,
                self.inspector_grid,
                self.grid,
                e.item.sheet,
                e.item.key,
                e.points,
                e.item.max_points,
            )
            for e in self.entries
            if e.points is not None
        ]
        if not any(ln.sheet != "bonus" for ln in lines):
            return None
        return exam_scores(lines)[self.grid].total


def may_inspect(actor: Actor, inspector_path: str) -> bool:
    """A supervisor, or a leader of the inspecting grid or of a grid inside it."""
    return actor.is_supervisor or any(
        p == inspector_path or p.startswith(inspector_path.rstrip("/") + "/")
        for p in actor.led_paths
    )


def _plan_row(conn: Connection, month: str, grid: str) -> Any:
    inspector, graded = grids.alias("inspector"), grids.alias("graded")
    row = conn.execute(
        select(
            graded.c.id.label("grid_id"),
            graded.c.code.label("grid"),
            graded.c.name.label("grid_name"),
            inspector.c.id.label("inspector_id"),
            inspector.c.code.label("inspector"),
            inspector.c.name.label("inspector_name"),
            inspector.c.path.label("inspector_path"),
        )
        .select_from(
            exam_plans.join(inspector, inspector.c.id == exam_plans.c.inspector_grid_id).join(
                graded, graded.c.id == exam_plans.c.grid_id
            )
        )
        .where(exam_plans.c.month == month, graded.c.code == grid)
    ).first()
    if row is None:
        raise NotFound("exam.not_in_plan", grid=grid, month=month)
    return row


def inspector_grids(app: App, month: str, actor: Actor) -> list[GridStatus]:
    """The grids of the month's plan this person may score, with where each stands."""
    _month(month)
    with read_only(app.engine) as conn:
        paths = dict(conn.execute(select(grids.c.code, grids.c.path)).all())
    return [
        s
        for s in exam_status(app, month)
        if s.inspector_grid is not None and may_inspect(actor, paths[s.inspector_grid])
    ]


def grading_form(app: App, month: str, grid: str, actor: Actor) -> GradingForm:
    _month(month)
    sheets = answer_sheets(app)
    with read_only(app.engine) as conn:
        row = _plan_row(conn, month, grid)
        if not may_inspect(actor, row.inspector_path):
            raise NotPermitted("exam.not_inspector", handle=actor.handle, grid=grid, month=month)
        return _form(conn, sheets, month, row)


def _form(conn: Connection, sheets: AnswerSheets, month: str, row: Any) -> GradingForm:
    stored = {
        r.item: r
        for r in conn.execute(
            select(exam_lines).where(
                exam_lines.c.month == month,
                exam_lines.c.grid_id == row.grid_id,
                exam_lines.c.inspector_grid_id == row.inspector_id,
            )
        )
    }
    grading = conn.execute(
        select(exam_gradings).where(
            exam_gradings.c.month == month, exam_gradings.c.grid_id == row.grid_id
        )
    ).first()
    events = conn.execute(
        select(exam_events.c.kind, exam_events.c.actor, exam_events.c.reason, exam_events.c.at)
        .where(exam_events.c.month == month, exam_events.c.grid_id == row.grid_id)
        .order_by(exam_events.c.id)
    )
    entries = []
    for item in sheets:
        line = stored.get(item.key)
        entries.append(
            ItemEntry(
                item=item,
                points=Decimal(line.score) if line is not None else None,
                note=line.note if line is not None else None,
                photo=line.photo if line is not None else None,
                photo_label=line.photo_label if line is not None else None,
            )
        )
    return GradingForm(
        month=month,
        grid=row.grid,
        grid_name=row.grid_name,
        inspector_grid=row.inspector,
        inspector_name=row.inspector_name,
        status=grading.status if grading is not None else "missing",
        entries=tuple(entries),
        updated_by=grading.updated_by if grading is not None else None,
        updated_at=grading.updated_at if grading is not None else None,
        events=tuple(dict(e._mapping) for e in events),
    )


@dataclass(frozen=True)
class Entered:
    """What an inspector typed for one item; ``photo`` is a stored evidence file, if any."""

    points: str | None
    note: str | None = None
    photo: StoredFile | None = None


def save_grading(
    app: App,
    month: str,
    grid: str,
    actor: Actor,
    entered: Mapping[str, Entered],
    now: datetime,
    *,
    submit: bool = False,
) -> GradingForm:
    """Save a grid's scores (resumable); with ``submit`` they are final. One transaction.

    Refused whole, naming every item: points not a number or outside 0..max, an unknown item;
    on submit also a basic or required item left empty and a deduction (points below the item's
    maximum on those sheets) without a note. Bonus items left empty earn nothing."""
    _month(month)
    sheets = answer_sheets(app)
    with app.engine.begin() as conn:
        row = _plan_row(conn, month, grid)
        if not may_inspect(actor, row.inspector_path):
            raise NotPermitted("exam.not_inspector", handle=actor.handle, grid=grid, month=month)
        grading = conn.execute(
            select(exam_gradings).where(
                exam_gradings.c.month == month, exam_gradings.c.grid_id == row.grid_id
            )
        ).first()
        if grading is not None and grading.status == "submitted":
            raise Conflict("exam.submitted", grid=grid, month=month)
        if month in set(conn.execute(select(month_results.c.month).distinct()).scalars()):
            raise Conflict("exam.published", month=month)
        before = _form(conn, sheets, month, row)
        kept = {e.item.key: e for e in before.entries}
        problems: list[Problem] = []
        unknown = sorted(set(entered) - {i.key for i in sheets})
        problems += [Problem(None, "examform.unknown_item", {"key": key}) for key in unknown]
        values: dict[str, tuple[Decimal, str | None, str | None, str | None]] = {}
        for item in sheets:
            given = entered.get(item.key, Entered(None))
            text = (given.points or "").strip()
            note = (given.note or "").strip() or None
            photo = given.photo
            name = f"{item.key} {item.name_zh}"
            if not text:
                if submit and item.sheet != "bonus":
                    problems.append(Problem(None, "examform.no_points", {"name": name}))
                continue
            try:
                points = Decimal(text)
                if not points.is_finite():
                    raise ValueError
            except (ArithmeticError, ValueError):
                problems.append(Problem(None, "examform.nan", {"name": name, "text": text}))
                continue
            if not 0 <= points <= item.max_points:
                problems.append(
                    Problem(
                        None,
                        "examform.range",
                        {"name": name, "text": text, "max_points": item.max_points},
                    )
                )
                continue
            if submit and item.sheet != "bonus" and points < item.max_points and not note:
                problems.append(Problem(None, "examform.no_note", {"name": name}))
            old = kept[item.key]
            values[item.key] = (
                points,
                note,
                photo.stored_name if photo else old.photo,
                photo.original_name if photo else old.photo_label,
            )
        if problems:
            raise ExamRefused(problems)
        conn.execute(
            delete(exam_lines).where(
                exam_lines.c.month == month,
                exam_lines.c.grid_id == row.grid_id,
                exam_lines.c.inspector_grid_id == row.inspector_id,
            )
        )
        if values:
            conn.execute(
                insert(exam_lines),
                [
                    {
                        "month": month,
                        "inspector_grid_id": row.inspector_id,
                        "grid_id": row.grid_id,
                        "sheet": sheets.item(key).sheet,
                        "item": key,
                        "score": str(points),
                        "max_score": str(sheets.item(key).max_points),
                        "note": note,
                        "source": "web",
                        "imported_at": now,
                        "photo": photo,
                        "photo_label": label,
                        "entered_by": actor.handle,
                    }
                    for key, (points, note, photo, label) in values.items()
                ],
            )
        status = "submitted" if submit else "in_progress"
        state = {
            "status": status,
            "updated_by": actor.handle,
            "updated_at": now,
            "submitted_at": now if submit else None,
        }
        if grading is None:
            conn.execute(
                insert(exam_gradings).values(
                    month=month, grid_id=row.grid_id, inspector_grid_id=row.inspector_id, **state
                )
            )
        else:
            conn.execute(
                update(exam_gradings).where(exam_gradings.c.id == grading.id).values(**state)
            )
        conn.execute(
            insert(exam_events).values(
                month=month,
                grid_id=row.grid_id,
                kind="submitted" if submit else "saved",
                actor=actor.handle,
                reason=None,
                at=now,
            )
        )
        return _form(conn, sheets, month, row)


def reopen_grading(
    app: App, month: str, grid: str, actor: Actor, reason: str, now: datetime
) -> GradingForm:
    """A supervisor reopens a submitted grid, with the reason; one transaction."""
    _month(month)
    if not actor.is_supervisor:
        raise NotPermitted("person.not_supervisor", handle=actor.handle)
    if not reason.strip():
        raise Invalid("exam.reopen_reason")
    sheets = answer_sheets(app)
    with app.engine.begin() as conn:
        row = _plan_row(conn, month, grid)
        done = conn.execute(
            update(exam_gradings)
            .where(
                exam_gradings.c.month == month,
                exam_gradings.c.grid_id == row.grid_id,
                exam_gradings.c.status == "submitted",
            )
            .values(
                status="in_progress", updated_by=actor.handle, updated_at=now, submitted_at=None
            )
        )
        if done.rowcount != 1:
            raise Conflict("exam.not_submitted", grid=grid, month=month)
        conn.execute(
            insert(exam_events).values(
                month=month,
                grid_id=row.grid_id,
                kind="reopened",
                actor=actor.handle,
                reason=reason.strip(),
                at=now,
            )
        )
        return _form(conn, sheets, month, row)


# --------------------------------------------------------------------------- accountability (问责)


@dataclass(frozen=True)
class Case:
    id: int
    grid: str
    grid_name: str
    month: str
    leaders: tuple[dict[str, str], ...]
    reason: str
    owner: str
    due_on: str
    opened_at: datetime
    outcome: str | None
    closed_by: str | None
    closed_at: datetime | None

    @property
    def is_open(self) -> bool:
        return self.closed_at is None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "grid": self.grid,
            "name": self.grid_name,
            "month": self.month,
            "leaders": list(self.leaders),
            "reason": self.reason,
            "owner": self.owner,
            "due_on": self.due_on,
            "opened_at": self.opened_at.isoformat(),
            "outcome": self.outcome,
            "closed_by": self.closed_by,
            "closed_at": self.closed_at.isoformat() if self.closed_at else None,
        }


def _cases(conn: Connection, *, only_open: bool = False, case_id: int | None = None) -> list[Case]:
    q = select(accountability_cases, grids.c.code, grids.c.name.label("grid_name")).select_from(
        accountability_cases.join(grids, grids.c.id == accountability_cases.c.grid_id)
    )
    if only_open:
        q = q.where(accountability_cases.c.closed_at.is_(None))
    if case_id is not None:
        q = q.where(accountability_cases.c.id == case_id)
    rows = conn.execute(q.order_by(accountability_cases.c.month.desc(), grids.c.path))
    return [
        Case(
            id=r.id,
            grid=r.code,
            grid_name=r.grid_name,
            month=r.month,
            leaders=tuple(r.leaders or ()),
            reason=r.reason,
            owner=r.owner,
            due_on=r.due_on,
            opened_at=r.opened_at,
            outcome=r.outcome,
            closed_by=r.closed_by,
            closed_at=r.closed_at,
        )
        for r in rows
    ]


def list_cases(app: App, *, only_open: bool = False) -> list[Case]:
    with read_only(app.engine) as conn:
        return _cases(conn, only_open=only_open)


def cases_concerning(app: App, handle: str) -> list[Case]:
    """The cases a grid leader follows (read-only): those naming them among the leaders the case
    was opened against, and those of a grid they lead now, since the case is the grid's and a
    new leader inherits it. Not the grids below theirs: a case answers for one grid's score."""
    with read_only(app.engine) as conn:
        led = set(
            conn.execute(
                select(grids.c.code)
                .select_from(grids.join(people, people.c.id == grids.c.leader_id))
                .where(people.c.handle == handle)
            ).scalars()
        )
        return [
            c
            for c in _cases(conn)
            if c.grid in led or any(leader.get("handle") == handle for leader in c.leaders)
        ]


def _supervisor_handle(conn: Connection, handle: str) -> str:
    roles = conn.execute(select(people.c.roles).where(people.c.handle == handle)).scalar()
    if roles is None:
        raise NotFound("person.unknown", handle=handle)
    if "supervisor" not in roles.split(","):
        raise NotPermitted("person.not_supervisor", handle=handle)
    return handle


def close_case(app: App, case_id: int, by: str, outcome: str, now: datetime) -> Case:
    """Close an accountability case with its outcome; a supervisor does it. One transaction."""
    if not outcome.strip():
        raise Invalid("accountability.outcome")
    with app.engine.begin() as conn:
        _supervisor_handle(conn, by)
        done = conn.execute(
            update(accountability_cases)
            .where(accountability_cases.c.id == case_id, accountability_cases.c.closed_at.is_(None))
            .values(outcome=outcome.strip(), closed_by=by, closed_at=now)
        )
        if done.rowcount != 1:
            if not _cases(conn, case_id=case_id):
                raise NotFound("accountability.not_found", case_id=case_id)
            raise Conflict("accountability.closed", case_id=case_id)
        case = _cases(conn, case_id=case_id)[0]
        _tell(
            conn,
            app,
            now,
            case_id=case.id,
            grid=(case.grid, case.grid_name),
            month=case.month,
            owner=case.owner,
            leaders=case.leaders,
            due_on=case.due_on,
            event="closed",
            skip=by,
            outcome=case.outcome,
        )
        return case


# --------------------------------------------------------------------------- funds


def _grid_id(conn: Connection, code: str) -> int:
    found = conn.execute(select(grids.c.id).where(grids.c.code == code)).scalar()
    if found is None:
        raise NotFound("grid.unknown", code=code)
    return int(found)


def apply_project(
    app: App,
    grid: str,
    month: str,
    project: str,
    purpose: str,
    amount: str,
    by: str,
    now: datetime,
) -> int:
    """A grid applies for project funds (项目化申报); returns the project's id."""
    _month(month)
    value = funds.parse_amount(amount)
    if not project.strip() or not purpose.strip():
        raise Invalid("funds.project_fields")
    with app.engine.begin() as conn:
        result = conn.execute(
            insert(fund_projects).values(
                grid_id=_grid_id(conn, grid),
                month=month,
                project=project.strip(),
                purpose=purpose.strip(),
                applied=str(value),
                applied_by=by,
                applied_at=now,
            )
        )
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])


def decide_project(app: App, project_id: int, approved: str, by: str, now: datetime) -> None:
    """Approve an amount up to what was applied for (0 refuses); a supervisor decides."""
    value = funds.parse_amount(approved, zero=True)
    with app.engine.begin() as conn:
        _supervisor_handle(conn, by)
        row = conn.execute(select(fund_projects).where(fund_projects.c.id == project_id)).first()
        if row is None:
            raise NotFound("funds.no_project", project_id=project_id)
        funds.check_decision(Decimal(row.applied), value, _dec(row.approved))
        conn.execute(
            update(fund_projects)
            .where(fund_projects.c.id == project_id)
            .values(approved=str(value), decided_by=by, decided_at=now)
        )


def _dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _paid(conn: Connection, **where: Any) -> Decimal:
    q = select(fund_payments.c.amount)
    for key, value in where.items():
        q = q.where(fund_payments.c[key] == value)
    return sum((Decimal(a) for a in conn.execute(q).scalars()), Decimal(0))


def disburse(
    app: App, project_id: int, amount: str, by: str, now: datetime, note: str | None = None
) -> None:
    """Pay project funds out against the project they were approved for (专款专用)."""
    value = funds.parse_amount(amount)
    with app.engine.begin() as conn:
        _supervisor_handle(conn, by)
        row = conn.execute(select(fund_projects).where(fund_projects.c.id == project_id)).first()
        if row is None:
            raise NotFound("funds.no_project", project_id=project_id)
        disbursed = _paid(conn, kind="project", project_id=project_id)
        funds.check_disbursement(_dec(row.approved), disbursed, value)
        conn.execute(
            insert(fund_payments).values(
                kind="project",
                grid_id=row.grid_id,
                month=row.month,
                project_id=project_id,
                amount=str(value),
                paid_by=by,
                paid_at=now,
                note=note,
            )
        )


def pay_reward(
    app: App, grid: str, month: str, by: str, now: datetime, amount: str | None = None
) -> Decimal:
    """Pay a grid's reward of a month (by default all that is outstanding); returns the amount."""
    _month(month)
    with app.engine.begin() as conn:
        _supervisor_handle(conn, by)
        grid_id = _grid_id(conn, grid)
        earned = conn.execute(
            select(month_results.c.reward).where(
                month_results.c.month == month, month_results.c.grid_id == grid_id
            )
        ).scalar()
        if earned is None:
            raise NotFound("exam.no_result", grid=grid, month=month)
        paid = _paid(conn, kind="reward", grid_id=grid_id, month=month)
        value = funds.parse_amount(amount) if amount else Decimal(earned) - paid
        funds.check_reward_payment(Decimal(earned), paid, value)
        conn.execute(
            insert(fund_payments).values(
                kind="reward",
                grid_id=grid_id,
                month=month,
                project_id=None,
                amount=str(value),
                paid_by=by,
                paid_at=now,
                note=None,
            )
        )
        return value


def ledger(app: App, month: str) -> funds.Ledger:
    """The month's ledger: every grid on its board, and the projects applied for that month."""
    _month(month)
    with read_only(app.engine) as conn:
        names = {
            r.id: (r.code, r.name)
            for r in conn.execute(select(grids.c.id, grids.c.code, grids.c.name))
        }
        paid: dict[tuple[str, int | None, int], Decimal] = {}
        for r in conn.execute(
            select(
                fund_payments.c.kind,
                fund_payments.c.project_id,
                fund_payments.c.grid_id,
                fund_payments.c.amount,
            ).where(fund_payments.c.month == month)
        ):
            key = (r.kind, r.project_id, r.grid_id)
            paid[key] = paid.get(key, Decimal(0)) + Decimal(r.amount)
        rewards = tuple(
            funds.RewardLine(
                grid=names[r.grid_id][0],
                name=names[r.grid_id][1],
                tier=r.tier_zh,
                earned=Decimal(r.reward),
                withheld=Decimal(r.reward_lost),
                withheld_by=r.penalty_source_month if r.penalised else None,
                paid=paid.get(("reward", None, r.grid_id), Decimal(0)),
            )
            for r in conn.execute(
                select(month_results)
                .where(month_results.c.month == month)
                .order_by(month_results.c.rank)
            )
        )
        projects = tuple(
            funds.ProjectLine(
                id=r.id,
                grid=names[r.grid_id][0],
                name=names[r.grid_id][1],
                project=r.project,
                purpose=r.purpose,
                applied=Decimal(r.applied),
                approved=_dec(r.approved),
                disbursed=paid.get(("project", r.id, r.grid_id), Decimal(0)),
            )
            for r in conn.execute(
                select(fund_projects)
                .where(fund_projects.c.month == month)
                .order_by(fund_projects.c.id)
            )
        )
    return funds.Ledger(month, rewards, projects)


def inspecting_paths(app: App) -> tuple[str, ...]:
    """The paths of the inspecting grids (for the pages' menu); codes unknown are left out."""
    codes = exam_settings(app).inspectors
    if not codes:
        return ()
    with read_only(app.engine) as conn:
        return tuple(conn.execute(select(grids.c.path).where(grids.c.code.in_(codes))).scalars())


def grading_photo(app: App, month: str, grid: str, item: str, actor: Actor) -> tuple[str, str]:
    """The stored name and label of the photo of an item, for someone who may see the form."""
    form = grading_form(app, month, grid, actor)
    for entry in form.entries:
        if entry.item.key == item and entry.photo:
            return entry.photo, entry.photo_label or entry.photo
    raise NotFound("exam.no_photo", item=item, grid=grid, month=month)
