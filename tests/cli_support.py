"""Running the command line in-process against a test's App (both backends)."""

from __future__ import annotations

import json
from typing import Any
from unittest.mock import patch

from typer.testing import CliRunner

from closeloop.app import App
from closeloop.cli import app as cli_app
from closeloop.cli.common import State
from tests.conftest import CONFIG


def invoke(app: App, *args: str) -> Any:
    with patch.object(State, "app", lambda _self: app):
        return CliRunner().invoke(cli_app, ["--config", str(CONFIG), *args])


def run(app: App, *args: str) -> str:
    result = invoke(app, *args)
    assert result.exit_code == 0, (result.output, result.exception)
    return str(result.stdout)


def run_json(app: App, *args: str) -> Any:
    return json.loads(run(app, *args, "--json"))


def refused(app: App, *args: str) -> str:
    """A command that must fail as a user error: exit status 2 and one `error:` message."""
    from closeloop.cli.common import known_errors

    result = invoke(app, *args)
    assert result.exit_code != 0, result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        assert isinstance(result.exception, known_errors()), result.exception
        return str(result.exception)
    return str(result.output)
