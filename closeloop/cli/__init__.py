"""The `closeloop` command line: thin wrappers that parse, call the service layer and print.

Errors reach the user as one line on stderr starting with `error:` and exit status 2; nothing is
written when a command fails.
"""

from __future__ import annotations

import sys

import typer

from closeloop.cli.common import State, fail, known_errors

app = typer.Typer(
    name="closeloop",
    help="closeloop: 环境问题闭环管理 — close the loop on environmental problems in a zone.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Help texts name config sections like [scheduler.jobs]; rich markup would swallow them.
    rich_markup_mode=None,
)


@app.callback()
def _global(
    ctx: typer.Context,
    db: str | None = typer.Option(
        None, "--db", help="Database URL (default: from config.toml; env CLOSELOOP_DB)."
    ),
    config: str | None = typer.Option(
        None, "--config", help="Path of config.toml (default: the one beside the code)."
    ),
) -> None:
    ctx.obj = State(db=db, config=config)


# Command modules register themselves on `app` when imported.
from closeloop.cli import core, escalation, notify, reports, web  # noqa: E402,F401


def main() -> None:
    from sqlalchemy.exc import OperationalError

    try:
        app(standalone_mode=False)
    except OperationalError as exc:
        # The driver's own words, without the SQL: most often a missing table or a server
        # that does not answer.
        said = str(exc.orig).strip().splitlines()[0]
        missing = "no such table" in said or "does not exist" in said
        hint = "; `closeloop init` creates or upgrades the schema" if missing else ""
        fail(f"the database refused: {said}{hint}")
    except known_errors() as exc:
        fail(str(exc))
    except typer.Abort:
        fail("aborted")
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except SystemExit:
        raise
    except Exception as exc:  # click's own usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(2)
        raise
