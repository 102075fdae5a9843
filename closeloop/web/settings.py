"""The `[web]` and `[open311]` sections of config.toml, read and checked once per app."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from closeloop.config import ConfigError, Settings
from closeloop.evidence import MAX_BYTES


@dataclass(frozen=True)
class WebSettings:
    public_url: str
    secure_cookies: bool | None  # None: Secure when the request came over HTTPS
    forwarded_allow_ips: str
    session_idle_hours: float
    session_max_hours: float
    login_max_failures: int
    login_max_failures_per_handle: int
    login_window_minutes: float
    max_upload_bytes: int
    max_photos: int
    max_body_bytes: int
    anonymous_reports_per_hour: int
    anonymous_photo_bytes_per_day: int
    secret_key: str
    open311_jurisdiction: str
    open311_default_grid: str | None
    open311_read_requires_key: bool = False  # reads are public in GeoReport v2
    idempotency_hours: float = 24  # answers to Idempotency-Key requests are kept this long
    # `serve --workers N`: how long a worker may take to answer the supervisor's health check
    # (a new worker on a busy machine needs seconds just to import), and to finish its
    # requests on SIGTERM.
    worker_healthcheck_seconds: int = 30
    graceful_shutdown_seconds: int = 30
    # Requests a process works on at once in its threads; the others wait their turn in the
    # event loop, at no cost. A process runs Python on one core at a time (the GIL): more
    # threads than cores only take the GIL from each other and from SQLite's writer thread.
    request_threads: int = 3

    @classmethod
    def from_settings(cls, settings: Settings) -> WebSettings:
        web = settings.section("web")
        o311 = settings.section("open311")
        secure = web.get("secure_cookies", "auto")
        if secure not in ("auto", True, False):
            raise ConfigError("config.secure_cookies", value=secure)
        return cls(
            public_url=_text(web, "public_url", "web").rstrip("/"),
            secure_cookies=None if secure == "auto" else bool(secure),
            forwarded_allow_ips=_text(web, "forwarded_allow_ips", "web"),
            session_idle_hours=_positive(web, "session_idle_hours", "web", 12),
            session_max_hours=_positive(web, "session_max_hours", "web", 168),
            login_max_failures=int(_positive(web, "login_max_failures", "web", 5)),
            login_max_failures_per_handle=int(
                _positive(web, "login_max_failures_per_handle", "web", 20)
            ),
            login_window_minutes=_positive(web, "login_window_minutes", "web", 15),
            max_upload_bytes=int(_positive(web, "max_upload_bytes", "web", MAX_BYTES)),
            max_photos=int(_positive(web, "max_photos", "web", 6)),
            max_body_bytes=int(_positive(web, "max_body_bytes", "web", 1024 * 1024)),
            anonymous_reports_per_hour=int(_positive(web, "anonymous_reports_per_hour", "web", 60)),
            anonymous_photo_bytes_per_day=int(
                _positive(web, "anonymous_photo_bytes_per_day", "web", 300 * 1024 * 1024)
            ),
            secret_key=_text(web, "secret_key", "web"),
            open311_jurisdiction=_text(o311, "jurisdiction_id", "open311", "closeloop"),
            open311_default_grid=_text(o311, "default_grid", "open311") or None,
            open311_read_requires_key=_flag(o311, "read_requires_key", "open311", False),
            idempotency_hours=_at_least(web, "idempotency_hours", "web", 24),
            worker_healthcheck_seconds=_whole(web, "worker_healthcheck_seconds", "web", 30),
            graceful_shutdown_seconds=_whole(web, "graceful_shutdown_seconds", "web", 30),
            request_threads=_count(web, "request_threads", "web", 3),
        )


def _text(section: Mapping[str, Any], key: str, name: str, default: str = "") -> str:
    value = section.get(key, default)
    if not isinstance(value, str):
        raise ConfigError("config.web_string", where=name, key=key, value=value)
    return value.strip()


def _flag(section: Mapping[str, Any], key: str, name: str, default: bool) -> bool:
    value = section.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError("config.web_flag", where=name, key=key, value=value)
    return value


def _positive(section: Mapping[str, Any], key: str, name: str, default: float) -> float:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError("config.web_positive", where=name, key=key, value=value)
    return float(value)


def _at_least(section: Mapping[str, Any], key: str, name: str, floor: float) -> float:
    value = _positive(section, key, name, floor)
    if value < floor:
        raise ConfigError("config.web_at_least", where=name, key=key, floor=floor, value=value)
    return value


def _whole(section: Mapping[str, Any], key: str, name: str, default: int) -> int:
    value = section.get(key, default)
    if not _counts(value):
        raise ConfigError("config.web_seconds", where=name, key=key, value=value)
    return int(value)


def _count(section: Mapping[str, Any], key: str, name: str, default: int) -> int:
    value = section.get(key, default)
    if not _counts(value):
        raise ConfigError("config.web_count", where=name, key=key, value=value)
    return int(value)


def _counts(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1
