"""Running the command line in-process against a test's App (both backends)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest.mock import patch

from typer.testing import CliRunner

from closeloop.app import App
from closeloop.bootstrap import bootstrap as real_bootstrap
from closeloop.cli import app as cli_app
from closeloop.cli import common
from closeloop.cli import main as cli_main
from closeloop.cli.common import State
from tests.conftest import CONFIG


@contextmanager
def logging_restored() -> Iterator[None]:
    """A command that logs (`deliver`, `sweep`) adds a handler on the stderr of its run; in this
    process that stream is closed afterwards, and a later run would log into it (a "Logging
    error" traceback on the next command's stderr). The handlers are put back as they were."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        for handler in root.handlers[:]:
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)


def invoke(app: App, *args: str) -> Any:
    with patch.object(State, "app", lambda _self: app), logging_restored():
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


def run_cli(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """`closeloop ARGS` in this process, through `closeloop.cli.main` as the console script runs
    it (the same output, exit status and `error:` line), with typer's CliRunner isolating stdin,
    stdout, stderr and the environment. A process costs ~1.5 s of imports; this costs none. The
    engines the command made are disposed of afterwards."""
    made: list[App] = []

    def bootstrap_and_keep(*a: Any, **kw: Any) -> App:
        made.append(real_bootstrap(*a, **kw))
        return made[-1]

    code: int
    with (
        logging_restored(),
        patch.object(common, "bootstrap", bootstrap_and_keep),
        CliRunner().isolation(input=input, env=env) as (out, err, _),
    ):
        try:
            cli_main(list(args), prog_name="closeloop")
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for made_app in made:
                made_app.engine.dispose()
        stdout, stderr = out.getvalue().decode(), err.getvalue().decode()
    return subprocess.CompletedProcess(["closeloop", *args], code, stdout, stderr)


Run = Callable[..., subprocess.CompletedProcess[str]]


def config_copy(folder: Path) -> Path:
    """config.toml in `folder` with its paths made absolute, so a command run on it finds the
    example zone and the workflow while what it writes (evidence) lands in the test's folder."""
    text = CONFIG.read_text(encoding="utf-8")
    for rel in (
        "zones/example/grids.csv",
        "zones/example/grids.geojson",
        "workflows/environmental.toml",
    ):
        text = text.replace(f'"{rel}"', f'"{CONFIG.parent / rel}"')
    config = folder / "config.toml"
    config.write_text(text, encoding="utf-8")
    return config


def command_line(app: App, folder: Path) -> Run:
    """`run(*args, ok=True)`: `closeloop --config COPY ARGS` in this process (`run_cli`) on the
    test's database; a run that must fail (ok=False) is a user error: status 2, one `error:`
    line and no traceback. A real process is started only by the tests of exit statuses."""
    config = config_copy(folder)
    url = app.engine.url.render_as_string(hide_password=False)

    def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        proc = run_cli(["--config", str(config), *args], env={"CLOSELOOP_DB": url})
        if ok:
            assert proc.returncode == 0, proc.stderr
        else:
            assert proc.returncode == 2, proc.stdout + proc.stderr
            assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
        return proc

    return run
