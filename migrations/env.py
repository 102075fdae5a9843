"""Alembic environment: closeloop passes its own connection in `config.attributes`."""

from __future__ import annotations

from alembic import context

from closeloop.models import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise SystemExit("run migrations through `closeloop init`, which supplies the connection")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
