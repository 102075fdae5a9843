"""What every use case is given: the App (settings, engine, workflow, calendar, deadlines, the
step table, the clock), and what a step's effect is given inside its transaction (StepRun).

`closeloop.bootstrap` builds the App; `closeloop.steps` declares the step table it carries.
Nothing here imports a domain module that needs the App, so every module can import it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine

from closeloop.calendar import WorkCalendar
from closeloop.config import Settings
from closeloop.deadlines import Deadlines
from closeloop.tickets import Actor, Change, StepInput, Ticket, enter_state
from closeloop.workflow import Workflow


class Clock:
    """The only clock the edges read (web, CLI, scheduler, delivery, notifiers); everything
    below them takes `now` as a parameter. Tests give the App a `FixedClock`."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock(Clock):
    """A clock that says what it is told: `set()` or `advance()` it."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("a FixedClock needs an aware time")
        self.at = at

    def now(self) -> datetime:
        return self.at

    def set(self, at: datetime) -> None:
        self.at = at

    def advance(self, by: timedelta) -> None:
        self.at += by


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


# What a step does beyond moving the state, in the step's transaction.
Effect = Callable[[StepRun], None]
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
    clock: Clock = field(default_factory=Clock)

    @property
    def tz(self) -> ZoneInfo:
        return self.settings.timezone

    def now(self) -> datetime:
        return self.clock.now()
