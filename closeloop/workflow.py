"""Workflows as data: load `workflows/*.toml` into one shared state machine and the category rules.

One `transitions.Machine` per workflow serves every ticket: it is built with `model=None` and
`auto_transitions=False`, and a step is fired with `machine.events[step].trigger(ticket)`. Nothing
is bound to the ticket objects, so memory stays flat however many tickets pass through.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transitions import Machine, MachineError

from closeloop.errors import CodedError

ROLES = frozenset({"anyone", "responsible", "ancestor_leader", "supervisor"})
REQUIREMENTS = frozenset({"note", "reason", "to_grid", "until", "review_on"})
ACTIONS = ("clean-up", "rectification", "demolition", "construction")
STAGE_LIMIT_KEYS = ("fix", "verify", "close")


class WorkflowError(CodedError, ValueError):
    """The workflow file is not usable: a code of the catalogue, every problem found coded
    the same way (`WorkflowProblem`) with the key it is about."""


class WorkflowProblem(CodedError):
    """One problem of a workflow file, collected with the others (never raised alone)."""


@dataclass(frozen=True)
class Names:
    zh: str
    en: str

    def get(self, locale: str) -> str:
        return self.en if locale.startswith("en") else self.zh


@dataclass(frozen=True)
class State:
    name: str
    label: Names
    stage: str | None
    final: bool


@dataclass(frozen=True)
class Step:
    name: str
    label: Names
    sources: tuple[str, ...]
    dest: str | None  # None: an internal step that records without moving
    who: frozenset[str]
    requires: frozenset[str]
    not_fixer: bool


@dataclass(frozen=True)
class StageLimit:
    """A time allowed for a stage: a duration text ("2h", "5d") and the clock it runs on."""

    within: str
    clock: str  # "natural" or "working"


@dataclass(frozen=True)
class Category:
    key: str
    label: Names
    action: str
    limits: Mapping[str, StageLimit]  # stage name -> limit
    escalate_every: StageLimit
    urgent: bool = False  # every ticket of it is urgent; notices go at once, even at night
    # The limits of an urgent ticket (紧急件), stage by stage; a stage not named keeps its limit.
    urgent_limits: Mapping[str, StageLimit] = field(default_factory=dict)

    def limit(self, stage: str, *, urgent: bool = False) -> StageLimit:
        if urgent and stage in self.urgent_limits:
            return self.urgent_limits[stage]
        return self.limits[stage]


class _Probe:
    __slots__ = ("state",)

    def __init__(self, state: str) -> None:
        self.state = state


@dataclass(frozen=True)
class Workflow:
    name: str
    ref_prefix: str
    initial: str
    recurrence_window_days: int
    states: Mapping[str, State]
    stages: Mapping[str, Names]
    steps: Mapping[str, Step]
    categories: Mapping[str, Category]
    actions: Mapping[str, Names]
    machine: Machine

    def fire(self, model: Any, step: str) -> None:
        """Move `model.state` along `step`; raise StepNotAllowed when the state forbids it."""
        event = self.machine.events.get(step)
        if event is None:
            raise StepNotAllowed(step, model.state, self.sources_of(step))
        try:
            event.trigger(model)
        except MachineError as exc:
            raise StepNotAllowed(step, model.state, self.sources_of(step)) from exc

    def label(self, key: str, locale: str) -> str:
        """A step's or a state's label in `locale` (error messages name either by its key)."""
        found = self.steps.get(key) or self.states.get(key)
        return found.label.get(locale) if found is not None else key

    def may(self, state: str, step: str) -> bool:
        """Whether `step` may run from `state` (for pages that show only the allowed steps)."""
        found = self.steps.get(step)
        return found is not None and state in found.sources

    def next_state(self, state: str, step: str) -> str:
        """The state `step` leads to from `state`, computed by the machine itself."""
        probe = _Probe(state)
        self.fire(probe, step)
        return probe.state

    def sources_of(self, step: str) -> tuple[str, ...]:
        found = self.steps.get(step)
        return found.sources if found else ()

    def stage_of(self, state: str) -> str | None:
        return self.states[state].stage

    def category(self, key: str) -> Category:
        try:
            return self.categories[key]
        except KeyError:
            known = ", ".join(sorted(self.categories))
            raise UnknownCategory("category.unknown", key=key, known=known) from None


class StepNotAllowed(CodedError):
    def __init__(self, step: str, state: str, sources: tuple[str, ...]) -> None:
        self.step, self.state, self.sources = step, state, sources
        code = "step.wrong_state" if sources else "step.unknown"
        super().__init__(
            code, step=step, ticket="a ticket", state=state, sources=", ".join(sources)
        )


class UnknownCategory(CodedError, ValueError):
    pass


def load_workflow(path: Path) -> Workflow:
    """Read and check a workflow file; every problem is reported with its key."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WorkflowError("workflow.not_found", path=path) from None
    except tomllib.TOMLDecodeError as exc:
        raise WorkflowError("workflow.not_toml", path=path, reason=exc) from None
    return parse_workflow(raw, source=str(path))


