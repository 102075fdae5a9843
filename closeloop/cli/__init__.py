"""The `closeloop` command line: thin wrappers that parse, call the service layer and print.

Errors reach the user as one line on stderr starting with `error:` and exit status 2; nothing is
written when a command fails.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import typer

from closeloop.cli import (
    campaigns,
    core,
    escalation,
    exam,
    geo,
    meetings,
    members,
    notify,
    patrols,
    rectify,
    reports,
    web,
)
from closeloop.cli.common import Refused, State, error_line, known_errors, say_error

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
    lang: str = typer.Option(
        "en",
        "--lang",
        envvar="CLOSELOOP_LANG",
        help="Language of error lines and of replay's summary: en or zh_CN (env CLOSELOOP_LANG).",
    ),
) -> None:
    # `main` hands in the State it reads the language from when a command fails.
    state = ctx.obj if isinstance(ctx.obj, State) else State(db=None, config=None)
    state.db, state.config, state.lang = db, config, lang
    ctx.obj = state


# The command modules, in the order of `closeloop --help`.
for module in (
    campaigns,
    core,
    escalation,
    exam,
    meetings,
    members,
    notify,
    patrols,
    rectify,
    reports,
    web,
):
    module.register(app)
geo.register(core.grid_app)


def usage_error_base() -> type[Exception]:
    """The base class of the usage errors of the click that typer runs on.

    typer up to 0.1x runs on the `click` package; later releases carry click inside as
    `typer._click`, whose exceptions a `click` import does not match. `typer.BadParameter` is the
    framework's own usage error in every release, so its ancestry names the base in use.
    """
    for cls in typer.BadParameter.__mro__:
        if cls.__name__ == "ClickException":
            return cls
    raise RuntimeError("typer.BadParameter does not derive from a ClickException")


def _show_usage_error(
    exc: Exception, args: Sequence[str] | None, prog_name: str | None
) -> NoReturn:
    """One `error:` line with the usage hint, exit status 2 (click's own layout spans lines)."""
    ctx = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoArgsIsHelpError":
        # A group called without a subcommand: its help, as click shows it, and status 2.
        typer.echo(exc.format_message(), err=True)  # type: ignore[attr-defined]
        sys.exit(2)
    message = " ".join(exc.format_message().split())  # type: ignore[attr-defined]
    if ctx is not None:
        usage = " ".join(ctx.get_usage().split())
        message += f" ({usage}; see '{ctx.command_path} --help')"
    else:  # some parser errors (an option without its value) carry no context
        message += f" (see '{_command_path(args, prog_name)} --help')"
    # The framework's own words (click's), in English whatever --lang says.
    say_error(message)


def _command_path(args: Sequence[str] | None, prog_name: str | None) -> str:
    """The command the words on the line name, e.g. `closeloop ticket fix`, for a help hint."""
    words = list(sys.argv[1:] if args is None else args)
    script = Path(sys.argv[0]).name
    path = [prog_name or ("python -m closeloop" if script == "__main__.py" else script)]
    command = typer.main.get_command(app)
    for word in words:
        children = getattr(command, "commands", None)
        if children is None or word not in children:
            if not word.startswith("-"):
                break
            continue
        command = children[word]
        path.append(word)
    return " ".join(path)


def main(args: Sequence[str] | None = None, prog_name: str | None = None) -> NoReturn:
    """Run the command line and exit: 0, the command's own status, or 2 with one `error:` line."""
    from sqlalchemy.exc import OperationalError

    state = State(db=None, config=None)
    try:
        status = app(args=args, prog_name=prog_name, standalone_mode=False, obj=state)
    except OperationalError as exc:
        # The driver's own words, without the SQL: most often a missing table or a server
        # that does not answer.
        said = str(exc.orig).strip().splitlines()[0]
        missing = "no such table" in said or "does not exist" in said
        refused = Refused("database.refused_schema" if missing else "database.refused", said=said)
        say_error(error_line(refused, state))
    except known_errors() as exc:
        say_error(error_line(exc, state))
    except typer.Abort:
        say_error(error_line(Refused("cli.aborted"), state))
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except usage_error_base() as exc:
        _show_usage_error(exc, args, prog_name)
    # Outside standalone mode the framework returns, not raises, the status of `--help`,
    # `typer.Exit(n)` and Ctrl-C (130); commands themselves return None.
    sys.exit(status if isinstance(status, int) else 0)
