"""The deliverer: send what the outbox holds, retry what failed, give up loudly, lose nothing.

One pass (:func:`deliver_due`) works in batches:

1. **Claim** (one short transaction): rows that are ``pending`` and due, or ``sending`` with an
   expired claim (their deliverer died), become ``sending`` with ``claimed_until = now + lease``
   and ``attempts + 1``. On PostgreSQL the rows are picked ``FOR UPDATE SKIP LOCKED``, so
   deliverers running side by side take disjoint batches; on SQLite the claim's
   ``BEGIN IMMEDIATE`` makes claims take turns.
2. **Render and send**, outside any transaction: each row is rendered from the database as it is
   now (:mod:`closeloop.notices`) and handed to its channel.
3. **Mark**: a notice its channel accepted is marked ``sent`` (with ``sent_at``) at once, by a
   single-row UPDATE that is its own transaction (one round trip, see :class:`_SentMarks`),
   before the next send starts. Failures are written together
   at the end of the batch: back to ``pending`` with ``next_attempt_at`` pushed by exponential
   backoff with jitter, or ``dead`` after ``max_attempts`` or at once when the failure is
   permanent, with ``last_error`` in every case. A mark only lands if the row is still the one
   this deliverer claimed (status ``sending`` and the same attempt number).

Why a notice is never sent twice at once, and at most one notice once more after a crash: only
the holder of an unexpired claim sends a row, and a deliverer does not start a send once its
claim is about to expire (it gives the rest of the batch back, untried). Sends are strictly one
after the other and each accepted send is marked before the next begins, so a deliverer killed
at any moment leaves at most one row that was sent and not marked: the one in flight. When the
lease runs out another deliverer claims the rows left ``sending`` (that one and the untried rest
of the batch) and sends them; the repeated one carries the same idempotency key (the email
Message-ID and the webhook ``Idempotency-Key`` header come from it), so receivers that honour
it see one notice. A failed send left unmarked by a kill is merely tried again.

Digest mode: ticket notices of people with ``people.digest`` are not claimed here; the digest job
(:mod:`closeloop.digest`) folds them into one notice per period.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, func, not_, or_, select, update

from closeloop.app import App
from closeloop.config import ConfigError
from closeloop.db import UTCDateTime, is_postgres, read_only
from closeloop.digest import DIGESTIBLE
from closeloop.models import notifications, people, tickets
from closeloop.notices import Notice, Prepared, prepare
from closeloop.tickets import Conflict, Invalid, NotFound
from notifiers import Channel, DeliveryError, Message, Renderer, build_channels, build_renderer

log = logging.getLogger("closeloop.delivery")

# [notifiers] keys that belong to the engine; the rest configure the channels (notifiers.config).
ENGINE_KEYS = frozenset(
    {"default_channels", "base_url", "supervision_contact", "daily_digest", "delivery", "digest"}
)
STATUSES = ("pending", "sending", "sent", "dead", "digested", "cancelled")


@dataclass(frozen=True)
class Policy:
    """``[notifiers.delivery]``: batch size, claim lease, retries and their backoff."""

    batch: int = 100
    poll_seconds: float = 5.0
    lease: timedelta = timedelta(minutes=5)
    max_attempts: int = 8
    backoff_base: timedelta = timedelta(seconds=30)
    backoff_max: timedelta = timedelta(hours=1)
    jitter: float = 0.2  # the delay is scaled by a factor drawn from [1 - jitter, 1 + jitter]

    def backoff(self, attempts: int, rng: random.Random) -> timedelta:
        """The wait after the ``attempts``-th failed try: base, 2 x base, 4 x base ... up to
        max, each with jitter so that notices failing together do not retry together."""
        doubled = self.backoff_base * (2 ** min(max(attempts - 1, 0), 30))
        delay = min(doubled, self.backoff_max)
        return delay * rng.uniform(1 - self.jitter, 1 + self.jitter)


# key: (whole numbers only, Policy field)
_POLICY_KEYS: dict[str, tuple[bool, str]] = {
    "batch": (True, "batch"),
    "poll_seconds": (False, "poll_seconds"),
    "lease_seconds": (False, "lease"),
    "max_attempts": (True, "max_attempts"),
    "backoff_base_seconds": (False, "backoff_base"),
    "backoff_max_seconds": (False, "backoff_max"),
    "jitter": (False, "jitter"),
}


def policy(app: App) -> Policy:
    section = app.settings.section("notifiers").get("delivery", {})
    if not isinstance(section, Mapping):
        raise ConfigError("config.not_table", name="notifiers.delivery")
    unknown = set(section) - set(_POLICY_KEYS)
    if unknown:
        raise ConfigError(
            "config.delivery_keys",
            unknown=", ".join(sorted(unknown)),
            known=", ".join(sorted(_POLICY_KEYS)),
        )
    values: dict[str, Any] = {}
    for key, value in section.items():
        whole, attr = _POLICY_KEYS[key]
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or (whole and not isinstance(value, int))
            or value < 0
        ):
            raise ConfigError("config.delivery_number", key=key, value=value)
        timed = key.endswith("_seconds") and key != "poll_seconds"
        values[attr] = timedelta(seconds=float(value)) if timed else value
    result = Policy(**values)
    if result.batch < 1 or result.max_attempts < 1:
        raise ConfigError("config.delivery_at_least_one")
    if not 0 <= result.jitter < 1:
        raise ConfigError("config.delivery_jitter")
    if result.backoff_base <= timedelta(0) or result.backoff_max < result.backoff_base:
        raise ConfigError("config.delivery_backoff")
    if result.lease < timedelta(seconds=10):
        raise ConfigError("config.delivery_lease")
    return result


def channel_config(app: App) -> dict[str, Any]:
    """The part of ``[notifiers]`` that notifiers.config reads (it refuses unknown keys)."""
    return {k: v for k, v in app.settings.section("notifiers").items() if k not in ENGINE_KEYS}


def make_channels(app: App) -> dict[str, Channel]:
    return build_channels(channel_config(app), app.settings.path.parent, clock=app.clock)


def make_renderer(app: App) -> Renderer:
    return build_renderer(channel_config(app), app.settings.path.parent)


def close_channels(channels: Mapping[str, Channel]) -> None:
    for channel in channels.values():
        close = getattr(channel, "close", None)
        if callable(close):
            close()


# --- one pass ---------------------------------------------------------------------------------


@dataclass
class DeliveryReport:
    claimed: int = 0
    sent: int = 0
    retried: int = 0  # failed, and due again later
    dead: int = 0
    lost_claims: int = 0  # outcomes not written: the claim had expired and was taken over
    unsent: int = 0  # claimed, not tried (the claim was about to expire), given back
    errors: list[str] = field(default_factory=list)  # the first few, for the log

    def add(self, other: DeliveryReport) -> None:
        self.claimed += other.claimed
        self.sent += other.sent
        self.retried += other.retried
        self.dead += other.dead
        self.lost_claims += other.lost_claims
        self.unsent += other.unsent
        self.errors.extend(other.errors[: max(0, 5 - len(self.errors))])

    def as_dict(self) -> dict[str, int]:
        return {
            "claimed": self.claimed,
            "sent": self.sent,
            "retried": self.retried,
            "dead": self.dead,
            "lost_claims": self.lost_claims,
            "unsent": self.unsent,
        }


def _held() -> Any:
    """Ticket notices of people in digest mode: the digest job collects them instead."""
    digest_people = select(people.c.id).where(people.c.digest.is_(True))
    return and_(
        notifications.c.kind.in_(DIGESTIBLE),
        notifications.c.recipient_id.in_(digest_people),
    )


def claim(conn: Connection, now: datetime, size: int, lease: timedelta) -> list[Notice]:
    """Take up to ``size`` due rows for this deliverer (call inside a write transaction)."""
    due = or_(
        and_(
            notifications.c.status == "pending",
            notifications.c.next_attempt_at <= now,
            not_(_held()),
        ),
        and_(notifications.c.status == "sending", notifications.c.claimed_until < now),
    )
    q = (
        select(notifications.c.id)
        .where(due)
        .order_by(notifications.c.next_attempt_at, notifications.c.id)
        .limit(size)
    )
    if is_postgres(conn):
        q = q.with_for_update(skip_locked=True)
    ids = list(conn.execute(q).scalars())
    if not ids:
        return []
    rows = conn.execute(
        update(notifications)
        .where(notifications.c.id.in_(ids))
        .values(
            status="sending",
            claimed_until=now + lease,
            attempts=notifications.c.attempts + 1,
        )
        .returning(*notifications.c)
    )
    return sorted((Notice.from_row(r) for r in rows), key=lambda n: n.id)


@dataclass(frozen=True)
class _Outcome:
    notice: Notice
    sent_at: datetime | None = None
    error: str | None = None
    permanent: bool = False


def _mark(
    app: App,
    outcomes: Sequence[_Outcome],
    policy_: Policy,
    rng: random.Random,
    now: datetime,
    report: DeliveryReport,
) -> None:
    """Write the outcomes in one transaction: one UPDATE run for all rows (each guarded by
    status ``sending`` and this claim's attempt number), then one SELECT to see which landed."""
    if not outcomes:
        return
    params: list[dict[str, Any]] = []
    for o in outcomes:
        n = o.notice
        if o.error is None:
            status, next_at = "sent", None
        elif o.permanent or n.attempts >= policy_.max_attempts:
            status, next_at = "dead", None
        else:
            status, next_at = "pending", now + policy_.backoff(n.attempts, rng)
        params.append(
            {
                "nid": n.id,
                "natt": n.attempts,
                "nstatus": status,
                "nsent": o.sent_at,
                "nerror": o.error,
                "nnext": next_at,
            }
        )
    stmt = (
        update(notifications)
        .where(
            notifications.c.id == bindparam("nid"),
            notifications.c.status == "sending",
            notifications.c.attempts == bindparam("natt"),
        )
        .values(
            status=bindparam("nstatus"),
            sent_at=bindparam("nsent", type_=UTCDateTime),
            last_error=bindparam("nerror"),
            claimed_until=None,
            next_attempt_at=func.coalesce(
                bindparam("nnext", type_=UTCDateTime), notifications.c.next_attempt_at
            ),
        )
    )
    with app.engine.begin() as conn:
        conn.execute(stmt, params)
        stored = {
            r.id: (r.status, r.attempts)
            for r in conn.execute(
                select(notifications.c.id, notifications.c.status, notifications.c.attempts).where(
                    notifications.c.id.in_([p["nid"] for p in params])
                )
            )
        }
    for o, p in zip(outcomes, params, strict=True):
        n = o.notice
        if stored.get(n.id) != (p["nstatus"], n.attempts):
            report.lost_claims += 1
            log.warning("notice %s: claim taken over before its outcome was written", n.id)
            continue
        if p["nstatus"] == "sent":
            report.sent += 1
        elif p["nstatus"] == "dead":
            report.dead += 1
            log.error("notice %s (%s) is dead: %s", n.id, n.idempotency_key, o.error)
        else:
            report.retried += 1
        if o.error is not None and len(report.errors) < 5:
            report.errors.append(f"{n.idempotency_key}: {o.error}")


# The deliverer runs this once per notice sent: compiled once per dialect by _SentMarks.
_MARK_SENT = (
    update(notifications)
    .where(
        notifications.c.id == bindparam("nid"),
        notifications.c.status == "sending",
        notifications.c.attempts == bindparam("natt"),
    )
    .values(
        status="sent",
        sent_at=bindparam("nsent", type_=UTCDateTime),
        last_error=None,
        claimed_until=None,
    )
)


class _SentMarks:
    """Marks accepted notices ``sent``, one at a time, each before the next send starts.

    A mark is one round trip: the single-row UPDATE of :data:`_MARK_SENT` (guarded like
    :func:`_mark`'s, its row count saying whether the claim still held), compiled once and run
    on the driver's own cursor of a connection in autocommit, so the statement is its own
    transaction. Through a SQLAlchemy transaction the same mark took three round trips on
    PostgreSQL (BEGIN, UPDATE, COMMIT) and rebuilt its parameters each time.

    On PostgreSQL this connection commits with ``synchronous_commit = off``: the server has
    applied a mark before it answers, so a deliverer killed at any moment after that keeps it;
    only a crash of the database server itself can lose the marks of its last fraction of a
    second, and those notices are then sent again with the same idempotency key. That is the
    durability SQLite's ``synchronous=NORMAL`` (closeloop.db) gives every commit, and it spares
    each notice a WAL flush that cost more than the send (5 ms on this machine's disk).
    """

    def __init__(self, engine: Engine) -> None:
        conn = engine.connect()
        try:
            compiled = _MARK_SENT.compile(dialect=engine.dialect)
            self._sql = compiled.string
            self._params = compiled.construct_params(
                {"nid": 0, "natt": 0, "nsent": None}, _check=False
            )
            self._order = compiled.positiontup if compiled.positional else None
            self._stamp = UTCDateTime().bind_processor(engine.dialect) or (lambda value: value)
            self._postgres = is_postgres(conn)
            if self._postgres:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            # SQLite's connections are in autocommit at the driver already (closeloop.db turns
            # pysqlite's transaction handling off and begins transactions itself).
            self._cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            if self._postgres:
                self._cursor.execute("SET synchronous_commit = off")
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def __call__(self, notice: Notice, sent_at: datetime) -> bool:
        """Mark ``notice`` sent at ``sent_at``; False when its claim was taken over."""
        params = self._params
        params["nid"] = notice.id
        params["natt"] = notice.attempts
        params["nsent"] = self._stamp(sent_at)
        if self._order is None:
            self._cursor.execute(self._sql, params)
        else:
            self._cursor.execute(self._sql, tuple(params[name] for name in self._order))
        return bool(self._cursor.rowcount == 1)

    def close(self) -> None:
        """Give the connection back to the pool as it was taken, or drop it if that fails (a
        lost connection: raising here would hide the error that ended the pass)."""
        try:
            if self._postgres:
                self._cursor.execute("RESET synchronous_commit")
            self._cursor.close()
        except Exception as exc:
            log.warning("marks connection dropped, not pooled: %s: %s", type(exc).__name__, exc)
            self._conn.invalidate()
        finally:
            self._conn.close()


def _mark_sent(marks: _SentMarks, outcome: _Outcome, report: DeliveryReport) -> None:
    n = outcome.notice
    assert outcome.sent_at is not None
    if marks(n, outcome.sent_at):
        report.sent += 1
    else:
        report.lost_claims += 1
        log.warning("notice %s: claim taken over before its outcome was written", n.id)


def _give_back(app: App, notices: Sequence[Notice]) -> int:
    """Release claimed rows that were never tried: pending again, the attempt not counted."""
    if not notices:
        return 0
    stmt = (
        update(notifications)
        .where(
            notifications.c.id == bindparam("nid"),
            notifications.c.status == "sending",
            notifications.c.attempts == bindparam("natt"),
        )
        .values(status="pending", claimed_until=None, attempts=notifications.c.attempts - 1)
    )
    with app.engine.begin() as conn:
        conn.execute(stmt, [{"nid": n.id, "natt": n.attempts} for n in notices])
    return len(notices)


def _send(channel: Channel | None, prepared: Prepared, now: datetime) -> _Outcome:
    notice = prepared.notice
    if prepared.error is not None:
        return _Outcome(notice, error=prepared.error, permanent=True)
    message = prepared.message
    assert message is not None
    if channel is None:
        return _Outcome(
            notice,
            error=f"channel {notice.channel!r} is not configured in [notifiers]",
            permanent=True,
        )
    try:
        channel.send(message)
    except DeliveryError as exc:
        return _Outcome(notice, error=exc.detail, permanent=exc.permanent)
    except Exception as exc:  # a channel bug must not stop the batch; retried, then dead
        log.exception("channel %s failed on notice %s", notice.channel, notice.id)
        return _Outcome(notice, error=f"{type(exc).__name__}: {exc}", permanent=False)
    return _Outcome(notice, sent_at=now)


def deliver_due(
    app: App,
    now: datetime,
    *,
    batch: int | None = None,
    channels: Mapping[str, Channel] | None = None,
    renderer: Renderer | None = None,
    rng: random.Random | None = None,
    should_stop: Callable[[], bool] | None = None,
    elapsed: Callable[[], float] = time.monotonic,
) -> DeliveryReport:
    """Send every notice due at ``now``, batch by batch, until none is left (or ``should_stop``
    says so between batches). Returns what happened.

    Time inside the pass runs on from ``now`` by the real time elapsed, so sends in a long pass
    are checked against their lease and stamped with a moving ``sent_at``; ``elapsed`` is that
    real clock, replaceable so a test can hold the pass at ``now``. Each accepted send is
    marked before the next one starts; failures are written at the end of each batch.
    """
    if now.tzinfo is None:
        raise ValueError("deliver_due needs an aware `now`")
    policy_ = policy(app)
    size = batch or policy_.batch
    own_channels = channels is None
    chans = make_channels(app) if channels is None else channels
    render = renderer or make_renderer(app)
    rng = rng or random.Random()
    started = elapsed()

    def clock() -> datetime:
        return now + timedelta(seconds=elapsed() - started)

    # Stop starting sends this long before a claim expires: a send may take a channel timeout.
    margin = min(policy_.lease / 2, timedelta(seconds=60))
    total = DeliveryReport()
    # One connection for the whole pass's marks, taken at the first accepted send.
    marks: _SentMarks | None = None
    try:
        while True:
            claimed_at = clock()
            with app.engine.begin() as conn:
                rows = claim(conn, claimed_at, size, policy_.lease)
            if not rows:
                break
            done = DeliveryReport(claimed=len(rows))
            with read_only(app.engine) as conn:
                prepared = prepare(app, conn, rows, claimed_at, render)
            failed: list[_Outcome] = []
            unsent: list[Notice] = []
            for p in prepared:
                current = clock()
                if current >= claimed_at + policy_.lease - margin:
                    # Too late to start a send the claim may not outlive: give it back.
                    unsent.append(p.notice)
                    continue
                outcome = _send(chans.get(p.notice.channel), p, current)
                if outcome.error is None:
                    if marks is None:
                        marks = _SentMarks(app.engine)
                    _mark_sent(marks, outcome, done)  # before the next send starts
                else:
                    failed.append(outcome)
            _mark(app, failed, policy_, rng, clock(), done)
            done.unsent = _give_back(app, unsent)
            total.add(done)
            log.info(
                "batch of %d in %.2fs: %d sent, %d to retry, %d dead, %d left for later",
                done.claimed,
                (clock() - claimed_at).total_seconds(),
                done.sent,
                done.retried,
                done.dead,
                done.unsent + done.lost_claims,
            )
            if len(rows) < size or len(unsent) == len(rows):
                break
            if should_stop is not None and should_stop():
                break
    finally:
        if marks is not None:
            marks.close()
        if own_channels:
            close_channels(chans)
    return total


# --- the long-running deliverer and the scheduler job -----------------------------------------


def run(
    app: App,
    *,
    once: bool = False,
    batch: int | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    clock: Callable[[], datetime] | None = None,
    on_pass: Callable[[DeliveryReport], None] | None = None,
    channels: Mapping[str, Channel] | None = None,
    wait: Callable[[float], Any] = time.sleep,
) -> DeliveryReport:
    """`closeloop deliver`: passes of :func:`deliver_due`; with ``once``, one pass; else every
    ``poll_seconds`` until ``should_stop()`` (checked between batches, so the batch in flight
    is finished and marked)."""
    clock = clock or app.clock
    policy_ = policy(app)
    own = channels is None
    chans = make_channels(app) if channels is None else channels
    render = make_renderer(app)
    total = DeliveryReport()
    try:
        while not should_stop():
            done = deliver_due(
                app, clock(), batch=batch, channels=chans, renderer=render, should_stop=should_stop
            )
            total.add(done)
            if on_pass is not None:
                on_pass(done)
            if once:
                break
            wait(policy_.poll_seconds)
    finally:
        if own:
            close_channels(chans)
    return total


_JOB_RUNTIME: dict[int, tuple[App, dict[str, Channel], Renderer]] = {}


def deliver_job(
    app: App, now: datetime, *, should_stop: Callable[[], bool] | None = None
) -> dict[str, int]:
    """The scheduler's job: one pass at ``now``, with channels kept between runs (a webhook
    client keeps its connections)."""
    cached = _JOB_RUNTIME.get(id(app))
    if cached is None or cached[0] is not app:
        cached = (app, make_channels(app), make_renderer(app))
        _JOB_RUNTIME[id(app)] = cached
    _, chans, render = cached
    return deliver_due(app, now, channels=chans, renderer=render, should_stop=should_stop).as_dict()


# --- reading and repairing the outbox ---------------------------------------------------------


def _iso(value: datetime | None, app: App) -> str | None:
    return value.astimezone(app.tz).isoformat(timespec="seconds") if value else None


def list_outbox(
    app: App,
    *,
    status: str | None = None,
    ticket: str | None = None,
    limit: int | None = 50,
    notice_id: int | None = None,
) -> list[dict[str, Any]]:
    """Outbox rows, newest first: id, ticket, recipient (handle, or the address of someone
    without an account), channel, kind, status, attempts, last_error, idempotency_key,
    created_at, sent_at."""
    if status is not None and status not in STATUSES:
        raise Invalid("outbox.status", status=status, statuses=", ".join(STATUSES))
    if limit is not None and limit < 1:
        raise Invalid("outbox.limit")
    q = select(
        notifications,
        tickets.c.ref.label("ticket_ref"),
        people.c.handle.label("handle"),
    ).select_from(
        notifications.outerjoin(tickets, tickets.c.id == notifications.c.ticket_id).outerjoin(
            people, people.c.id == notifications.c.recipient_id
        )
    )
    with read_only(app.engine) as conn:
        if ticket is not None:
            if conn.execute(select(tickets.c.id).where(tickets.c.ref == ticket)).first() is None:
                raise NotFound("ticket.not_found", ref=ticket)
            q = q.where(tickets.c.ref == ticket)
        if status is not None:
            q = q.where(notifications.c.status == status)
        if notice_id is not None:
            q = q.where(notifications.c.id == notice_id)
        q = q.order_by(notifications.c.id.desc())
        if limit is not None:
            q = q.limit(limit)
        return [
            {
                "id": r.id,
                "ticket": r.ticket_ref,
                "recipient": r.handle if r.handle is not None else r.address,
                "channel": r.channel,
                "kind": r.kind,
                "status": r.status,
                "attempts": r.attempts,
                "last_error": r.last_error,
                "idempotency_key": r.idempotency_key,
                "created_at": _iso(r.created_at, app),
                # the earliest it may be delivered (quiet hours); the creation time otherwise
                "not_before": _iso(r.not_before or r.created_at, app),
                "sent_at": _iso(r.sent_at, app),
            }
            for r in conn.execute(q)
        ]


def dead_notices(app: App, *, limit: int | None = 100) -> list[dict[str, Any]]:
    """Notices that gave up, newest first, with their error: for the supervisors' board."""
    return list_outbox(app, status="dead", limit=limit)


def retry(app: App, notice_id: int, now: datetime) -> dict[str, Any]:
    """Put a dead notice back to pending, due at ``now``; attempts are kept (so it gets one
    more try unless max_attempts is raised). Anything but a dead notice is a Conflict."""
    with app.engine.begin() as conn:
        row = conn.execute(
            select(notifications.c.status).where(notifications.c.id == notice_id)
        ).first()
        if row is None:
            raise NotFound("notice.not_found", notice_id=notice_id)
        if row.status != "dead":
            raise Conflict("notice.not_dead", notice_id=notice_id, status=row.status)
        conn.execute(
            update(notifications)
            .where(notifications.c.id == notice_id, notifications.c.status == "dead")
            .values(status="pending", next_attempt_at=now, claimed_until=None)
        )
    [out] = list_outbox(app, notice_id=notice_id)
    return out


def preview_message(app: App, notice: Notice, now: datetime) -> Message:
    """Render one notice as the deliverer would at ``now`` (for `closeloop notify preview`)."""
    from closeloop.notices import NoticeError

    with read_only(app.engine) as conn:
        [p] = prepare(app, conn, [notice], now, make_renderer(app))
    if p.message is None:
        raise NoticeError("notice.cannot_render", reason=p.error or "cannot render")
    return p.message
