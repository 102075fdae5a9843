"""SQLite transactions as `closeloop.db` opens them: a write transaction takes the write lock at
BEGIN (so reading first and writing after never meets "database is locked" half-way), a
read-only one does not block writers, and the read-only mark does not outlive its transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from closeloop.db import make_engine, read_only


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = make_engine(f"sqlite:///{tmp_path / 'lock.db'}", pool_size=1)
    with eng.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    yield eng
    eng.dispose()


def other_writer_gets_in(engine: Engine) -> bool:
    """Whether a second connection can start writing now (it does not wait for the lock)."""
    path = engine.url.database
    assert path is not None
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError as exc:
        assert "locked" in str(exc)
        return False
    finally:
        other.close()


def test_a_write_transaction_holds_the_write_lock_from_its_first_read(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("SELECT count(*) FROM t")).scalar()
        assert not other_writer_gets_in(engine)
    assert other_writer_gets_in(engine)


def test_a_read_only_transaction_lets_writers_in(engine: Engine) -> None:
    with read_only(engine) as conn:
        conn.execute(text("SELECT count(*) FROM t")).scalar()
        assert other_writer_gets_in(engine)


def test_the_connection_writes_with_the_lock_again_after_a_read_only_transaction(
    engine: Engine,
) -> None:
    # One pooled connection: the second transaction runs on the connection the first used.
    with read_only(engine) as conn:
        conn.execute(text("SELECT 1")).scalar()
    with engine.begin() as conn:
        conn.execute(text("SELECT 1")).scalar()
        assert not other_writer_gets_in(engine)
    with pytest.raises(RuntimeError), read_only(engine) as conn:
        conn.execute(text("SELECT 1")).scalar()
        raise RuntimeError("a failed read")
    with engine.connect() as conn:
        conn.execute(text("SELECT 1")).scalar()  # autobegin: a write transaction too
        assert not other_writer_gets_in(engine)
