"""Stage deadlines and the moments the sweep must look at a ticket, from the workflow limits and
the zone calendar. Pure: a function of (category, stage, start) and the configuration."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from closeloop.calendar import Limit, WorkCalendar
from closeloop.config import ConfigError
from closeloop.workflow import StageLimit, Workflow

DEFAULT_REMINDERS = (0.5, 0.8)


@dataclass(frozen=True)
class Deadlines:
    workflow: Workflow
    calendar: WorkCalendar
    reminder_points: Sequence[float] = DEFAULT_REMINDERS

    @classmethod
    def from_config(
        cls, workflow: Workflow, calendar: WorkCalendar, section: Mapping[str, Any]
    ) -> Deadlines:
        points = tuple(float(p) for p in section.get("reminders", DEFAULT_REMINDERS))
        if any(not 0 < p < 1 for p in points):
            raise ConfigError("config.reminders")
        return cls(workflow, calendar, tuple(sorted(points)))

    def limit(self, category: str, stage: str, *, urgent: bool = False) -> Limit:
        """The time allowed for `stage`; an urgent ticket's (紧急件) when the category sets one."""
        return _as_limit(self.workflow.category(category).limit(stage, urgent=urgent))

    def escalation_interval(self, category: str) -> Limit:
        return _as_limit(self.workflow.category(category).escalate_every)

    def due(self, category: str, stage: str, start: datetime, *, urgent: bool = False) -> datetime:
        return self.calendar.add(start, self.limit(category, stage, urgent=urgent))

    def reminder_times(
        self, category: str, stage: str, start: datetime, *, urgent: bool = False
    ) -> list[datetime]:
        limit = self.limit(category, stage, urgent=urgent)
        return [self.calendar.point(start, limit, p) for p in self.reminder_points]

    def first_check(
        self, category: str, stage: str, start: datetime, *, urgent: bool = False
    ) -> datetime:
        """The first moment after `start` the sweep has something to do for this stage."""
        times = self.reminder_times(category, stage, start, urgent=urgent)
        return min([*times, self.due(category, stage, start, urgent=urgent)])


@lru_cache(maxsize=256)
def _as_limit(limit: StageLimit) -> Limit:
    # Parsed once per limit text: the sweep asks for each ticket's limits several times.
    return Limit.parse(limit.within, limit.clock)
