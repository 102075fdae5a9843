"""What every command shares: the app from the global options, the clock, time parsing, output."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import typer

from closeloop.app import App
from closeloop.bootstrap import bootstrap
from closeloop.errors import CodedError


@dataclass
class State:
    db: str | None
    config: str | None
    lang: str = "en"  # of error messages (--lang)
    _app: App | None = field(default=None, repr=False)

    def app(self) -> App:
        if self._app is None:
            self._app = bootstrap(
                config_path=Path(self.config) if self.config else None, database_url=self.db
            )
        return self._app


def get_app(ctx: typer.Context) -> App:
    state: State = ctx.find_root().obj
    return state.app()


def now(ctx: typer.Context) -> datetime:
    """The time now, from the App's clock (the one clock; everything below the command line
    takes `now` as a parameter)."""
    return get_app(ctx).now()


def parse_time(text: str | None, option: str = "--at") -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        fail("option.time_not_iso", option=option, text=text)
    if value.tzinfo is None:
        fail("option.time_naive", option=option, text=text)
    return value


class Refused(CodedError):
    """A command refused by the command line itself (an option out of its range, a file it
    cannot read): `main` says it on the `error:` line in `--lang`, as any other coded error."""


def fail(code: str | CodedError, /, **params: Any) -> NoReturn:
    """Refuse the command with an error of the catalogue (a code and its parameters, or an
    error already made); nothing the command did is kept, as for a domain error."""
    if isinstance(code, CodedError):
        raise code
    raise Refused(code, **params)


def say_error(line: str) -> NoReturn:
    """The `error:` line on stderr and exit status 2: how `main` ends a failed command."""
    typer.echo(f"error: {line}", err=True)
    sys.exit(2)


def locale_of(state: State) -> str:
    """The catalogue's locale for `--lang` (zh, zh_CN, zh-CN: Chinese; anything else English)."""
    return "zh_CN" if state.lang.lower().replace("-", "_").startswith("zh") else "en"


def error_line(exc: BaseException, state: State) -> str:
    """An error for the `error:` line: a coded one in `--lang` (steps and states by the
    workflow's labels once the App is built), any other as it is."""
    if not isinstance(exc, CodedError):
        return str(exc)
    locale = locale_of(state)
    workflow = state._app.workflow if state._app is not None else None
    words = (lambda key: workflow.label(key, locale)) if workflow is not None else None
    return exc.text(locale, words=words)


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, indent=2, default=str))


def known_errors() -> tuple[type[BaseException], ...]:
    """Errors that are the user's to fix: shown as one line, never as a traceback."""
    from sqlalchemy.exc import OperationalError

    from closeloop.calendar import CalendarError
    from closeloop.config import ConfigError
    from closeloop.csvfile import CsvFileError
    from closeloop.evidence import EvidenceError
    from closeloop.geo.rules import GeometryFileError
    from closeloop.tickets import DomainError
    from closeloop.workflow import StepNotAllowed, WorkflowError

    return (
        Refused,
        DomainError,
        ConfigError,
        CalendarError,
        WorkflowError,
        CsvFileError,
        GeometryFileError,
        EvidenceError,
        StepNotAllowed,
        OperationalError,
        FileNotFoundError,
    )
