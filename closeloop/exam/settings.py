"""The `[exam]` section of config.toml, checked once; errors name the key."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from closeloop.config import ConfigError, Settings
from closeloop.exam.boards import ScoringConfig, ScoringConfigError
from closeloop.exam.sheets import AnswerSheets, SheetsError, load_sheets


def _whole(section: Mapping[str, Any], key: str, default: int, low: int) -> int:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError("config.whole", where="exam", key=key, low=low, value=value)
    return value


def _text(section: Mapping[str, Any], key: str, default: str) -> str:
    value = section.get(key, default)
    if not isinstance(value, str):
        raise ConfigError("config.string", where="exam", key=key, value=value)
    return value


@dataclass(frozen=True)
class ExamSettings:
    """Who is examined and who inspects, the answer sheets, and the scoring rules."""

    scoring: ScoringConfig
    sheets_file: Path
    level: int = 3  # grids under exam: those of this level
    inspectors: tuple[str, ...] = ()  # inspecting grid codes; () = any grid may inspect
    accountability_owner: str = ""  # the supervisor who owns a new 问责 case; "" = first one
    accountability_days: int = 30  # a case is due this many days after the board

    OWN_KEYS = (
        "level",
        "inspectors",
        "sheets_file",
        "accountability_owner",
        "accountability_days",
    )

    @classmethod
    def from_settings(cls, settings: Settings) -> ExamSettings:
        section = settings.section("exam")
        scoring_part = {k: v for k, v in section.items() if k not in cls.OWN_KEYS}
        try:
            scoring = ScoringConfig.from_config(scoring_part, where="exam")
        except ScoringConfigError as exc:
            key = str(exc.params["key"]).removeprefix("exam.")
            raise ConfigError("config.exam_scoring", problem=exc.keyed(key)) from None
        level = _whole(section, "level", cls.level, 1)
        if level > 4:
            raise ConfigError("config.grid_level", where="exam", level=level)
        inspectors = section.get("inspectors", [])
        if not isinstance(inspectors, list) or not all(isinstance(c, str) for c in inspectors):
            raise ConfigError("config.inspectors_list")
        if len(set(inspectors)) != len(inspectors):
            raise ConfigError("config.inspectors_twice")
        sheets_file = _text(section, "sheets_file", "")
        return cls(
            scoring=scoring,
            sheets_file=(
                settings.resolve(sheets_file)
                if sheets_file
                else settings.workflow_file.parent / "exam.toml"
            ),
            level=level,
            inspectors=tuple(inspectors),
            accountability_owner=_text(section, "accountability_owner", ""),
            accountability_days=_whole(section, "accountability_days", 30, 1),
        )

    def sheets(self) -> AnswerSheets:
        try:
            return load_sheets(self.sheets_file)
        except SheetsError as exc:
            raise ConfigError("config.sheets_file", problem=exc) from None
