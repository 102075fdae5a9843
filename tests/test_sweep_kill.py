"""A scheduler killed with SIGKILL in the middle of a large sweep, then restarted: every due
escalation is written exactly once, and what the killed process wrote is whole batches."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from benchmarks.bulk import add_overdue
from closeloop import scheduler
from closeloop.app import App
from closeloop.bootstrap import bootstrap
from closeloop.config import load_settings
from closeloop.db import read_only
from closeloop.models import escalations, notifications, tickets
from tests.factories import count
from tests.sweep_helpers import copy_sqlite, minimal_config, poll, spawn

TICKETS = 20_000
BATCH = 100
RUNGS = 3  # random parking: 2 h to fix, then every 4 h; 10 h late = levels 3, 2 and 1
# A supervision notice per rung (each climbs to a new level) and one late reminder per ticket
# and working day, one channel each.
NOTICES_PER_TICKET = RUNGS + 1


@pytest.fixture
def big(sqlite_template: Path, tmp_path: Path) -> Iterator[tuple[App, Path]]:
    url = copy_sqlite(sqlite_template, tmp_path / "big.db")
    jobs = {j.id: "off" for j in scheduler.JOBS} | {"sweep": "every 1m"}
    config = minimal_config(tmp_path, url, jobs)
    app = bootstrap(load_settings(config))
    # Ten hours late now, so the ladder's next deadline (two hours ahead) stays ahead while the
    # test runs on the real clock.
    due = datetime.now(UTC) - timedelta(hours=10)
    add_overdue(app, TICKETS, due, spread=timedelta(minutes=5))
    yield app, config
    app.engine.dispose()


def _stop(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        proc.kill()
    _out, err = proc.communicate(timeout=60)
    return str(err)


@pytest.mark.slow
def test_sigkill_mid_sweep_then_restart_writes_each_rung_once(big: tuple[App, Path]) -> None:
    app, config = big
    expected = TICKETS * RUNGS
    first = spawn(config, "scheduler")
    try:

        def kill_once_batches_committed() -> bool:
            # Count in a read transaction (WAL: it takes no lock) and kill at once. Taking the
            # write lock to count starved on an idle machine: the sweeper begins its next batch
            # the instant it commits, so the test's BEGIN IMMEDIATE waited out the whole sweep.
            # The rest of the sweep (hundreds of batches) takes seconds; the kill follows the
            # count within microseconds of this process's time.
            with read_only(app.engine) as conn:
                done = conn.execute(select(func.count()).select_from(escalations)).scalar_one()
            if done < BATCH * RUNGS:
                return False
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
            return True

        killed = poll(kill_once_batches_committed, limit=120, every=0.01)
        assert killed, "the scheduler wrote nothing: " + _stop(first)
    finally:
        _stop(first)
    assert first.returncode == -signal.SIGKILL
    written = count(app, escalations)
    assert written < expected, "the sweep finished before the kill; nothing was interrupted"
    # A batch is one transaction: the killed process left whole batches and nothing else.
    assert written % (BATCH * RUNGS) == 0
    assert count(app, notifications) == written // RUNGS * NOTICES_PER_TICKET
    done = count(app, tickets, tickets.c.escalation_level == RUNGS)
    assert done * RUNGS == written

    second = spawn(config, "scheduler")
    try:
        finished = poll(
            lambda: (
                count(app, escalations) == expected
                and count(app, tickets, tickets.c.next_check_at <= datetime.now(UTC)) == 0
            ),
            limit=300,
            every=0.05,
        )
        assert finished, "the restarted scheduler did not finish: " + _stop(second)
        second.send_signal(signal.SIGTERM)
        _out, err = second.communicate(timeout=60)
    finally:
        _stop(second)
    assert second.returncode == 0, err
    assert count(app, escalations) == expected
    assert count(app, notifications) == TICKETS * NOTICES_PER_TICKET
    with app.engine.connect() as conn:
        per_ticket = conn.execute(
            select(escalations.c.ticket_id, func.count())
            .group_by(escalations.c.ticket_id)
            .having(func.count() != RUNGS)
        ).all()
        levels = conn.execute(
            select(escalations.c.level, escalations.c.round, func.count()).group_by(
                escalations.c.level, escalations.c.round
            )
        ).all()
        keys = conn.execute(
            select(func.count(func.distinct(notifications.c.idempotency_key)))
        ).scalar_one()
    assert per_ticket == []
    assert sorted(levels) == [(1, 0, TICKETS), (2, 0, TICKETS), (3, 0, TICKETS)]
    assert keys == TICKETS * NOTICES_PER_TICKET
    assert count(app, tickets, tickets.c.escalation_level == RUNGS) == TICKETS
