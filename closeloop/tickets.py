"""The ticket and the rules of each step: who may act, what a step needs, what it changes.

Pure domain code: no database, no clock. `service.run_step` loads a Ticket, checks the actor
with `authorize` and the input with `check_requirements`, fires the workflow, runs the step's
effect (`closeloop.steps`) which fills a `Change`, and writes back the ticket together with the
event and the notices the Change describes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from closeloop.errors import CodedError
from closeloop.workflow import Step, Workflow


class DomainError(CodedError):
    """A request that cannot be carried out as asked: a code of `closeloop.errors` and its
    parameters say why and what is allowed; `status` is the HTTP status that fits."""

    status = 400


class NotFound(DomainError):
    status = 404


class NotPermitted(DomainError):
    status = 403


class Conflict(DomainError):
    status = 409


class Invalid(DomainError):
    status = 422


@dataclass
class Ticket:
    id: int
    ref: str
    category: str
    title: str
    description: str
    grid_id: int
    responsible_grid_id: int
    assignee_id: int | None
    state: str
    stage: str | None
    stage_no: int
    stage_started_at: datetime | None
    due_at: datetime | None
    next_check_at: datetime | None
    escalation_level: int
    escalation_round: int
    supervising_grid_id: int | None
    supervisor_id: int | None
    rework_count: int
    extension_count: int
    fixed_by_id: int | None
    recurrence_of_id: int | None
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    version: int
    address: str | None = None
    lat: float | None = None
    lon: float | None = None
    reporter_name: str | None = None
    reporter_phone: str | None = None
    reporter_email: str | None = None
    # When the next rung of the ladder is due (the deadline, then each escalation interval).
    next_escalation_at: datetime | None = None
    # Since when it is urgent (紧急件); its stages started from then take the urgent limits.
    urgent_at: datetime | None = None

    @property
    def urgent(self) -> bool:
        return self.urgent_at is not None

    @classmethod
    def from_row(cls, m: Mapping[str, Any]) -> Ticket:
        return cls(**{k: m[k] for k in _TICKET_FIELDS})

    @classmethod
    def reported(
        cls,
        *,
        id: int,
        ref: str,
        category: str,
        title: str,
        grid_id: int,
        responsible_grid_id: int,
        assignee_id: int | None,
        state: str,
        recurrence_of_id: int | None,
        when: datetime,
        **details: Any,
    ) -> Ticket:
        """A ticket as it is the moment it is reported, before its first step: the one shape
        the engine's submit and the in-memory replay both start from."""
        return cls(
            id=id,
            ref=ref,
            category=category,
            title=title.strip(),
            description=details.pop("description", ""),
            grid_id=grid_id,
            responsible_grid_id=responsible_grid_id,
            assignee_id=assignee_id,
            state=state,
            stage=None,
            stage_no=0,
            stage_started_at=None,
            due_at=None,
            next_check_at=None,
            escalation_level=0,
            escalation_round=0,
            supervising_grid_id=None,
            supervisor_id=None,
            rework_count=0,
            extension_count=0,
            fixed_by_id=None,
            recurrence_of_id=recurrence_of_id,
            created_at=when,
            updated_at=when,
            closed_at=None,
            version=1,
            **details,
        )


_TICKET_FIELDS = tuple(Ticket.__dataclass_fields__)


@dataclass(frozen=True)
class Actor:
    """A person acting, with what the rules need to know about them."""

    id: int
    handle: str
    name: str
    roles: frozenset[str]
    led_paths: tuple[str, ...]  # materialised paths of the grids this person leads
    # Paths of the grids this person is a member of (grid_members): they answer for the grid
    # like its leader for the steps the workflow gives "responsible", and see its inbox.
    member_paths: tuple[str, ...] = ()

    @property
    def is_supervisor(self) -> bool:
        return "supervisor" in self.roles

    def leads(self, path: str) -> bool:
        return path in self.led_paths

    def answers_for(self, path: str) -> bool:
        """Leads the grid at `path` or is one of its members."""
        return path in self.led_paths or path in self.member_paths

    def leads_above(self, path: str) -> bool:
        return any(path != p and path.startswith(p) for p in self.led_paths)


