"""The outbox: notices are rows written in the same transaction as the change that causes them.

Delivery reads these rows after commit (see `closeloop.delivery`); a notice is never sent from
inside a step, so a step that rolls back leaves no notice behind, and a committed step always
leaves its notices.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select

from closeloop.calendar import WorkCalendar
from closeloop.db import insert_ignoring_duplicates
from closeloop.models import notifications, people
from notifiers.message import KINDS as NOTICE_KINDS

KINDS = NOTICE_KINDS  # the notice kinds the templates know


_PERSON = select(people.c.channels, people.c.locale).where(people.c.id == bindparam("id"))


@dataclass(frozen=True)
class Contact:
    """How a person is reached: their channels (a comma list; empty for the zone's default) and
    their locale, as `people` holds them."""

    channels: str
    locale: str


def quiet_until(calendar: WorkCalendar, now: datetime, *, urgent: bool = False) -> datetime:
    """The earliest moment a notice to a person created at `now` may be delivered: at once in
    the zone's working time (or for an urgent category), else the next working-time start."""
    if urgent or calendar.is_working_time(now):
        return now
    return calendar.next_working_moment(now)


def channels_for(person_channels: str, default: Sequence[str]) -> list[str]:
    own = [c.strip() for c in person_channels.split(",") if c.strip()]
    return own or list(default)


def enqueue(
    conn: Connection,
    *,
    kind: str,
    recipient_id: int,
    key: str,
    now: datetime,
    default_channels: Sequence[str],
    ticket_id: int | None = None,
    payload: Mapping[str, Any] | None = None,
    not_before: datetime | None = None,
    contact: Contact | None = None,
) -> int:
    """Queue one notice per channel of the recipient; returns how many rows were new. A notice
    held for quiet hours is not delivered before `not_before`.

    `key` identifies the cause (e.g. "assignment:EP-2026-000001:17"); with the channel it forms
    the idempotency key, so writing the same notice twice stores it once. The recipient's
    `contact` is read from `people` unless the caller read it already in the same transaction.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown notice kind {kind!r}")
    person = contact or conn.execute(_PERSON, {"id": recipient_id}).one()
    rows = [
        {
            "ticket_id": ticket_id,
            "recipient_id": recipient_id,
            "channel": channel,
            "kind": kind,
            "locale": person.locale,
            "payload": dict(payload or {}),
            "idempotency_key": f"{key}:{channel}",
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": not_before or now,
            "not_before": not_before or now,
            "created_at": now,
        }
        for channel in channels_for(person.channels, default_channels)
    ]
    return insert_ignoring_duplicates(conn, notifications, rows, "idempotency_key")


def enqueue_address(
    conn: Connection,
    *,
    kind: str,
    address: str,
    channel: str,
    locale: str,
    key: str,
    now: datetime,
    ticket_id: int | None = None,
    payload: Mapping[str, Any] | None = None,
) -> int:
    """Queue a notice for someone without an account (a reporter who left an email)."""
    row = {
        "ticket_id": ticket_id,
        "recipient_id": None,
        "address": address,
        "channel": channel,
        "kind": kind,
        "locale": locale,
        "payload": dict(payload or {}),
        "idempotency_key": f"{key}:{channel}",
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }
    return insert_ignoring_duplicates(conn, notifications, [row], "idempotency_key")
