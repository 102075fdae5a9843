"""Who may see which ticket, decided in the query itself.

- a supervisor sees every ticket;
- a grid leader sees the tickets whose grid, or whose responsible grid, lies in a subtree they
  lead (verifiers lead a grid above the responsible one, so their fixes to check are included);
- anyone else sees none;
- a reporter without an account sees their own ticket through its reference and the secret
  they were given at submission (its sha256 is kept on the ticket).

A ticket someone may not see answers exactly like a ticket that does not exist (404), so the
API does not tell outsiders which references exist.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, bindparam, false, or_, true

from closeloop import views
from closeloop.app import App
from closeloop.grid import in_subtree
from closeloop.models import tickets
from closeloop.tickets import NotFound, NotPermitted, Ticket, authorize
from closeloop.web.auth import Principal


@functools.cache
def listing() -> Select[Any]:
    """`views.listing_select()`, built once: building its joins and aliases costs more than
    SQLite takes to run the query. Callers add to it (`.where()` returns a new statement)."""
    return views.listing_select()


# What decides a person's scope: None for a supervisor (everything), else the grid paths.
Scope = tuple[str, ...] | None


def scope_of(principal: Principal) -> Scope:
    if principal.is_supervisor:
        return None
    return (*principal.led_paths, *principal.member_paths)


def scope_clause(principal: Principal) -> ColumnElement[bool]:
    """A WHERE clause for `views.listing_select()` keeping what `principal` may see."""
    return _scope_clause(scope_of(principal))


def _scope_clause(scope: Scope) -> ColumnElement[bool]:
    if scope is None:
        return true()
    conds = [or_(in_subtree(views.HOME.c.path, p), in_subtree(views.RESP.c.path, p)) for p in scope]
    return or_(false(), *conds)


@functools.lru_cache(maxsize=1024)
def scoped(scope: Scope) -> Select[Any]:
    """`listing()` kept to a scope, one statement object per scope. SQLAlchemy computes a
    statement's cache key by walking all of it (some 200 us for this one) and remembers it on
    the object: a statement built anew for every request paid that walk every time, twice per
    step. Callers bind what varies (`visible_row` the reference) or add to it."""
    return listing().where(_scope_clause(scope))


@functools.lru_cache(maxsize=1024)
def _visible_by_ref(scope: Scope) -> Select[Any]:
    return scoped(scope).where(tickets.c.ref == bindparam("b_ref"))


def visible_row(conn: Connection, ref: str, principal: Principal) -> Any:
    row = conn.execute(_visible_by_ref(scope_of(principal)), {"b_ref": ref}).first()
    if row is None:
        raise NotFound("ticket.not_found", ref=ref)
    return row


def new_reporter_secret() -> tuple[str, str]:
    """A secret for the reporter and the hash the ticket keeps."""
    secret = secrets.token_urlsafe(18)
    return secret, hash_secret(secret)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(stored_hash: str | None, secret: str | None) -> bool:
    if not stored_hash or not secret:
        return False
    return hmac.compare_digest(stored_hash, hash_secret(secret))


@functools.cache
def _by_ref() -> Select[Any]:
    return listing().where(tickets.c.ref == bindparam("b_ref"))


def reporter_row(conn: Connection, ref: str, secret: str | None) -> Any:
    row = conn.execute(_by_ref(), {"b_ref": ref}).first()
    if row is None or not secret_matches(row.reporter_secret_hash, secret):
        raise NotFound("ticket.not_found", ref=ref)
    return row


def allowed_steps(app: App, row: Any, principal: Principal) -> list[str]:
    """The steps `principal` may take on this ticket now: the state allows them and the rules
    of who may act let this person (what a step needs is checked when it is taken)."""
    wf = app.workflow
    ticket = Ticket.from_row(row._mapping)
    actor = principal.actor
    out = []
    for name, step in wf.steps.items():
        if name == "submit" or name not in app.steps.effects or not wf.may(ticket.state, name):
            continue
        try:
            authorize(step, ticket, actor, row.responsible_path)
        except NotPermitted:
            continue
        out.append(name)
    return out
