"""Random sequences of steps by random people: the invariants of the loop always hold."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from sqlalchemy import func, select

from closeloop import service, views
from closeloop.app import App
from closeloop.models import people, ticket_events, tickets
from closeloop.service import NewProblem
from closeloop.tickets import Conflict, Invalid, NotPermitted, StepInput
from tests.conftest import NOW

# Leaders above the grid may fix as well as verify, so the draw favours them: that is where a
# verifier-is-fixer slip would show.
PEOPLE = ["yantou.g3", "yantou.lead", "yantou.lead", "area1.lead", "duban.wang", "caoyuan.g1"]
# The steps of the main loop come up more often than the side steps.
STEPS = ["fix", "fix", "verify", "verify", "reject", "close", "reopen", "dismiss", "reassign"]
GRIDS = ["JS-A1-V01-G03", "JS-A1-V01-G02"]


def make_machine(app: App) -> type[RuleBasedStateMachine]:
    wf = app.workflow

    class Loop(RuleBasedStateMachine):
        @initialize()
        def start(self) -> None:
            self.now = NOW
            self.refs: list[str] = []
            self.successes = 0
            # Examples share one database: count from what earlier examples left.
            with app.engine.connect() as conn:
                self.before = conn.execute(
                    select(func.count()).select_from(ticket_events)
                ).scalar_one()

        def tick(self) -> None:
            self.now += timedelta(minutes=7)

        @precondition(lambda self: len(self.refs) < 3)
        @rule(grid=st.sampled_from(GRIDS))
        def submit(self, grid: str) -> None:
            self.tick()
            ref = service.submit(
                app, NewProblem(grid=grid, category="sanitation", title="死角"), self.now
            )
            self.refs.append(ref)
            self.successes += 1

        @rule(
            data=st.data(),
            step=st.sampled_from(STEPS),
            who=st.sampled_from(PEOPLE),
            with_text=st.sampled_from([True, True, True, False]),
        )
        def act(self, data: st.DataObject, step: str, who: str, with_text: bool) -> None:
            if not self.refs:
                return
            ref = data.draw(st.sampled_from(self.refs))
            self.tick()
            before = views.show(app, ref)
            text = "说明" if with_text else None
            given = StepInput(note=text, reason=text, to_grid=data.draw(st.sampled_from(GRIDS)))
            with app.engine.connect() as conn:
                fixer = conn.execute(
                    select(people.c.handle)
                    .join(tickets, tickets.c.fixed_by_id == people.c.id)
                    .where(tickets.c.ref == ref)
                ).scalar()
            try:
                service.run_step(app, ref, step, who, given, self.now)
            except Conflict:
                assert not wf.may(before["state"], step)
                return
            except (NotPermitted, Invalid):
                assert views.show(app, ref)["events"] == before["events"]
                return
            self.successes += 1
            after = views.show(app, ref)
            # the machine, not the caller, decides where a step leads
            assert wf.may(before["state"], step)
            assert after["state"] == wf.next_state(before["state"], step)
            if step in ("verify", "reject"):
                assert who != fixer, "the fixer checked their own fix"
            assert after["events"][-1]["step"] == step
            assert after["events"][-1]["by"] == who

        @invariant()
        def every_change_has_its_event(self) -> None:
            with app.engine.connect() as conn:
                n = conn.execute(select(func.count()).select_from(ticket_events)).scalar_one()
            assert n == self.successes + self.before

        @invariant()
        def closed_only_through_verified(self) -> None:
            for ref in self.refs[-3:]:
                events = views.show(app, ref)["events"]
                for e in events:
                    if e["to"] == "closed":
                        assert e["from"] == "verified"
                state = events[-1]["to"]
                assert state in wf.states

    return Loop


def test_random_step_sequences_keep_the_invariants(app: App) -> None:
    machine = make_machine(app)
    runner = machine.TestCase
    runner.settings = settings(
        max_examples=30,
        stateful_step_count=30,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    runner().runTest()
