"""Commands of the monthly exam: the answer sheets, the month's plan, scores (CSV import and
status), the city's assessment, the board and a grid's history."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from closeloop.app import App
from closeloop.cli.common import get_app, now, print_json
from closeloop.csvfile import read_file
from closeloop.exam import printing, service
from closeloop.exam.render import render_board
from closeloop.exam.sheets import SHEETS, sheet_name
from closeloop.reports.render import FORMATS, LOCALES, check_format
from closeloop.tickets import Invalid

exam_app = typer.Typer(
    help="The monthly exam (月考): answer sheets, the cross-inspection plan, scores, the red and"
    " yellow boards, rewards and deductions.",
    no_args_is_help=True,
)

_FORMAT_HELP = f"Output format: {', '.join(FORMATS)}."
_LOCALE_HELP = f"Language: {', '.join(LOCALES)} (default: the zone's)."
_MONTH_HELP = "Month, e.g. 2026-04."


def write_out(content: bytes, out: Path | None, binary: bool) -> None:
    if out is None:
        if binary:
            raise Invalid("option.this_format_needs_out")
        sys.stdout.buffer.write(content)
        sys.stdout.flush()
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(content)
    typer.echo(f"wrote {out}", err=True)


def pick_locale(a: App, locale: str | None) -> str:
    chosen = locale or a.settings.locale
    if chosen not in LOCALES:
        raise Invalid("option.locale", locale=chosen, locales=", ".join(LOCALES))
    return chosen


@exam_app.command("sheets")
def exam_sheets(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    locale: str | None = typer.Option(None, "--locale", help=_LOCALE_HELP),
) -> None:
    """The three answer sheets (基础卷, 必答卷, 加分卷) and their items."""
    a = get_app(ctx)
    sheets = service.answer_sheets(a)
    if as_json:
        print_json(sheets.as_json())
        return
    lang = pick_locale(a, locale)
    for sheet in SHEETS:
        typer.echo(f"{sheet_name(sheet, lang)} ({sheet}), max {sheets.max_points(sheet)}")
        for item in sheets.of(sheet):
            typer.echo(f"  {item.key:<18} {item.name(lang)}  max {item.max_points}")
            typer.echo(f"  {'':<18} {item.checks(lang)}")


@exam_app.command("plan")
def exam_plan(
    ctx: typer.Context,
    month: str = typer.Option(..., "--month", help=_MONTH_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON: [{inspector_grid, grid}]."),
    replace: bool = typer.Option(
        False, "--replace", help="Make the plan again (only before any scoring has started)."
    ),
) -> None:
    """The month's cross-inspection plan: every examined grid and the grid that inspects it."""
    a = get_app(ctx)
    plan = service.make_plan(a, month, now(ctx), replace=replace)
    if as_json:
        print_json(plan.as_json())
        return
    groups = plan.by_inspector()
    typer.echo(f"{month}: {len(plan.lines)} grids, {len(groups)} inspecting grids")
    for inspector, lines in groups.items():
        typer.echo(f"{inspector} {lines[0].inspector_name}: {len(lines)}")
        for line in lines:
            typer.echo(f"    {line.grid:<16} {line.grid_name}")


@exam_app.command("import")
def exam_import(
    ctx: typer.Context, file: Path = typer.Argument(..., help="CSV file of exam scores")
) -> None:
    """Import cross-inspection scores; a file with any bad line is refused whole."""
    a = get_app(ctx)
    text = read_file(file)
    typer.echo(f"{file}: {service.import_exam(a, text, now(ctx), source=file.name)}")


