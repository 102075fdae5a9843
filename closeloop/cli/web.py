"""Commands of the web service: serve it, set passwords, disable people, manage API tokens.

The web modules (FastAPI, argon2) are imported inside the commands, so the rest of the command
line does not pay for them at start-up.
"""

from __future__ import annotations

import sys

import typer

from closeloop.cli.common import fail, get_app, now, print_json

user_app = typer.Typer(
    help="Accounts of the web pages: passwords, disabling.", no_args_is_help=True
)
token_app = typer.Typer(
    help="API tokens for integrations (also Open311's api_key).", no_args_is_help=True
)


def serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", min=1, max=65535),
    workers: int = typer.Option(
        1, "--workers", min=1, help="Web worker processes (PostgreSQL only)."
    ),
    demo: bool = typer.Option(
        False,
        "--demo",
        help="Create the example zone with demo tickets first and print a login for each role "
        "(each start gives the demo accounts new passwords).",
    ),
) -> None:
    """Run the web pages, the JSON API and Open311; on SQLite the scheduler runs inside too."""
    from closeloop.web.serve import serve as run

    a = get_app(ctx)
    if demo:
        from closeloop import demo as demo_mod

        logins = demo_mod.prepare_service(a, now(ctx), echo=typer.echo)
        base = f"http://{host}:{port}"
        typer.echo(f"\n== {a.settings.zone_name} 演示 demo: {base}/")
        typer.echo(f"   群众上报 reporter (no account): {base}/report")
        for label, handle, password in logins:
            typer.echo(f"   {label:<28} {handle:<12} password {password}")
        typer.echo("")
    run(a, host=host, port=port, workers=workers, echo=typer.echo)


@user_app.command("set-password")
def set_password(
    ctx: typer.Context,
    handle: str = typer.Argument(..., help="The person's handle."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from the first line of stdin."
    ),
) -> None:
    """Set a person's password (at least 8 characters); their sessions end."""
    from closeloop.web import auth

    a = get_app(ctx)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("password", hide_input=True)
        again = typer.prompt("again", hide_input=True)
        if password != again:
            fail("cli.passwords_differ")
    auth.set_password(a, handle, password, now=now(ctx))
    typer.echo(f"{handle}: password set; sessions ended and API tokens revoked")


@user_app.command("disable")
def user_disable(
    ctx: typer.Context, handle: str = typer.Argument(..., help="The person's handle.")
) -> None:
    """Disable a person: no login; sessions end and API tokens are revoked (audit-logged)."""
    from closeloop.web import auth

    auth.set_disabled(get_app(ctx), handle, True, now(ctx))
    typer.echo(f"{handle}: disabled; sessions ended and API tokens revoked")


@user_app.command("enable")
def user_enable(
    ctx: typer.Context, handle: str = typer.Argument(..., help="The person's handle.")
) -> None:
    """Let a disabled person log in again (their old tokens stay revoked)."""
    from closeloop.web import auth

    auth.set_disabled(get_app(ctx), handle, False, now(ctx))
    typer.echo(f"{handle}: enabled")


@user_app.command("list")
def user_list(
    ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")
) -> None:
    """People, their roles, whether they can log in, the grids they lead."""
    from closeloop.web import auth

    people = auth.list_people(get_app(ctx))
    if as_json:
        print_json(people)
        return
    for p in people:
        login = "password" if p["has_password"] else "-"
        roles = ",".join(p["roles"]) or "-"
        leads = ",".join(p["leads"][:3]) + (" ..." if len(p["leads"]) > 3 else "")
        typer.echo(f"{p['handle']:<18} {p['name']:<8} {roles:<18} {login:<9} {leads}")
    typer.echo(f"{len(people)} people")


@token_app.command("create")
def token_create(
    ctx: typer.Context,
    handle: str = typer.Argument(..., help="Whose token: it acts as this person."),
    label: str = typer.Option("", "--label", help="What it is for, e.g. '12345 hotline'."),
    source: str | None = typer.Option(
        None,
        "--source",
        help="The source of the tickets it files (e.g. hotline for a 12345 system); "
        "default public.",
    ),
) -> None:
    """Create an API token and print it once; only its hash is kept."""
    from closeloop.web import auth

    made = auth.create_token(get_app(ctx), handle, label, now(ctx), source=source)
    typer.echo(made.token)
    typer.echo(
        f"token {made.id} for {made.handle}: shown once, store it now "
        "(send it as 'Authorization: Bearer <token>' or Open311 api_key)",
        err=True,
    )


@token_app.command("list")
def token_list(
    ctx: typer.Context,
    handle: str | None = typer.Option(None, "--handle", help="Only this person's tokens."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """API tokens: id, owner, label, created, last used, revoked."""
    from closeloop.web import auth

    tokens = auth.list_tokens(get_app(ctx), handle)
    if as_json:
        print_json(tokens)
        return
    for t in tokens:
        used = t["last_used_at"].isoformat(timespec="seconds") if t["last_used_at"] else "never"
        state = f"revoked {t['revoked_at']:%Y-%m-%d}" if t["revoked_at"] else "active"
        typer.echo(
            f"{t['id']:>4}  {t['handle']:<18} {t['label'] or '-':<20} "
            f"created {t['created_at']:%Y-%m-%d}  used {used}  {state}"
        )
    typer.echo(f"{len(tokens)} tokens")


@token_app.command("revoke")
def token_revoke(
    ctx: typer.Context, token_id: int = typer.Argument(..., help="The token's id.", min=1)
) -> None:
    """Revoke an API token; requests with it answer 401 from now on."""
    from closeloop.web import auth

    t = auth.revoke_token(get_app(ctx), token_id, now(ctx))
    typer.echo(f"token {t['id']} ({t['handle']}, {t['label'] or 'no label'}) revoked")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `closeloop` command line."""
    app.add_typer(user_app, name="user")
    app.add_typer(token_app, name="token")
    app.command()(serve)
