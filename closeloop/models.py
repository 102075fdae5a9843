"""The tables. The database is the truth: state, history, deadlines and pending notices are rows.

SQLAlchemy Core tables rather than ORM classes: the domain works on small dataclasses
(`closeloop.tickets`) and the hot paths (steps, sweeps, reports) are single statements.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from closeloop.db import UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Id = BigInteger().with_variant(Integer(), "sqlite")  # SQLite only autoincrements INTEGER keys

people = Table(
    "people",
    metadata,
    Column("id", Id, primary_key=True),
    Column("handle", String(64), nullable=False, unique=True),
    Column("name", String(100), nullable=False),
    Column("phone", String(32)),
    Column("email", String(200)),
    Column("roles", String(200), nullable=False, default=""),  # comma list: supervisor, admin
    Column("channels", String(200), nullable=False, default=""),  # comma list; '' = zone default
    Column("webhook", String(500)),
    Column("locale", String(10), nullable=False, default="zh_CN"),
    Column("digest", Boolean, nullable=False, default=False),
    Column("password_hash", String(200)),
    Column("created_at", UTCDateTime, nullable=False),
    # A disabled person cannot log in; their sessions ended and their tokens were revoked.
    Column("disabled_at", UTCDateTime),
)

grids = Table(
    "grids",
    metadata,
    Column("id", Id, primary_key=True),
    Column("code", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("level", Integer, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("parent_id", Id, ForeignKey("grids.id")),
    # Materialised path of ids ("/1/5/23/"): a subtree is one index range, never a tree walk.
    Column("path", String(400), nullable=False, unique=True),
    Column("leader_id", Id, ForeignKey("people.id")),
)

# A grid's polygon or multipolygon, GeoJSON in longitude/latitude (`closeloop grid
# import-geometry`); a table of its own so that the grid rows every step reads stay small.
grid_geometries = Table(
    "grid_geometries",
    metadata,
    Column("grid_id", Id, ForeignKey("grids.id"), primary_key=True),
    Column("geojson", Text, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

ref_counters = Table(
    "ref_counters",
    metadata,
    Column("prefix", String(32), primary_key=True),  # e.g. "EP-2026"
    Column("last", Integer, nullable=False),
)

tickets = Table(
    "tickets",
    metadata,
    Column("id", Id, primary_key=True),
    Column("ref", String(32), nullable=False, unique=True),
    Column("workflow", String(64), nullable=False),
    Column("category", String(64), nullable=False),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("address", String(300)),
    Column("lat", Float),
    Column("lon", Float),
    Column("grid_id", Id, ForeignKey("grids.id"), nullable=False),
    Column("responsible_grid_id", Id, ForeignKey("grids.id"), nullable=False),
    Column("assignee_id", Id, ForeignKey("people.id")),
    Column("state", String(32), nullable=False),
    Column("stage", String(32)),
    Column(
        "stage_no", Integer, nullable=False, default=0
    ),  # counts stage entries; keys escalations
    Column("stage_started_at", UTCDateTime),
    # The deadline the assignee of the current stage must meet: set when the stage starts, moved
    # only by an approved extension or a resume, never by escalation.
    Column("due_at", UTCDateTime),
    # When the next rung of the ladder is due (NULL: none planned): the missed deadline, then one
    # escalation interval after each rung.
    Column("next_escalation_at", UTCDateTime),
    # The next moment the sweep must look at this ticket (reminder or rung); NULL = nothing due.
    Column("next_check_at", UTCDateTime),
    Column("escalation_level", Integer, nullable=False, default=0),
    Column("escalation_round", Integer, nullable=False, default=0),
    Column("supervising_grid_id", Id, ForeignKey("grids.id")),
    Column("supervisor_id", Id, ForeignKey("people.id")),
    Column("rework_count", Integer, nullable=False, default=0),
    Column("extension_count", Integer, nullable=False, default=0),
    Column("fixed_by_id", Id, ForeignKey("people.id")),
    Column("recurrence_of_id", Id, ForeignKey("tickets.id")),
    Column("reporter_name", String(100)),
    Column("reporter_phone", String(32)),
    Column("reporter_email", String(200)),
    Column("reporter_secret_hash", String(200)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("closed_at", UTCDateTime),
    Column("version", Integer, nullable=False, default=1),
    # Where the problem came from (案件来源): public, patrol, hotline, leader, media, meeting,
    # campaign, inspection (`closeloop.service.SOURCES`).
    Column("source", String(16), nullable=False, default="public", server_default="public"),
    # Since when the ticket is urgent (紧急件; NULL: it is not): set at submission when the
    # category is urgent or the submitter says so, or later by a supervisor (`mark_urgent`).
    # Stages started from then on take the category's urgent limits; reports read "urgent at
    # the end of a period" from it, a stored fact.
    Column("urgent_at", UTCDateTime),
    Index("ix_tickets_next_check", "next_check_at"),
    Index("ix_tickets_responsible_state", "responsible_grid_id", "state"),
    Index("ix_tickets_grid_created", "grid_id", "created_at"),
    Index("ix_tickets_recurrence", "grid_id", "category", "closed_at"),
    Index("ix_tickets_assignee_state", "assignee_id", "state"),
    Index("ix_tickets_state_due", "state", "due_at"),
    Index("ix_tickets_created", "created_at"),  # reports: what was filed in a period
)

ticket_events = Table(
    "ticket_events",
    metadata,
    Column("id", Id, primary_key=True),
    Column("ticket_id", Id, ForeignKey("tickets.id"), nullable=False),
    Column("at", UTCDateTime, nullable=False),  # when it happened (back-filled steps differ)
    Column("recorded_at", UTCDateTime, nullable=False),  # when it was written
    Column("step", String(32), nullable=False),
    Column("actor_id", Id, ForeignKey("people.id")),  # NULL: a reporter or the system
    Column("actor_label", String(100)),  # a reporter's name, or "system"
    Column("from_state", String(32)),
    Column("to_state", String(32), nullable=False),
    Column("note", Text),
    Column("data", JSON),
    Index("ix_ticket_events_ticket", "ticket_id", "id"),
    Index("ix_ticket_events_step_at", "step", "at"),
)

# One row per stage instance (tickets.stage_no), written when the stage starts: the deadline as it
# was set then, and when and by which step the instance ended. Extensions (`extensions`, approved
# with decided_at) and deferrals (a defer ends an instance, a resume starts one) are the events
# that move it. Reports judge a period from these rows, never from today's workflow limits, and
# name who had to act from `owner_id`, never from today's assignee or grid leaders.
stages = Table(
    "stages",
    metadata,
    Column("id", Id, primary_key=True),
    Column("ticket_id", Id, ForeignKey("tickets.id"), nullable=False),
    Column("stage_no", Integer, nullable=False),
    Column("stage", String(32), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("started_by", String(32), nullable=False),  # the step that opened it
    Column("due_at", UTCDateTime, nullable=False),  # the deadline as set at the start
    Column("grid_id", Id, ForeignKey("grids.id"), nullable=False),  # the grid that must act
    Column("ended_at", UTCDateTime),
    Column("ended_by", String(32)),
    # The person who had to act, as it stood when the instance started: the ticket's assignee
    # in the fix stage, the leader of `grid_id` (the verifier) in verification and closing.
    # NULL: nobody was named (no led grid above: a supervisor verifies). Grid leaders change
    # and tickets are reassigned; this does not.
    Column("owner_id", Id, ForeignKey("people.id")),
    UniqueConstraint("ticket_id", "stage_no", name="uq_stage_instance"),
    Index("ix_stages_due", "due_at"),
    Index("ix_stages_open_due", "ended_at", "due_at"),
)

evidence = Table(
    "evidence",
    metadata,
    Column("id", Id, primary_key=True),
    Column("ticket_id", Id, ForeignKey("tickets.id"), nullable=False, index=True),
    Column("event_id", Id, ForeignKey("ticket_events.id")),
    Column("stored_name", String(200), nullable=False),  # content hash + safe extension
    Column("original_name", String(300), nullable=False),
    Column("content_type", String(100), nullable=False),
    Column("size", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

escalations = Table(
    "escalations",
    metadata,
    Column("id", Id, primary_key=True),
    Column("ticket_id", Id, ForeignKey("tickets.id"), nullable=False),
    Column("stage", String(32), nullable=False),
    Column("stage_no", Integer, nullable=False),
    Column("level", Integer, nullable=False),  # grid level now supervising (3, 2, 1)
    Column("round", Integer, nullable=False),  # repeats at the zone level count up from 1
    Column("grid_id", Id, ForeignKey("grids.id"), nullable=False),
    Column("supervisor_id", Id, ForeignKey("people.id")),
    Column("failed_grid_id", Id, ForeignKey("grids.id")),
    Column("deadline", UTCDateTime, nullable=False),  # the deadline that was missed
    Column("at", UTCDateTime, nullable=False),  # when the sweep wrote it
    # The supervision deadline (督办期限) this rung set: when the next rung comes if the stage is
    # still not done. Stored so that "督办 done on time" is judged by the limit of the day.
    Column("supervision_due", UTCDateTime),
    Column("closed_at", UTCDateTime),
    UniqueConstraint("ticket_id", "stage_no", "level", "round", name="uq_escalation_step"),
    Index("ix_escalations_at", "at"),
    Index("ix_escalations_supervision_due", "supervision_due"),
)

extensions = Table(
    "extensions",
    metadata,
    Column("id", Id, primary_key=True),
    Column("ticket_id", Id, ForeignKey("tickets.id"), nullable=False, index=True),
    Column("stage_no", Integer, nullable=False),
    Column("requested_by_id", Id, ForeignKey("people.id"), nullable=False),
    Column("requested_at", UTCDateTime, nullable=False),
    Column("reason", Text, nullable=False),
    Column("until", UTCDateTime, nullable=False),
    Column("status", String(16), nullable=False),  # pending | approved | refused
    Column("decided_by_id", Id, ForeignKey("people.id")),
    Column("decided_at", UTCDateTime),
    Column("decision_note", Text),
)

deferrals = Table(
    "deferrals",
    metadata,
    Column("id", Id, primary_key=True),
    Column("ticket_id", Id, ForeignKey("tickets.id"), nullable=False, index=True),
    Column("by_id", Id, ForeignKey("people.id"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("reason", Text, nullable=False),
    Column("review_on", UTCDateTime, nullable=False),
    Column("remaining_seconds", Float),  # stage time left when the clock stopped
    Column("resumed_at", UTCDateTime),
    Column("resumed_by_id", Id, ForeignKey("people.id")),
)

notifications = Table(
    "notifications",
    metadata,
    Column("id", Id, primary_key=True),
    Column("ticket_id", Id, ForeignKey("tickets.id")),
    Column("recipient_id", Id, ForeignKey("people.id")),
    Column("address", String(500)),  # for recipients without an account (a reporter's email)
    Column("channel", String(32), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("locale", String(10), nullable=False),
    Column("payload", JSON, nullable=False),  # what the notice is about; rendered at send time
    Column("idempotency_key", String(200), nullable=False, unique=True),
    Column("status", String(16), nullable=False),  # pending|sending|sent|dead|digested|cancelled
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    # The earliest moment it may be delivered (quiet hours); NULL or created_at: at once.
    Column("not_before", UTCDateTime),
    Column("claimed_until", UTCDateTime),
    Column("last_error", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    Index("ix_notifications_due", "status", "next_attempt_at"),
    Index("ix_notifications_ticket", "ticket_id"),
)

# --- the web service (closeloop.web.auth): API tokens, login attempts, sessions, keys ----------

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Id, primary_key=True),
    Column("person_id", Id, ForeignKey("people.id"), nullable=False, index=True),
    Column("label", String(100), nullable=False, default=""),
    # sha256 of the token: the token itself is shown once and never stored.
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    # The source of the tickets this key files (a hotline's system: "hotline"); NULL: public.
    Column("source", String(16)),
    Column("last_used_at", UTCDateTime),
    Column("revoked_at", UTCDateTime),
)

# Failed logins, kept in the database so the limit holds across web workers and restarts.
login_attempts = Table(
    "login_attempts",
    metadata,
    Column("id", Id, primary_key=True),
    Column("handle", String(64), nullable=False),
    Column("ip", String(64), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_login_attempts_key", "handle", "ip", "at"),
    Index("ix_login_attempts_at", "at"),  # old rows are swept, whoever they were for
)

web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id", Id, primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),  # sha256 of the cookie value
    Column("person_id", Id, ForeignKey("people.id"), nullable=False, index=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("seen_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("ip", String(64)),
    Column("user_agent", String(200)),
    Index("ix_web_sessions_expires", "expires_at"),  # ended sessions are swept
)

# Keys every web worker must share (the CSRF signing key), created once by whoever comes first.
web_keys = Table(
    "web_keys",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", String(128), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# Idempotency-Key of the API's and Open311's POSTs (closeloop.web.idempotency): one row per
# caller and key, with the answer once there is one, kept at least 24 hours. The unique pair
# (scope, key_hash) is what makes two requests with the same key race to one winner.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("id", Id, primary_key=True),
    Column("scope", String(100), nullable=False),  # token:ID | person:ID | anon:ADDRESS
    Column("key_hash", String(64), nullable=False),  # sha256 of the key; the key is not stored
    Column("fingerprint", String(64), nullable=False),  # sha256 of method, path and body
    Column("claim", String(32), nullable=False),  # who is running it (replaced on take-over)
    Column("status", Integer),  # null while the first request runs
    Column("content_type", String(100)),
    Column("body", LargeBinary),  # the answer, encrypted with a key derived from the key
    Column("created_at", UTCDateTime, nullable=False),
    Column("locked_until", UTCDateTime, nullable=False),  # an unanswered claim older is dead
    Column("expires_at", UTCDateTime, nullable=False),
    UniqueConstraint("scope", "key_hash", name="uq_idempotency_keys_scope_key"),
    Index("ix_idempotency_keys_expires", "expires_at"),
)

# What changed who may do what (closeloop.web.audit): tokens made and revoked, passwords set,
# people disabled. Written in the transaction of the change itself; never edited.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Id, primary_key=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(64), nullable=False),  # a handle, or "cli"
    Column("action", String(40), nullable=False),  # e.g. token.revoke, password.reset
    Column("subject", String(64), nullable=False),  # the person concerned
    Column("detail", String(500), nullable=False, default=""),
    Index("ix_audit_log_at", "at"),
)

# Reports made without logging in, per client address: the rate limit of anonymous reports and
# the daily size limit of their photos (closeloop.web.quota). Rows older than a day are swept.
anonymous_reports = Table(
    "anonymous_reports",
    metadata,
    Column("id", Id, primary_key=True),
    Column("ip", String(64), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("photo_bytes", BigInteger, nullable=False, default=0),
    Index("ix_anonymous_reports_key", "ip", "at"),
    Index("ix_anonymous_reports_at", "at"),
)

# --- reports (closeloop.reports): the monthly exam, its results, the month's campaigns ----------

# One inspector's score for one item of one answer sheet of one grid in one month (月考).
# Scores are kept as the decimal text of the file, so the exam arithmetic stays exact.
exam_lines = Table(
    "exam_lines",
    metadata,
    Column("id", Id, primary_key=True),
    Column("month", String(7), nullable=False),  # "YYYY-MM"
    Column("inspector_grid_id", Id, ForeignKey("grids.id"), nullable=False),
    Column("grid_id", Id, ForeignKey("grids.id"), nullable=False),
    Column("sheet", String(16), nullable=False),  # basic | required | bonus
    Column("item", String(200), nullable=False),
    Column("score", String(32), nullable=False),
    Column("max_score", String(32), nullable=False),
    Column("note", Text),
    Column("source", String(300)),  # the file it came from, with its line: "april.csv:12"
    Column("imported_at", UTCDateTime, nullable=False),
    Column("photo", String(80)),  # stored evidence name of the deduction's photo (the pages)
    Column("photo_label", String(200)),
    Column("entered_by", String(64)),  # the handle who entered it on a page; NULL: imported
    UniqueConstraint("month", "inspector_grid_id", "grid_id", "sheet", "item", name="uq_exam_line"),
    Index("ix_exam_lines_month", "month"),
)

# A grid's line on a month's board as published: the history of scores, tiers and penalties.
month_results = Table(
    "month_results",
    metadata,
    Column("id", Id, primary_key=True),
    Column("month", String(7), nullable=False),
    Column("grid_id", Id, ForeignKey("grids.id"), nullable=False),
    Column("rank", Integer, nullable=False),
    Column("score", String(16), nullable=False),  # decimal text, 2 places
    Column("exam", String(16), nullable=False),
    Column("on_time_rate", Float),  # 0..1; NULL: no ticket was due that month
    Column("closure_rate", Float),
    Column("tier_zh", String(32)),
    Column("tier_en", String(32)),
    Column("reward", String(16), nullable=False),
    Column("reward_lost", String(16), nullable=False),
    Column("below_floor", Boolean, nullable=False),  # accountability (问责) starts this month
    Column("penalised", Boolean, nullable=False),
    Column("penalty_source_month", String(7)),
    Column("penalty_until", String(7)),
    Column("red", Boolean, nullable=False),
    Column("yellow", Boolean, nullable=False),
    Column("computed_at", UTCDateTime, nullable=False),
    Column("city_score", String(16)),  # the city's monthly assessment, when recorded
    Column("basis", String(8)),  # which score decided tier and floor: city | exam
    UniqueConstraint("month", "grid_id", name="uq_month_result"),
    Index("ix_month_results_grid", "grid_id", "month"),
)

# The month's cross-inspection plan: each examined grid and the one grid that inspects it.
exam_plans = Table(
    "exam_plans",
    metadata,
    Column("id", Id, primary_key=True),
    Column("month", String(7), nullable=False),
    Column("inspector_grid_id", Id, ForeignKey("grids.id"), nullable=False),
    Column("grid_id", Id, ForeignKey("grids.id"), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("month", "grid_id", name="uq_exam_plan"),
)

# Where a grid's scoring stands in a month when it is scored on the pages.
exam_gradings = Table(
    "exam_gradings",
    metadata,
    Column("id", Id, primary_key=True),
    Column("month", String(7), nullable=False),
    Column("grid_id", Id, ForeignKey("grids.id"), nullable=False),
    Column("inspector_grid_id", Id, ForeignKey("grids.id"), nullable=False),
    Column("status", String(16), nullable=False),  # in_progress | submitted
    Column("updated_by", String(64), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("submitted_at", UTCDateTime),
    UniqueConstraint("month", "grid_id", name="uq_exam_grading"),
)

# What happened to a grid's scoring: saved, submitted, reopened (with the reason), imported.
exam_events = Table(
    "exam_events",
    metadata,
    Column("id", Id, primary_key=True),
    Column("month", String(7), nullable=False),
    Column("grid_id", Id, ForeignKey("grids.id"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("reason", Text),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_exam_events_month", "month", "grid_id"),
)

# The city's monthly assessment (市里月度考核) of a grid.
city_scores = Table(
    "city_scores",
    metadata,
    Column("id", Id, primary_key=True),
    Column("month", String(7), nullable=False),
    Column("grid_id", Id, ForeignKey("grids.id"), nullable=False),
    Column("score", String(16), nullable=False),
    Column("source", String(300)),
    Column("imported_at", UTCDateTime, nullable=False),
    UniqueConstraint("month", "grid_id", name="uq_city_score"),
)

# 问责: opened when a grid is assessed below the floor; closed with an outcome.
accountability_cases = Table(
    "accountability_cases",
    metadata,
    Column("id", Id, primary_key=True),
    Column("grid_id", Id, ForeignKey("grids.id"), nullable=False),
    Column("month", String(7), nullable=False),
    Column("leaders", JSON, nullable=False),  # [{grid, handle, name}] of the grid at the time
    Column("reason", Text, nullable=False),
    Column("owner", String(64), nullable=False),  # a supervisor's handle
    Column("due_on", String(10), nullable=False),  # YYYY-MM-DD, zone time
    Column("opened_at", UTCDateTime, nullable=False),
    Column("outcome", Text),
    Column("closed_by", String(64)),
    Column("closed_at", UTCDateTime),
    UniqueConstraint("grid_id", "month", name="uq_accountability_case"),
)

# Project funds (项目资金): applied for per project, approved, disbursed against the project.
fund_projects = Table(
    "fund_projects",
    metadata,
    Column("id", Id, primary_key=True),
    Column("grid_id", Id, ForeignKey("grids.id"), nullable=False),
    Column("month", String(7), nullable=False),
    Column("project", String(200), nullable=False),
    Column("purpose", Text, nullable=False),
    Column("applied", String(16), nullable=False),  # yuan, decimal text
    Column("approved", String(16)),  # NULL until decided; "0" refused
    Column("applied_by", String(64), nullable=False),
    Column("applied_at", UTCDateTime, nullable=False),
    Column("decided_by", String(64)),
    Column("decided_at", UTCDateTime),
    Index("ix_fund_projects_month", "month"),
)

# Money paid out: a month's reward to a grid, or a disbursement naming its project (专款专用).
fund_payments = Table(
    "fund_payments",
    metadata,
    Column("id", Id, primary_key=True),
    Column("kind", String(16), nullable=False),  # reward | project
    Column("grid_id", Id, ForeignKey("grids.id"), nullable=False),
    Column("month", String(7), nullable=False),
    Column("project_id", Id, ForeignKey("fund_projects.id")),
    Column("amount", String(16), nullable=False),
    Column("paid_by", String(64), nullable=False),
    Column("paid_at", UTCDateTime, nullable=False),
    Column("note", Text),
    Index("ix_fund_payments_month", "month"),
)

# The month's concentrated campaign (一月一村大会战): a day, one or more villages, one or more of
# the four actions, teams of people. A ticket counts for a campaign when its grid is in the
# subtree of one of the campaign's grids and it was filed in the campaign month (zone time),
# computed in SQL; the findings of the campaign day are also tagged (ticket_links).
campaigns = Table(
    "campaigns",
    metadata,
    Column("id", Id, primary_key=True),
    Column("month", String(7), nullable=False),
    Column("theme", String(200), nullable=False),
    Column("action", String(32), nullable=False),  # the first of `actions`
    Column("weekly_themes", JSON, nullable=False),  # list of texts, one per week of the month
    Column("created_at", UTCDateTime, nullable=False),
    Column("day", String(10)),  # "YYYY-MM-DD", the campaign day in zone time
    Column("actions", JSON),  # list of actions: clean-up | rectification | demolition | ...
    Column("focus", String(200)),  # the month's focus (每月一重点)
    Index("ix_campaigns_month", "month"),
)

campaign_grids = Table(
    "campaign_grids",
    metadata,
    Column("id", Id, primary_key=True),
    Column("campaign_id", Id, ForeignKey("campaigns.id"), nullable=False, index=True),
    Column("grid_id", Id, ForeignKey("grids.id"), nullable=False),
    Column("month", String(7), nullable=False),
    UniqueConstraint("campaign_id", "grid_id", name="uq_campaign_grid"),
)

# The teams of a campaign day (兵分多路): a team name and its people.
campaign_team_members = Table(
    "campaign_team_members",
    metadata,
    Column("id", Id, primary_key=True),
    Column("campaign_id", Id, ForeignKey("campaigns.id"), nullable=False, index=True),
    Column("team", String(100), nullable=False),
    Column("person_id", Id, ForeignKey("people.id"), nullable=False),
    UniqueConstraint("campaign_id", "team", "person_id", name="uq_campaign_team_member"),
)

# --- the people of a grid, and what links a ticket to the record it came from ------------------

# Members of a grid beside its leader (第一书记, 联村干部, 村支书, 党员代表, 执法中队 ...): they see
# the grid's inbox and act as its leader for the steps the workflow gives "responsible".
grid_members = Table(
    "grid_members",
    metadata,
    Column("id", Id, primary_key=True),
    Column("grid_id", Id, ForeignKey("grids.id"), nullable=False),
    Column("person_id", Id, ForeignKey("people.id"), nullable=False, index=True),
    Column("role", String(64), nullable=False),
    Column("duty", String(200)),  # 分工
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("grid_id", "person_id", name="uq_grid_member"),
)

# A ticket filed by a patrol, a meeting's decision or a campaign day, written with the ticket
# in the submit transaction (or, for a ticket a patrol found already filed, by the patrol).
ticket_links = Table(
    "ticket_links",
    metadata,
    Column("id", Id, primary_key=True),
    Column("ticket_id", Id, ForeignKey("tickets.id"), nullable=False, index=True),
    Column("kind", String(16), nullable=False),  # campaign | patrol | meeting
    Column("target_id", Id, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("kind", "target_id", "ticket_id", name="uq_ticket_link"),
)

# --- patrols (巡查): a leader's round of grids, with a check-in per grid -----------------------

patrols = Table(
    "patrols",
    metadata,
    Column("id", Id, primary_key=True),
    Column("person_id", Id, ForeignKey("people.id"), nullable=False, index=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("note", Text),
    Column("created_at", UTCDateTime, nullable=False),
)

patrol_visits = Table(
    "patrol_visits",
    metadata,
    Column("id", Id, primary_key=True),
    Column("patrol_id", Id, ForeignKey("patrols.id"), nullable=False),
    Column("grid_id", Id, ForeignKey("grids.id"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("lat", Float),
    Column("lon", Float),
    UniqueConstraint("patrol_id", "grid_id", name="uq_patrol_visit"),
    Index("ix_patrol_visits_at", "at"),
)

# --- meetings (定期例会): example, on-site, deployment and learning meetings ----------------------

meetings = Table(
    "meetings",
    metadata,
    Column("id", Id, primary_key=True),
    Column("kind", String(16), nullable=False),  # example | site | deployment | learning
    Column("at", UTCDateTime, nullable=False),
    Column("place_grid_id", Id, ForeignKey("grids.id"), nullable=False),
    Column("week", String(8), nullable=False),  # the weekly report the agenda was built from
    Column("agenda", JSON, nullable=False),
    Column("minutes_sent_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_meetings_at", "at"),
)

meeting_attendees = Table(
    "meeting_attendees",
    metadata,
    Column("id", Id, primary_key=True),
    Column("meeting_id", Id, ForeignKey("meetings.id"), nullable=False),
    Column("person_id", Id, ForeignKey("people.id"), nullable=False),
    UniqueConstraint("meeting_id", "person_id", name="uq_meeting_attendee"),
)

# --- 一村一月大整治: the monthly rectification record of each village, ticked off to zero -------

rectifications = Table(
    "rectifications",
    metadata,
    Column("id", Id, primary_key=True),
    Column("month", String(7), nullable=False),
    Column("grid_id", Id, ForeignKey("grids.id"), nullable=False),
    Column("focus", String(200)),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("month", "grid_id", name="uq_rectification"),
)

rectification_items = Table(
    "rectification_items",
    metadata,
    Column("id", Id, primary_key=True),
    Column("rectification_id", Id, ForeignKey("rectifications.id"), nullable=False, index=True),
    Column("source", String(16), nullable=False),  # ticket | hotspot | added
    Column("title", String(200), nullable=False),
    Column("ticket_id", Id, ForeignKey("tickets.id")),
    Column("done_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
)

# The example of a week (本周典型) picked by a supervisor (`closeloop report example`), with why;
# without a row the report takes the grid whose on-time rate rose most.
weekly_examples = Table(
    "weekly_examples",
    metadata,
    Column("week", String(8), primary_key=True),  # ISO week: 2026-W14
    Column("grid_id", Id, ForeignKey("grids.id"), nullable=False),
    Column("note", Text, nullable=False),
    Column("chosen_at", UTCDateTime, nullable=False),
)

# The reporter's answer after closure (回访: solved? and how satisfied), or a supervisor's phone
# call-back recorded on the ticket. Rows are only added; the latest one of a ticket counts.
# An answer "not solved" lists the ticket for the supervisors; it reopens nothing by itself.
ticket_feedback = Table(
    "ticket_feedback",
    metadata,
    Column("id", Id, primary_key=True),
    Column("ticket_id", Id, ForeignKey("tickets.id"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("channel", String(16), nullable=False),  # reporter (the /track page) | phone
    Column("by_id", Id, ForeignKey("people.id")),  # the supervisor who called; NULL: reporter
    Column("solved", Boolean, nullable=False),
    Column("satisfaction", String(16), nullable=False),  # satisfied | basic | dissatisfied
    Column("comment", Text, nullable=False, default=""),
    Index("ix_ticket_feedback_ticket", "ticket_id", "id"),
    Index("ix_ticket_feedback_at", "at"),
)
