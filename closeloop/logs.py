"""One way to log in every process (`serve` and its workers, `scheduler`, `deliver`): a line is
``TIME LEVEL LOGGER: MESSAGE``, TIME in ISO 8601 with the zone's offset, to the millisecond
(``2026-04-01T09:00:00.125+08:00``). uvicorn's own lines get the same format (`UVICORN`).

What is logged at INFO: one line per scheduler job run (``job sweep done in 0.12s: {...}``)
and one per delivery batch; the web's request lines are JSON on stdout with the same time.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime, tzinfo
from typing import Any, TextIO
from zoneinfo import ZoneInfo

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def iso_now(tz: tzinfo | None) -> str:
    return datetime.now(tz or UTC).isoformat(timespec="milliseconds")


class IsoFormatter(logging.Formatter):
    """`%(asctime)s` as ISO 8601 with an offset, in the given zone (UTC without one)."""

    def __init__(
        self,
        fmt: str = FORMAT,
        datefmt: str | None = None,
        style: Any = "%",
        validate: bool = True,
        *,
        tz: tzinfo | str | None = None,
    ) -> None:
        super().__init__(fmt, datefmt, style, validate)
        self.tz = ZoneInfo(tz) if isinstance(tz, str) else tz

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, self.tz or UTC).isoformat(
            timespec="milliseconds"
        )


def setup(tz: tzinfo | None, *, stream: TextIO | None = None) -> None:
    """Log INFO and above of every library to `stream` (stderr) in the one format; safe to
    call twice (the second call only sets the zone)."""
    root = logging.getLogger()
    for handler in root.handlers:
        if getattr(handler, "closeloop", False):
            handler.setFormatter(IsoFormatter(tz=tz))
            return
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(IsoFormatter(tz=tz))
    handler.closeloop = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    # `transitions` logs two INFO lines for every step of every ticket, which say less than its
    # event does; under load they were most of the log and a good part of a step's time.
    logging.getLogger("transitions").setLevel(logging.WARNING)


def uvicorn_config(tz: tzinfo | None) -> dict[str, Any]:
    """uvicorn's `log_config`: its lines in the same format, on stderr (its access log is off:
    the request lines are closeloop's own)."""
    zone = getattr(tz, "key", None)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"iso": {"()": "closeloop.logs.IsoFormatter", "tz": zone}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "iso",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
    }
