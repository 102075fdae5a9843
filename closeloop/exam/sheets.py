"""The three answer sheets (三类答卷) and their items, as data.

A zone describes its sheets in a TOML file beside the workflow (``workflows/exam.toml``, or the
file named by ``[exam] sheets_file``)::

    [[basic]]
    key = "dead_corners"
    name_zh = "卫生死角"
    name_en = "Sanitation dead corners"
    max = 15
    checks_zh = "房前屋后、河沟、公厕周边无垃圾和积存杂物"
    checks_en = "No rubbish or stored junk around houses, ditches and public toilets"

with ``[[basic]]``, ``[[required]]`` and ``[[bonus]]`` entries. Rules:

- keys are unique across the three sheets (an item is named by its key alone), made of lower
  case letters, digits and ``_``; names and checks are non-empty in both languages;
- ``max`` is a number > 0; the basic and required sheets together must have at least one item;
- an item is found by its key or by either of its names, so a paper form copied into a CSV
  with the Chinese item names reads the same as one with the keys.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import MappingProxyType
from typing import Any

from closeloop.errors import CodedError

SHEETS: tuple[str, ...] = ("basic", "required", "bonus")
SHEET_NAMES_ZH: Mapping[str, str] = MappingProxyType(
    {"basic": "基础卷", "required": "必答卷", "bonus": "加分卷"}
)
SHEET_NAMES_EN: Mapping[str, str] = MappingProxyType(
    {"basic": "Basic sheet", "required": "Required sheet", "bonus": "Bonus sheet"}
)
_SHEET_ALIASES: Mapping[str, str] = {
    **{name: name for name in SHEETS},
    **{zh: name for name, zh in SHEET_NAMES_ZH.items()},
}
_KEY_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_ITEM_KEYS = ("key", "name_zh", "name_en", "max", "checks_zh", "checks_en")


class SheetsError(CodedError, ValueError):
    """The answer-sheet file is not usable: a code of the catalogue whose parameters name the
    place (file, sheet, entry, key)."""


def parse_sheet(name: str) -> str:
    """Return the canonical sheet name for ``basic``/``required``/``bonus`` or their zh names."""
    key = name.strip()
    sheet = _SHEET_ALIASES.get(key.lower()) or _SHEET_ALIASES.get(key)
    if sheet is None:
        raise ValueError(
            f"unknown sheet {name!r} (expected basic/基础卷, required/必答卷 or bonus/加分卷)"
        )
    return sheet


def sheet_name(sheet: str, locale: str) -> str:
    return (SHEET_NAMES_EN if locale == "en" else SHEET_NAMES_ZH)[sheet]


@dataclass(frozen=True)
class SheetItem:
    """One item of an answer sheet: what the inspector checks and how many points it is worth."""

    sheet: str
    key: str
    name_zh: str
    name_en: str
    max_points: Decimal
    checks_zh: str
    checks_en: str

    def name(self, locale: str) -> str:
        return self.name_en if locale == "en" else self.name_zh

    def checks(self, locale: str) -> str:
        return self.checks_en if locale == "en" else self.checks_zh

    def as_json(self) -> dict[str, Any]:
        points = self.max_points
        return {
            "sheet": self.sheet,
            "key": self.key,
            "name_zh": self.name_zh,
            "name_en": self.name_en,
            "max": int(points) if points == points.to_integral_value() else float(points),
            "checks_zh": self.checks_zh,
            "checks_en": self.checks_en,
        }


@dataclass(frozen=True)
class AnswerSheets:
    """The zone's three sheets; items in file order."""

    items: tuple[SheetItem, ...]

    def __iter__(self) -> Iterator[SheetItem]:
        return iter(self.items)

    def of(self, sheet: str) -> tuple[SheetItem, ...]:
        return tuple(item for item in self.items if item.sheet == sheet)

    def find(self, sheet: str, name: str) -> SheetItem | None:
        """The item of ``sheet`` whose key or zh/en name is ``name`` (case-insensitive key)."""
        wanted = name.strip()
        for item in self.of(sheet):
            if wanted.lower() == item.key or wanted in (item.name_zh, item.name_en):
                return item
        return None

    def item(self, key: str) -> SheetItem:
        for item in self.items:
            if item.key == key:
                return item
        raise KeyError(key)

    def max_points(self, sheet: str) -> Decimal:
        return sum((item.max_points for item in self.of(sheet)), Decimal(0))

    def as_json(self) -> dict[str, Any]:
        return {
            sheet: {
                "name_zh": SHEET_NAMES_ZH[sheet],
                "name_en": SHEET_NAMES_EN[sheet],
                "max": float(self.max_points(sheet)),
                "items": [item.as_json() for item in self.of(sheet)],
            }
            for sheet in SHEETS
        }


