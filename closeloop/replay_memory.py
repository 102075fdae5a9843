"""The replay's tickets held in memory: the engine's own rules, its rows written once at the end.

A replay of a city's year runs hundreds of thousands of steps and sweeps on one simulated clock
with nobody else writing, so the transactions, the reads back and the compare-and-set of the
live engine buy nothing there. `MemoryLoop` applies the same rules to tickets in memory: the
ticket and its first stage as `service.submit` builds them (`enter_state`, the workflow's
machine), the fix, verify and close steps as `loop.py` and the after-step hook do them, and the
sweep's `plan`, `rung_records` and `batch_notices` in batches of the sweep's size and order.
`write` then stores every row (tickets, stages, events, escalations, notices, the reference
counters) in one transaction, with the ids the engine would have given them, so the summary is
read from the same tables as after a replay through the engine; `tests/test_replay.py` and
`benchmarks/replay.py` check that both agree.

It holds only what the replay does: problems submitted to a grid, closed by fix, verify and
close; no extension, deferral, rejection or reporter e-mail.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, insert, select

from closeloop import outbox
from closeloop.app import App
from closeloop.db import insert_many
from closeloop.errors import CodedError
from closeloop.escalation import (
    NoticePolicy,
    Plan,
    SweepCache,
    TicketClock,
    acting_in_stage,
    batch_notices,
    batch_size,
    plan,
    rung_records,
)
from closeloop.grid import Grid, nearest_led
from closeloop.models import (
    escalations,
    grids,
    notifications,
    people,
    ref_counters,
    stages,
    ticket_events,
    tickets,
)
from closeloop.tickets import VERIFIER_STAGES, Change, Ticket, enter_state

# Every notice row carries every column the outbox writes, so one executemany stores them all.
_NOTICE_DEFAULTS = {"address": None, "last_error": None}
_TABLES = (tickets, stages, ticket_events, escalations, notifications)


class _Read:
    """The fields of a ticket as a sweep batch read it that its notices look at."""

    __slots__ = ("category", "due_at", "escalation_level", "id", "ref", "stage", "stage_no")

    def __init__(self, t: Ticket) -> None:
        self.id, self.ref, self.stage, self.stage_no = t.id, t.ref, t.stage, t.stage_no
        self.category, self.due_at, self.escalation_level = t.category, t.due_at, t.escalation_level


class UnknownPerson(CodedError, LookupError):
    """A handle the zone does not have."""


@dataclass
class SweepCount:
    escalations: int = 0
    reminders: int = 0


class MemoryLoop:
    """The tickets of one replay and every row their steps and sweeps wrote, in memory."""

    def __init__(self, app: App, conn: Connection, *, store_notices: bool = True) -> None:
        self.app = app
        self.store_notices = store_notices
        self.cache = SweepCache(app)
        grid_fields = tuple(Grid.__dataclass_fields__)
        self.grids = {
            r.id: Grid(**{k: r._mapping[k] for k in grid_fields})
            for r in conn.execute(select(*(grids.c[k] for k in grid_fields)))
        }
        self.by_code = {g.code: g for g in self.grids.values()}
        self.chains: dict[int, list[Grid]] = {}
        self.moves: dict[tuple[str, str], str] = {}  # (state, step) -> state, from the machine
        self.handles: dict[str, int] = {}
        p = people.c
        for r in conn.execute(select(p.id, p.handle, p.channels, p.locale)):
            self.handles[r.handle] = r.id
            self.cache.people[r.id] = (r.channels, r.locale)
        supervisor = self.cache.a_supervisor(conn)  # who verifies where no grid above is led
        self.a_supervisor = lambda: supervisor
        self.policy = NoticePolicy.of(app)
        self.batch = batch_size(app)
        self.defaults = app.settings.section("notifiers").get("default_channels", ["console"])
        self.tickets: dict[int, Ticket] = {}
        self.rows: dict[str, list[dict[str, Any]]] = {t.name: [] for t in _TABLES}
        self.next_id = {t.name: _next_id(conn, t) for t in _TABLES}
        self.counters: dict[str, int] = dict(
            conn.execute(select(ref_counters.c.prefix, ref_counters.c.last)).all()
        )
        self.keys: set[str] = {k for (k,) in conn.execute(select(notifications.c.idempotency_key))}
        self.rungs: dict[tuple[int, int, int, int], int] = {}  # (ticket, stage, level, round) -> id
        self.ladder: dict[int, list[dict[str, Any]]] = {}  # ticket id -> its escalation rows
        self.open_stages: dict[int, dict[str, Any]] = {}  # ticket id -> its stage row not ended
        self.notices_of: dict[int, list[dict[str, Any]]] = {}  # ticket id -> its notice rows
        self.closed: dict[tuple[int, str], list[tuple[datetime, int]]] = {}
        self.checks: list[tuple[datetime, int]] = []  # (next check, ticket id), stale ones too

    # -- the clock ----------------------------------------------------------------------------

    def next_due(self) -> datetime | None:
        """The earliest next check of any ticket, as `SELECT min(next_check_at)` finds it."""
        while self.checks:
            at, tid = self.checks[0]
            if self.tickets[tid].next_check_at == at:
                return at
            heapq.heappop(self.checks)
        return None

    def _checked(self, t: Ticket) -> None:
        if t.next_check_at is not None:
            heapq.heappush(self.checks, (t.next_check_at, t.id))

    # -- submit -------------------------------------------------------------------------------

    def chain(self, grid: Grid) -> list[Grid]:
        """Zone first, as `grid.lineage` reads it."""
        if grid.id not in self.chains:
            self.chains[grid.id] = [self.grids[i] for i in (*grid.ancestor_ids, grid.id)]
        return self.chains[grid.id]

    def submit(self, grid_code: str, category: str, title: str, when: datetime) -> int:
        """What `service.submit` writes for a problem reported at `when` (recorded then too)."""
        app, wf = self.app, self.app.workflow
        home = self.by_code.get(grid_code)
        if home is None:
            raise LookupError(f"unknown grid '{grid_code}'")
        led = nearest_led(self.chain(home))
        if led is None:
            raise LookupError(f"no grid from {home.code} up to the zone has a leader to assign to")
        prefix = f"{wf.ref_prefix}-{when.astimezone(app.tz).year}"
        self.counters[prefix] = self.counters.get(prefix, 0) + 1
        ref = f"{prefix}-{self.counters[prefix]:06d}"
        recurrence_of = self._recurrence_of(home.id, category, when)
        t = Ticket.reported(
            id=self._id("tickets"),
            ref=ref,
            category=category,
            title=title,
            grid_id=home.id,
            responsible_grid_id=led.id,
            assignee_id=led.leader_id,
            state=wf.initial,
            recurrence_of_id=recurrence_of,
            when=when,
            urgent_at=when if wf.category(category).urgent else None,
        )
        self._fire(t, "submit")
        enter_state(t, wf, t.state, when, app.deadlines)
        self.tickets[t.id] = t
        self._stages(t, (0, None), "submit", when, (led.id, t.assignee_id))
        change = Change("submit", wf.initial, t.state, None)
        change.data = {"assigned_grid": led.code}
        if recurrence_of is not None:
            change.data["recurrence_of_id"] = recurrence_of
        if led.leader_id is not None:
            change.notices.append(("assignment", led.leader_id))
        self._event(t, change, when, None)
        self._checked(t)
        return t.id

    def _fire(self, t: Ticket, step: str) -> None:
        """`Workflow.fire`, the machine asked once per (state, step)."""
        move = (t.state, step)
        if move not in self.moves:
            self.moves[move] = self.app.workflow.next_state(*move)
        t.state = self.moves[move]

    def _recurrence_of(self, grid_id: int, category: str, at: datetime) -> int | None:
        window = timedelta(days=self.app.workflow.recurrence_window_days)
        found = [
            (closed_at, tid)
            for closed_at, tid in self.closed.get((grid_id, category), ())
            if at - window <= closed_at <= at
        ]
        return max(found)[1] if found else None

    # -- the steps ----------------------------------------------------------------------------

    def person(self, handle: str) -> int:
        if handle not in self.handles:
            raise UnknownPerson("person.unknown", handle=handle)
        return self.handles[handle]

    def close(self, ticket_id: int, fixer: str, checker: str, when: datetime) -> None:
        """Fix by `fixer`, then verify and close by `checker`, all at `when`, as
        `service.run_step` runs them (loop.py's effects, the after-step hook)."""
        t = self.tickets[ticket_id]
        fixer_id, checker_id = self.person(fixer), self.person(checker)
        for step, actor_id, note in (
            ("fix", fixer_id, "replay: closed"),
            ("verify", checker_id, None),
            ("close", checker_id, None),
        ):
            self._step(t, step, actor_id, note, when)
        self.closed.setdefault((t.grid_id, t.category), []).append((when, t.id))

    def _step(self, t: Ticket, step: str, actor_id: int, note: str | None, when: datetime) -> None:
        wf = self.app.workflow
        from_state, before = t.state, (t.stage_no, t.stage)
        self._fire(t, step)
        change = Change(step, from_state, t.state, note)
        responsible = self.grids[t.responsible_grid_id]
        if step == "fix":
            t.fixed_by_id = actor_id
        enter_state(t, wf, t.state, when, self.app.deadlines)
        if step == "fix":
            verifier = nearest_led(self.chain(responsible)[:-1])
            if verifier is not None and verifier.leader_id not in (None, actor_id):
                change.notices.append(("verification_request", verifier.leader_id))
        self._stage_left(t, *before, step, when)
        t.updated_at = when
        t.version += 1
        acting: tuple[int, int | None] = (responsible.id, t.assignee_id)
        if t.stage in VERIFIER_STAGES:
            above = nearest_led(self.chain(responsible)[:-1])
            acting = (above.id, above.leader_id) if above is not None else (responsible.id, None)
        self._stages(t, before, step, when, acting)
        self._event(t, change, when, actor_id)
        self._checked(t)

    def _stage_left(
        self, t: Ticket, stage_no: int, stage: str | None, step: str, when: datetime
    ) -> None:
        """`extensions.stage_left`: the ladder of the stage left closes, its reminders still
        waiting are cancelled (the replay has no extension requests to lapse)."""
        if stage is None or (t.stage_no, t.stage) == (stage_no, stage):
            return
        for rung in self.ladder.get(t.id, ()):
            if rung["stage_no"] == stage_no and rung["closed_at"] is None:
                rung["closed_at"] = when
        prefix = f"reminder:{t.ref}:{stage_no}:"
        for n in self.notices_of.get(t.id, ()):
            if (
                n["kind"] == "reminder"
                and n["status"] == "pending"
                and n["idempotency_key"].startswith(prefix)
            ):
                n["status"] = "cancelled"
                n["last_error"] = "the stage ended before delivery: " + step

    def _stages(
        self,
        t: Ticket,
        before: tuple[int, str | None],
        step: str,
        at: datetime,
        acting: tuple[int, int | None],
    ) -> None:
        """`service.record_stages`."""
        stage_no, stage = before
        if (t.stage_no, t.stage) == (stage_no, stage):
            return
        if stage is not None and (row := self.open_stages.pop(t.id, None)) is not None:
            row.update(ended_at=at, ended_by=step)
        if t.stage_no == stage_no:
            return
        if t.stage is not None and t.due_at is not None and t.stage_started_at is not None:
            row = {
                "id": self._id("stages"),
                "ticket_id": t.id,
                "stage_no": t.stage_no,
                "stage": t.stage,
                "started_at": t.stage_started_at,
                "started_by": step,
                "due_at": t.due_at,
                "grid_id": acting[0],
                "owner_id": acting[1],
                "ended_at": None,
                "ended_by": None,
            }
            self.rows["stages"].append(row)
            self.open_stages[t.id] = row

    def _event(self, t: Ticket, change: Change, at: datetime, actor_id: int | None) -> None:
        """`service.record_event` and `service._send_notices` (recorded at the time it happened)."""
        event_id = self._id("ticket_events")
        self.rows["ticket_events"].append(
            {
                "id": event_id,
                "ticket_id": t.id,
                "at": at,
                "recorded_at": at,
                "step": change.step,
                "actor_id": actor_id,
                "actor_label": None,
                "from_state": change.from_state,
                "to_state": change.to_state,
                "note": change.note,
                "data": change.data or None,
            }
        )
        urgent = t.urgent or self.app.workflow.category(t.category).urgent
        not_before = outbox.quiet_until(self.app.calendar, at, urgent=urgent)
        for kind, person_id in change.notices:
            self._notices(
                self.cache.notice_rows(
                    kind,
                    person_id,
                    f"{kind}:{t.ref}:{event_id}:{person_id}",
                    at,
                    t.id,
                    {"event_id": event_id, **change.data},
                    not_before,
                )
            )

    def _notices(self, rows: Iterable[dict[str, Any]]) -> None:
        """Stored as ON CONFLICT DO NOTHING stores them: the first row of a key wins."""
        for n in rows:
            if n["idempotency_key"] in self.keys:
                continue
            self.keys.add(n["idempotency_key"])
            row = {"id": self._id("notifications"), **n, **_NOTICE_DEFAULTS}
            self.rows["notifications"].append(row)
            if n["ticket_id"] is not None:
                self.notices_of.setdefault(n["ticket_id"], []).append(row)

    # -- the sweep ----------------------------------------------------------------------------

    def sweep(self, now: datetime) -> SweepCount:
        """`escalation.sweep` at `now`: the due tickets in (next check, id) order, in batches."""
        found: set[tuple[datetime, int]] = set()
        while self.checks and self.checks[0][0] <= now:
            at, tid = heapq.heappop(self.checks)
            if self.tickets[tid].next_check_at == at:
                found.add((at, tid))
        due = sorted(found)
        count = SweepCount()
        for start in range(0, len(due), self.batch):
            batch = [self.tickets[tid] for _, tid in due[start : start + self.batch]]
            self._sweep_batch(batch, now, count)
        return count

    def _sweep_batch(self, batch: list[Ticket], now: datetime, count: SweepCount) -> None:
        done: list[tuple[Any, Plan]] = []
        acting: dict[int, int | None] = {}
        for t in batch:
            if t.stage is None:
                raise AssertionError(f"{t.ref}: the replay defers nothing, yet it has no stage")
            chain = self.chain(self.grids[t.responsible_grid_id])
            chain, acting[t.id] = acting_in_stage(chain, t, self.a_supervisor)
            p = plan(self.app.deadlines, TicketClock.of(t), chain, now)
            done.append((_Read(t), p))  # the ticket as read: its notices look at that
            t.next_escalation_at = p.next_escalation_at
            t.next_check_at = p.next_check_at
            t.escalation_level = p.escalation_level
            t.escalation_round = p.escalation_round
            t.supervising_grid_id = p.supervising_grid_id
            t.supervisor_id = p.supervisor_id
            t.version += 1
            self._checked(t)
        for r in rung_records(done, now):
            key = (r["ticket_id"], r["stage_no"], r["level"], r["round"])
            if key in self.rungs:
                continue
            row = {"id": self._id("escalations"), **r, "closed_at": None}
            self.rungs[key] = row["id"]
            self.ladder.setdefault(r["ticket_id"], []).append(row)
            self.rows["escalations"].append(row)
            count.escalations += 1
        reminders, notices = batch_notices(
            done,
            acting,
            self.rungs,
            now,
            self.policy,
            self.cache.notice_rows,
            lambda keys: {k for k in keys if k in self.keys},
        )
        count.reminders += reminders
        self._notices(notices)

    # -- the rows -----------------------------------------------------------------------------

    def _id(self, table: str) -> int:
        n = self.next_id[table]
        self.next_id[table] = n + 1
        return n

    def notice_rows(self) -> list[dict[str, Any]]:
        """Every outbox row the replay wrote, stored or not."""
        return self.rows["notifications"]

    def write(self, conn: Connection) -> None:
        """Store every row in the caller's transaction, tickets first (the others refer to them);
        the notices only if asked (they are counted either way)."""
        workflow = self.app.workflow.name
        ticket_rows = [
            {
                **{k: getattr(t, k) for k in Ticket.__dataclass_fields__},
                "workflow": workflow,
                "reporter_secret_hash": None,
                "source": "public",
            }
            for t in self.tickets.values()
        ]
        for table, rows in ((tickets, ticket_rows), *((t, self.rows[t.name]) for t in _TABLES[1:])):
            if rows and (table is not notifications or self.store_notices):
                insert_many(conn, table, rows)
        known = set(conn.execute(select(ref_counters.c.prefix)).scalars())
        for prefix, last in self.counters.items():
            if prefix in known:
                conn.execute(
                    ref_counters.update().where(ref_counters.c.prefix == prefix).values(last=last)
                )
            else:
                conn.execute(insert(ref_counters).values(prefix=prefix, last=last))


def _next_id(conn: Connection, table: Any) -> int:
    return int(conn.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one()) + 1
