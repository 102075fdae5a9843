"""The Alembic migrations build exactly the schema that models.py describes, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from closeloop import schema
from closeloop.db import make_engine
from closeloop.models import metadata


def _diff(engine) -> list:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn), metadata)


def test_migrations_match_the_models_on_sqlite(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    before, after = schema.upgrade(engine)
    assert before is None and after == schema.head()
    assert _diff(engine) == []
    assert schema.upgrade(engine) == (after, after)  # a second run changes nothing


def test_migrations_match_the_models_on_postgres(pg_url: str) -> None:
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    # Named after this session's database, so parallel test runs never drop each other's.
    name = pg_url.rsplit("/", 1)[1] + "_migrations"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(pg_url.rsplit("/", 1)[0] + f"/{name}")
    try:
        schema.upgrade(engine)
        assert _diff(engine) == []
        assert "tickets" in inspect(engine).get_table_names()
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
