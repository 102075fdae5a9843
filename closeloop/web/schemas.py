"""Request and response bodies of the JSON API (they make the OpenAPI schema precise).

Text fields pass `closeloop.textguard.clean_text` (lone surrogates and NUL refused, other
control characters but newline and tab dropped), a title must show something, and times must
carry a zone offset and lie in a sane range, so bad input is a 422 here, never a database error
later.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    WithJsonSchema,
)

from closeloop.errors import CodedError
from closeloop.textguard import NO_NUL_PATTERN, clean_text, visible_pattern, visible_text


class BadValue(CodedError, ValueError):
    """A value the schema's types let through and closeloop refuses, said by code."""


def _sane_time(value: datetime) -> datetime:
    if not 2000 <= value.year <= 2200:
        raise BadValue("request.time_range")
    return value


def _not_bool(value: object) -> object:
    if isinstance(value, bool):  # pydantic would take false for 0.0
        raise BadValue("request.not_a_number")
    return value


# The patterns say in the schema what the validators refuse (the server does not match them).
Text = Annotated[
    str,
    AfterValidator(clean_text),
    Field(json_schema_extra=lambda schema: schema.update(pattern=NO_NUL_PATTERN)),
]
# A number from JSON or a form field; true and false are not numbers.
Number = Annotated[float, BeforeValidator(_not_bool)]
Lat = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False), BeforeValidator(_not_bool)]
Lon = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False), BeforeValidator(_not_bool)]
# A title: text a person can see (not blank, not zero-width characters only).
Title = Annotated[
    Text,
    AfterValidator(visible_text),
    Field(json_schema_extra=lambda schema: schema.update(pattern=visible_pattern())),
]
When = Annotated[
    AwareDatetime,
    AfterValidator(_sane_time),
    WithJsonSchema(
        {"type": "string", "format": "date-time", "pattern": r"^(2[01]\d\d|2200)-.*[Zz+-]"}
    ),
]

# Case sources (closeloop.service.SOURCES) and the three levels of satisfaction
# (closeloop.feedback.SATISFACTION); a unit test keeps them equal.
Source = Literal[
    "public", "patrol", "hotline", "leader", "media", "meeting", "campaign", "inspection"
]
Satisfaction = Literal["satisfied", "basic", "dissatisfied"]


class Body(BaseModel):
    """A request body of the JSON API: a field it does not know is refused (422,
    `request.invalid`, the field named), never ignored, so a misspelt `gird` or a field of a
    newer version is not a 201 that did something other than asked. Open311 keeps its own
    lenient model (GeoReport clients send `attribute[...]`, `api_key` and more)."""

    model_config = ConfigDict(extra="forbid")


# --- errors -----------------------------------------------------------------------------------


class ErrorInfo(BaseModel):
    """What was wrong: a stable code (closeloop.errors; `http.<status>` for what the framework
    itself refused) and a message saying it and what is allowed, in the language the caller
    asked for (`?lang=` or Accept-Language: en or zh_CN; English by default)."""

    code: str
    message: str


class ErrorBody(BaseModel):
    """Every error of the JSON API."""

    error: ErrorInfo
    details: list[dict[str, Any]] | None = None


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": what}
    for status, what in (
        (400, "bad request (malformed JSON or form, unknown step)"),
        (401, "not logged in, or an unknown or revoked token"),
        (403, "not permitted (or the CSRF token is missing)"),
        (404, "not found, or not visible to the caller"),
        (409, "not allowed in the ticket's current state, or changed meanwhile"),
        (413, "the request body is too large"),
        (415, "the body is neither JSON nor a form"),
        (422, "a field is missing or invalid"),
        (429, "too many failed logins, or anonymous reports from one address (Retry-After)"),
    )
}


# --- requests ----------------------------------------------------------------------------------


# Where a problem is: a grid (then no point), or a point (lat and lon; a grid with it wins).
_NUMBER: JsonValue = {"type": "number"}
_NULL: JsonValue = {"type": "null"}
WHERE_SCHEMA: list[JsonValue] = [
    {"required": ["grid"], "properties": {"grid": {"type": "string"}, "lat": _NULL, "lon": _NULL}},
    {"required": ["lat", "lon"], "properties": {"lat": _NUMBER, "lon": _NUMBER}},
]


