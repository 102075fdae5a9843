"""Shared fixtures: an App on SQLite and on PostgreSQL with the example zone loaded.

Every test that takes `app` runs on both backends. PostgreSQL tests use a database made for this
test session (so parallel runs never meet); outside CI they skip when no server answers, in CI
(env CI set) they fail instead.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NoReturn

import pytest
from sqlalchemy import Engine, create_engine, insert, select, text

# Passwords hashed at argon2's lowest cost in this process and the ones it starts (the CLI, serve):
# production cost is about 0.3 s a hash. Set before closeloop.web.auth is imported.
os.environ.setdefault("CLOSELOOP_PASSWORD_HASH", "cheap")

from closeloop.app import App
from closeloop.bootstrap import bootstrap
from closeloop.config import load_settings
from closeloop.db import make_engine
from closeloop.models import grid_geometries, grids, metadata, people
from tests.factories import NOW
from tests.webtools import Web, make_web

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "config.toml"
PG_ADMIN_URL = os.environ.get(
    "CLOSELOOP_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
IN_CI = bool(os.environ.get("CI"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Drift tests (network, a venv of their own) run only when `-m` names them; otherwise they
    are deselected, not skipped, so a CI run that skips anything stands out."""
    if re.search(r"(?<!not )\bdrift\b", config.getoption("markexpr") or ""):
        return
    drift = [item for item in items if "drift" in item.keywords]
    if drift:
        config.hook.pytest_deselected(items=drift)
        items[:] = [item for item in items if "drift" not in item.keywords]


def _pg_available() -> str | None:
    try:
        eng = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with eng.connect() as conn:
            conn.execute(text("select 1"))
        eng.dispose()
        return None
    except Exception as exc:
        return f"no PostgreSQL server at {PG_ADMIN_URL}: {exc.__class__.__name__}"


def skip_or_fail(reason: str) -> NoReturn:
    """What a test does when a server, the browser or the shared data folder is missing: skip
    on a developer's machine, fail in CI, where everything must run."""
    if IN_CI:
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A database of its own for this test session, dropped at the end."""
    reason = _pg_available()
    if reason:
        skip_or_fail(f"PostgreSQL tests must run in CI: {reason}")
    name = f"closeloop_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _create_schema(app: App) -> None:
    """Create the tables from the models and mark the migrations as applied.

    Tests build the schema from models.py, so work on the models is testable at once;
    tests/test_migrations.py checks that the migrations build the very same schema.
    """
    from alembic import command

    from closeloop.schema import alembic_config

    metadata.create_all(app.engine)
    with app.engine.begin() as conn:
        command.stamp(alembic_config(conn), "head")


def _zone_snapshot(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    with engine.connect() as conn:
        return {
            "people": [dict(r._mapping) for r in conn.execute(select(people))],
            "grids": [dict(r._mapping) for r in conn.execute(select(grids).order_by(grids.c.id))],
            "grid_geometries": [dict(r._mapping) for r in conn.execute(select(grid_geometries))],
        }


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file with the schema and the example zone, copied for each test."""
    from closeloop import zone

    path = tmp_path_factory.mktemp("template") / "zone.db"
    app = bootstrap(load_settings(CONFIG, f"sqlite:///{path}"))
    _create_schema(app)
    zone.init(app, NOW)
    app.engine.dispose()
    return path


ZONE_TABLES = ("people", "grids", "grid_geometries")
# Where each zone table's rows lie and what they hold: unchanged after a test only if no row was
# written (an updated or re-inserted row moves to a new ctid even when its values come back).
_ZONE_STATE = "SELECT " + ", ".join(
    f"(SELECT md5(string_agg(ctid::text || t::text, ',' ORDER BY ctid)) FROM \"{name}\" t)"
    for name in ZONE_TABLES
)
# Tables whose file has grown since their last TRUNCATE: a write, even one rolled back, extends
# the file; a table never written holds nothing, as a TRUNCATE would leave it.
_WRITTEN = (
    "SELECT relname FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace"
    " AND relname = ANY(:names) AND pg_relation_size(oid) > 0"
)
_OWNED_SEQUENCES = """
    SELECT t.relname, s.oid::regclass::text FROM pg_class s
    JOIN pg_depend d ON d.objid = s.oid AND d.classid = 'pg_class'::regclass
        AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
    JOIN pg_class t ON t.oid = d.refobjid
    WHERE s.relkind = 'S' AND t.relnamespace = 'public'::regnamespace
"""


@dataclass
class PgZone:
    """The session's PostgreSQL App, its example zone as rows, and what `_reset_pg` compares
    against to know which tables a test wrote."""

    app: App
    snapshot: dict[str, list[dict[str, Any]]]
    sequences: list[tuple[str, str]] = field(default_factory=list)  # (table, its sequence)
    zone_state: Any = None
    superuser: bool = False


@pytest.fixture(scope="session")
def pg_zone(pg_url: str) -> Iterator[PgZone]:
    from closeloop import zone

    app = bootstrap(load_settings(CONFIG, pg_url))
    _create_schema(app)
    zone.init(app, NOW)
    pg = PgZone(app, _zone_snapshot(app.engine))
    with app.engine.connect() as conn:
        pg.sequences = sorted((t, s) for t, s in conn.execute(text(_OWNED_SEQUENCES)))
        pg.superuser = conn.execute(text("SELECT current_setting('is_superuser')")).scalar() == "on"
    # Every test starts from the zone as `_reset_pg` writes it (rows in the snapshot's order).
    _reset_pg(pg, everything=True)
    with app.engine.connect() as conn:
        pg.zone_state = conn.execute(text(_ZONE_STATE)).one()
    yield pg
    app.engine.dispose()