@exam_app.command("status")
def exam_status(
    ctx: typer.Context,
    month: str = typer.Option(..., "--month", help=_MONTH_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Which grids are scored, in progress or missing this month."""
    a = get_app(ctx)
    found = service.exam_status(a, month)
    if as_json:
        print_json(
            [
                {
                    "grid": s.grid,
                    "name": s.name,
                    "inspector_grid": s.inspector_grid,
                    "status": s.status,
                    "lines": s.lines,
                    "updated_by": s.updated_by,
                }
                for s in found
            ]
        )
        return
    counts = {key: sum(s.status == key for s in found) for key in service.STATUSES}
    typer.echo(f"{month}: " + ", ".join(f"{n} {key}" for key, n in counts.items()))
    for s in found:
        if s.status != "scored":
            typer.echo(f"  {s.status:<12} {s.grid:<16} {s.name}  ({s.inspector_grid or '-'})")


@exam_app.command("city-import")
def exam_city_import(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="CSV file: month,grid,score"),
) -> None:
    """Record the city's monthly assessment scores (市里月度考核); refused whole on any bad line."""
    a = get_app(ctx)
    text = read_file(file)
    typer.echo(f"{file}: {service.import_city_scores(a, text, now(ctx), source=file.name)}")


@exam_app.command("board")
def exam_board(
    ctx: typer.Context,
    month: str = typer.Option(..., "--month", help=_MONTH_HELP),
    fmt: str = typer.Option("md", "--format", help=_FORMAT_HELP),
    locale: str | None = typer.Option(None, "--locale", help=_LOCALE_HELP),
    out: Path | None = typer.Option(None, "--out", help="Write to this file (default: stdout)."),
) -> None:
    """Publish the month's red and yellow boards with tiers and deductions (and show them)."""
    a = get_app(ctx)
    check_format(fmt)
    lang = pick_locale(a, locale)
    view = service.publish_board(a, month, now(ctx))
    write_out(render_board(view, fmt, locale=lang), out, fmt == "xlsx")


@exam_app.command("history")
def exam_history(
    ctx: typer.Context,
    grid: str = typer.Argument(..., help="Grid code"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """A grid's monthly scores, ranks, tiers, rewards and deductions."""
    a = get_app(ctx)
    name, results = service.grid_history(a, grid)
    if as_json:
        print_json([service.result_json(r, name) for r in results])
        return
    typer.echo(f"{grid}  {name}: {len(results)} month(s)")
    for r in results:
        flags = []
        if r.red:
            flags.append("红榜 red")
        if r.yellow:
            flags.append("黄榜 yellow")
        if r.penalised:
            flags.append(
                f"扣除 withheld {r.reward_lost} ({r.penalty_source_month}..{r.penalty_until})"
            )
        if r.below_floor:
            flags.append("问责 accountability")
        city = f"  city {r.city_score}" if r.city_score is not None else ""
        typer.echo(
            f"  {r.month}  #{r.rank:<3} {r.score:>6}  exam {r.exam:>6}{city}  "
            f"{r.tier_zh or '-'}  reward {r.reward}  {'; '.join(flags)}"
        )


@exam_app.command("print")
def exam_print(
    ctx: typer.Context,
    month: str = typer.Option(..., "--month", help=_MONTH_HELP),
    inspector: str | None = typer.Option(
        None, "--inspector", help="Only this inspecting grid's sheets (default: all)."
    ),
    fmt: str = typer.Option("html", "--format", help="html (A4, one page per grid) | xlsx"),
    locale: str | None = typer.Option(None, "--locale", help=_LOCALE_HELP),
    out: Path | None = typer.Option(None, "--out", help="Write to this file (default: stdout)."),
) -> None:
    """Score sheets to print for the inspectors, from the month's plan; the XLSX, filled in and
    saved as CSV, is what `closeloop exam import` reads."""
    a = get_app(ctx)
    if fmt not in printing.SHEET_FORMATS:
        raise Invalid("option.format", fmt=fmt, formats=", ".join(printing.SHEET_FORMATS))
    lang = pick_locale(a, locale)
    plan = service.plan_view(a, month)
    sheets = service.answer_sheets(a)
    if fmt == "html":
        body = printing.score_sheets_html(
            a.settings.zone_name, plan, sheets, locale=lang, inspector=inspector
        )
    else:
        body = printing.score_sheets_xlsx(plan, sheets, locale=lang, inspector=inspector)
    write_out(body, out, fmt == "xlsx")


# --------------------------------------------------------------------------- accountability

accountability_app = typer.Typer(
    help="Accountability cases (问责) opened when a grid is assessed below the floor.",
    no_args_is_help=True,
)


@accountability_app.command("list")
def accountability_list(
    ctx: typer.Context,
    only_open: bool = typer.Option(False, "--open", help="Only cases not closed."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The cases: grid, month, leaders at the time, reason, owner, due date, outcome."""
    a = get_app(ctx)
    cases = service.list_cases(a, only_open=only_open)
    if as_json:
        print_json([c.as_json() for c in cases])
        return
    if not cases:
        typer.echo("no case" + (" open" if only_open else ""))
    for c in cases:
        leaders = ", ".join(f"{x['name']} ({x['handle']})" for x in c.leaders) or "-"
        state = f"closed by {c.closed_by}: {c.outcome}" if c.closed_at else f"due {c.due_on}"
        typer.echo(f"{c.id:>4}  {c.month}  {c.grid} {c.grid_name}  owner {c.owner}  {state}")
        typer.echo(f"      leaders: {leaders}; {c.reason}")


@accountability_app.command("close")
def accountability_close(
    ctx: typer.Context,
    case_id: int = typer.Argument(..., help="Case id"),
    by: str = typer.Option(..., "--by", help="Handle of the supervisor closing it."),
    outcome: str = typer.Option(..., "--outcome", help="What was decided."),
) -> None:
    """Close a case with its outcome."""
    a = get_app(ctx)
    c = service.close_case(a, case_id, by, outcome, now(ctx))
    typer.echo(f"case {c.id} ({c.grid} {c.month}) closed by {c.closed_by}: {c.outcome}")


# --------------------------------------------------------------------------- funds

funds_app = typer.Typer(
    help="The fund ledger: rewards earned, withheld and paid; project funds applied for,"
    " approved and disbursed (专款专用).",
    no_args_is_help=True,
)


@funds_app.command("ledger")
def funds_ledger(
    ctx: typer.Context,
    month: str = typer.Option(..., "--month", help=_MONTH_HELP),
    fmt: str = typer.Option("md", "--format", help="json | md | xlsx (for the finance office)"),
    locale: str | None = typer.Option(None, "--locale", help=_LOCALE_HELP),
    out: Path | None = typer.Option(None, "--out", help="Write to this file (default: stdout)."),
) -> None:
    """The month's ledger per grid and project."""
    a = get_app(ctx)
    lang = pick_locale(a, locale)
    body = printing.render_ledger(
        service.ledger(a, month), fmt, zone=a.settings.zone_name, locale=lang
    )
    write_out(body, out, fmt == "xlsx")


@funds_app.command("apply")
def funds_apply(
    ctx: typer.Context,
    grid: str = typer.Option(..., "--grid", help="Grid code."),
    month: str = typer.Option(..., "--month", help=_MONTH_HELP),
    project: str = typer.Option(..., "--project", help="Project name."),
    purpose: str = typer.Option(..., "--purpose", help="What the money is for."),
    amount: str = typer.Option(..., "--amount", help="Yuan."),
    by: str = typer.Option(..., "--by", help="Handle of the person applying."),
) -> None:
    """Apply for project funds (项目化申报)."""
    a = get_app(ctx)
    pid = service.apply_project(a, grid, month, project, purpose, amount, by, now(ctx))
    typer.echo(f"project {pid}: {grid} {project} applied for {amount}")


@funds_app.command("approve")
def funds_approve(
    ctx: typer.Context,
    project_id: int = typer.Argument(..., help="Project id"),
    amount: str = typer.Option(..., "--amount", help="Yuan approved; 0 refuses."),
    by: str = typer.Option(..., "--by", help="Handle of the supervisor deciding."),
) -> None:
    """Decide a project: approve an amount up to what was applied for."""
    a = get_app(ctx)
    service.decide_project(a, project_id, amount, by, now(ctx))
    typer.echo(f"project {project_id}: approved {amount}")


@funds_app.command("disburse")
def funds_disburse(
    ctx: typer.Context,
    project_id: int = typer.Argument(..., help="Project id the money is earmarked for"),
    amount: str = typer.Option(..., "--amount", help="Yuan."),
    by: str = typer.Option(..., "--by", help="Handle of the supervisor paying."),
    note: str | None = typer.Option(None, "--note"),
) -> None:
    """Disburse project funds against their project."""
    a = get_app(ctx)
    service.disburse(a, project_id, amount, by, now(ctx), note)
    typer.echo(f"project {project_id}: disbursed {amount}")


@funds_app.command("pay")
def funds_pay(
    ctx: typer.Context,
    grid: str = typer.Option(..., "--grid", help="Grid code."),
    month: str = typer.Option(..., "--month", help=_MONTH_HELP),
    by: str = typer.Option(..., "--by", help="Handle of the supervisor paying."),
    amount: str | None = typer.Option(None, "--amount", help="Yuan (default: all outstanding)."),
) -> None:
    """Pay a grid's reward of a month (what the board says it earned)."""
    a = get_app(ctx)
    paid = service.pay_reward(a, grid, month, by, now(ctx), amount)
    typer.echo(f"{grid} {month}: paid {paid}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `closeloop` command line."""
    app.add_typer(exam_app, name="exam")
    app.add_typer(accountability_app, name="accountability")
    app.add_typer(funds_app, name="funds")
