"""Extension (延期) and deferral (缓办/挂账): the deadline steps of the workflow.

- request_extension: the responsible leader (or a leader above) asks for a later deadline
  (`--until`, later than the current one) with a reason. One pending request per stage at a time.
- approve_extension: a supervisor approves the pending request: the deadline moves to `until`,
  the ticket counts as extended (extension_count + 1), reminders follow the new deadline. An
  escalation already climbed stays where it is; the next rung comes only if the new deadline
  passes too.
- refuse_extension: a supervisor refuses it, with a reason.
- defer: a supervisor parks an assigned ticket on the deferral register with a reason and a
  review date. The clock stops: the stage time left (in the stage's clock, up to the current
  deadline) is stored, the stage instance ends (its open escalation rows close), and the ticket
  gets no deadline, no reminders and no place in the overdue list (next_check_at is NULL; the
  review date is on the register for people to read, it sends nothing).
- resume: a supervisor takes it back into work. A new stage instance starts with the escalation
  ladder at the bottom (parking was a supervisor's decision), and its deadline is the resume time
  plus the time that was left, in the same clock.

These are steps (named in `closeloop.steps`): each writes its event in the step's transaction.
They send no notices. What `ticket show` says about them is in `closeloop.views`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from closeloop import escalation
from closeloop.app import StepRun
from closeloop.calendar import Limit
from closeloop.models import deferrals, extensions, notifications
from closeloop.tickets import Conflict, Invalid, Ticket
from closeloop.views import iso


def _pending(conn: Connection, t: Ticket) -> Any:
    return conn.execute(
        select(extensions).where(
            extensions.c.ticket_id == t.id,
            extensions.c.stage_no == t.stage_no,
            extensions.c.status == "pending",
        )
    ).first()


def _reschedule(run: StepRun) -> None:
    t = run.ticket
    t.next_check_at = escalation.next_check(
        run.app.deadlines, escalation.TicketClock.of(t), run.now
    )


def request_extension(run: StepRun) -> None:
    t, until = run.ticket, run.given.until
    assert until is not None and run.actor is not None  # the workflow requires --until
    if t.due_at is None:
        raise Invalid("extension.no_deadline", ref=t.ref)
    if until <= t.due_at:
        raise Invalid("extension.not_later", until=iso(until, run.app), due=iso(t.due_at, run.app))
    waiting = _pending(run.conn, t)
    if waiting is not None:
        raise Conflict("extension.pending", ref=t.ref, until=iso(waiting.until, run.app))
    new_id = run.conn.execute(
        insert(extensions)
        .values(
            ticket_id=t.id,
            stage_no=t.stage_no,
            requested_by_id=run.actor.id,
            requested_at=run.now,
            reason=run.given.reason,
            until=until,
            status="pending",
        )
        .returning(extensions.c.id)
    ).scalar_one()
    run.change.data.update(extension_id=new_id, until=until.isoformat())


def _decide(run: StepRun, status: str, note: str | None) -> Any:
    t = run.ticket
    assert run.actor is not None
    waiting = _pending(run.conn, t)
    if waiting is None:
        raise Conflict("extension.none_waiting", ref=t.ref)
    if status == "approved" and waiting.until <= run.now:
        raise Invalid("extension.passed", until=iso(waiting.until, run.app))
    run.conn.execute(
        update(extensions)
        .where(extensions.c.id == waiting.id)
        .values(status=status, decided_by_id=run.actor.id, decided_at=run.now, decision_note=note)
    )
    run.change.data.update(extension_id=waiting.id, until=waiting.until.isoformat())
    return waiting


def approve_extension(run: StepRun) -> None:
    t = run.ticket
    request = _decide(run, "approved", run.given.note)
    run.change.data["previous_due"] = t.due_at.isoformat() if t.due_at else None
    t.due_at = request.until
    t.next_escalation_at = request.until  # the next rung only if the new deadline passes too
    t.extension_count += 1
    _reschedule(run)


def refuse_extension(run: StepRun) -> None:
    _decide(run, "refused", run.given.reason)


def defer(run: StepRun) -> None:
    t, review_on = run.ticket, run.given.review_on
    assert review_on is not None and run.actor is not None  # the workflow requires --review-on
    if review_on <= run.now:
        raise Invalid("deferral.review_past", review_on=iso(review_on, run.app))
    assert t.stage is not None and t.due_at is not None  # defer runs only from a stage state
    clock = run.app.deadlines.limit(t.category, t.stage, urgent=t.urgent).clock
    left = run.app.calendar.elapsed(run.now, t.due_at, clock) if t.due_at > run.now else None
    remaining = left.total_seconds() if left is not None else 0.0
    new_id = run.conn.execute(
        insert(deferrals)
        .values(
            ticket_id=t.id,
            by_id=run.actor.id,
            at=run.now,
            reason=run.given.reason,
            review_on=review_on,
            remaining_seconds=remaining,
        )
        .returning(deferrals.c.id)
    ).scalar_one()
    run.change.data.update(
        deferral_id=new_id, review_on=review_on.isoformat(), remaining_seconds=remaining
    )
    run.enter()
    t.next_check_at = review_on  # the sweep reminds the supervisor who deferred it then


def resume(run: StepRun) -> None:
    t = run.ticket
    assert run.actor is not None
    parked = run.conn.execute(
        select(deferrals)
        .where(deferrals.c.ticket_id == t.id, deferrals.c.resumed_at.is_(None))
        .order_by(deferrals.c.id.desc())
        .limit(1)
    ).first()
    if parked is None:
        raise Conflict("deferral.not_deferred", ref=t.ref)
    run.enter()
    assert t.stage is not None
    clock = run.app.deadlines.limit(t.category, t.stage, urgent=t.urgent).clock
    remaining = float(parked.remaining_seconds or 0.0)
    t.due_at = (
        run.app.calendar.add(run.now, Limit(remaining / 60, "m", clock))
        if remaining > 0
        else run.now
    )
    t.next_escalation_at = t.due_at
    _reschedule(run)
    run.conn.execute(
        update(deferrals)
        .where(deferrals.c.id == parked.id)
        .values(resumed_at=run.now, resumed_by_id=run.actor.id)
    )
    run.change.data.update(deferral_id=parked.id, due_at=t.due_at.isoformat())


def stage_left(run: StepRun, stage_no: int, stage: str | None) -> None:
    """A step ended a stage instance: close its escalation ladder, lapse its open request and
    cancel its reminders still waiting in the outbox (a "hurry up" for work already done, sent
    after a channel outage, would mislead).

    `run.extra` may say which of these the stage instance has none of, as read with the ticket
    in the step's transaction (`open_rungs`, `pending_request`, `pending_reminders` False):
    the statement that would change nothing is not sent."""
    t = run.ticket
    if stage is None or (t.stage_no, t.stage) == (stage_no, stage):
        return
    if run.extra.get("open_rungs", True):
        escalation.close_stage(run.conn, t.id, stage_no, run.now)
    if run.extra.get("pending_request", True):
        run.conn.execute(_LAPSE, {"b_ticket": t.id, "b_stage_no": stage_no, "b_now": run.now})
    if run.extra.get("pending_reminders", True):
        run.conn.execute(
            _CANCEL_REMINDERS,
            {
                "b_ticket": t.id,
                "b_key": f"reminder:{t.ref}:{stage_no}:%",
                "b_step": run.change.step,
            },
        )


# Built once: this runs on every step that ends a stage.
_LAPSE = (
    update(extensions)
    .where(
        extensions.c.ticket_id == bindparam("b_ticket"),
        extensions.c.stage_no == bindparam("b_stage_no"),
        extensions.c.status == "pending",
    )
    .values(status="lapsed", decided_at=bindparam("b_now"), decision_note="stage ended")
)


# Reminder keys begin "reminder:<ref>:<stage_no>:" (see escalation.py), late ones included.
_CANCEL_REMINDERS = (
    update(notifications)
    .where(
        notifications.c.ticket_id == bindparam("b_ticket"),
        notifications.c.kind == "reminder",
        notifications.c.status == "pending",
        notifications.c.idempotency_key.like(bindparam("b_key")),
    )
    .values(
        status="cancelled", last_error="the stage ended before delivery: " + bindparam("b_step")
    )
)