def _names(raw: Mapping[str, Any], where: str, problems: list[WorkflowProblem]) -> Names:
    zh, en = raw.get("zh"), raw.get("en")
    if not isinstance(zh, str) or not isinstance(en, str):
        problems.append(WorkflowProblem("workflow.names", where=where))
        return Names(str(zh), str(en))
    return Names(zh, en)


def _limit(raw: Any, where: str, problems: list[WorkflowProblem]) -> StageLimit:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("within"), str):
        problems.append(WorkflowProblem("workflow.limit_shape", where=where))
        return StageLimit("1d", "natural")
    clock = raw.get("clock", "natural")
    if clock not in ("natural", "working"):
        problems.append(WorkflowProblem("workflow.clock", where=where, clock=clock))
    # Imported here: the calendar owns duration syntax, the workflow only checks it parses.
    from closeloop.calendar import Limit

    try:
        Limit.parse(raw["within"], clock if clock in ("natural", "working") else "natural")
    except ValueError as exc:
        problems.append(WorkflowProblem("workflow.limit", where=where, reason=exc))
    return StageLimit(raw["within"], clock)


def parse_workflow(raw: Mapping[str, Any], source: str = "workflow") -> Workflow:
    problems: list[WorkflowProblem] = []
    head = raw.get("workflow", {})
    name = head.get("name", "workflow")
    initial = head.get("initial", "reported")

    states: dict[str, State] = {}
    for key, spec in raw.get("states", {}).items():
        states[key] = State(
            key, _names(spec, f"states.{key}", problems), spec.get("stage"), bool(spec.get("final"))
        )
    if initial not in states:
        problems.append(WorkflowProblem("workflow.initial", initial=initial))

    stages = {k: _names(v, f"stages.{k}", problems) for k, v in raw.get("stages", {}).items()}
    for state in states.values():
        if state.stage is not None and state.stage not in stages:
            problems.append(WorkflowProblem("workflow.stage", name=state.name, stage=state.stage))

    steps: dict[str, Step] = {}
    for key, spec in raw.get("steps", {}).items():
        where = f"steps.{key}"
        sources = tuple(spec.get("from", ()))
        dest = spec.get("to")
        for s in (*sources, *([dest] if dest else [])):
            if s not in states:
                problems.append(WorkflowProblem("workflow.unknown_state", where=where, name=s))
        if not sources:
            problems.append(WorkflowProblem("workflow.needs_from", where=where))
        who = frozenset(spec.get("who", ()))
        if not who or not who <= ROLES:
            problems.append(WorkflowProblem("workflow.who", where=where, roles=sorted(ROLES)))
        requires = frozenset(spec.get("requires", ()))
        if not requires <= REQUIREMENTS:
            problems.append(
                WorkflowProblem("workflow.requires", where=where, known=sorted(REQUIREMENTS))
            )
        steps[key] = Step(
            key,
            _names(spec, where, problems),
            sources,
            dest,
            who,
            requires,
            bool(spec.get("not_fixer")),
        )
    if "submit" not in steps:
        problems.append(WorkflowProblem("workflow.no_submit"))

    actions = {k: _names(v, f"actions.{k}", problems) for k, v in raw.get("actions", {}).items()}
    categories: dict[str, Category] = {}
    for key, spec in raw.get("categories", {}).items():
        where = f"categories.{key}"
        action = spec.get("action")
        if action not in actions:
            problems.append(
                WorkflowProblem(
                    "workflow.action", where=where, actions=sorted(actions), action=action
                )
            )
        limits = {
            stage: _limit(spec.get(stage), f"{where}.{stage}", problems)
            for stage in sorted({s.stage for s in states.values() if s.stage})
        }
        escalate = _limit(
            spec.get("escalate_every", {"within": "1d", "clock": "working"}),
            f"{where}.escalate_every",
            problems,
        )
        urgent = spec.get("urgent", False)
        if not isinstance(urgent, bool):
            problems.append(WorkflowProblem("workflow.urgent", where=where, urgent=urgent))
        raw_urgent = spec.get("urgent_limits", {})
        if not isinstance(raw_urgent, Mapping) or not set(raw_urgent) <= set(limits):
            problems.append(
                WorkflowProblem("workflow.urgent_limits", where=where, stages=sorted(limits))
            )
            raw_urgent = {}
        urgent_limits = {
            stage: _limit(value, f"{where}.urgent_limits.{stage}", problems)
            for stage, value in raw_urgent.items()
        }
        categories[key] = Category(
            key,
            _names(spec, where, problems),
            str(action),
            limits,
            escalate,
            urgent is True,
            urgent_limits,
        )
    if not categories:
        problems.append(WorkflowProblem("workflow.no_category"))

    if problems:
        raise WorkflowError("workflow.problems", source=source, problems=problems)

    machine = Machine(
        model=None,
        states=list(states),
        initial=initial,
        auto_transitions=False,
        ignore_invalid_triggers=False,
    )
    for step in steps.values():
        for src in step.sources:
            machine.add_transition(step.name, src, step.dest if step.dest else None)

    return Workflow(
        name=name,
        ref_prefix=head.get("ref_prefix", "EP"),
        initial=initial,
        recurrence_window_days=int(head.get("recurrence_window_days", 30)),
        states=states,
        stages=stages,
        steps=steps,
        categories=categories,
        actions=actions,
        machine=machine,
    )
