"""The loop's own steps: what fix, reject, verify, close, reopen, dismiss and reassign do beyond
moving the state (named in `closeloop.steps`). Each runs inside the step's transaction."""

from __future__ import annotations

from closeloop import grid as grids_mod
from closeloop import outbox
from closeloop.app import StepRun
from closeloop.grid import UnknownGrid
from closeloop.tickets import Conflict, Invalid


def _verifier(run: StepRun) -> int | None:
    """Who is asked to check a fix: the nearest leader above the responsible grid."""
    led = grids_mod.nearest_led(run.responsible_lineage()[:-1])
    return led.leader_id if led else None


def fix(run: StepRun) -> None:
    t = run.ticket
    assert run.actor is not None
    t.fixed_by_id = run.actor.id
    run.enter()
    verifier = _verifier(run)
    if verifier is not None and verifier != run.actor.id:
        run.change.notices.append(("verification_request", verifier))


def reject(run: StepRun) -> None:
    t = run.ticket
    t.rework_count += 1
    run.enter()
    run.change.data["reason"] = run.given.reason
    if t.assignee_id is not None:
        run.change.notices.append(("rejection", t.assignee_id))


def verify(run: StepRun) -> None:
    run.enter()


def close(run: StepRun) -> None:
    t = run.ticket
    run.enter()
    if t.reporter_email:
        outbox.enqueue_address(
            run.conn,
            kind="closure",
            address=t.reporter_email,
            channel="email",
            locale=run.app.settings.locale,
            key=f"closure:{t.ref}:{t.stage_no}:reporter",
            now=run.now,
            ticket_id=t.id,
        )


def reopen(run: StepRun) -> None:
    t = run.ticket
    run.enter()
    run.change.data["reason"] = run.given.reason
    if t.assignee_id is not None:
        run.change.notices.append(("assignment", t.assignee_id))


def mark_urgent(run: StepRun) -> None:
    """A supervisor makes the ticket urgent (紧急件). The deadline running now stays (a deadline
    moves only by an extension or a resume); the stages that start from now on take the
    category's urgent limits, and notices about the ticket go out at once."""
    t = run.ticket
    if t.urgent_at is not None:
        raise Conflict("ticket.urgent_already", ref=t.ref)
    t.urgent_at = run.now
    run.change.data["reason"] = run.given.reason


def dismiss(run: StepRun) -> None:
    run.enter()
    run.change.data["reason"] = run.given.reason


def reassign(run: StepRun) -> None:
    t = run.ticket
    assert run.given.to_grid is not None
    try:
        target = grids_mod.get_grid(run.conn, run.given.to_grid)
    except UnknownGrid as exc:
        raise Invalid(exc.code, **exc.params) from None
    if target.id == t.grid_id:
        raise Invalid("ticket.same_grid", ref=t.ref, grid=target.code)
    led = grids_mod.nearest_led(grids_mod.lineage(run.conn, target))
    if led is None:
        raise Invalid("ticket.no_leader", grid=target.code)
    run.change.data.update(from_grid_id=t.grid_id, to_grid=target.code)
    t.grid_id = target.id
    t.responsible_grid_id = led.id
    t.assignee_id = led.leader_id
    run.enter()
    if led.leader_id is not None:
        run.change.notices.append(("assignment", led.leader_id))
