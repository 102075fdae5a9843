"""Digests: one notice per interval instead of one per event, and the daily list of what is open.

Two kinds of people get a ``digest`` notice at each digest time (``[notifiers.digest] schedule``,
e.g. ``"daily 17:30"`` in the zone's time, or ``"every 4h"``):

- people in digest mode (``people.digest``): their ticket notices (assignment, reminder,
  supervision, verification request, rejection, closure) are not sent one by one; the deliverer
  leaves them pending, and at each digest time they are collected into one digest that lists
  the tickets they were about together with everything the person must act on now;
- with ``[notifiers] daily_digest = "all"``, also every grid leader with something open or due
  on the grids they lead ("a daily digest per leader of what is open and due"). ``"digest_only"``
  sends digests to digest-mode people only; ``"off"`` sends a digest only to collect held
  notices. A digest with nothing to list is not sent.

Weekly reports and digests themselves are never held: their content has no place in a list of
tickets.

Payload of a digest row: ``since`` and ``at`` bound the period whose held notices it collected
(``collected``: their ids); the notice itself shows the period from ``at`` to ``until`` (the
next digest time): "due in the period" means due before the next digest.

Exactly once: the collected rows are marked ``digested`` in the same transaction that writes the
digest row, whose idempotency key names the person and the period (``digest:<handle>:<end>``).
Running the job twice in a period, or in two processes, writes one digest; a row that arrives
after the period's digest was written waits for the next one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, false, or_, select, true, update

from closeloop import outbox
from closeloop.app import App
from closeloop.config import ConfigError
from closeloop.db import is_postgres, read_only
from closeloop.grid import in_subtree
from closeloop.models import grids, notifications, people, tickets

# Kinds a digest can stand in for: each is about one ticket, which the digest lists.
DIGESTIBLE = (
    "assignment",
    "reminder",
    "supervision",
    "verification_request",
    "rejection",
    "closure",
)
SCOPES = ("all", "digest_only", "off")
DEFAULT_SCHEDULE = "daily 17:30"

_DAILY = re.compile(r"^daily\s+([01]?\d|2[0-3]):([0-5]\d)$", re.IGNORECASE)
_EVERY = re.compile(r"^every\s+(\d+)\s*([mh])$", re.IGNORECASE)


@dataclass(frozen=True)
class Schedule:
    """When digests are made: daily at a local time, or every so long (aligned to local
    midnight of 1970-01-01, so "every 4h" falls on 00:00, 04:00, ... zone time)."""

    text: str
    daily_at: time | None = None
    every: timedelta | None = None

    def period(self, now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """The last complete period at ``now``: (start, end], end being the latest digest time
        at or before ``now``."""
        local = now.astimezone(tz)
        if self.daily_at is not None:
            day = local.date()
            end = datetime.combine(day, self.daily_at, tz)
            if end > local:
                day -= timedelta(days=1)
                end = datetime.combine(day, self.daily_at, tz)
            start = datetime.combine(day - timedelta(days=1), self.daily_at, tz)
            return start, end
        assert self.every is not None
        step = self.every.total_seconds()
        offset = local.utcoffset() or timedelta(0)
        shifted = now.timestamp() + offset.total_seconds()
        end_ts = math.floor(shifted / step) * step - offset.total_seconds()
        end = datetime.fromtimestamp(end_ts, tz)
        return end - self.every, end

    def following(self, moment: datetime, tz: ZoneInfo) -> datetime:
        """The digest time after the digest time ``moment``."""
        if self.daily_at is not None:
            day = moment.astimezone(tz).date() + timedelta(days=1)
            return datetime.combine(day, self.daily_at, tz)
        assert self.every is not None
        return moment + self.every


def parse_schedule(text: Any) -> Schedule | None:
    """ "daily HH:MM", "every <n>h", "every <n>m" or "off" (None)."""
    if not isinstance(text, str):
        raise ConfigError("config.digest_not_text", text=text)
    spec = text.strip()
    if spec.lower() == "off":
        return None
    daily = _DAILY.match(spec)
    if daily:
        return Schedule(spec, daily_at=time(int(daily.group(1)), int(daily.group(2))))
    every = _EVERY.match(spec)
    if every:
        amount = int(every.group(1)) * (3600 if every.group(2).lower() == "h" else 60)
        if amount < 60:
            raise ConfigError("config.digest_short", text=text)
        return Schedule(spec, every=timedelta(seconds=amount))
    raise ConfigError("config.digest_unreadable", text=text)


def schedule(app: App) -> Schedule | None:
    section = app.settings.section("notifiers").get("digest", {})
    if not isinstance(section, dict):
        raise ConfigError("config.not_table", name="notifiers.digest")
    unknown = set(section) - {"schedule"}
    if unknown:
        raise ConfigError("config.digest_keys", unknown=", ".join(sorted(unknown)))
    return parse_schedule(section.get("schedule", DEFAULT_SCHEDULE))


def scope(app: App) -> str:
    value = app.settings.section("notifiers").get("daily_digest", "digest_only")
    if value not in SCOPES:
        raise ConfigError("config.daily_digest", value=value, scopes=", ".join(SCOPES))
    return str(value)


# --- what a person must act on ---------------------------------------------------------------


def open_ticket_ids_for(conn: Connection, person_id: int) -> list[int]:
    """The tickets in the person's inbox (the rule of `views.inbox`): open tickets on the
    grids they lead and below, fixes waiting for them to check (strictly below a grid they lead,
    or anywhere for a supervisor, never their own fix)."""
    person = conn.execute(select(people.c.roles).where(people.c.id == person_id)).first()
    if person is None:
        return []
    is_supervisor = "supervisor" in {r.strip() for r in person.roles.split(",")}
    paths = list(conn.execute(select(grids.c.path).where(grids.c.leader_id == person_id)).scalars())
    if not paths and not is_supervisor:
        return []
    resp = grids.alias("resp")
    own = [in_subtree(resp.c.path, p) for p in paths]
    below = [and_(in_subtree(resp.c.path, p), resp.c.path != p) for p in paths]
    q = (
        select(tickets.c.id)
        .select_from(tickets.join(resp, resp.c.id == tickets.c.responsible_grid_id))
        .where(
            or_(
                and_(tickets.c.state == "assigned", or_(false(), *own)),
                and_(tickets.c.state.in_(("fixed", "verified")), or_(false(), *below)),
                and_(
                    tickets.c.state.in_(("fixed", "verified")),
                    or_(tickets.c.fixed_by_id.is_(None), tickets.c.fixed_by_id != person_id),
                    true() if is_supervisor else false(),
                ),
            )
        )
        .order_by(tickets.c.due_at.is_(None), tickets.c.due_at, tickets.c.id)
    )
    return list(conn.execute(q).scalars())


def _leaders_with_open_work(conn: Connection) -> set[int]:
    """Leaders whose inbox is not empty, from one pass over the open tickets: an assigned
    ticket is theirs on any grid of its responsible grid's path, a fix to check on any grid
    strictly above it. (Which tickets exactly is `open_ticket_ids_for`'s business.)"""
    resp = grids.alias("resp")
    open_rows = conn.execute(
        select(tickets.c.state, resp.c.path)
        .select_from(tickets.join(resp, resp.c.id == tickets.c.responsible_grid_id))
        .where(tickets.c.state.in_(("assigned", "fixed", "verified")))
    )
    grid_ids: set[int] = set()
    for state, path in open_rows:
        chain = [int(i) for i in path.strip("/").split("/")]
        grid_ids.update(chain if state == "assigned" else chain[:-1])
    if not grid_ids:
        return set()
    leaders = conn.execute(
        select(grids.c.leader_id).where(grids.c.id.in_(grid_ids), grids.c.leader_id.is_not(None))
    )
    return set(leaders.scalars())


# --- the job ----------------------------------------------------------------------------------


@dataclass
class DigestReport:
    period_start: datetime | None = None
    period_end: datetime | None = None
    digests: int = 0  # people who got a digest this run
    collected: int = 0  # held notices folded into them
    people: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "period_end": self.period_end.isoformat() if self.period_end else None,
            "digests": self.digests,
            "collected": self.collected,
        }


