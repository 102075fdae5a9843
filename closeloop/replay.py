"""Policy replay: run historical service requests through a fresh database on a simulated clock
and report what a deadline policy would have produced (closed on time, escalations per level,
time to close, the busiest supervisors).

Every row goes through the engine's own rules: it is submitted at its created time (and so
assigned to its grid's leader), and a row with a closed time is fixed by that leader, verified and
closed by the leader above at that time, each step with its event and notices. The sweep runs
as the simulated clock passes each event and every `sweep_every` (default 15 minutes); a tick
with nothing due is skipped without changing the outcome, because a sweep only acts on tickets
whose next check has passed. At one instant, the events come first and the sweep after them: a
fix recorded exactly at its deadline is on time. The replay ends at the last time in the file;
rows without a closed time are still open then.

The policy never touches the workflow file: categories get their limits from the scenario in a
Workflow built in memory.

Scenario TOML:

    [columns]    id = "SRNumber"  created = "CreatedDate"  closed = "ClosedDate"
                 category = "RequestType"  grid = "CD"       # header names, any letter case
    [format]     time = "%m/%d/%Y %I:%M:%S %p"                # or a list of formats to try
                 timezone = "America/Los_Angeles"
    [categories] "Bulky Items" = "random_piling"   "*" = "other"
    [grids]      "1" = "JS-A1-V01-G01"   "*" = "JS-A3-V16-G01"
    [policy]     calendar = "natural"                     # or "working": the clock of every limit
                 escalation_interval = "24h"              # or { random_piling = "12h", ... }
                 fix_within = { random_piling = "72h", "*" = "120h" }
                 sweep_every = "15m"
    [calendar]   (optional) the working-time calendar, keys as in config.toml [calendar]
"""

from __future__ import annotations

import csv
import math
import statistics
import tempfile
import time
import tomllib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection, Engine, event, exists, func, inspect, select

from closeloop import errors, escalation, service, zone
from closeloop.app import App
from closeloop.bootstrap import bootstrap
from closeloop.calendar import Limit, WorkCalendar
from closeloop.config import load_settings
from closeloop.csvfile import Problem, Problems, ProblemsRefused
from closeloop.db import read_only
from closeloop.deadlines import Deadlines
from closeloop.errors import CodedError
from closeloop.grid import get_grid, lineage, nearest_led
from closeloop.models import escalations, notifications, people, tickets
from closeloop.replay_memory import MemoryLoop
from closeloop.tickets import Invalid, StepInput
from closeloop.workflow import StageLimit, Workflow

Progress = Callable[[str], None]
COLUMN_KEYS = ("id", "created", "closed", "category", "grid")
REQUIRED_COLUMNS = ("created", "category")
DEFAULT_SWEEP_EVERY = "15m"


class ScenarioError(Invalid):
    """The scenario file is not usable; the message names the key."""


class Unusable(CodedError):
    """A row the replay cannot use: it is skipped, said by its code and parameters in the
    summary's language, the run goes on."""


@dataclass(frozen=True)
class Scenario:
    columns: Mapping[str, str]  # our key -> header name in the file
    time_formats: tuple[str, ...]
    tz: ZoneInfo
    categories: Mapping[str, str]  # source value -> category ("*" = any other)
    grids: Mapping[str, str]  # source value -> grid code ("*" = any other)
    clock: str | None  # natural | working | None (keep each limit's own clock)
    fix_within: Mapping[str, str]  # category ("*" = any other) -> limit text
    escalation_interval: Mapping[str, str]
    sweep_every: timedelta
    calendar: Mapping[str, Any] | None


def _table(raw: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, Mapping):
        raise ScenarioError("replay.not_table", key=key)
    return value


def _limits(value: Any, where: str, clock: str) -> dict[str, str]:
    if value is None:
        return {}
    table = {"*": value} if isinstance(value, str) else value
    if not isinstance(table, Mapping):
        raise ScenarioError("replay.limit", where=where)
    for key, text in table.items():
        try:
            Limit.parse(text, clock)
        except ValueError as exc:
            raise ScenarioError("replay.bad_value", where=where, key=key, reason=exc) from None
    return dict(table)


