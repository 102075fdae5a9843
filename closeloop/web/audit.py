"""The audit log of who may do what: tokens made and revoked, passwords set, people disabled.

One row per change in `audit_log`, written in the transaction of the change itself, and the
same line on the `closeloop.audit` logger. Tickets have their own history (ticket_events).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from closeloop.db import read_only
from closeloop.models import audit_log

log = logging.getLogger("closeloop.audit")

CLI = "cli"  # the actor of a command run on the server


def record(
    conn: Connection, at: datetime, actor: str, action: str, subject: str, detail: str = ""
) -> None:
    conn.execute(
        insert(audit_log).values(
            at=at, actor=actor[:64], action=action, subject=subject[:64], detail=detail[:500]
        )
    )
    log.info(
        json.dumps(
            {"at": at.isoformat(), "actor": actor, "action": action, "subject": subject}
            | ({"detail": detail} if detail else {}),
            ensure_ascii=False,
        )
    )


def lines(engine: Any, subject: str | None = None) -> list[dict[str, Any]]:
    q = select(audit_log).order_by(audit_log.c.id)
    if subject is not None:
        q = q.where(audit_log.c.subject == subject)
    with read_only(engine) as conn:
        return [dict(r._mapping) for r in conn.execute(q)]
