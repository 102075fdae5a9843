"""One writer at a time on SQLite, queued in this process rather than by SQLite's busy wait.

SQLite has a single writer. A transaction that finds the write lock taken sleeps in growing
steps (up to 100 ms each) before it tries again, so under concurrent requests the slowest
writes waited seconds while the lock stood free between the sleeps. Requests of one process
that write take a lock here first and run one after the other with no sleeping. PostgreSQL
writers run side by side, and this does nothing there.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine

_LOCK = threading.Lock()


@contextmanager
def one_writer(engine: Engine) -> Iterator[None]:
    if engine.dialect.name != "sqlite":
        yield
        return
    with _LOCK:
        yield
