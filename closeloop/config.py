"""config.toml, read once at start-up into a frozen Settings and passed down.

Paths in the file are relative to the file's own folder. The database URL can be overridden by
the environment (CLOSELOOP_DB) and by the command line (--db), in that order of strength.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from closeloop.errors import CodedError

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config.toml"


class ConfigError(CodedError, ValueError):
    """config.toml (or a file it names) is missing something or holds a bad value: a code of
    the catalogue whose parameters name the key, said in the reader's language."""


@dataclass(frozen=True)
class Person:
    handle: str
    name: str
    roles: tuple[str, ...]
    phone: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class Settings:
    path: Path
    zone_name: str
    timezone: ZoneInfo
    locale: str
    database_url: str
    workflow_file: Path
    grid_file: Path | None
    evidence_dir: Path
    staff: tuple[Person, ...]
    raw: Mapping[str, Any] = field(repr=False)

    def section(self, name: str) -> Mapping[str, Any]:
        """A raw section for the parts of closeloop that read their own settings."""
        value = self.raw.get(name, {})
        if not isinstance(value, Mapping):
            raise ConfigError("config.not_table", name=name)
        return value

    def resolve(self, relative: str) -> Path:
        return (self.path.parent / relative).resolve()


def _sqlite_url(url: str, base: Path) -> str:
    # A relative SQLite path means "next to config.toml", not "wherever the shell happens to be".
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != prefix + ":memory:":
        return prefix + str((base / url.removeprefix(prefix)).resolve())
    return url


def load_settings(path: Path | None = None, database_url: str | None = None) -> Settings:
    path = (path or Path(os.environ.get("CLOSELOOP_CONFIG", DEFAULT_CONFIG))).resolve()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("config.not_found", path=path) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("config.not_toml", path=path, reason=exc) from None
    base = path.parent

    zone = raw.get("zone", {})
    tz_name = zone.get("timezone", "Asia/Shanghai")
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError("config.timezone", where="zone", tz=tz_name) from None
    locale = zone.get("locale", "zh_CN")
    if locale not in ("zh_CN", "en"):
        raise ConfigError("config.locale", locale=locale)

    url = (
        database_url
        or os.environ.get("CLOSELOOP_DB")
        or raw.get("database", {}).get("url", "sqlite:///var/closeloop.db")
    )
    staff = []
    for i, p in enumerate(raw.get("people", [])):
        if not p.get("handle") or not p.get("name"):
            raise ConfigError("config.person_fields", n=i + 1)
        staff.append(
            Person(
                p["handle"], p["name"], tuple(p.get("roles", ())), p.get("phone"), p.get("email")
            )
        )
    grid_file = zone.get("grid_file")
    return Settings(
        path=path,
        zone_name=zone.get("name", "开发区"),
        timezone=tz,
        locale=locale,
        database_url=_sqlite_url(url, base),
        workflow_file=(base / raw.get("workflow", {}).get("file", "workflows/environmental.toml")),
        grid_file=(base / grid_file) if grid_file else None,
        evidence_dir=(base / raw.get("storage", {}).get("evidence_dir", "var/evidence")),
        staff=tuple(staff),
        raw=raw,
    )
