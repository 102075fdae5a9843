"""The context the engine passes to :meth:`notifiers.render.Renderer.render`, kind by kind.

Every key listed here must be present (templates use StrictUndefined); a value typed
``X | None`` may be None and the templates then leave that line out. Datetimes are aware
(UTC is fine: templates show them in the renderer's zone); durations are timedeltas and are
never negative (the template words them as "left" or "late").

Names (``*_name``) are already in the recipient's language: the engine looks them up from
the workflow and grid data, the templates do not translate domain words.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NotRequired, TypedDict


class Recipient(TypedDict):
    name: str
    handle: str  # login or short id; the built-in templates do not show it


class HistoryEntry(TypedDict):
    at: datetime
    step_name: str  # e.g. 上报, 整改完成, 退回返工
    by_name: str
    note: str | None


class TicketView(TypedDict):
    ref: str  # e.g. EP-20260402-0007
    category: str  # code, e.g. random_piling
    category_name: str  # e.g. 乱堆乱放
    action_name: str  # the assault action, e.g. 大清理
    title: str
    description: str
    address: str | None
    grid_code: str
    grid_name: str
    grid_path: str  # e.g. "开发区 / 第一工作片区 / 堰头村 / 堰头村第3户组"
    responsible_grid_name: str
    assignee_name: str
    assignee_phone: str | None
    state: str
    state_name: str  # e.g. 待整改
    stage: str | None  # fix | verify | close; None in a state without a deadline
    stage_name: str | None  # e.g. 整改
    due_at: datetime | None  # deadline of the current stage
    escalation_level: int  # 0 = not escalated; 1.. = rungs climbed
    rework_count: int
    url: str | None  # link to the ticket page; None when no base URL is configured
    history: list[HistoryEntry]  # the last five events, oldest first


class EscalationView(TypedDict):
    level: int  # grid level now supervising: 3 small, 2 medium, 1 zone
    level_name: str  # e.g. 中网格
    round: int  # 1 for the first supervision notice of this ticket, 2 for the next...
    stage_name: str  # the stage whose deadline was missed, e.g. 整改
    deadline: datetime  # the deadline that was missed
    late_by: timedelta  # how late, at the time of the notice
    failed_grid_name: str
    failed_leader_name: str
    failed_leader_phone: str | None
    supervising_grid_name: str
    contact_name: str  # whom the recipient should call about it
    contact_phone: str | None


class ReminderView(TypedDict):
    deadline: datetime
    remaining: timedelta
    fraction: float  # share of the stage time already used, e.g. 0.5
    late_by: timedelta  # zero before the deadline; after it, the leader who is late is told
    review: bool  # a deferral's review date: the supervisor who deferred is told


class ReportView(TypedDict):
    week: str  # ISO week, e.g. 2026-W14
    url: str | None  # None: the report travels as an attachment
    summary: list[str]  # a few lines, already worded


class MinutesView(TypedDict):
    title: str  # e.g. 会议纪要 · 示范例会 · 2026-04-07
    at: str  # the meeting's time, ISO 8601 in the zone
    place: str  # the grid it was held at
    summary: list[str]  # the decisions, one line each, already worded


class CaseView(TypedDict):
    """An accountability case (问责) of the monthly exam, as it stood when the notice was queued:
    every figure is the one the board was published with, never recomputed."""

    event: str  # opened | closed
    role: str  # owner: the supervisor who handles it | leader: the grid's leader
    grid_code: str
    grid_name: str
    month: str  # YYYY-MM, the month examined
    basis_name: str | None  # e.g. 月考 / 市考核; None in a closing notice
    score: str | None  # the assessed score, decimal text as published; None when closed
    floor: str | None  # the floor it fell below, as configured at publication; None when closed
    due_on: str  # YYYY-MM-DD in the zone
    owner_name: str
    outcome: str | None  # the closing outcome; None in an opening notice
    url: str | None  # the case on /accountability (owner and leader alike); None without a base URL


class BaseContext(TypedDict):
    now: datetime
    locale: str  # zh_CN | en
    recipient: Recipient


class TicketContext(BaseContext):
    ticket: TicketView


# One alias per kind, so the engine can annotate what it builds.
AssignmentContext = TicketContext
VerificationRequestContext = TicketContext
ClosureContext = TicketContext


class ReminderContext(TicketContext):
    reminder: ReminderView


class SummaryView(TypedDict):
    """A supervisor's daily 督办 summary: every ticket still late under them."""

    day: str  # the working day it belongs to, YYYY-MM-DD in the zone
    items: list[TicketView]  # new since the last summary first, then the longest late
    new: list[str]  # refs of the tickets new since the last summary


class SupervisionContext(TicketContext):
    escalation: EscalationView
    summary: NotRequired[SummaryView]  # repeats at the zone: one summary per working day


class RejectionContext(TicketContext):
    reason: str


class DigestContext(BaseContext):
    items: list[TicketView]  # open tickets of the recipient's grids
    period_start: datetime
    period_end: datetime  # items due before this are "due in the period"


class WeeklyReportContext(BaseContext):
    report: ReportView


class MeetingMinutesContext(BaseContext):
    minutes: MinutesView


class AccountabilityContext(BaseContext):
    case: CaseView


NoticeContext = (
    TicketContext
    | ReminderContext
    | SupervisionContext
    | RejectionContext
    | DigestContext
    | WeeklyReportContext
    | MeetingMinutesContext
    | AccountabilityContext
)

CONTEXT_TYPES: dict[str, type] = {
    "assignment": AssignmentContext,
    "reminder": ReminderContext,
    "supervision": SupervisionContext,
    "verification_request": VerificationRequestContext,
    "rejection": RejectionContext,
    "closure": ClosureContext,
    "digest": DigestContext,
    "weekly_report": WeeklyReportContext,
    "meeting_minutes": MeetingMinutesContext,
    "accountability": AccountabilityContext,
}