class SubmitBody(Body):
    """A problem as a reporter gives it: a grid, or a point (lat and lon) to find it by. With
    multipart/form-data, photos go in `photos`."""

    model_config = ConfigDict(json_schema_extra={"anyOf": WHERE_SCHEMA})

    grid: Annotated[
        Text | None,
        Field(
            min_length=1,
            max_length=64,
            description="grid code; without it, the deepest grid containing lat/lon",
        ),
    ] = None
    category: Annotated[Text, Field(min_length=1, max_length=64, description="category key")]
    title: Annotated[Title, Field(min_length=1, max_length=200)]
    description: Annotated[Text, Field(max_length=5000)] = ""
    address: Annotated[Text | None, Field(max_length=300)] = None
    lat: Lat | None = None
    lon: Lon | None = None
    reporter_name: Annotated[Text | None, Field(max_length=100)] = None
    reporter_phone: Annotated[Text | None, Field(max_length=32)] = None
    reporter_email: Annotated[Text | None, Field(max_length=200)] = None
    source: Annotated[
        Source | None,
        Field(
            description="where it came from (案件来源); only staff may give one other than "
            "public; default: the token's source, else public"
        ),
    ] = None
    urgent: Annotated[
        bool, Field(description="urgent (紧急件): the category's urgent limits (supervisors)")
    ] = False


class StepBody(Body):
    """What a step needs (the workflow says which); with multipart, photos go in `evidence`."""

    note: Annotated[Text | None, Field(max_length=5000)] = None
    reason: Annotated[Text | None, Field(max_length=5000)] = None
    to_grid: Annotated[Text | None, Field(max_length=64)] = None
    until: When | None = None
    review_on: When | None = None
    at: Annotated[
        When | None, Field(description="when it happened, if earlier than now (back-filling)")
    ] = None


class PasswordBody(Body):
    password: Annotated[Text, Field(min_length=8, max_length=1024)]


class OwnPasswordBody(Body):
    current_password: Annotated[Text, Field(max_length=1024)]
    new_password: Annotated[Text, Field(min_length=8, max_length=1024)]


class TokenBody(Body):
    label: Annotated[Text, Field(max_length=100)] = ""
    handle: Annotated[
        Text | None, Field(max_length=64, description="for another person (administrators)")
    ] = None


# --- responses ---------------------------------------------------------------------------------


class TicketSummary(BaseModel):
    ref: str
    state: str
    state_name: str
    category: str
    category_name: str
    title: str
    grid: str
    grid_name: str
    responsible_grid: str
    assignee: str | None
    assignee_name: str | None
    stage: str | None
    due_at: datetime | None
    seconds_left: float | None = Field(None, description="until the deadline; negative: this late")
    next_escalation_at: datetime | None = Field(
        None, description="when the next rung of supervision is due (null: none planned)"
    )
    overdue: bool = Field(False, description="the stage deadline has passed and it is not done")
    overdue_hours: float = Field(0.0, description="hours since the deadline; 0 when not overdue")
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    rework_count: int
    extension_count: int
    recurrence_of: str | None
    escalation_level: int
    supervising_grid: str | None
    supervising_level: int | None = None
    supervisor: str | None
    address: str | None
    lat: float | None
    lon: float | None
    description: str
    reporter: str | None
    source: Source = Field("public", description="where it came from (案件来源)")
    urgent: bool = Field(False, description="urgent (紧急件)")
    urgent_at: datetime | None = Field(None, description="since when it is urgent")