def collect(app: App, now: datetime) -> DigestReport:
    """Write the digests of the last complete period (see the module docstring)."""
    if now.tzinfo is None:
        raise ValueError("collect needs an aware `now`")
    when = schedule(app)
    who = scope(app)
    report = DigestReport()
    if when is None:
        return report
    start, end = when.period(now, app.tz)
    report.period_start, report.period_end = start, end
    defaults: Sequence[str] = app.settings.section("notifiers").get("default_channels", ["console"])
    with read_only(app.engine) as conn:
        q = select(people.c.id, people.c.handle, people.c.digest, people.c.channels)
        if who == "all":
            busy = _leaders_with_open_work(conn)
            q = q.where(or_(people.c.digest.is_(True), people.c.id.in_(busy)))
        else:
            q = q.where(people.c.digest.is_(True))
        candidates = list(conn.execute(q.order_by(people.c.id)))
    # since/at: the window whose held notices it collects; at/until: the window it looks ahead
    # to (what falls due before the next digest), which the notice shows as its period.
    period = {
        "since": start.isoformat(),
        "at": end.isoformat(),
        "until": when.following(end, app.tz).isoformat(),
    }
    for person in candidates:
        key = f"digest:{person.handle}:{end.isoformat()}"
        # One transaction per person: the digest row and the marking of what it collected.
        with app.engine.begin() as conn:
            if is_postgres(conn):
                # Collectors of one person take turns (SQLite's BEGIN IMMEDIATE does this
                # already), so the check below is never raced.
                conn.execute(select(people.c.id).where(people.c.id == person.id).with_for_update())
            keys = [f"{key}:{c}" for c in outbox.channels_for(person.channels, defaults)]
            exists = conn.execute(
                select(notifications.c.id).where(notifications.c.idempotency_key.in_(keys))
            ).first()
            if exists is not None:
                continue  # this period's digest is made; what arrived since waits for the next
            collected: list[int] = []
            if person.digest:
                collected = list(
                    conn.execute(
                        select(notifications.c.id)
                        .where(
                            notifications.c.recipient_id == person.id,
                            notifications.c.status == "pending",
                            notifications.c.kind.in_(DIGESTIBLE),
                            notifications.c.created_at <= end,
                        )
                        .order_by(notifications.c.id)
                    ).scalars()
                )
            if not collected and (who == "off" or not open_ticket_ids_for(conn, person.id)):
                continue
            outbox.enqueue(
                conn,
                kind="digest",
                recipient_id=person.id,
                key=key,
                now=now,
                default_channels=defaults,
                payload={**period, "collected": collected},
            )
            if collected:
                conn.execute(
                    update(notifications)
                    .where(notifications.c.id.in_(collected), notifications.c.status == "pending")
                    .values(status="digested")
                )
            report.digests += 1
            report.collected += len(collected)
            report.people.append(person.handle)
    return report


def digest_job(app: App, now: datetime) -> dict[str, Any]:
    """The scheduler's job: make the digests of the last complete period, if not made yet."""
    return collect(app, now).as_dict()
