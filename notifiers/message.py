"""What every channel takes and raises: the message, its attachments, the delivery error.

A channel is anything with a ``name`` and a ``send(message)`` that either returns (delivered)
or raises :class:`DeliveryError`. ``permanent`` on the error tells the deliverer whether a
retry can ever succeed (a bad address, a refused login) or may succeed later (a time-out,
a 5xx, a rate limit).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

KINDS: tuple[str, ...] = (
    "assignment",
    "reminder",
    "supervision",
    "verification_request",
    "rejection",
    "closure",
    "digest",
    "weekly_report",
    "meeting_minutes",
    "accountability",
)

CHANNEL_NAMES: tuple[str, ...] = ("console", "file", "email", "webhook")


@dataclass(frozen=True)
class Attachment:
    filename: str
    # "maintype/subtype" with optional parameters: "text/html; charset=utf-8".
    # A text/* attachment without a charset is taken to be UTF-8.
    content_type: str
    data: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not self.filename or any(c in self.filename for c in "\r\n/\\"):
            raise ValueError(f"attachment filename {self.filename!r} is empty or not a bare name")
        self.mime()  # validates
        if not isinstance(self.data, bytes):
            raise TypeError(f"attachment data must be bytes, not {type(self.data).__name__}")

    def mime(self) -> tuple[str, str, dict[str, str]]:
        """(maintype, subtype, parameters) of the content type."""
        kind, *rest = (piece.strip() for piece in self.content_type.split(";"))
        maintype, _, subtype = kind.lower().partition("/")
        params: dict[str, str] = {}
        for piece in rest:
            key, eq, value = piece.partition("=")
            if not eq or not key.strip():
                raise ValueError(f"attachment content_type {self.content_type!r}: bad {piece!r}")
            params[key.strip().lower()] = value.strip().strip('"')
        if not maintype or not subtype or any(c in kind for c in " \r\n"):
            raise ValueError(
                f"attachment content_type {self.content_type!r} is not 'maintype/subtype'"
            )
        if maintype == "text":
            params.setdefault("charset", "utf-8")
        return maintype, subtype, params


@dataclass(frozen=True)
class Message:
    kind: str  # one of KINDS
    channel: str  # one of CHANNEL_NAMES
    recipient_name: str
    address: str  # email address, webhook address, or '' for console/file
    subject: str
    text: str  # plain text body
    html: str  # HTML body, already escaped by the renderer
    markdown: str  # for chat robots
    idempotency_key: str
    ticket_ref: str | None = None
    attachments: tuple[Attachment, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown message kind {self.kind!r}; known: {', '.join(KINDS)}")
        if self.channel not in CHANNEL_NAMES:
            raise ValueError(f"unknown channel {self.channel!r}; known: {', '.join(CHANNEL_NAMES)}")
        if not self.idempotency_key.strip():
            raise ValueError("idempotency_key must not be empty")
        if "\n" in self.subject or "\r" in self.subject:
            raise ValueError("subject must be one line")
        if not isinstance(self.attachments, tuple):
            raise TypeError("attachments must be a tuple of Attachment")


class DeliveryError(Exception):
    """A send that did not deliver. ``permanent`` means retrying the same message is useless."""

    def __init__(self, detail: str, *, permanent: bool) -> None:
        super().__init__(detail)
        self.detail = detail
        self.permanent = permanent

    def __repr__(self) -> str:
        return f"DeliveryError({self.detail!r}, permanent={self.permanent})"


@runtime_checkable
class Channel(Protocol):
    name: str

    def send(self, message: Message) -> None:
        """Deliver ``message`` or raise DeliveryError."""
        ...


# What a channel reads the time from (a Date header, a signature's timestamp, a record's
# sent_at). closeloop gives every channel the App's clock (`build_channels(..., clock=)`);
# the system clock is the default only for a channel used on its own.
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def message_record(message: Message, sent_at: datetime) -> dict[str, Any]:
    """The JSON-ready record of a message, as console and file channels write it.

    Attachments are described (name, type, size, sha256), not embedded: the record is for
    audits and demos, and a weekly XLSX has no place in a log line.
    """
    return {
        "sent_at": sent_at.isoformat(),
        "kind": message.kind,
        "channel": message.channel,
        "recipient_name": message.recipient_name,
        "address": message.address,
        "ticket_ref": message.ticket_ref,
        "idempotency_key": message.idempotency_key,
        "subject": message.subject,
        "text": message.text,
        "html": message.html,
        "markdown": message.markdown,
        "attachments": [
            {
                "filename": a.filename,
                "content_type": a.content_type,
                "size": len(a.data),
                "sha256": hashlib.sha256(a.data).hexdigest(),
            }
            for a in message.attachments
        ],
    }