class TicketEvent(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    at: datetime = Field(description="when it happened (a back-filled step: earlier)")
    recorded_at: datetime = Field(description="when the server recorded it")
    step: str
    by: str | None
    from_: str | None = Field(alias="from")
    to: str
    note: str | None
    data: dict[str, Any]


class EvidenceItem(BaseModel):
    id: int
    name: str
    content_type: str
    size: int
    event: int | None
    url: str


class TicketDetail(TicketSummary):
    """A ticket with its timeline, its evidence and what the caller may do now. Later modules
    (escalation, extensions, deferrals) add their own keys."""

    model_config = ConfigDict(extra="allow")

    events: list[TicketEvent]
    evidence: list[EvidenceItem]
    allowed_steps: list[str] = Field(description="steps the caller may take in this state")


class ReporterEvent(BaseModel):
    at: datetime
    step: str
    step_name: str
    to: str
    to_name: str


class ReporterFeedback(BaseModel):
    at: datetime
    solved: bool
    satisfaction: Satisfaction
    comment: str


class ReporterTicket(BaseModel):
    """What the reporter of a problem sees of it, through its reference and secret."""

    ref: str
    state: str
    state_name: str
    closed: bool
    category: str
    category_name: str
    title: str
    description: str
    grid_name: str
    address: str | None
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    events: list[ReporterEvent]
    evidence: list[EvidenceItem]
    may_rate: bool = Field(
        False, description="closed and not yet answered: the reporter may say solved? and rate"
    )
    rated: list[ReporterFeedback] = Field(default_factory=list)


class Submitted(BaseModel):
    ref: str
    secret: str = Field(description="shown once: with the ref, it lets the reporter follow it")
    state: str
    url: str = Field(description="where the reporter follows the ticket")


class TicketList(BaseModel):
    items: list[TicketSummary]
    limit: int
    offset: int


class GridItem(BaseModel):
    code: str
    name: str
    level: int
    level_name: str
    kind: str
    parent: str | None


class GridList(BaseModel):
    items: list[GridItem]


class CategoryItem(BaseModel):
    key: str
    name: str
    name_zh: str
    name_en: str
    action: str
    limits: dict[str, str]


class CategoryList(BaseModel):
    items: list[CategoryItem]


class GridRef(BaseModel):
    code: str
    name: str
    level: int


class Me(BaseModel):
    handle: str
    name: str
    roles: list[str]
    leads: list[GridRef]
    via: str


class Person(BaseModel):
    handle: str
    name: str
    roles: list[str]
    has_password: bool
    disabled: bool = Field(description="no login, tokens revoked (POST .../enable undoes it)")
    leads: list[str]


class PeopleList(BaseModel):
    items: list[Person]


class TokenInfo(BaseModel):
    id: int
    handle: str
    label: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenList(BaseModel):
    items: list[TokenInfo]


class NewTokenOut(BaseModel):
    id: int
    handle: str
    label: str
    token: str = Field(description="shown once; store it now")


class Done(BaseModel):
    ok: bool = True


class Leader(BaseModel):
    handle: str
    name: str
    phone: str | None
    email: str | None


class GridChild(BaseModel):
    code: str
    name: str
    level: int
    kind: str
    leader: str | None


class GridDetail(BaseModel):
    code: str
    name: str
    level: int
    level_name: str
    kind: str
    parent: str | None
    leader: Leader | None
    path: list[GridRef]
    children: list[GridChild]
    subtree_size: int


class TicketItems(BaseModel):
    items: list[TicketSummary]


class StepDone(BaseModel):
    ref: str
    step: str
    state: str
    state_name: str
    ticket: TicketDetail | None = Field(
        description="the ticket after the step; null when the caller can no longer see it"
    )


class OverdueItem(BaseModel):
    """A ticket past its deadline (closeloop.escalation.overdue); later fields pass through."""

    model_config = ConfigDict(extra="allow")

    ref: str
    state: str
    category: str
    title: str
    stage: str | None
    due_at: datetime | None
    next_escalation_at: datetime | None = None
    overdue: bool = False
    overdue_hours: float
    escalation_level: int
    supervising_grid: str | None
    supervisor: str | None
    grid: str
    responsible_grid: str
    assignee: str | None


class OverdueList(BaseModel):
    items: list[OverdueItem]


class DeferralItem(BaseModel):
    id: int
    ticket: TicketSummary
    by: str
    at: datetime
    reason: str
    review_on: datetime
    review_due: bool
    remaining_hours: float | None


class DeferralList(BaseModel):
    items: list[DeferralItem]


class ExtensionItem(BaseModel):
    id: int
    ticket: TicketSummary
    stage_no: int
    current_stage: bool
    requested_by: str
    requested_at: datetime
    reason: str
    until: datetime
    status: str
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str | None


class ExtensionList(BaseModel):
    items: list[ExtensionItem]