@dataclass(frozen=True)
class StepInput:
    """What a person supplies with a step; which fields a step needs is in the workflow."""

    note: str | None = None
    reason: str | None = None
    to_grid: str | None = None
    until: datetime | None = None
    review_on: datetime | None = None
    evidence: tuple[str, ...] = ()


@dataclass
class Change:
    """The outcome of a step: the event to record and the notices it causes."""

    step: str
    from_state: str
    to_state: str
    note: str | None
    data: dict[str, Any] = field(default_factory=dict)
    notices: list[tuple[str, int]] = field(default_factory=list)  # (kind, person id)


ROLE_WORDS = {
    "responsible": "the leader (or a member) of the responsible grid",
    "ancestor_leader": "a leader of a grid above it",
    "supervisor": "a supervisor",
    "anyone": "anyone",
}


def authorize(step: Step, ticket: Ticket, actor: Actor, responsible_path: str) -> None:
    """Raise NotPermitted unless `actor` may run `step` on `ticket` now."""
    allowed = (
        "anyone" in step.who
        or ("supervisor" in step.who and actor.is_supervisor)
        or ("responsible" in step.who and actor.answers_for(responsible_path))
        or ("ancestor_leader" in step.who and actor.leads_above(responsible_path))
    )
    if not allowed:
        who = " or ".join(ROLE_WORDS[w] for w in sorted(step.who))
        raise NotPermitted(
            "step.not_permitted", handle=actor.handle, step=step.name, ref=ticket.ref, who=who
        )
    if step.not_fixer and ticket.fixed_by_id == actor.id:
        raise NotPermitted("step.own_fix", handle=actor.handle, ref=ticket.ref, step=step.name)


def check_requirements(step: Step, given: StepInput) -> None:
    missing = [r for r in sorted(step.requires) if not _present(getattr(given, r))]
    if missing:
        flags = tuple(f"--{m.replace('_', '-')}" for m in missing)
        raise Invalid("step.needs", step=step.name, fields=flags)


def _present(value: object) -> bool:
    return value is not None and (not isinstance(value, str) or value.strip() != "")


# Stages whose work is the verifier's (the leader of the grid above the responsible one, or a
# supervisor), not the fixer's: their reminders go to the verifier and their ladder climbs from
# the verifier's grid.
VERIFIER_STAGES = ("verify", "close")


class StagePlanner(Protocol):
    def due(
        self, category: str, stage: str, start: datetime, *, urgent: bool = False
    ) -> datetime: ...
    def first_check(
        self, category: str, stage: str, start: datetime, *, urgent: bool = False
    ) -> datetime: ...


def enter_state(
    ticket: Ticket, workflow: Workflow, state: str, now: datetime, plan: StagePlanner
) -> None:
    """Set the stage bookkeeping for a ticket arriving in `state` at `now`.

    Every arrival opens a new stage instance (stage_no) with a fresh deadline, so a fix that is
    rejected and redone gets its own deadline and its own escalation ladder.
    """
    stage = workflow.stage_of(state)
    ticket.state = state
    ticket.stage = stage
    ticket.escalation_level = 0
    ticket.escalation_round = 0
    ticket.supervising_grid_id = None
    ticket.supervisor_id = None
    if stage is None:
        ticket.stage_started_at = None
        ticket.due_at = None
        ticket.next_escalation_at = None
        ticket.next_check_at = None
    else:
        ticket.stage_no += 1
        ticket.stage_started_at = now
        urgent = ticket.urgent
        ticket.due_at = plan.due(ticket.category, stage, now, urgent=urgent)
        ticket.next_escalation_at = ticket.due_at  # the first rung comes at the deadline
        ticket.next_check_at = plan.first_check(ticket.category, stage, now, urgent=urgent)
    ticket.closed_at = now if workflow.states[state].final else None
