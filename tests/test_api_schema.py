"""Schemathesis over the API's own OpenAPI schema: generated requests (valid and not) to every
operation never get a 5xx, and every answer matches what the schema promises for it.

Bounded for the test suite: a few dozen examples per operation, SQLite only (the API code is
the same on both backends; the backends are covered by the other API tests).
"""

from __future__ import annotations

import hashlib
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import insert, select, update

from closeloop import service
from closeloop.app import App, ManualClock
from closeloop.bootstrap import bootstrap
from closeloop.config import load_settings
from closeloop.models import api_tokens, people
from closeloop.web.app import create_app
from tests.conftest import CONFIG, NOW

pytestmark = pytest.mark.slow

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
TOKEN = "cl_" + secrets.token_urlsafe(32)
TOKEN_ID = 987_654_321


@pytest.fixture(scope="module")
def served(
    sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[App, Any]]:
    """The API on the example zone with a few tickets, and an administrator's token with an id
    no generated request will revoke by chance: one database and one app for the module
    (issue 18: built once, not once per operation)."""
    folder = tmp_path_factory.mktemp("schema")
    shutil.copy(sqlite_template, folder / "closeloop.db")
    settings = load_settings(CONFIG, f"sqlite:///{folder / 'closeloop.db'}")
    app = bootstrap(replace(settings, evidence_dir=folder / "evidence"))
    for grid, category in (("JS-A1-V01-G03", "random_piling"), ("JS-A1-V02-G01", "road")):
        service.submit(app, service.NewProblem(grid=grid, category=category, title="问题"), NOW)
    with app.engine.begin() as conn:
        admin = conn.execute(select(people.c.id).where(people.c.handle == "admin")).scalar_one()
        conn.execute(
            insert(api_tokens).values(
                id=TOKEN_ID,
                person_id=admin,
                label="schemathesis",
                token_hash=hashlib.sha256(TOKEN.encode()).hexdigest(),
                created_at=NOW,
            )
        )
    yield (
        app,
        schemathesis.openapi.from_asgi("/openapi.json", create_app(app, clock=ManualClock(NOW))),
    )
    app.engine.dispose()


@pytest.fixture
def api_schema(served: tuple[App, Any]) -> Any:
    """The module's schema, with the administrator able to act: a generated password reset or
    disable of `admin` by an earlier operation would otherwise turn every later one into 401s."""
    app, schema = served
    with app.engine.begin() as conn:
        conn.execute(update(api_tokens).where(api_tokens.c.id == TOKEN_ID).values(revoked_at=None))
        conn.execute(update(people).where(people.c.handle == "admin").values(disabled_at=None))
    return schema


def _operations() -> list[tuple[str, str]]:
    """Every operation of the schema; building the app needs no database."""
    app = bootstrap(load_settings(CONFIG, "sqlite://"))
    paths = create_app(app).openapi()["paths"]
    return [(path, method.upper()) for path, item in paths.items() for method in item]


OPERATIONS = _operations()
HEALTH = [HealthCheck.too_slow, HealthCheck.filter_too_much]


def check(api_schema: Any, path: str, method: str, examples: int, headers: dict[str, str]) -> None:
    operation = api_schema[path][method]

    @given(case=operation.as_strategy())
    @settings(max_examples=examples, deadline=None, suppress_health_check=HEALTH, database=None)
    def run(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    run()


@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_as_an_administrator(api_schema: Any, path: str, method: str) -> None:
    check(api_schema, path, method, 25, {"Authorization": f"Bearer {TOKEN}"})


@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_anonymously(api_schema: Any, path: str, method: str) -> None:
    check(api_schema, path, method, 10, {})
