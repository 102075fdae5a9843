"""File channel: each message appended to a file as one JSON line (an audit log, a demo sink).

Several processes may append to the same file at once. Each record is written with a single
``write(2)`` on a descriptor opened with ``O_APPEND``, so the kernel positions every write at
the end of the file and lines never interleave on a local filesystem. ``fsync=True`` makes a
returned ``send`` mean "on disk", at the cost of one disk flush per message.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from notifiers.message import Clock, DeliveryError, Message, message_record, utc_now


@dataclass
class FileChannel:
    path: Path
    fsync: bool = False
    clock: Clock = field(default=utc_now)
    name: str = field(default="file", init=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path)

    def send(self, message: Message) -> None:
        record = message_record(message, self.clock())
        # ensure_ascii=False keeps Chinese readable in the log; json escapes any newline
        # inside strings, so one record is exactly one line.
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise DeliveryError(f"cannot open {self.path}: {exc}", permanent=False) from exc
        try:
            written = os.write(fd, line)
            if written != len(line):
                # A short write (disk full) leaves a torn line; say so rather than retry blindly.
                raise DeliveryError(
                    f"short write to {self.path}: {written} of {len(line)} bytes",
                    permanent=False,
                )
            if self.fsync:
                os.fsync(fd)
        except OSError as exc:
            raise DeliveryError(f"cannot append to {self.path}: {exc}", permanent=False) from exc
        finally:
            os.close(fd)
