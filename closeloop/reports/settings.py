"""The `[report]` section of config.toml, checked once; errors name the key."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from closeloop.config import ConfigError
from closeloop.reports import composite as composite_mod
from closeloop.reports.composite import Composite


def _whole(section: Mapping[str, Any], key: str, default: int, where: str, low: int) -> int:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError("config.whole", where=where, key=key, low=low, value=value)
    return value


def _text(section: Mapping[str, Any], key: str, default: str, where: str) -> str:
    value = section.get(key, default)
    if not isinstance(value, str):
        raise ConfigError("config.string", where=where, key=key, value=value)
    return value


@dataclass(frozen=True)
class ReportSettings:
    """How the weekly report is made and sent."""

    level: int = 3  # the grids listed: 3 = villages, enterprise grids, community sections
    red_size: int = 5
    yellow_size: int = 5
    previous_weeks: int = 4  # the change and the example compare against this many weeks
    example_min_due: int = 3  # the example needs this many tickets due (net of deferrals)
    overdue_rows: int = 10
    hotspot_rows: int = 10
    appendix_rows: int = 2000  # due tickets listed in the HTML appendix; beyond: `report items`
    out_dir: str = "var/reports"
    base_url: str = ""  # "" = the notice links the file itself (file:// URL)
    recipients_role: str = "supervisor"
    composite: Composite = composite_mod.DEFAULT  # [report.composite]: weights and grade limits
    top_categories: int = 5  # the 高发问题 listed
    # When it is sent: the job "weekly_report" of [scheduler.jobs] (default "weekly mon 08:00").

    KEYS = (
        "level",
        "red_size",
        "yellow_size",
        "previous_weeks",
        "example_min_due",
        "overdue_rows",
        "hotspot_rows",
        "appendix_rows",
        "out_dir",
        "base_url",
        "recipients_role",
        "composite",
        "top_categories",
    )

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> ReportSettings:
        where = "report"
        unknown = sorted(set(section) - set(cls.KEYS))
        if unknown:
            raise ConfigError(
                "config.unknown_keys",
                where=where,
                unknown=", ".join(unknown),
                known=", ".join(cls.KEYS),
            )
        level = _whole(section, "level", cls.level, where, 1)
        if level > 4:
            raise ConfigError("config.grid_level", where=where, level=level)
        return cls(
            level=level,
            red_size=_whole(section, "red_size", cls.red_size, where, 0),
            yellow_size=_whole(section, "yellow_size", cls.yellow_size, where, 0),
            previous_weeks=_whole(section, "previous_weeks", cls.previous_weeks, where, 1),
            example_min_due=_whole(section, "example_min_due", cls.example_min_due, where, 1),
            overdue_rows=_whole(section, "overdue_rows", cls.overdue_rows, where, 0),
            hotspot_rows=_whole(section, "hotspot_rows", cls.hotspot_rows, where, 0),
            appendix_rows=_whole(section, "appendix_rows", cls.appendix_rows, where, 0),
            out_dir=_text(section, "out_dir", cls.out_dir, where),
            base_url=_text(section, "base_url", cls.base_url, where),
            recipients_role=_text(section, "recipients_role", cls.recipients_role, where),
            composite=_composite(section.get("composite", {})),
            top_categories=_whole(section, "top_categories", cls.top_categories, where, 1),
        )


def _composite(raw: Any) -> Composite:
    if not isinstance(raw, Mapping):
        raise ConfigError("config.composite_table")
    return Composite.from_config(raw)
