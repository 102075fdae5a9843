"""Commands of the reports: the weekly report and the tickets behind its figures. The monthly
exam (`closeloop.cli.exam`) and the campaigns (`closeloop.cli.campaigns`) have their own."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from closeloop.cli.common import get_app, now, print_json
from closeloop.db import read_only
from closeloop.grid import UnknownGrid, get_grid
from closeloop.reports import indicators as ind
from closeloop.reports.pdf import html_to_pdf
from closeloop.reports.render import FORMATS, LOCALES, render_weekly
from closeloop.reports.weekly import build_weekly, pick_example, resolve_week
from closeloop.tickets import Invalid, NotFound

report_app = typer.Typer(
    help="The weekly example-meeting report and the tickets behind its figures.",
    no_args_is_help=True,
)

WEEKLY_FORMATS = (*FORMATS, "pdf")  # pdf: the HTML printed by Chromium, a handout
_FORMAT_HELP = f"Output format: {', '.join(WEEKLY_FORMATS)}."
_LOCALE_HELP = f"Language of the report: {', '.join(LOCALES)} (default: the zone's)."


def _write(content: bytes, out: Path | None, fmt: str) -> None:
    if out is None:
        if fmt in ("xlsx", "pdf"):
            raise Invalid("option.format_needs_out", fmt=fmt)
        sys.stdout.buffer.write(content)
        sys.stdout.flush()
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(content)
    typer.echo(f"wrote {out}", err=True)


def _locale(a: object, locale: str | None) -> str:
    chosen = locale or a.settings.locale  # type: ignore[attr-defined]
    if chosen not in LOCALES:
        raise Invalid("option.locale", locale=chosen, locales=", ".join(LOCALES))
    return chosen


@report_app.command("weekly")
def report_weekly(
    ctx: typer.Context,
    week: str | None = typer.Option(
        None, "--week", help="ISO week, e.g. 2026-W14 (default: the last full week)."
    ),
    level: int | None = typer.Option(
        None, "--level", help="Level of the grids listed (default 3: villages, enterprise grids)."
    ),
    fmt: str = typer.Option("html", "--format", help=_FORMAT_HELP),
    locale: str | None = typer.Option(None, "--locale", help=_LOCALE_HELP),
    out: Path | None = typer.Option(None, "--out", help="Write to this file (default: stdout)."),
) -> None:
    """The weekly report for the example meeting (定期例会周报)."""
    a = get_app(ctx)
    if fmt not in WEEKLY_FORMATS:
        raise Invalid("option.format", fmt=fmt, formats=", ".join(WEEKLY_FORMATS))
    if fmt in ("xlsx", "pdf") and out is None:
        raise Invalid("option.format_needs_out", fmt=fmt)
    lang = _locale(a, locale)
    report = build_weekly(a, now=now(ctx), week=week, level=level)
    if fmt == "pdf":
        html = render_weekly(report, "html", locale=lang, workflow=a.workflow)
        _write(html_to_pdf(html), out, fmt)
        return
    _write(render_weekly(report, fmt, locale=lang, workflow=a.workflow), out, fmt)


@report_app.command("example")
def report_example(
    ctx: typer.Context,
    week: str = typer.Option(..., "--week", help="ISO week, e.g. 2026-W14."),
    grid: str = typer.Option(..., "--grid", help="The grid shown as the week's example."),
    note: str = typer.Option(..., "--note", help="Why: what it did, what improved."),
) -> None:
    """Pick the week's example (本周典型) by hand, instead of the largest rise."""
    a = get_app(ctx)
    pick_example(a, week, grid, note, now(ctx))
    typer.echo(f"example of {week}: {grid}")


@report_app.command("items")
def report_items(
    ctx: typer.Context,
    figure: str = typer.Option(..., "--figure", help=f"One of: {', '.join(ind.FIGURES)}."),
    week: str | None = typer.Option(None, "--week", help="ISO week (default: the last full)."),
    month: str | None = typer.Option(None, "--month", help="A month instead of a week."),
    grid: str | None = typer.Option(None, "--grid", help="Grid code (default: the whole zone)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The tickets behind one figure of the report: their number is the figure."""
    a = get_app(ctx)
    if week and month:
        raise Invalid("option.week_or_month")
    period = ind.month_period(month, a.tz) if month else resolve_week(a, now(ctx), week)
    with read_only(a.engine) as conn:
        path = None
        if grid is not None:
            try:
                path = get_grid(conn, grid).path
            except UnknownGrid as exc:
                raise NotFound(exc.code, **exc.params) from None
        listed = ind.items(conn, a, period, figure, within=path)
    locale = a.settings.locale

    def local(value: object) -> str | None:
        return value.astimezone(a.tz).isoformat(timespec="minutes") if value else None  # type: ignore[attr-defined]

    if as_json:
        print_json(
            [
                {
                    "ref": i.ref,
                    "title": i.title,
                    "category": i.category,
                    "state": i.state,
                    "grid": i.grid_code,
                    "assignee": i.assignee_name,
                    "created_at": local(i.created_at),
                    "deadline": local(i.due_at),
                    "closed_at": local(i.closed_at),
                    **({"level": i.level} if i.level is not None else {}),
                    **({"key": i.key} if i.key is not None else {}),
                }
                for i in listed
            ]
        )
        return
    typer.echo(f"{figure} {period.label} {grid or a.settings.zone_name}: {len(listed)}")
    wf = a.workflow
    for i in listed:
        state = wf.states[i.state].label.get(locale) if i.state in wf.states else i.state
        level = f"  L{i.level}" if i.level is not None else ""
        key = f"  [{i.key}]" if i.key is not None else ""
        typer.echo(
            f"  {i.ref}  {i.grid_code:<16} {state:<6} {local(i.due_at) or '-':<22} {i.title}"
            f"{level}{key}"
        )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `closeloop` command line."""
    app.add_typer(report_app, name="report")