def load_scenario(path: Path) -> Scenario:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioError("replay.scenario_missing", path=path) from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError("replay.scenario_unreadable", path=path, reason=exc) from None
    columns = _table(raw, "columns")
    unknown = set(columns) - set(COLUMN_KEYS)
    if unknown:
        raise ScenarioError("replay.column_keys", unknown=sorted(unknown), known=COLUMN_KEYS)
    missing = [k for k in REQUIRED_COLUMNS if not columns.get(k)]
    if missing:
        raise ScenarioError("replay.columns_needed", missing=", ".join(missing))
    fmt = _table(raw, "format")
    formats = fmt.get("time", "%Y-%m-%d %H:%M:%S")
    formats = (formats,) if isinstance(formats, str) else tuple(formats)
    if not formats or not all(isinstance(f, str) for f in formats):
        raise ScenarioError("replay.time_format")
    tz_name = fmt.get("timezone", "UTC")
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScenarioError("replay.timezone", tz=tz_name) from None
    policy = _table(raw, "policy")
    clock = policy.get("calendar")
    if clock not in (None, "natural", "working"):
        raise ScenarioError("replay.calendar", clock=clock)
    every_text = policy.get("sweep_every", DEFAULT_SWEEP_EVERY)
    try:
        every = Limit.parse(every_text).duration(timedelta(days=1))
    except ValueError as exc:
        raise ScenarioError("replay.sweep_every", reason=exc) from None
    categories = {str(k): str(v) for k, v in _table(raw, "categories").items()}
    grids = {str(k): str(v) for k, v in _table(raw, "grids").items()}
    if not columns.get("grid") and "*" not in grids:
        raise ScenarioError("replay.grids_default")
    calendar = raw.get("calendar")
    if calendar is not None and not isinstance(calendar, Mapping):
        raise ScenarioError("replay.calendar_table")
    return Scenario(
        columns={k: str(v) for k, v in columns.items() if v},
        time_formats=formats,
        tz=tz,
        categories=categories,
        grids=grids,
        clock=clock,
        fix_within=_limits(policy.get("fix_within"), "[policy] fix_within", clock or "natural"),
        escalation_interval=_limits(
            policy.get("escalation_interval"), "[policy] escalation_interval", clock or "natural"
        ),
        sweep_every=every,
        calendar=calendar,
    )


def apply_policy(workflow: Workflow, scenario: Scenario) -> Workflow:
    """The workflow with the scenario's limits, built in memory."""
    for table, where in ((scenario.fix_within, "fix_within"), (scenario.escalation_interval, "")):
        unknown = set(table) - set(workflow.categories) - {"*"}
        if unknown:
            name = where or "escalation_interval"
            known = ", ".join(sorted(workflow.categories))
            raise ScenarioError(
                "replay.policy_category", name=name, unknown=sorted(unknown), known=known
            )
    categories = {}
    for key, cat in workflow.categories.items():
        limits = {
            stage: StageLimit(lim.within, scenario.clock or lim.clock)
            for stage, lim in cat.limits.items()
        }
        fix = scenario.fix_within.get(key, scenario.fix_within.get("*"))
        if fix is not None:
            limits["fix"] = StageLimit(fix, scenario.clock or cat.limits["fix"].clock)
        every = scenario.escalation_interval.get(key, scenario.escalation_interval.get("*"))
        escalate = StageLimit(
            every or cat.escalate_every.within, scenario.clock or cat.escalate_every.clock
        )
        categories[key] = replace(cat, limits=limits, escalate_every=escalate)
    return replace(workflow, categories=categories)


# --- reading the file ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    line: int
    source_id: str
    source_category: str
    category: str
    grid: str
    created: datetime
    closed: datetime | None


def _parse_time(text: str, scenario: Scenario) -> datetime:
    for fmt in scenario.time_formats:
        try:
            return datetime.strptime(text.strip(), fmt).replace(tzinfo=scenario.tz).astimezone(UTC)
        except ValueError:
            continue
    raise Unusable("replay.bad_time", text=text, formats=list(scenario.time_formats))


def read_requests(
    path: Path, scenario: Scenario, workflow: Workflow
) -> tuple[list[Request], list[Problem]]:
    """The rows to replay and the rows skipped, each skipped one a problem of its line."""
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except FileNotFoundError:
        raise Invalid("file.not_found", path=path) from None
    requests: list[Request] = []
    skipped = Problems()
    with handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise Invalid("file.empty", path=path)
        index = {h.strip().lower(): i for i, h in enumerate(header)}
        where: dict[str, int] = {}
        for key, name in scenario.columns.items():
            if name.lower() not in index:
                raise ScenarioError("replay.no_column", key=key, name=name, file=path.name)
            where[key] = index[name.lower()]
        line = reader.line_num
        for record in reader:
            start, line = line + 1, reader.line_num
            if not record:
                continue
            try:
                requests.append(_request(start, record, header, where, scenario, workflow))
            except Unusable as exc:
                skipped.add_error(start, exc)
    return requests, skipped.found()


