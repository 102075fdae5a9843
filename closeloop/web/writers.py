"""The one writer of an SQLite database in this process: requests' writes grouped into one
transaction, each in a savepoint of its own (group commit).

SQLite has a single writer. A transaction that finds the write lock taken sleeps in growing
steps (up to 100 ms each) before it tries again, so under concurrent requests the slowest
writes waited seconds while the lock stood free between the sleeps; requests of one process
therefore queue here instead. Queued behind one lock, each write still paid its own BEGIN and
COMMIT, and the lock, which is not fair, let some requests wait behind many others: the p99 of
writes was three times their median under 32 clients.

`write(app, work)` hands a use case to this process's writer thread, which takes the waiting
work in arrival order and runs a batch of it in one transaction: each piece in a savepoint of
its own (`App.begin()` gives it), so a piece that fails rolls back its own writes only and its
caller gets its error, while the others' commit. Nobody gets an answer before the commit, so a
ticket answered is a ticket stored. Should the commit itself fail, each piece of the batch runs
again alone, in a transaction of its own. PostgreSQL writers run side by side, as before:
`write` runs the work at once in the caller's thread.

`one_writer` serialises the other, rarer writes of the web (a claim of an idempotency key, a
token's last use) with the batches.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine

from closeloop.app import App

T = TypeVar("T")

_LOCK = threading.Lock()
# At most this many requests share a transaction: a batch's last answer waits for all of it.
BATCH = 32
# A writer thread with nothing to do for this long ends; the next write starts another.
IDLE_SECONDS = 5.0


@contextmanager
def one_writer(engine: Engine) -> Iterator[None]:
    if engine.dialect.name != "sqlite":
        yield
        return
    with _LOCK:
        yield


def write(app: App, work: Callable[[App], T]) -> T:
    """Run `work(app)` as this process's writer; what it returns or raises comes back here,
    after its writes have committed. `work` opens its transaction with `app.begin()` (the
    `closeloop.service` use cases do) and reads nothing written by others through another
    connection."""
    if app.engine.dialect.name != "sqlite":
        return work(app)
    item = _Item(app, work)
    with _WRITERS_LOCK:
        writer = _WRITERS.get(app.engine)
        if writer is None:
            writer = _WRITERS[app.engine] = _Writer(app.engine)
        writer.queue.put(item)
    item.done.wait()
    if item.error is not None:
        raise item.error
    return item.result


@dataclass
class _Item:
    app: App
    work: Callable[[App], Any]
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None

    def run(self, app: App) -> None:
        try:
            self.result, self.error = self.work(app), None
        except Exception as exc:
            self.result, self.error = None, exc


_WRITERS: dict[Engine, _Writer] = {}
_WRITERS_LOCK = threading.Lock()


class _Writer:
    """The thread that writes to one engine's database for this process."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        threading.Thread(target=self._loop, name="closeloop-writer", daemon=True).start()

    def _loop(self) -> None:
        while True:
            try:
                first = self.queue.get(timeout=IDLE_SECONDS)
            except queue.Empty:
                with _WRITERS_LOCK:
                    # Nothing can be queued while the registry is held: ending here is safe.
                    if self.queue.empty():
                        del _WRITERS[self.engine]
                        return
                continue
            batch = [first]
            while len(batch) < BATCH:
                try:
                    batch.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._run(batch)
            finally:
                for item in batch:
                    item.done.set()

    def _run(self, batch: list[_Item]) -> None:
        try:
            with _LOCK, self.engine.begin() as conn:
                for item in batch:
                    item.run(replace(item.app, transaction=_savepoints(conn)))
        except Exception:
            # The group's transaction failed as a whole (its commit, most likely): nothing of
            # it is stored, and each piece runs again alone, as it would have without grouping.
            for item in batch:
                with _LOCK:
                    item.run(item.app)


def _savepoints(conn: Connection) -> Callable[[], Any]:
    @contextmanager
    def savepoint() -> Iterator[Connection]:
        with conn.begin_nested():
            yield conn

    return savepoint
