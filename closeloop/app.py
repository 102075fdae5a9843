"""What every use case is given: the App (settings, engine, workflow, calendar, deadlines, the
step table, the clock), and what a step's effect is given inside its transaction (StepRun).

`closeloop.bootstrap` builds the App; `closeloop.steps` declares the step table it carries.
Nothing here imports a domain module that needs the App, so every module can import it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine

from closeloop import grid as grids_mod
from closeloop.calendar import WorkCalendar
from closeloop.config import Settings
from closeloop.deadlines import Deadlines
from closeloop.grid import Grid
from closeloop.tickets import Actor, Change, StepInput, Ticket, enter_state
from closeloop.workflow import Workflow

# The one clock the edges read (web, CLI, scheduler, delivery, the channels); everything below
# them takes `now` as a parameter. Tests give the App (or the web app) a ManualClock.
Clock = Callable[[], datetime]


def system_now() -> datetime:
    return datetime.now(UTC)


class ManualClock:
    """A clock that stands still until moved: for tests and for demonstrating escalation."""

    def __init__(self, now: datetime) -> None:
        if now.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> datetime:
        self.now += delta
        return self.now

    def set(self, now: datetime) -> None:
        if now.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self.now = now


@dataclass
class StepRun:
    """Everything a step effect may read and change, inside the step's transaction."""

    app: App
    conn: Connection
    ticket: Ticket
    actor: Actor | None
    given: StepInput
    now: datetime
    change: Change
    extra: dict[str, Any] = field(default_factory=dict)

    def enter(self) -> None:
        """Open the stage of the state the step led to (a fresh deadline, the ladder reset)."""
        enter_state(self.ticket, self.app.workflow, self.ticket.state, self.now, self.app.deadlines)

    def responsible_lineage(self) -> list[Grid]:
        """The responsible grid (`extra["responsible"]`, as the step read it) and the grids
        above it, zone first: read once per step, though a fix reads it for its verifier's
        notice and again for who acts in the stage it opens. The channels and locale of their
        leaders, read with them, are kept in `extra["leader_contacts"]` (by person id) for the
        step's notices."""
        chain = self.extra.get("lineage")
        if chain is None:
            chain, leaders = grids_mod.lineage_with_leaders(self.conn, self.extra["responsible"])
            self.extra["lineage"], self.extra["leader_contacts"] = chain, leaders
        return chain


# What a step does beyond moving the state, in the step's transaction.
Effect = Callable[[StepRun], None]
# How a use case opens its write transaction, when not the engine's own: the web's group writer
# (`closeloop.web.writers`) gives a savepoint inside the transaction it shares among requests.
Transaction = Callable[[], AbstractContextManager[Connection]]
# Called after a step's effect, in its transaction, with the ticket's (stage_no, stage) from
# before the step (e.g. to close the escalation ladder of a stage instance that was left).
AfterStep = Callable[[StepRun, int, str | None], None]


@dataclass(frozen=True)
class StepTable:
    """The steps the engine can run, by name, and the hooks after every step."""

    effects: Mapping[str, Effect]
    after_step: tuple[AfterStep, ...] = ()


@dataclass(frozen=True)
class App:
    settings: Settings
    engine: Engine
    workflow: Workflow
    calendar: WorkCalendar
    deadlines: Deadlines
    steps: StepTable
    clock: Clock = system_now
    transaction: Transaction | None = None

    def begin(self) -> AbstractContextManager[Connection]:
        """The write transaction of one use case: all of it commits, or none of it."""
        if self.transaction is not None:
            return self.transaction()
        return self.engine.begin()

    @property
    def tz(self) -> ZoneInfo:
        return self.settings.timezone

    def now(self) -> datetime:
        """The time now, from the App's clock."""
        return self.clock()
