"""Commands for the people of a grid: import members.csv, list them."""

from __future__ import annotations

from pathlib import Path

import typer

from closeloop import members
from closeloop.cli.common import get_app, now, print_json

member_app = typer.Typer(
    help="The people of a grid beside its leader (members.csv).", no_args_is_help=True
)


@member_app.command("import")
def member_import(
    ctx: typer.Context,
    file: Path = typer.Argument(
        ..., help="members.csv: grid_code,handle,name,phone,email,role,duty"
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Import the members of grids; a bad file is refused whole, every problem named. For each
    grid in the file, its rows are the grid's members afterwards."""
    done = members.import_members_file(get_app(ctx), file, now(ctx))
    if as_json:
        print_json(
            {"grids": done.grids, "members": done.members, "people_created": done.people_created}
        )
        return
    typer.echo(
        f"{file}: {done.members} members of {done.grids} grids; "
        f"{done.people_created} people created"
    )


@member_app.command("list")
def member_list(
    ctx: typer.Context,
    grid: str | None = typer.Option(None, "--grid", help="Only this grid."),
    subtree: bool = typer.Option(False, "--subtree", help="With the grids under --grid."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The members of the grids: role (第一书记, 联村干部 ...) and duty (分工)."""
    rows = members.list_members(get_app(ctx), grid, subtree=subtree)
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo("no members")
    for r in rows:
        duty = f" — {r['duty']}" if r["duty"] else ""
        typer.echo(f"{r['grid']:<16} {r['role']}  {r['name']} ({r['handle']}){duty}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `closeloop` command line."""
    app.add_typer(member_app, name="member")
