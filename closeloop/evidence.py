"""Evidence files (photos of a fix, of the problem): stored on disk outside the database under a
name derived from their content, never under the name they arrived with."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from closeloop.errors import CodedError

MAX_BYTES = 10 * 1024 * 1024

# Recognised by their first bytes, not by the name or the type a client claims.
SIGNATURES = (
    (b"\xff\xd8\xff", "image/jpeg", ".jpg"),
    (b"\x89PNG\r\n\x1a\n", "image/png", ".png"),
    (b"GIF87a", "image/gif", ".gif"),
    (b"GIF89a", "image/gif", ".gif"),
    (b"%PDF-", "application/pdf", ".pdf"),
)


class EvidenceError(CodedError, ValueError):
    pass


@dataclass(frozen=True)
class StoredFile:
    stored_name: str
    original_name: str
    content_type: str
    size: int


def sniff(data: bytes) -> tuple[str, str]:
    for magic, content_type, ext in SIGNATURES:
        if data.startswith(magic):
            return content_type, ext
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp", ".webp"
    raise EvidenceError("evidence.type")


def store_bytes(
    directory: Path, data: bytes, original_name: str, max_bytes: int = MAX_BYTES
) -> StoredFile:
    if not data:
        raise EvidenceError("evidence.empty", name=original_name)
    if len(data) > max_bytes:
        raise EvidenceError(
            "evidence.too_large", name=original_name, size=len(data), max_bytes=max_bytes
        )
    content_type, ext = sniff(data)
    name = hashlib.sha256(data).hexdigest() + ext
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / name
    if not target.exists():
        # Write then rename, so a crash never leaves a half file under the final name.
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".incoming-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    return StoredFile(name, Path(original_name).name[:300], content_type, len(data))


def store_file(directory: Path, path: str, max_bytes: int = MAX_BYTES) -> StoredFile:
    source = Path(path)
    try:
        size = source.stat().st_size
    except OSError as exc:
        raise EvidenceError("evidence.unreadable", path=path, reason=exc.strerror) from None
    if size > max_bytes:
        raise EvidenceError("evidence.too_large", name=path, size=size, max_bytes=max_bytes)
    return store_bytes(directory, source.read_bytes(), source.name, max_bytes)


def path_of(directory: Path, stored_name: str) -> Path:
    """The file for a stored name; refuses anything that is not a name this module made."""
    if Path(stored_name).name != stored_name or stored_name.startswith("."):
        raise EvidenceError("evidence.bad_name")
    return directory / stored_name
