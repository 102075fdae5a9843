"""The web's group writer on SQLite: concurrent writes share one transaction, each request in a
savepoint of its own, so a request that fails takes back only its own writes; answers come after
the commit; when the shared commit fails, each request runs again alone."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Connection, event, func, insert, select

from closeloop import service
from closeloop.app import App
from closeloop.models import ticket_links, tickets
from closeloop.service import NewProblem
from closeloop.web import writers

NOW = datetime(2026, 4, 1, 2, 0, tzinfo=UTC)
COUNT = 8


def problem(i: int) -> NewProblem:
    return NewProblem(grid="JS-A1-V01-G03", category="random_piling", title=f"堆放 {i}")


class RefusedAfterWriting(Exception):
    """What the request refused after writing raises: an error of this test's own, so the
    assertion finds exactly it coming back to its caller."""


def refused_after_writing(conn: Connection, ref: str) -> None:
    raise RefusedAfterWriting(f"{ref} refused after its rows were written")


def run_together(app: App, works: list[Callable[[App], Any]]) -> list[Any]:
    """Queue `works` behind a request that holds the writer, then let them all run: they form
    one batch. Returns what each returned or raised."""
    started, release = threading.Event(), threading.Event()
    out: list[Any] = [None] * len(works)

    def hold(a: App) -> None:
        started.set()
        release.wait()

    def call(i: int) -> None:
        try:
            out[i] = writers.write(app, works[i])
        except Exception as exc:
            out[i] = exc

    first = threading.Thread(target=writers.write, args=(app, hold))
    first.start()
    started.wait()
    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(works))]
    for t in threads:
        t.start()
    # Waits for a state (every request queued), not for time; the deadline only ends a hang.
    deadline = time.monotonic() + 30
    while writers._WRITERS[app.engine].queue.qsize() < len(works):
        assert time.monotonic() < deadline, "the requests were never queued"
        os.sched_yield()
    release.set()
    for t in [first, *threads]:
        t.join()
    return out


def count_tickets(app: App) -> int:
    with app.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(tickets)).scalar_one())


def test_one_commit_for_the_batch_and_a_failing_request_keeps_the_others(sqlite_app: App) -> None:
    app = sqlite_app
    before = count_tickets(app)
    commits: list[int] = []
    event.listen(app.engine, "commit", lambda conn: commits.append(1))

    def submit(i: int) -> Callable[[App], Any]:
        also = refused_after_writing if i == 3 else None
        return lambda a: service.submit(a, problem(i), NOW, also=also)

    out = run_together(app, [submit(i) for i in range(COUNT)])

    assert isinstance(out[3], RefusedAfterWriting), out[3]
    assert "refused after its rows were written" in str(out[3])
    refs = [r for i, r in enumerate(out) if i != 3]
    assert all(isinstance(r, str) for r in refs)
    # The holding request's batch, then one for the eight queued behind it.
    assert len(commits) == 2
    assert count_tickets(app) == before + COUNT - 1
    with app.engine.connect() as conn:
        titles = set(conn.execute(select(tickets.c.title).where(tickets.c.ref.in_(refs))).scalars())
    assert titles == {f"堆放 {i}" for i in range(COUNT) if i != 3}
    # The reference number taken by the refused request went back with its savepoint.
    numbers = sorted(int(r.rsplit("-", 1)[1]) for r in refs)
    assert numbers == list(range(numbers[0], numbers[0] + COUNT - 1))


def test_a_failed_group_commit_runs_each_request_alone(sqlite_app: App) -> None:
    """A foreign key checked at commit (deferred) fails the whole group's commit: nothing of it
    stays, and each request is run again in a transaction of its own, so only the faulty one
    fails."""
    app = sqlite_app
    before = count_tickets(app)

    def dangling_link(a: App) -> None:
        with a.begin() as conn:
            conn.exec_driver_sql("PRAGMA defer_foreign_keys = ON")
            conn.execute(
                insert(ticket_links).values(
                    ticket_id=10**9, kind="patrol", target_id=1, created_at=NOW
                )
            )

    works: list[Callable[[App], Any]] = [
        lambda a: service.submit(a, problem(0), NOW),
        dangling_link,
        lambda a: service.submit(a, problem(2), NOW),
    ]
    out = run_together(app, works)

    assert isinstance(out[0], str) and isinstance(out[2], str)
    assert "FOREIGN KEY" in str(out[1])
    assert count_tickets(app) == before + 2
    with app.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(ticket_links)).scalar_one() == 0


@pytest.mark.postgres
@pytest.mark.parametrize("app", ["postgres"], indirect=True)
def test_postgresql_writes_at_once_in_the_callers_thread(app: App) -> None:
    caller = threading.get_ident()
    ran_in: list[int] = []

    def work(a: App) -> str:
        ran_in.append(threading.get_ident())
        return service.submit(a, problem(0), NOW)

    assert writers.write(app, work).startswith("EP-")
    assert ran_in == [caller]