@pytest.fixture(scope="session")
def pg_session_app(pg_zone: PgZone) -> tuple[App, dict[str, list[dict[str, Any]]]]:
    return pg_zone.app, pg_zone.snapshot


def _reset_pg(pg: PgZone, *, everything: bool = False) -> None:
    """The database as `TRUNCATE <every table> RESTART IDENTITY CASCADE` and the zone's rows
    inserted again leave it: each table's file empty, so rows land where they would in a new
    table, every id sequence restarted, the zone's rows as the snapshot lists them.

    Only the tables the test wrote are emptied, by DELETE and a VACUUM that gives the emptied
    pages back (the file shrinks to nothing); the zone's tables only when the test changed them.
    A TRUNCATE makes new files for a table and its indexes, forces a flush of the log, and one
    of a zone table cascades to every table that refers to it: all 41 each time was about 0.8 s
    a test, most of a PostgreSQL test's time.
    """
    names = [t.name for t in metadata.sorted_tables]
    with pg.app.engine.begin() as conn:
        if everything:
            written, zone_changed = set(names), True
        else:
            written = set(conn.execute(text(_WRITTEN), {"names": names}).scalars())
            zone_changed = conn.execute(text(_ZONE_STATE)).one() != pg.zone_state
        if zone_changed:
            written |= set(ZONE_TABLES)
        else:
            written -= set(ZONE_TABLES)
        if pg.superuser:
            # Every row that could refer to a deleted one is deleted too (a table not written is
            # empty): checking each reference, 431 people against some 20 tables, is time lost.
            conn.execute(text("SET LOCAL session_replication_role = replica"))
        for name in reversed(names):  # rows that refer to others first
            if name in written:
                conn.execute(text(f'DELETE FROM "{name}"'))
    if written:
        with pg.app.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM " + ", ".join(f'"{name}"' for name in sorted(written))))
    with pg.app.engine.begin() as conn:
        # VACUUM leaves pages in place when another transaction could still see the rows or
        # holds a lock on the table: those few are truncated.
        kept = set(conn.execute(text(_WRITTEN), {"names": sorted(written)}).scalars())
        if kept:
            listed = ", ".join(f'"{name}"' for name in names if name in kept)
            conn.execute(text(f"TRUNCATE {listed} RESTART IDENTITY CASCADE"))
        if zone_changed:
            conn.execute(insert(people), pg.snapshot["people"])
            # Parents first: ids ascend down the tree, as the import wrote them.
            conn.execute(insert(grids), pg.snapshot["grids"])
            if pg.snapshot["grid_geometries"]:
                conn.execute(insert(grid_geometries), pg.snapshot["grid_geometries"])
        # Each sequence where RESTART IDENTITY puts it (one moves on without leaving a row when
        # an insert is refused), the zone's just past its highest id.
        restart = [
            f"setval('{seq}', (SELECT max(id) FROM \"{table}\"))"
            if table in ("people", "grids")
            else f"setval('{seq}', 1, false)"
            for table, seq in pg.sequences
        ]
        if restart:
            conn.execute(text("SELECT " + ", ".join(restart)))


# Every test that takes `app` runs on both; a fixture of wider scope that builds its own App
# (`app_on`) takes these params too, so its tests keep the ids `[sqlite]` and `[postgres]`.
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@contextmanager
def app_on(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, *, leave_clean: bool = False
) -> Iterator[App]:
    """The example zone, fresh, on one backend: a copy of the SQLite template in tmp_path, or
    the session's PostgreSQL database (of this process: an xdist worker has its own) emptied
    of what the last test wrote. `leave_clean` empties it again on the way out, for a fixture
    wider than a test whose rows must not outlive it."""
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "closeloop.db"
        shutil.copy(template, path)
        settings = load_settings(CONFIG, f"sqlite:///{path}")
        settings = _with_storage(settings, tmp_path)
        a = bootstrap(settings)
        try:
            yield a
        finally:
            a.engine.dispose()
    else:
        pg: PgZone = request.getfixturevalue("pg_zone")
        _reset_pg(pg)
        try:
            yield replace(pg.app, settings=_with_storage(pg.app.settings, tmp_path))
        finally:
            if leave_clean:
                _reset_pg(pg)


@pytest.fixture(params=BACKENDS)
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[App]:
    """The example zone, fresh for each test, on each backend."""
    with app_on(request.param, request, tmp_path) as a:
        yield a


@pytest.fixture
def sqlite_app(tmp_path: Path, sqlite_template: Path) -> Iterator[App]:
    """SQLite only, for tests about SQLite itself."""
    path = tmp_path / "closeloop.db"
    shutil.copy(sqlite_template, path)
    a = bootstrap(_with_storage(load_settings(CONFIG, f"sqlite:///{path}"), tmp_path))
    yield a
    a.engine.dispose()


def _with_storage(settings: Any, tmp_path: Path) -> Any:
    return replace(settings, evidence_dir=tmp_path / "evidence")


@pytest.fixture
def empty_engine(tmp_path: Path) -> Engine:
    """A new SQLite database with the schema and nothing in it."""
    eng = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    metadata.create_all(eng)
    return eng


@pytest.fixture
def web(app: App) -> Iterator[Web]:
    """The web service on the test's App, a test clock at NOW and a client (tests/webtools.py)."""
    yield from make_web(app)
