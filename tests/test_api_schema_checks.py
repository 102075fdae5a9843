"""Issue 10, item 8: the OpenAPI schema says what the server enforces, so schemathesis runs
with `--checks all` (positive and negative data, the stateful links) and finds no failure.

The schemathesis command line against the service under a real uvicorn, bounded for the test
suite (a few examples per operation, a fixed seed), as an administrator with a Bearer token.
SQLite only: the schema and its checks do not depend on the backend.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from closeloop import service
from closeloop.bootstrap import App
from closeloop.models import api_tokens, people
from tests.conftest import NOW, REPO
from tests.livetools import live_server

pytestmark = pytest.mark.slow

TOKEN = "cl_" + secrets.token_urlsafe(32)
EXAMPLES = 5


def _prepare(app: App) -> None:
    for grid, category in (("JS-A1-V01-G03", "random_piling"), ("JS-A1-V02-G01", "road")):
        service.submit(app, service.NewProblem(grid=grid, category=category, title="问题"), NOW)
    with app.engine.begin() as conn:
        admin = conn.execute(select(people.c.id).where(people.c.handle == "admin")).scalar_one()
        conn.execute(
            insert(api_tokens).values(
                id=987_654_321,
                person_id=admin,
                label="schemathesis",
                token_hash=hashlib.sha256(TOKEN.encode()).hexdigest(),
                created_at=NOW,
            )
        )


# One check is left out (issue 10, item 8), for what no schema can say:
# - positive_data_acceptance: photos are refused unless their first bytes are a photo or a PDF
#   and they are not empty (closeloop.evidence.sniff); the schema can only say `format: binary`,
#   so a valid-by-the-schema upload of random bytes gets a 422. (A form with a grid and only one
#   of lat and lon is valid by the form's schema too, and refused.)
# missing_required_header runs: the hooks leave a case made without Authorization as it is.
EXCLUDED = "positive_data_acceptance"


def test_schemathesis_checks_all_find_nothing(sqlite_app: App, tmp_path: Path) -> None:
    _prepare(sqlite_app)
    # Generated reports come from one address: lift the anonymous limit for this run.
    from tests.webtools import with_config

    app = with_config(sqlite_app, "web", anonymous_reports_per_hour=10**9)
    with live_server(app) as live:
        run = subprocess.run(
            [
                str(Path(sys.executable).with_name("schemathesis")),
                "run",
                f"http://127.0.0.1:{live.port}/openapi.json",
                "--checks",
                "all",
                "--exclude-checks",
                EXCLUDED,
                "--mode",
                "all",
                "--phases",
                "examples,coverage,fuzzing,stateful",
                "--max-examples",
                str(EXAMPLES),
                "--seed",
                "10",
                "--generation-database",
                "none",
                # A step's times (`until`, `review_on`) are date-times whose year the pattern
                # bounds (2000-2200), likely why so many are filtered out; whether that trips
                # the health check depends on the draws before (request_extension alone trips it
                # on the old schema too). tests/test_api_schema.py suppresses it as well.
                "--suppress-health-check",
                "filter_too_much",
                "--header",
                f"Authorization: Bearer {TOKEN}",
                "--exclude-path-regex",
                "^/(login|logout)$",
                "--no-color",
                "--report-dir",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            timeout=2400,
            cwd=tmp_path,
            env={
                **os.environ,
                "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks",
                "CLOSELOOP_SCHEMA_NOW": NOW.isoformat(),
                "PYTHONPATH": str(REPO),
            },
        )
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-3000:]
