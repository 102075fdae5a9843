"""Engine and transaction setup for SQLite (embedded default) and PostgreSQL (scale-out).

SQLite gets WAL, a busy timeout and `BEGIN IMMEDIATE` for write transactions, so a transaction that
reads then writes never fails with "database is locked" when another writer got in between
(the pysqlite recipe from the SQLAlchemy docs: the driver's own BEGIN handling is switched off,
the dialect emits BEGIN). Read-only work asks for `read_only()` and gets a deferred BEGIN that
does not block writers.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, DateTime, Engine, Table, bindparam, create_engine, event, insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.pool import PoolProxiedConnection, StaticPool
from sqlalchemy.types import TypeDecorator

READ_ONLY = "closeloop_read_only"


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on every backend.

    SQLite has no time zones: values are stored as naive UTC text, which also keeps them
    comparable and indexable as strings.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: closeloop stores aware times only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def bind_processor(self, dialect: Dialect) -> Any:
        # The conversion above followed by the dialect's own, remembered per instant: a batch
        # binds the same few moments (its `now`, the notices' hold) thousands of times. The
        # result depends only on the instant, which is what equal datetimes share.
        process = super().bind_processor(dialect)
        return None if process is None else lru_cache(maxsize=4096)(process)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine with the settings closeloop relies on for the given backend."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        if url in ("sqlite://", "sqlite:///:memory:"):
            kwargs.setdefault("poolclass", StaticPool)
        kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": 30})
        engine = create_engine(url, **kwargs)
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Switch off pysqlite's own transaction handling; `_begin` emits BEGIN itself.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # WAL lets readers run beside the one writer; where a file system refuses it, SQLite keeps
        # its rollback journal and the busy timeout still serialises writers.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    # The dialect's BEGIN, not a listener for the engine's "begin" event: a listener for any
    # connection event makes SQLAlchemy dispatch four more events around every statement, which
    # was a third of the Python calls of a submit.
    engine.dialect.do_begin = _begin  # type: ignore[method-assign]


def _begin(dbapi_connection: PoolProxiedConnection) -> None:
    deferred = dbapi_connection.info.get(READ_ONLY, False)
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("BEGIN" if deferred else "BEGIN IMMEDIATE")
    finally:
        cursor.close()


@contextmanager
def read_only(engine: Engine) -> Iterator[Connection]:
    """A transaction for reading: on SQLite it does not take the write lock."""
    with engine.connect() as conn:
        # Marked on the pooled connection, where `_begin` sees it, for this transaction only.
        pooled = conn.connection
        pooled.info[READ_ONLY] = True
        try:
            with conn.begin():
                yield conn
        finally:
            pooled.info.pop(READ_ONLY, None)


def is_postgres(conn_or_engine: Connection | Engine) -> bool:
    return conn_or_engine.dialect.name == "postgresql"


def insert_ignoring_duplicates(
    conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], key: str
) -> int:
    """Insert rows, skipping those whose unique `key` is already stored; returns rows written.

    Both backends do this in one statement (ON CONFLICT DO NOTHING), so concurrent writers of the
    same row never fail and never duplicate it.
    """
    if not rows:
        return 0
    stmt = _ignoring_duplicates(conn.dialect.name, table, key)
    # Counted from RETURNING: a driver's rowcount for a batch can be -1 (psycopg does that).
    return len(conn.execute(stmt, list(rows)).all())


@lru_cache(maxsize=64)
def _ignoring_duplicates(dialect: str, table: Table, key: str) -> Any:
    # One statement object per table and dialect: SQLAlchemy then reuses its compiled form.
    insert_fn = pg_insert if dialect == "postgresql" else sqlite_insert
    return insert_fn(table).on_conflict_do_nothing(index_elements=[key]).returning(table.c[key])


def insert_many(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    unique: Sequence[str] = (),
) -> int:
    """Insert rows that all have the same keys in one executemany; with `unique` (the columns of
    a unique constraint) a row whose key is stored already is skipped (ON CONFLICT DO NOTHING).
    Returns the rows written, or -1 where the driver does not say.

    On SQLite each value goes through its column type's own bind processor (the stored text is
    what `conn.execute(insert(table), rows)` stores) and the tuples straight to the driver:
    the parameter dictionary SQLAlchemy builds per row was most of the time of a large batch."""
    if not rows:
        return 0
    keys = list(rows[0])
    missing = [c for c in table.c if c.key not in rows[0] and c.default is not None]
    defaults = {
        c.key: c.default.arg  # type: ignore[union-attr]
        for c in missing
        if getattr(c.default, "is_scalar", False)
    }
    callable_default = len(defaults) < len(missing)
    if conn.dialect.name != "sqlite" or callable_default:
        stmt = _inserting(conn.dialect.name, table, tuple(unique))
        return int(conn.execute(stmt, [{**defaults, **r} for r in rows]).rowcount)
    dialect = conn.dialect
    # Column by column: the values are picked and converted in C loops (itemgetter, map), not
    # one Python list per row.
    if len(keys) == 1:
        columns = [tuple(row[keys[0]] for row in rows)]
    else:
        columns = list(zip(*map(itemgetter(*keys), rows), strict=True))
    columns += [(v,) * len(rows) for v in defaults.values()]
    keys += list(defaults)
    for i, k in enumerate(keys):
        process = table.c[k].type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            columns[i] = tuple(map(process, columns[i]))
    quote = dialect.identifier_preparer.quote
    sql = (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(k) for k in keys)}) "
        f"VALUES ({', '.join('?' * len(keys))})"
    )
    if unique:
        sql += f" ON CONFLICT ({', '.join(quote(k) for k in unique)}) DO NOTHING"
    return int(conn.exec_driver_sql(sql, list(zip(*columns, strict=True))).rowcount)


@lru_cache(maxsize=64)
def _inserting(dialect: str, table: Table, unique: tuple[str, ...]) -> Any:
    if not unique:
        return insert(table)
    insert_fn = pg_insert if dialect == "postgresql" else sqlite_insert
    return insert_fn(table).on_conflict_do_nothing(index_elements=list(unique))


def upsert_increment(conn: Connection, table: Table, key_col: str, key: str, count_col: str) -> int:
    """Add one to a counter row (creating it at 1) and return the new value, atomically."""
    stmt = _increment(conn.dialect.name, table, key_col, count_col)
    return int(conn.execute(stmt, {"_key": key}).scalar_one())


@lru_cache(maxsize=16)
def _increment(dialect: str, table: Table, key_col: str, count_col: str) -> Any:
    # Built once per counter: every submit takes a reference number.
    insert_fn = pg_insert if dialect == "postgresql" else sqlite_insert
    return (
        insert_fn(table)
        .values({key_col: bindparam("_key"), count_col: 1})
        .on_conflict_do_update(index_elements=[key_col], set_={count_col: table.c[count_col] + 1})
        .returning(table.c[count_col])
    )