def skipped_line(problem: Problem, locale: str = "en") -> dict[str, Any]:
    """A skipped row in the summary: its line, the code and parameters for programs, and the
    reason in `locale` for people."""
    assert problem.line is not None
    return {
        "line": problem.line,
        "code": problem.code,
        "params": dict(problem.params),
        "reason": errors.text(problem.code, problem.params, locale),
    }


def _request(
    line: int,
    record: list[str],
    header: list[str],
    where: Mapping[str, int],
    scenario: Scenario,
    workflow: Workflow,
) -> Request:
    if len(record) != len(header):
        raise Unusable("csv.width", found=len(record), header=len(header))

    def field(key: str) -> str:
        return record[where[key]].strip() if key in where else ""

    if not field("created"):
        raise Unusable("replay.no_created", column=scenario.columns["created"])
    created = _parse_time(field("created"), scenario)
    closed = _parse_time(field("closed"), scenario) if field("closed") else None
    if closed is not None and closed < created:
        raise Unusable("replay.closed_before", closed=field("closed"), created=field("created"))
    source_category = field("category")
    category = scenario.categories.get(source_category, scenario.categories.get("*"))
    if category is None:
        raise Unusable("replay.no_category", category=source_category)
    if category not in workflow.categories:
        raise ScenarioError("replay.category", source=source_category, category=category)
    source_grid = field("grid")
    grid = scenario.grids.get(source_grid, scenario.grids.get("*"))
    if grid is None:
        raise Unusable("replay.no_grid", grid=source_grid)
    return Request(line, field("id"), source_category, category, grid, created, closed)


# --- the run -------------------------------------------------------------------------------------


@contextmanager
def _database(url: str | None, in_memory: bool) -> Iterator[str]:
    if url is not None:
        yield url
        return
    if in_memory:
        yield "sqlite://"  # one connection for the run (a StaticPool), gone at its end
        return
    with tempfile.TemporaryDirectory(prefix="closeloop-replay-") as folder:
        yield f"sqlite:///{Path(folder) / 'replay.db'}"


def run(
    file: Path,
    scenario_path: Path,
    *,
    config_path: Path | None = None,
    database_url: str | None = None,
    progress: Progress | None = None,
    through_engine: bool = False,
    store_notices: bool = False,
    locale: str = "en",
) -> dict[str, Any]:
    """Replay `file` under the scenario; returns the summary (see `summarise`).

    By default the tickets are held in memory (`closeloop.replay_memory`) and a throwaway run
    uses an in-memory SQLite database. `through_engine` runs every submit, step and sweep as
    its own transaction through `service` and `escalation.sweep`, in a temporary SQLite file:
    the same results, some twenty times slower. A PostgreSQL `database_url` always goes
    through the engine (its sequences must count the rows). In memory the notices are counted
    for the summary but their rows stored only with `store_notices` (through the engine they
    always are). The skipped rows' reasons are said in `locale`."""
    scenario = load_scenario(scenario_path)
    postgres = database_url is not None and database_url.startswith("postgresql")
    in_memory = not through_engine and not postgres
    with _database(database_url, in_memory) as url:
        base = bootstrap(load_settings(config_path, url))
        if database_url is None and not in_memory:
            _throwaway(base.engine)
        try:
            workflow = apply_policy(base.workflow, scenario)
            calendar = (
                WorkCalendar.from_config(scenario.calendar)
                if scenario.calendar is not None
                else base.calendar
            )
            deadlines = Deadlines(workflow, calendar, base.deadlines.reminder_points)
            app = replace(base, workflow=workflow, calendar=calendar, deadlines=deadlines)
            requests, problems = read_requests(file, scenario, workflow)
            if not requests:
                first = problems[:3] or [Problem(None, "replay.no_rows")]
                raise ProblemsRefused("replay.nothing", problems=first)
            skipped = [skipped_line(p, locale) for p in problems]
            if not in_memory:
                return Replay(app, scenario, requests, skipped, progress, locale).run()
            fast = MemoryReplay(app, scenario, requests, skipped, progress, locale)
            fast.store_notices = store_notices
            return fast.run()
        finally:
            base.engine.dispose()


