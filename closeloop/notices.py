"""What a notice says: the render context of an outbox row, read from the database at send time.

An outbox row holds only what the notice is about (kind, recipient, ticket, a small payload); the
words are made when it is sent, so a notice sent late shows the ticket as it is then (its state,
deadline, last five events), never a stale copy. This module turns a batch of rows into
:class:`notifiers.Message` objects, key for key what ``notifiers/context.py`` defines, with as
few queries as the batch allows (one per table, not one per row).

A row that can never render (no email address for an email notice, a missing escalation row,
a template that fails) becomes a :class:`NoticeError`: the deliverer marks it dead at once with
that error, because sending it again would fail the same way.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, select

from closeloop.app import App
from closeloop.grid import level_name
from closeloop.models import escalations, grids, notifications, people, ticket_events, tickets
from closeloop.tickets import Invalid
from notifiers import Attachment, Message, Renderer, RenderError
from notifiers.context import (
    CaseView,
    EscalationView,
    HistoryEntry,
    MinutesView,
    Recipient,
    ReminderView,
    ReportView,
    TicketView,
)
from notifiers.message import CHANNEL_NAMES

HISTORY_LENGTH = 5
TICKET_PATH = "/tickets/{ref}"  # the ticket page under the base URL
CASE_PATH = "/accountability#case-{id}"  # an accountability case on its page

# Words the engine supplies itself (the workflow and grid data have the rest).
_WORDS = {
    "zh_CN": {
        "system": "系统",
        "anonymous": "匿名群众",
        "unassigned": "未指派",
        "no_leader": "未设负责人",
        "dear_reporter": "市民朋友",
        "basis_exam": "月考",
        "basis_city": "市考核",
    },
    "en": {
        "system": "system",
        "anonymous": "anonymous reporter",
        "unassigned": "unassigned",
        "no_leader": "no leader",
        "dear_reporter": "reporter",
        "basis_exam": "monthly exam",
        "basis_city": "city assessment",
    },
}


class NoticeError(Invalid):
    """A notice that cannot be made from what is stored; sending it again cannot help."""


@dataclass(frozen=True)
class Notice:
    """One outbox row, as the deliverer claimed it."""

    id: int
    kind: str
    channel: str
    locale: str
    idempotency_key: str
    ticket_id: int | None = None
    recipient_id: int | None = None
    address: str | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)
    attempts: int = 0

    @classmethod
    def from_row(cls, row: Any) -> Notice:
        m = row._mapping
        return cls(
            id=m["id"],
            kind=m["kind"],
            channel=m["channel"],
            locale=m["locale"],
            idempotency_key=m["idempotency_key"],
            ticket_id=m["ticket_id"],
            recipient_id=m["recipient_id"],
            address=m["address"],
            payload=dict(m["payload"] or {}),
            attempts=m["attempts"],
        )


@dataclass(frozen=True)
class Prepared:
    """A notice ready to send (``message``), or the reason it never can be (``error``)."""

    notice: Notice
    message: Message | None = None
    error: str | None = None


# --- settings ---------------------------------------------------------------------------------


def base_url(app: App) -> str | None:
    """``[notifiers] base_url``, else ``[web] public_url``; None when neither is set."""
    for section, key in (("notifiers", "base_url"), ("web", "public_url")):
        value = app.settings.section(section).get(key, "")
        if not isinstance(value, str):
            raise ValueError(f"[{section}] {key} = {value!r} must be a string")
        if value.strip():
            return value.strip().rstrip("/")
    return None


def ticket_url(base: str | None, ref: str) -> str | None:
    return None if base is None else base + TICKET_PATH.format(ref=ref)


def supervision_contact(app: App) -> str | None:
    """``[notifiers] supervision_contact``: the handle a supervision notice names as contact."""
    value = app.settings.section("notifiers").get("supervision_contact", "")
    if not isinstance(value, str):
        raise ValueError(f"[notifiers] supervision_contact = {value!r} must be a handle")
    return value.strip() or None


# --- loading ----------------------------------------------------------------------------------


@dataclass
class _Facts:
    """Everything about tickets, people, grids and escalations a batch of notices needs."""

    tickets: dict[int, Any] = field(default_factory=dict)
    people: dict[int, Any] = field(default_factory=dict)
    grids: dict[int, Any] = field(default_factory=dict)
    events: dict[int, list[Any]] = field(default_factory=dict)
    escalations: dict[int, Any] = field(default_factory=dict)
    # The n-th supervision of its ticket (escalations.round counts only repeats at the zone).
    escalation_ordinals: dict[int, int] = field(default_factory=dict)
    contact: Any = None
    # supervision summaries: notice id -> (ticket ids listed, those new since the last summary)
    summaries: dict[int, tuple[list[int], set[int]]] = field(default_factory=dict)


def _load_people(conn: Connection, ids: Iterable[int | None], facts: _Facts) -> None:
    wanted = {i for i in ids if i is not None} - facts.people.keys()
    if wanted:
        for p in conn.execute(select(people).where(people.c.id.in_(wanted))):
            facts.people[p.id] = p


def _load_grids(conn: Connection, ids: Iterable[int | None], facts: _Facts) -> None:
    wanted = {i for i in ids if i is not None} - facts.grids.keys()
    if not wanted:
        return
    rows = list(conn.execute(select(grids).where(grids.c.id.in_(wanted))))
    for g in rows:
        facts.grids[g.id] = g
    # Every ancestor too: the grid path in a notice names the grids from the zone down.
    ancestors = {int(i) for g in rows for i in g.path.strip("/").split("/")} - facts.grids.keys()
    if ancestors:
        for g in conn.execute(select(grids).where(grids.c.id.in_(ancestors))):
            facts.grids[g.id] = g


def _load_tickets(conn: Connection, ids: Iterable[int | None], facts: _Facts) -> None:
    wanted = {i for i in ids if i is not None} - facts.tickets.keys()
    if not wanted:
        return
    for t in conn.execute(select(tickets).where(tickets.c.id.in_(wanted))):
        facts.tickets[t.id] = t
    ranked = (
        select(
            ticket_events,
            func.row_number()
            .over(partition_by=ticket_events.c.ticket_id, order_by=ticket_events.c.id.desc())
            .label("rank"),
        )
        .where(ticket_events.c.ticket_id.in_(wanted))
        .subquery()
    )
    recent = conn.execute(
        select(ranked)
        .where(ranked.c.rank <= HISTORY_LENGTH)
        .order_by(ranked.c.ticket_id, ranked.c.id)
    )
    for e in recent:
        facts.events.setdefault(e.ticket_id, []).append(e)
    loaded = [facts.tickets[i] for i in wanted if i in facts.tickets]
    _load_grids(conn, (g for t in loaded for g in (t.grid_id, t.responsible_grid_id)), facts)
    _load_people(
        conn,
        [
            *(t.assignee_id for t in loaded),
            *(e.actor_id for i in wanted for e in facts.events.get(i, [])),
        ],
        facts,
    )


def _load_escalations(conn: Connection, ids: Iterable[int], facts: _Facts) -> None:
    wanted = set(ids) - facts.escalations.keys()
    if not wanted:
        return
    rows = list(conn.execute(select(escalations).where(escalations.c.id.in_(wanted))))
    for r in rows:
        facts.escalations[r.id] = r
    siblings = conn.execute(
        select(escalations.c.id, escalations.c.ticket_id)
        .where(escalations.c.ticket_id.in_({r.ticket_id for r in rows}))
        .order_by(escalations.c.ticket_id, escalations.c.at, escalations.c.id)
    )
    count: dict[int, int] = {}
    for sibling in siblings:
        count[sibling.ticket_id] = count.get(sibling.ticket_id, 0) + 1
        facts.escalation_ordinals[sibling.id] = count[sibling.ticket_id]
    _load_grids(conn, (g for r in rows for g in (r.grid_id, r.failed_grid_id)), facts)
    failed = [facts.grids[r.failed_grid_id] for r in rows if r.failed_grid_id is not None]
    _load_people(conn, [*(g.leader_id for g in failed), *(r.supervisor_id for r in rows)], facts)


def _int(payload: Mapping[str, Any], key: str, notice: Notice) -> int:
    value = payload.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise NoticeError("notice.payload_int", kind=notice.kind, id=notice.id, key=key)
    return value


def _datetime(payload: Mapping[str, Any], key: str, notice: Notice) -> datetime:
    value = payload.get(key)
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise NoticeError("notice.payload_time", kind=notice.kind, id=notice.id, key=key)
    return parsed


# --- views ------------------------------------------------------------------------------------


class _Builder:
    """Turns loaded facts into the TypedDicts of notifiers/context.py for one locale at a time."""

    def __init__(self, app: App, facts: _Facts, now: datetime) -> None:
        self.app = app
        self.wf = app.workflow
        self.facts = facts
        self.now = now
        self.base = base_url(app)

    def words(self, locale: str) -> Mapping[str, str]:
        return _WORDS["en" if locale.startswith("en") else "zh_CN"]

    def person_name(self, person_id: int | None, locale: str) -> str:
        person = self.facts.people.get(person_id) if person_id is not None else None
        return str(person.name) if person is not None else self.words(locale)["unassigned"]

    def grid_path(self, grid_id: int) -> str:
        g = self.facts.grids[grid_id]
        return " / ".join(self.facts.grids[int(i)].name for i in g.path.strip("/").split("/") if i)

    def history(self, ticket_id: int, locale: str) -> list[HistoryEntry]:
        out: list[HistoryEntry] = []
        words = self.words(locale)
        for e in self.facts.events.get(ticket_id, []):
            step = self.wf.steps.get(e.step)
            if e.actor_id is not None and e.actor_id in self.facts.people:
                by = str(self.facts.people[e.actor_id].name)
            elif e.actor_label and e.actor_label != "system":
                by = str(e.actor_label)
            elif e.step == "submit":
                by = words["anonymous"]
            else:
                by = words["system"]
            out.append(
                {
                    "at": e.at,
                    "step_name": step.label.get(locale) if step else str(e.step),
                    "by_name": by,
                    "note": e.note or None,
                }
            )
        return out

    def ticket(self, ticket_id: int, locale: str) -> TicketView:
        t = self.facts.tickets.get(ticket_id)
        if t is None:
            raise NoticeError("notice.no_ticket_id", ticket_id=ticket_id)
        category = self.wf.category(t.category)
        action = self.wf.actions.get(category.action)
        state = self.wf.states.get(t.state)
        stage = self.wf.stages.get(t.stage) if t.stage else None
        assignee = self.facts.people.get(t.assignee_id) if t.assignee_id is not None else None
        home = self.facts.grids[t.grid_id]
        return {
            "ref": t.ref,
            "category": t.category,
            "category_name": category.label.get(locale),
            "action_name": action.get(locale) if action else category.action,
            "title": t.title,
            "description": t.description or "",
            "address": t.address or None,
            "grid_code": home.code,
            "grid_name": home.name,
            "grid_path": self.grid_path(t.grid_id),
            "responsible_grid_name": self.facts.grids[t.responsible_grid_id].name,
            "assignee_name": self.person_name(t.assignee_id, locale),
            "assignee_phone": (assignee.phone or None) if assignee is not None else None,
            "state": t.state,
            "state_name": state.label.get(locale) if state else t.state,
            "stage": t.stage,
            "stage_name": stage.get(locale) if stage else None,
            "due_at": t.due_at,
            "escalation_level": t.escalation_level,
            "rework_count": t.rework_count,
            "url": ticket_url(self.base, t.ref),
            "history": self.history(t.id, locale),
        }

    def escalation(self, escalation_id: int, locale: str) -> EscalationView:
        r = self.facts.escalations.get(escalation_id)
        if r is None:
            raise NoticeError("notice.no_escalation", escalation_id=escalation_id)
        words = self.words(locale)
        failed = self.facts.grids.get(r.failed_grid_id) if r.failed_grid_id else None
        leader = (
            self.facts.people.get(failed.leader_id)
            if failed is not None and failed.leader_id is not None
            else None
        )
        contact = self.facts.contact or leader
        stage = self.wf.stages.get(r.stage)
        return {
            "level": r.level,
            "level_name": level_name(r.level, locale),
            "round": self.facts.escalation_ordinals[r.id],
            "stage_name": stage.get(locale) if stage else str(r.stage),
            "deadline": r.deadline,
            "late_by": max(self.now - r.deadline, timedelta(0)),
            "failed_grid_name": failed.name if failed is not None else "",
            "failed_leader_name": leader.name if leader is not None else words["no_leader"],
            "failed_leader_phone": (leader.phone or None) if leader is not None else None,
            "supervising_grid_name": self.facts.grids[r.grid_id].name,
            "contact_name": contact.name if contact is not None else words["no_leader"],
            "contact_phone": (contact.phone or None) if contact is not None else None,
        }


def _recipient(b: _Builder, notice: Notice) -> Recipient:
    if notice.recipient_id is not None:
        person = b.facts.people.get(notice.recipient_id)
        if person is None:
            raise NoticeError("notice.no_person", id=notice.id, recipient_id=notice.recipient_id)
        return {"name": person.name, "handle": person.handle}
    # Someone without an account: the reporter of the ticket, by the name they gave.
    t = b.facts.tickets.get(notice.ticket_id) if notice.ticket_id is not None else None
    name = (t.reporter_name if t is not None else None) or b.words(notice.locale)["dear_reporter"]
    return {"name": name, "handle": notice.address or ""}


def address_for(notice: Notice, person: Any) -> str:
    """Where the channel sends: person.email / person.webhook (or the row's own address);
    nothing for console and file. A missing address is a NoticeError."""
    if notice.channel not in CHANNEL_NAMES:
        raise NoticeError(
            "notice.unknown_channel",
            id=notice.id,
            channel=notice.channel,
            known=", ".join(CHANNEL_NAMES),
        )
    if notice.channel in ("console", "file"):
        return ""
    own = (notice.address or "").strip()
    if own:
        return own
    column = "email" if notice.channel == "email" else "webhook"
    value = (getattr(person, column, None) or "").strip() if person is not None else ""
    if not value:
        who = f"{person.name} ({person.handle})" if person is not None else "the recipient"
        raise NoticeError("notice.no_address", who=who, column=column, channel=notice.channel)
    return str(value)


# --- contexts per kind ------------------------------------------------------------------------


def _report(notice: Notice) -> tuple[ReportView, tuple[Attachment, ...]]:
    p = notice.payload
    week = p.get("week")
    if not isinstance(week, str) or not week:
        raise NoticeError("notice.weekly_week", id=notice.id)
    url = p.get("url") or None
    summary = p.get("summary", [])
    if not isinstance(summary, list) or not all(isinstance(s, str) for s in summary):
        raise NoticeError("notice.weekly_summary", id=notice.id)
    attachments: tuple[Attachment, ...] = ()
    file = p.get("file")
    if file:
        path = Path(str(file))
        if path.is_file():
            ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            attachments = (Attachment(path.name, ctype, path.read_bytes()),)
        elif url is None:
            raise NoticeError("notice.weekly_file", path=path)
    elif url is None:
        raise NoticeError("notice.weekly_where", id=notice.id)
    return {"week": week, "url": url, "summary": list(summary)}, attachments


def _minutes(notice: Notice) -> tuple[MinutesView, tuple[Attachment, ...]]:
    p = notice.payload
    values = {k: p.get(k) for k in ("title", "at", "place")}
    missing = [k for k, v in values.items() if not isinstance(v, str) or not v]
    if missing:
        raise NoticeError("notice.minutes_missing", id=notice.id, missing=", ".join(missing))
    summary = p.get("summary", [])
    if not isinstance(summary, list) or not all(isinstance(s, str) for s in summary):
        raise NoticeError("notice.minutes_summary", id=notice.id)
    view: MinutesView = {
        "title": str(values["title"]),
        "at": str(values["at"]),
        "place": str(values["place"]),
        "summary": list(summary),
    }
    text = p.get("markdown")
    attachments: tuple[Attachment, ...] = ()
    if isinstance(text, str) and text:
        name = f"minutes-{p.get('meeting_id', notice.id)}.md"
        attachments = (Attachment(name, "text/markdown; charset=utf-8", text.encode()),)
    return view, attachments


_CASE_TEXTS = ("grid", "grid_name", "month", "due_on", "owner_name")


def _case(b: _Builder, notice: Notice) -> CaseView:
    """An accountability notice says what its payload held when it was queued: the board's score
    and floor of that publication, not what the exam settings say today."""
    p = notice.payload
    event = p.get("event")
    opened = event == "opened"
    wanted = (*_CASE_TEXTS, *(("basis", "score", "floor") if opened else ("outcome",)))
    missing = [k for k in wanted if not isinstance(p.get(k), str) or not p.get(k)]
    if event not in ("opened", "closed") or p.get("role") not in ("owner", "leader"):
        missing.insert(0, "event/role")
    if missing:
        raise NoticeError("notice.case_missing", id=notice.id, missing=", ".join(missing))
    case_id = _int(p, "case_id", notice)
    words = b.words(notice.locale)
    return {
        "event": str(event),
        "role": str(p["role"]),
        "grid_code": str(p["grid"]),
        "grid_name": str(p["grid_name"]),
        "month": str(p["month"]),
        "basis_name": words["basis_city" if p.get("basis") == "city" else "basis_exam"]
        if opened
        else None,
        "score": str(p["score"]) if opened else None,
        "floor": str(p["floor"]) if opened else None,
        "due_on": str(p["due_on"]),
        "owner_name": str(p["owner_name"]),
        "outcome": None if opened else str(p["outcome"]),
        # The owner closes the case there and the grid's leader follows it there.
        "url": b.base + CASE_PATH.format(id=case_id) if b.base is not None else None,
    }


def _context(
    b: _Builder, notice: Notice, digest_items: Mapping[int, Sequence[int]]
) -> tuple[dict[str, Any], tuple[Attachment, ...]]:
    locale = notice.locale
    ctx: dict[str, Any] = {"now": b.now, "locale": locale, "recipient": _recipient(b, notice)}
    p = notice.payload
    if notice.kind == "weekly_report":
        ctx["report"], attachments = _report(notice)
        return ctx, attachments
    if notice.kind == "meeting_minutes":
        ctx["minutes"], attachments = _minutes(notice)
        return ctx, attachments
    if notice.kind == "accountability":
        ctx["case"] = _case(b, notice)
        return ctx, ()
    if notice.kind == "digest":
        ctx["items"] = [b.ticket(i, locale) for i in digest_items.get(notice.id, ())]
        ctx["period_start"] = _datetime(p, "at", notice)
        ctx["period_end"] = _datetime(p, "until", notice)
        return ctx, ()
    if notice.ticket_id is None:
        raise NoticeError("notice.no_ticket", kind=notice.kind, id=notice.id)
    ctx["ticket"] = b.ticket(notice.ticket_id, locale)
    if notice.kind == "reminder":
        deadline = _datetime(p, "deadline", notice)
        fraction = p.get("fraction")
        if not isinstance(fraction, int | float) or isinstance(fraction, bool):
            raise NoticeError("notice.reminder_fraction", id=notice.id)
        reminder: ReminderView = {
            "deadline": deadline,
            "remaining": max(deadline - b.now, timedelta(0)),
            "fraction": float(fraction),
            "late_by": max(b.now - deadline, timedelta(0)) if p.get("late") else timedelta(0),
            "review": bool(p.get("review")),
        }
        ctx["reminder"] = reminder
    elif notice.kind == "supervision":
        ctx["escalation"] = b.escalation(_int(p, "escalation_id", notice), locale)
        if p.get("summary"):
            ids, new = b.facts.summaries.get(notice.id, ([], set()))
            ctx["summary"] = {
                "day": str(p.get("day", "")),
                "items": [b.ticket(i, locale) for i in ids],
                "new": [b.facts.tickets[i].ref for i in ids if i in new],
            }
    elif notice.kind == "rejection":
        reason = p.get("reason")
        if not isinstance(reason, str):
            raise NoticeError("notice.rejection_reason", id=notice.id)
        ctx["reason"] = reason
    elif notice.kind not in ("assignment", "verification_request", "closure"):
        raise NoticeError("notice.unknown_kind", id=notice.id, kind=notice.kind)
    return ctx, ()


# --- the digest's items -----------------------------------------------------------------------


def digest_ticket_ids(app: App, conn: Connection, notice: Notice) -> list[int]:
    """The tickets a digest lists: those the recipient must act on now (their inbox: open on
    the grids they lead, fixes waiting for them to check), plus the tickets of the notices it
    collected that are still open. Soonest deadline first, no deadline last."""
    from closeloop.digest import open_ticket_ids_for

    ids = set(open_ticket_ids_for(conn, notice.recipient_id)) if notice.recipient_id else set()
    collected = notice.payload.get("collected", [])
    if collected:
        about = conn.execute(
            select(notifications.c.ticket_id)
            .where(notifications.c.id.in_(collected), notifications.c.ticket_id.is_not(None))
            .distinct()
        ).scalars()
        open_states = set(app.workflow.states) - {
            s.name for s in app.workflow.states.values() if s.final
        }
        for tid, state in conn.execute(
            select(tickets.c.id, tickets.c.state).where(tickets.c.id.in_(list(about)))
        ):
            if state in open_states:
                ids.add(tid)
    if not ids:
        return []
    order = conn.execute(
        select(tickets.c.id)
        .where(tickets.c.id.in_(ids))
        .order_by(tickets.c.due_at.is_(None), tickets.c.due_at, tickets.c.id)
    ).scalars()
    return list(order)


def summary_ticket_ids(
    app: App, conn: Connection, notice: Notice, now: datetime
) -> tuple[list[int], set[int]]:
    """What a supervisor's daily 督办 summary lists: every ticket they supervise that is still
    late at `now`, those with a rung since their previous summary first (then the longest
    late); and which are new."""
    stage_states = [k for k, st in app.workflow.states.items() if st.stage is not None]
    t, x, n = tickets, escalations, notifications
    late = (
        conn.execute(
            select(t.c.id)
            .where(
                t.c.supervisor_id == notice.recipient_id,
                t.c.state.in_(stage_states),
                t.c.escalation_level > 0,
                t.c.due_at <= now,
            )
            .order_by(t.c.due_at, t.c.id)
        )
        .scalars()
        .all()
    )
    if not late:
        return [], set()
    since = conn.execute(
        select(func.max(n.c.created_at)).where(
            n.c.recipient_id == notice.recipient_id,
            n.c.kind == "supervision",
            n.c.idempotency_key.like("supervision:summary:%"),
            n.c.id < notice.id,
            ~n.c.idempotency_key.like(
                f"supervision:summary:{notice.recipient_id}:{notice.payload.get('day')}:%"
            ),
        )
    ).scalar()
    new: set[int] = set(late)
    if since is not None:
        new = set(
            conn.execute(
                select(x.c.ticket_id)
                .where(
                    x.c.ticket_id.in_(late),
                    x.c.supervisor_id == notice.recipient_id,
                    x.c.at > since,
                )
                .distinct()
            ).scalars()
        )
    return [i for i in late if i in new] + [i for i in late if i not in new], new


# --- the whole batch --------------------------------------------------------------------------


def _load_for(
    app: App, conn: Connection, batch: Sequence[Notice], now: datetime
) -> tuple[_Builder, dict[int, list[int]]]:
    if now.tzinfo is None:
        raise ValueError("notices need an aware `now`")
    facts = _Facts()
    digest_items = {n.id: digest_ticket_ids(app, conn, n) for n in batch if n.kind == "digest"}
    for n in batch:
        if n.kind == "supervision" and n.payload.get("summary") and n.recipient_id is not None:
            facts.summaries[n.id] = summary_ticket_ids(app, conn, n, now)
    _load_tickets(
        conn,
        [
            *(n.ticket_id for n in batch),
            *(i for ids in digest_items.values() for i in ids),
            *(i for ids, _ in facts.summaries.values() for i in ids),
        ],
        facts,
    )
    _load_people(conn, (n.recipient_id for n in batch), facts)
    esc_ids = [
        n.payload["escalation_id"]
        for n in batch
        if n.kind == "supervision" and isinstance(n.payload.get("escalation_id"), int)
    ]
    _load_escalations(conn, esc_ids, facts)
    if esc_ids and (handle := supervision_contact(app)) is not None:
        facts.contact = conn.execute(select(people).where(people.c.handle == handle)).first()
        if facts.contact is None:
            raise ValueError(f"[notifiers] supervision_contact: unknown person {handle!r}")
    return _Builder(app, facts, now.astimezone(UTC)), digest_items


def prepare(
    app: App,
    conn: Connection,
    batch: Sequence[Notice],
    now: datetime,
    renderer: Renderer,
) -> list[Prepared]:
    """Render every notice of the batch into a Message (or the reason it cannot be one),
    reading what they need with a few queries on ``conn``."""
    builder, digest_items = _load_for(app, conn, batch, now)
    out: list[Prepared] = []
    for notice in batch:
        try:
            out.append(Prepared(notice, message=_message(builder, notice, digest_items, renderer)))
        except (NoticeError, RenderError) as exc:
            out.append(Prepared(notice, error=str(exc)))
        except ValueError as exc:  # an unknown locale or kind, a naive datetime in the data
            out.append(Prepared(notice, error=f"cannot render: {exc}"))
    return out


def _message(
    b: _Builder, notice: Notice, digest_items: Mapping[int, Sequence[int]], renderer: Renderer
) -> Message:
    person = b.facts.people.get(notice.recipient_id) if notice.recipient_id is not None else None
    address = address_for(notice, person)
    context, attachments = _context(b, notice, digest_items)
    rendered = renderer.render(notice.kind, notice.locale, context)
    ticket = context.get("ticket")
    return Message(
        kind=notice.kind,
        channel=notice.channel,
        recipient_name=context["recipient"]["name"],
        address=address,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        markdown=rendered.markdown,
        idempotency_key=notice.idempotency_key,
        ticket_ref=ticket["ref"] if ticket is not None else None,
        attachments=attachments,
    )


def context_for(app: App, conn: Connection, notice: Notice, now: datetime) -> dict[str, Any]:
    """The render context of one notice, as the deliverer would build it at ``now``."""
    builder, digest_items = _load_for(app, conn, [notice], now)
    return _context(builder, notice, digest_items)[0]
