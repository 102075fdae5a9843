"""How much one address may report without logging in.

Anonymous reports (`POST /api/tickets` and the /report page without a token or a session) are
counted per client address in `anonymous_reports`: at most `[web] anonymous_reports_per_hour`
in any hour, and at most `[web] anonymous_photo_bytes_per_day` bytes of photos in any 24 hours.
Both are generous by default, because a village office behind one NAT is one address. A caller
over a limit gets 429 with Retry-After; nothing of the report is stored.

The address is the socket's peer, or what a configured proxy says (see closeloop.web.serve).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, func, insert, select

from closeloop.bootstrap import App
from closeloop.models import anonymous_reports
from closeloop.web.auth import TooManyAttempts
from closeloop.web.settings import WebSettings

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


class OverQuota(TooManyAttempts):
    """429 with Retry-After, like the login limit."""


def admit(app: App, cfg: WebSettings, ip: str, photo_bytes: int, now: datetime) -> None:
    """Count one anonymous report from `ip` with `photo_bytes` of photos, or refuse it (run it
    through `closeloop.web.writers.write`)."""
    ip = (ip or "unknown")[:64]
    with app.begin() as conn:
        count, oldest = conn.execute(_LAST_HOUR, {"b_ip": ip, "b_since": now - HOUR}).one()
        if count >= cfg.anonymous_reports_per_hour:
            retry = max(1, int((oldest + HOUR - now).total_seconds()) + 1)
            raise OverQuota("quota.reports", retry, count=count, minutes=(retry + 59) // 60)
        if photo_bytes:
            used = conn.execute(
                select(func.coalesce(func.sum(anonymous_reports.c.photo_bytes), 0)).where(
                    anonymous_reports.c.ip == ip, anonymous_reports.c.at > now - DAY
                )
            ).scalar_one()
            if int(used) + photo_bytes > cfg.anonymous_photo_bytes_per_day:
                first = conn.execute(
                    select(func.min(anonymous_reports.c.at)).where(
                        anonymous_reports.c.ip == ip,
                        anonymous_reports.c.at > now - DAY,
                        anonymous_reports.c.photo_bytes > 0,
                    )
                ).scalar_one()
                retry = max(1, int((first + DAY - now).total_seconds()) + 1) if first else 3600
                raise OverQuota("quota.photos", retry, limit=cfg.anonymous_photo_bytes_per_day)
        conn.execute(_COUNT, {"b_ip": ip, "b_at": now, "b_bytes": photo_bytes})
        # Rows older than a day count for nobody: swept here, whoever they were for.
        conn.execute(_SWEEP, {"b_before": now - DAY})


# Built once, values bound: every anonymous report runs these, and a statement built per call
# has SQLAlchemy walk it again for its cache key.
_LAST_HOUR = select(func.count(), func.min(anonymous_reports.c.at)).where(
    anonymous_reports.c.ip == bindparam("b_ip"), anonymous_reports.c.at > bindparam("b_since")
)
_COUNT = insert(anonymous_reports).values(
    ip=bindparam("b_ip"), at=bindparam("b_at"), photo_bytes=bindparam("b_bytes")
)
_SWEEP = delete(anonymous_reports).where(anonymous_reports.c.at <= bindparam("b_before"))