def _throwaway(engine: Engine) -> None:
    """The temporary replay database is deleted at the end: no need to sync it to disk."""

    @event.listens_for(engine, "connect")
    def _no_sync(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA synchronous=OFF")


_NEXT_DUE = select(func.min(tickets.c.next_check_at))


class Replay:
    def __init__(
        self,
        app: App,
        scenario: Scenario,
        requests: list[Request],
        skipped: list[dict[str, Any]],
        progress: Progress | None,
        locale: str = "en",
    ) -> None:
        self.app, self.scenario = app, scenario
        self.requests, self.skipped = requests, skipped
        self.progress = progress or (lambda _line: None)
        self.words = words(locale)
        self.refs: dict[int, str] = {}
        self.sweeps = 0
        self.escalations = 0
        self.reminders = 0
        self._crew: dict[str, tuple[str, str]] = {}

    def run(self) -> dict[str, Any]:
        wall = time.perf_counter()
        events = sorted(
            [(r.created, 0, r.line, r) for r in self.requests]
            + [(r.closed, 1, r.line, r) for r in self.requests if r.closed is not None],
            key=lambda e: e[:3],
        )
        start, end = events[0][0], max(e[0] for e in events)
        self._prepare(start)
        self.tick0, self.every = start, self.scenario.sweep_every
        self.progress(
            self.words["start"].format(
                requests=len(self.requests),
                skipped=len(self.skipped),
                events=len(events),
                start=f"{start:%Y-%m-%d}",
                end=f"{end:%Y-%m-%d}",
            )
        )
        step = max(len(events) // 20, 1)
        due = self._next_due()
        for n, (at, kind, _line, request) in enumerate(events, 1):
            due = self._ticks_before(at, due)
            if kind == 0:
                self._submit(request)
            else:
                self._close(request)
            if n == len(events) or events[n][0] != at:
                # the events of this instant are in; then the sweep of this instant
                due = self._next_due()
                if due is not None and due <= at:
                    self._sweep(at)
                    due = self._next_due()
            if n % step == 0 or n == len(events):
                self.progress(
                    self.words["step"].format(
                        pct=f"{100 * n // len(events):3d}",
                        n=n,
                        events=len(events),
                        at=f"{at.astimezone(self.scenario.tz):%Y-%m-%d %H:%M}",
                        escalations=self.escalations,
                        seconds=f"{time.perf_counter() - wall:.1f}",
                    )
                )
        self._ticks_before(end + timedelta.resolution, due)
        self._finish()
        out = self.summarise(start, end)
        out["wall_seconds"] = round(time.perf_counter() - wall, 1)
        return out

    def _prepare(self, start: datetime) -> None:
        app = self.app
        filed = 0
        if inspect(app.engine).has_table("tickets"):
            with app.engine.connect() as conn:
                filed = conn.execute(select(func.count()).select_from(tickets)).scalar_one()
        if filed:
            raise Invalid("replay.db_not_empty")
        zone.init(app, start)
        with app.engine.connect() as conn:
            staff = conn.execute(
                select(people.c.handle).where(people.c.roles.like("%supervisor%"))
            ).scalars()
            self.supervisor = next(iter(staff), None)

    def _finish(self) -> None:
        """Every event and sweep is stored already."""

    def _notice_figures(self, conn: Connection) -> tuple[dict[str, int], dict[str, Any]]:
        """Notices per kind (rows: one per channel) and the load on people (see notice_load)."""
        by_kind: dict[str, int] = dict(
            conn.execute(
                select(notifications.c.kind, func.count())
                .group_by(notifications.c.kind)
                .order_by(notifications.c.kind)
            ).all()
        )
        return by_kind, notice_load(conn, self.scenario.tz)

    # -- the clock ---------------------------------------------------------------------------

    def _next_due(self) -> datetime | None:
        with read_only(self.app.engine) as conn:
            value: datetime | None = conn.execute(_NEXT_DUE).scalar()
        return value

    def _sweep(self, now: datetime) -> None:
        result = escalation.sweep(self.app, now)
        self.sweeps += 1
        self.escalations += result.escalations
        self.reminders += result.reminders

    def _ticks_before(self, until: datetime, due: datetime | None) -> datetime | None:
        """Run the ticks before `until` that have something to do; `due` is the earliest
        next check. Returns the earliest next check after them."""
        while due is not None:
            ticks = -((self.tick0 - due) // self.every)  # ceil: the first tick at or after `due`
            tick = self.tick0 + max(ticks, 0) * self.every
            if tick >= until:
                break
            self._sweep(tick)
            due = self._next_due()
        return due

    # -- the steps ---------------------------------------------------------------------------

    def _submit(self, r: Request) -> None:
        title = f"{r.source_category} {r.source_id}".strip()[:200] or f"line {r.line}"
        problem = service.NewProblem(grid=r.grid, category=r.category, title=title)
        try:
            self.refs[r.line] = service.submit(self.app, problem, r.created)
        except Invalid as exc:
            raise ScenarioError("replay.line", line=r.line, reason=exc) from None

    def _close(self, r: Request) -> None:
        """Fixed by the leader the ticket was assigned to, verified and closed by the leader
        above (a supervisor where there is none): who would have done it in the zone."""
        assert r.closed is not None
        ref, now = self.refs[r.line], r.closed
        fixer, checker = self._people(r.grid)
        service.run_step(self.app, ref, "fix", fixer, StepInput(note="replay: closed"), now)
        service.run_step(self.app, ref, "verify", checker, StepInput(), now)
        service.run_step(self.app, ref, "close", checker, StepInput(), now)

    def _people(self, grid_code: str) -> tuple[str, str]:
        """(fixer, checker) for tickets of a grid; the replay never reassigns, so this holds."""
        if grid_code not in self._crew:
            with read_only(self.app.engine) as conn:
                chain = lineage(conn, get_grid(conn, grid_code))
                led = nearest_led(chain)
                above = nearest_led(chain[: chain.index(led)]) if led else None
                ids = [g.leader_id for g in (led, above) if g is not None]
                handles: dict[int, str] = {
                    pid: handle
                    for pid, handle in conn.execute(
                        select(people.c.id, people.c.handle).where(people.c.id.in_(ids))
                    )
                }
            fixer = handles[led.leader_id] if led and led.leader_id else None
            checker = handles.get(above.leader_id) if above and above.leader_id else None
            if fixer is None:
                raise ScenarioError("replay.no_leader", grid=grid_code)
            if checker is None or checker == fixer:
                if self.supervisor is None:
                    raise Invalid("replay.no_supervisor")
                checker = self.supervisor
            self._crew[grid_code] = (fixer, checker)
        return self._crew[grid_code]

    # -- the summary -------------------------------------------------------------------------

    def summarise(self, start: datetime, end: datetime) -> dict[str, Any]:
        app = self.app
        with app.engine.connect() as conn:
            escalated = exists().where(escalations.c.ticket_id == tickets.c.id)
            total = conn.execute(select(func.count()).select_from(tickets)).scalar_one()
            closed = conn.execute(
                select(func.count()).select_from(tickets).where(tickets.c.state == "closed")
            ).scalar_one()
            on_time = conn.execute(
                select(func.count())
                .select_from(tickets)
                .where(tickets.c.state == "closed", ~escalated)
            ).scalar_one()
            tickets_escalated = conn.execute(
                select(func.count()).select_from(tickets).where(escalated)
            ).scalar_one()
            levels: dict[int, int] = dict(
                conn.execute(
                    select(escalations.c.level, func.count()).group_by(escalations.c.level)
                ).all()
            )
            by_kind, load = self._notice_figures(conn)
            hours: dict[str, list[float]] = {}
            for cat, created, closed_at in conn.execute(
                select(tickets.c.category, tickets.c.created_at, tickets.c.closed_at).where(
                    tickets.c.state == "closed"
                )
            ):
                hours.setdefault(cat, []).append((closed_at - created).total_seconds() / 3600)
            busiest = conn.execute(
                select(people.c.handle, people.c.name, func.count().label("n"))
                .select_from(escalations.join(people, people.c.id == escalations.c.supervisor_id))
                .group_by(people.c.handle, people.c.name)
                .order_by(func.count().desc(), people.c.handle)
                .limit(5)
            ).all()
        per_category = Counter(r.category for r in self.requests)
        return {
            "tickets": total,
            "closed": closed,
            "closed_on_time": on_time,
            "open": total - closed,
            "tickets_escalated": tickets_escalated,
            "skipped": {"count": len(self.skipped), "lines": self.skipped},
            "escalations": {str(k): v for k, v in sorted(levels.items(), reverse=True)},
            "reminders": self.reminders,
            "notices": by_kind,
            "notices_per_person_day": load,
            "median_hours_to_close": {
                cat: round(statistics.median(v), 1) for cat, v in sorted(hours.items())
            },
            "categories": dict(sorted(per_category.items())),
            "busiest_supervisors": [
                {"handle": h, "name": name, "supervisions": n} for h, name, n in busiest
            ],
            "simulated": {
                "from": start.astimezone(self.scenario.tz).isoformat(timespec="seconds"),
                "to": end.astimezone(self.scenario.tz).isoformat(timespec="seconds"),
                "sweeps": self.sweeps,
                "sweep_every_minutes": self.every.total_seconds() / 60,
            },
            "policy": {
                "calendar": self.scenario.clock or "as in the workflow",
                "fix_within": {
                    k: f"{app.workflow.categories[k].limits['fix'].within} "
                    f"{app.workflow.categories[k].limits['fix'].clock}"
                    for k in sorted(per_category)
                },
                "escalation_interval": {
                    k: f"{app.workflow.categories[k].escalate_every.within} "
                    f"{app.workflow.categories[k].escalate_every.clock}"
                    for k in sorted(per_category)
                },
            },
        }


class MemoryReplay(Replay):
    """The same replay with the tickets in memory (`closeloop.replay_memory`): the same clock
    and sweeps, the engine's rules, every row stored once at the end, before the summary."""

    store_notices = False

    def _prepare(self, start: datetime) -> None:
        super()._prepare(start)
        with read_only(self.app.engine) as conn:
            self.memory = MemoryLoop(self.app, conn, store_notices=self.store_notices)
        self.ids: dict[int, int] = {}  # line -> ticket id

    def _finish(self) -> None:
        with self.app.engine.begin() as conn:
            self.memory.write(conn)

    def _notice_figures(self, conn: Connection) -> tuple[dict[str, int], dict[str, Any]]:
        if self.store_notices:
            return super()._notice_figures(conn)
        rows, held = self.memory.notice_rows(), "not_before"
        by_kind = dict(sorted(Counter(n["kind"] for n in rows).items()))
        load = notice_load_of(
            (
                (n["recipient_id"], n["idempotency_key"], n["channel"], n["created_at"], n[held])
                for n in rows
                if n["recipient_id"] is not None
            ),
            self.scenario.tz,
        )
        return by_kind, load

    def _next_due(self) -> datetime | None:
        return self.memory.next_due()

    def _sweep(self, now: datetime) -> None:
        result = self.memory.sweep(now)
        self.sweeps += 1
        self.escalations += result.escalations
        self.reminders += result.reminders

    def _submit(self, r: Request) -> None:
        title = f"{r.source_category} {r.source_id}".strip()[:200] or f"line {r.line}"
        try:
            self.ids[r.line] = self.memory.submit(r.grid, r.category, title, r.created)
        except LookupError as exc:
            raise ScenarioError("replay.line", line=r.line, reason=exc) from None

    def _close(self, r: Request) -> None:
        assert r.closed is not None
        fixer, checker = self._people(r.grid)
        self.memory.close(self.ids[r.line], fixer, checker, r.closed)


def notice_load(conn: Connection, tz: ZoneInfo) -> dict[str, Any]:
    """What a notice policy costs people: notices per person and zone day (the day a notice may
    first be delivered, `not_before`), counting a notice once whatever its channels. `max` and
    `p95` (nearest rank) are over the (person, day) pairs that got at least one notice."""
    n = notifications
    return notice_load_of(
        conn.execute(
            select(
                n.c.recipient_id, n.c.idempotency_key, n.c.channel, n.c.created_at, n.c.not_before
            ).where(n.c.recipient_id.is_not(None))
        ),
        tz,
    )


def notice_load_of(
    rows: Iterable[tuple[int, str, str, datetime, datetime | None]], tz: ZoneInfo
) -> dict[str, Any]:
    """`notice_load` of outbox rows (recipient, idempotency key, channel, created, not before)."""
    per: Counter[tuple[int, str]] = Counter()
    seen: set[str] = set()
    for person, key, channel, created, held in rows:
        notice = key.removesuffix(f":{channel}")
        if notice in seen:
            continue
        seen.add(notice)
        day = (held or created).astimezone(tz).date().isoformat()
        per[(person, day)] += 1
    counts = sorted(per.values())
    if not counts:
        return {"max": 0, "p95": 0, "person_days": 0}
    rank = max(1, math.ceil(0.95 * len(counts)))
    return {"max": counts[-1], "p95": counts[rank - 1], "person_days": len(counts)}


# What the replay says to people, by language: its progress on stderr and its summary.
_WORDS: dict[str, dict[str, str]] = {
    "en": {
        "start": "replay: {requests} requests ({skipped} skipped), {events} events from {start} "
        "to {end}",
        "step": "replay: {pct}% ({n}/{events} events), simulated {at}, {escalations} "
        "escalations, {seconds}s",
        "tickets": "tickets {tickets}; closed {closed} (on time {on_time}, {pct}%); open {open}; "
        "skipped {skipped}",
        "escalations": "escalations by level: {levels}; tickets escalated {escalated}; "
        "reminders {reminders}",
        "none": "none",
        "load": "notices per person and day: max {max}, p95 {p95}",
        "median": "median hours to close: {medians}",
        "busiest": "busiest supervisors: {busiest}",
        "simulated": "simulated {start} .. {end}, {sweeps} sweeps, {seconds} s",
        "skipped_line": "  skipped {said}",
        "more": "  ... and {more} more (see --json)",
    },
    "zh_CN": {
        "start": "回放：{requests} 条诉求（跳过 {skipped} 条），{events} 个事件，{start} 至 {end}",
        "step": "回放：{pct}%（{n}/{events} 个事件），模拟到 {at}，督办 {escalations} 次，"
        "用时 {seconds} 秒",
        "tickets": "工单 {tickets}；已销号 {closed}（按期 {on_time}，{pct}%）；未结 {open}；"
        "跳过 {skipped}",
        "escalations": "各级督办：{levels}；被督办的工单 {escalated}；提醒 {reminders}",
        "none": "无",
        "load": "每人每天通知数：最多 {max}，95% 分位 {p95}",
        "median": "办结时长中位数（小时）：{medians}",
        "busiest": "督办最多的督查人员：{busiest}",
        "simulated": "模拟 {start} 至 {end}，扫描 {sweeps} 次，用时 {seconds} 秒",
        "skipped_line": "  跳过 {said}",
        "more": "  ……另有 {more} 行（见 --json）",
    },
}


def words(locale: str) -> Mapping[str, str]:
    return _WORDS["zh_CN" if locale.startswith("zh") else "en"]


def describe(summary: Mapping[str, Any], locale: str = "en") -> list[str]:
    """The summary as lines for people, in `locale` (the skipped rows' reasons are in the
    language of the run)."""
    s, w = summary, words(locale)
    pct = 100 * s["closed_on_time"] / s["closed"] if s["closed"] else 0.0
    lines = [
        w["tickets"].format(
            tickets=s["tickets"],
            closed=s["closed"],
            on_time=s["closed_on_time"],
            pct=f"{pct:.1f}",
            open=s["open"],
            skipped=s["skipped"]["count"],
        ),
        w["escalations"].format(
            levels=", ".join(f"L{k}: {v}" for k, v in s["escalations"].items()) or w["none"],
            escalated=s["tickets_escalated"],
            reminders=s["reminders"],
        ),
        w["load"].format(
            max=s["notices_per_person_day"]["max"], p95=s["notices_per_person_day"]["p95"]
        ),
        w["median"].format(
            medians=", ".join(f"{k} {v}" for k, v in s["median_hours_to_close"].items())
        ),
        w["busiest"].format(
            busiest=", ".join(
                f"{b['handle']} ({b['supervisions']})" for b in s["busiest_supervisors"]
            )
            or "-"
        ),
        w["simulated"].format(
            start=s["simulated"]["from"],
            end=s["simulated"]["to"],
            sweeps=s["simulated"]["sweeps"],
            seconds=s.get("wall_seconds", "?"),
        ),
    ]
    for item in s["skipped"]["lines"][:10]:
        said = errors.text("csv.line", {"line": item["line"], "problem": item["reason"]}, locale)
        lines.append(w["skipped_line"].format(said=said))
    if s["skipped"]["count"] > 10:
        lines.append(w["more"].format(more=s["skipped"]["count"] - 10))
    return lines
