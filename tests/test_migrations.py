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


def test_stage_owners_of_older_rows_are_filled_from_stored_facts(sqlite_app) -> None:  # type: ignore[no-untyped-def]
    """0010 fills stages.owner_id for rows written before it from the facts stored with them
    (the assignee, the assignment and verification notices, the fixer who was the verifier):
    taken away and filled again, every owner the engine wrote comes back, even after a
    reassignment and a change of grid leader that today's settings would misreport."""
    _stage_owners_round_trip(sqlite_app)


def test_stage_owners_are_filled_on_postgres(pg_url: str) -> None:
    """The same round trip on PostgreSQL, in a database built by the migrations."""
    from closeloop import zone
    from closeloop.bootstrap import bootstrap
    from closeloop.config import load_settings
    from tests.conftest import CONFIG, NOW

    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    name = pg_url.rsplit("/", 1)[1] + "_owners"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    app = bootstrap(load_settings(CONFIG, pg_url.rsplit("/", 1)[0] + f"/{name}"))
    try:
        schema.upgrade(app.engine)
        zone.init(app, NOW)
        _stage_owners_round_trip(app)
    finally:
        app.engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _stage_owners_round_trip(app) -> None:  # type: ignore[no-untyped-def]
    from alembic import command
    from sqlalchemy import select

    from closeloop.grid import set_leader
    from closeloop.models import stages
    from closeloop.schema import alembic_config
    from tests.factories import cn, step
    from tests.report_data import REAL_NOW, submit

    plain = submit(app, "JS-A1-V04-G01", "random_piling", cn(1, 9, month=3))
    step(app, plain, "fix", "xitang.g1", cn(1, 15, month=3), now=REAL_NOW, note="已清理")
    step(app, plain, "verify", "xitang.lead", cn(1, 16, month=3), now=REAL_NOW)  # then close
    moved = submit(app, "JS-A1-V05-G01", "random_piling", cn(1, 9, month=3))
    step(app, moved, "fix", "louxia.g1", cn(1, 10, month=3), now=REAL_NOW, note="已清理")
    step(app, moved, "reject", "louxia.lead", cn(1, 11, month=3), now=REAL_NOW, reason="未清理")
    step(app, moved, "reassign", "duban.wang", cn(2, 9, month=3), now=REAL_NOW,
         to_grid="JS-A1-V06-G01")  # fmt: skip
    own = submit(app, "JS-A1-V01-G02", "random_piling", cn(1, 9, month=3))
    # the village leader fixes it himself: nobody is asked to verify, he is the verifier
    step(app, own, "fix", "yantou.lead", cn(1, 10, month=3), now=REAL_NOW, note="已清理")
    with app.engine.begin() as conn:
        set_leader(conn, "JS-A1-V04", "louxia.lead")
        set_leader(conn, "JS-A1-V05-G01", "louxia.g2")
        set_leader(conn, "JS-A1-V01", "louxia.lead")

    def owners() -> list[tuple[int, int, int | None]]:
        with app.engine.connect() as conn:
            return [
                tuple(r)
                for r in conn.execute(
                    select(stages.c.ticket_id, stages.c.stage_no, stages.c.owner_id).order_by(
                        stages.c.ticket_id, stages.c.stage_no
                    )
                )
            ]

    written = owners()
    assert len(written) == 9 and all(owner is not None for *_, owner in written)
    with app.engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0009_i16_sources_urgent_feedback")
    with app.engine.begin() as conn:
        command.upgrade(alembic_config(conn), "head")
    assert owners() == written