def _number(value: object, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise SheetsError("sheets.not_number", where=where, value=value)
    try:
        number = Decimal(repr(value) if isinstance(value, float) else str(value).strip())
    except InvalidOperation:
        raise SheetsError("sheets.not_number", where=where, value=value) from None
    if not number.is_finite() or number <= 0:
        raise SheetsError("sheets.not_positive", where=where, value=value)
    return number


def _text(entry: Mapping[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise SheetsError("sheets.nonempty", where=where, key=key)
    return value.strip()


def sheets_from_data(data: Mapping[str, Any], *, where: str = "exam.toml") -> AnswerSheets:
    """Build and check the sheets from parsed TOML; errors name the sheet, entry and key."""
    unknown = sorted(set(data) - set(SHEETS))
    if unknown:
        raise SheetsError(
            "sheets.unknown_tables",
            where=where,
            unknown=", ".join(unknown),
            known=", ".join(SHEETS),
        )
    items: list[SheetItem] = []
    seen: dict[str, str] = {}
    for sheet in SHEETS:
        entries = data.get(sheet, [])
        if not isinstance(entries, Sequence) or isinstance(entries, str):
            raise SheetsError("sheets.not_array", where=where, sheet=sheet)
        for i, entry in enumerate(entries):
            at = f"{where}: {sheet}[{i}]"
            if not isinstance(entry, Mapping):
                raise SheetsError("sheets.not_table", at=at)
            extra = sorted(set(entry) - set(_ITEM_KEYS))
            if extra:
                raise SheetsError("sheets.unknown_keys", at=at, unknown=", ".join(extra))
            key = entry.get("key")
            if not isinstance(key, str) or not _KEY_RE.fullmatch(key):
                raise SheetsError("sheets.bad_key", at=at, key=key)
            if key in seen:
                raise SheetsError("sheets.key_taken", at=at, key=key, sheet=seen[key])
            seen[key] = sheet
            if "max" not in entry:
                raise SheetsError("sheets.no_max", at=at)
            items.append(
                SheetItem(
                    sheet=sheet,
                    key=key,
                    name_zh=_text(entry, "name_zh", at),
                    name_en=_text(entry, "name_en", at),
                    max_points=_number(entry["max"], f"{at}.max"),
                    checks_zh=_text(entry, "checks_zh", at),
                    checks_en=_text(entry, "checks_en", at),
                )
            )
    sheets = AnswerSheets(tuple(items))
    if not sheets.of("basic") and not sheets.of("required"):
        raise SheetsError("sheets.no_items", where=where)
    names: dict[tuple[str, str], str] = {}
    for item in items:
        for name in (item.name_zh, item.name_en):
            other = names.get((item.sheet, name))
            if other is not None and other != item.key:
                raise SheetsError(
                    "sheets.same_name",
                    where=where,
                    sheet=item.sheet,
                    a=other,
                    b=item.key,
                    name=name,
                )
            names[item.sheet, name] = item.key
    return sheets


def load_sheets(path: Path) -> AnswerSheets:
    """Read the zone's answer-sheet file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SheetsError("sheets.not_found", path=path) from None
    except tomllib.TOMLDecodeError as exc:
        raise SheetsError("sheets.not_toml", name=path.name, reason=exc) from None
    return sheets_from_data(data, where=path.name)
