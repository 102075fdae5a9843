"""Console channel: prints each message, for demos and for running without any server.

``style="text"`` prints a short header and the plain text body, for people watching a
terminal; ``style="json"`` prints one JSON line per message (the file channel's record).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import TextIO

from notifiers.message import Clock, DeliveryError, Message, message_record, utc_now

STYLES = ("text", "json")


@dataclass
class ConsoleChannel:
    # None means sys.stdout looked up at send time, so redirection (and pytest's capsys) works.
    stream: TextIO | None = None
    style: str = "text"
    clock: Clock = field(default=utc_now)
    name: str = field(default="console", init=False)

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise ValueError(f"console style {self.style!r} is not one of {', '.join(STYLES)}")

    def send(self, message: Message) -> None:
        stream = self.stream if self.stream is not None else sys.stdout
        if self.style == "json":
            out = json.dumps(message_record(message, self.clock()), ensure_ascii=False) + "\n"
        else:
            out = _as_text(message)
        try:
            stream.write(out)
            stream.flush()
        except (OSError, ValueError) as exc:  # ValueError: write to a closed stream
            raise DeliveryError(f"console write failed: {exc}", permanent=False) from exc


def _as_text(message: Message) -> str:
    to = message.recipient_name + (f" <{message.address}>" if message.address else "")
    head = f"── {message.kind} → {to} · {message.idempotency_key}"
    files = "".join(
        f"[attachment] {a.filename} ({a.content_type}, {len(a.data)} bytes)\n"
        for a in message.attachments
    )
    return f"{head}\n{message.subject}\n\n{message.text.rstrip()}\n{files}\n"
