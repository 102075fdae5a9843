"""Reading and validating a grid CSV file (the four-level grid and its leaders).

Pure: text in, validated rows out. The database part of ``closeloop grid import`` calls
:func:`read_grid_csv` with the grids already stored and writes the rows only if no problem was
found, so a bad file is refused whole and every problem is listed with its line at once.

The file has one row per grid::

    code,name,level,parent_code,leader_handle,leader_name,leader_phone,leader_email[,kind,channels,webhook]

The file is read by :mod:`closeloop.csvfile` (encoding, header, line numbers, problems by
line); this module checks what the cells say.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from urllib.parse import urlsplit

from closeloop.csvfile import CsvFileError, Problems, read_rows

REQUIRED_COLUMNS: tuple[str, ...] = (
    "code",
    "name",
    "level",
    "parent_code",
    "leader_handle",
    "leader_name",
    "leader_phone",
    "leader_email",
)
OPTIONAL_COLUMNS: tuple[str, ...] = ("kind", "channels", "webhook")

LEVELS: tuple[int, ...] = (1, 2, 3, 4)

KINDS_BY_LEVEL: Mapping[int, frozenset[str]] = MappingProxyType(
    {
        1: frozenset({"zone"}),
        2: frozenset({"work_area", "enterprise_group", "community"}),
        3: frozenset({"village", "enterprise_grid", "community_section"}),
        4: frozenset({"household_group", "enterprise"}),
    }
)
LEVEL_OF_KIND: Mapping[str, int] = MappingProxyType(
    {kind: level for level, kinds in KINDS_BY_LEVEL.items() for kind in kinds}
)

# The article's three lines under the zone: villages (rural work areas), enterprises
# (enterprise-liaison grids) and the community; a line does not cross into another.
CHILD_KINDS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "zone": frozenset({"work_area", "enterprise_group", "community"}),
        "work_area": frozenset({"village"}),
        "enterprise_group": frozenset({"enterprise_grid"}),
        "community": frozenset({"community_section"}),
        "village": frozenset({"household_group"}),
        "enterprise_grid": frozenset({"enterprise"}),
        "community_section": frozenset({"household_group"}),
        "household_group": frozenset(),
        "enterprise": frozenset(),
    }
)
# The kind a row gets when the file leaves it empty, from the parent's kind.
DEFAULT_CHILD_KIND: Mapping[str, str] = MappingProxyType(
    {
        "zone": "work_area",
        "work_area": "village",
        "enterprise_group": "enterprise_grid",
        "community": "community_section",
        "village": "household_group",
        "enterprise_grid": "enterprise",
        "community_section": "household_group",
    }
)

CHANNELS: tuple[str, ...] = ("console", "file", "email", "webhook")

_CODE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_HANDLE_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_EMAIL_RE = re.compile(r"[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>.]+")
_PHONE_RE = re.compile(r"\+?[0-9]{5,15}")
_CHANNEL_SPLIT_RE = re.compile(r"[;,]")


@dataclass(frozen=True, slots=True)
class GridRow:
    """One valid grid of the file, with its kind resolved and its leader."""

    line: int
    code: str
    name: str
    level: int
    kind: str
    parent_code: str | None
    leader_handle: str
    leader_name: str
    leader_phone: str | None
    leader_email: str | None
    channels: tuple[str, ...] = ()
    webhook: str | None = None


@dataclass(frozen=True, slots=True)
class StoredGrid:
    """What the validator needs to know about a grid already in the database."""

    code: str
    level: int
    kind: str
    parent_code: str | None


class GridFileError(CsvFileError):
    """The file is refused; ``problems`` lists every problem found, ordered by line."""

    refused = "gridfile.refused"


_NO_GRIDS: Mapping[str, StoredGrid] = MappingProxyType({})


@dataclass(slots=True)
class _Draft:
    """A row while it is being checked; fields are None where the cell was unusable."""

    line: int
    code: str
    name: str
    level: int | None
    given_kind: str | None
    parent_code: str | None
    leader_handle: str
    leader_name: str
    leader_phone: str | None
    leader_email: str | None
    channels: tuple[str, ...]
    webhook: str | None
    kind: str | None = None
    in_cycle: bool = False


def read_grid_csv(text: str, stored: Mapping[str, StoredGrid] = _NO_GRIDS) -> list[GridRow]:
    """Parse and validate a grid file against the grids already ``stored`` (by code).

    Returns the rows ordered parents before children (by level, then by line). Raises
    :class:`GridFileError` listing every problem if there is any; then nothing may be written.
    """
    problems = Problems()
    rows_by_code, broken = _parse(text, problems)
    if not rows_by_code:
        raise GridFileError(problems.found())
    _check_people(rows_by_code.values(), problems)
    _check_structure(rows_by_code, broken, stored, problems)
    if problems:
        raise GridFileError(problems.found())
    ordered = sorted(rows_by_code.values(), key=lambda d: (d.level or 0, d.line))
    return [_finish(d) for d in ordered]


def format_grid_csv(rows: Iterable[GridRow]) -> str:
    """Write rows as a grid file that :func:`read_grid_csv` reads back to the same rows.

    The kind column is always written; channels and webhook only if some row has them.
    """
    rows = list(rows)
    extra = ["kind"]
    if any(r.channels for r in rows):
        extra.append("channels")
    if any(r.webhook for r in rows):
        extra.append("webhook")
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*REQUIRED_COLUMNS, *extra])
    for r in rows:
        cells = [
            r.code,
            r.name,
            str(r.level),
            r.parent_code or "",
            r.leader_handle,
            r.leader_name,
            r.leader_phone or "",
            r.leader_email or "",
            r.kind,
        ]
        if "channels" in extra:
            cells.append(";".join(r.channels))
        if "webhook" in extra:
            cells.append(r.webhook or "")
        writer.writerow(cells)
    return out.getvalue()


# --- parsing: cells to drafts, with the checks that need only the row itself ---------------


def _parse(text: str, problems: Problems) -> tuple[dict[str, _Draft], set[str]]:
    """Drafts by code (first occurrence) and the codes of unusable rows."""
    table = read_rows(text, REQUIRED_COLUMNS, OPTIONAL_COLUMNS, problems=problems)
    # so that children of a row that cannot be read do not also report an unknown parent
    broken = {row["code"] for row in table.misshapen if row["code"]}
    by_code: dict[str, _Draft] = {}
    for row in table.rows:
        draft = _draft(row.line, row.cells, problems)
        if draft is None:
            if row["code"]:
                broken.add(row["code"])
            continue
        first = by_code.get(draft.code)
        if first is not None:
            problems.add(row.line, "gridfile.duplicate", code=draft.code, first=first.line)
            continue
        by_code[draft.code] = draft
    return by_code, broken - by_code.keys()


def _draft(line: int, cells: Mapping[str, str], problems: Problems) -> _Draft | None:
    code = cells["code"]
    if not code:
        problems.add(line, "gridfile.empty_code")
        return None
    if not _CODE_RE.fullmatch(code):
        problems.add(line, "gridfile.bad_code", code=code)
        return None
    name = cells["name"]
    if not name:
        problems.add(line, "gridfile.empty_name", code=code)

    level: int | None = None
    raw_level = cells["level"]
    if raw_level in {"1", "2", "3", "4"}:
        level = int(raw_level)
    else:
        problems.add(line, "gridfile.bad_level", level=raw_level, code=code)

    given_kind = cells.get("kind") or None
    if given_kind is not None:
        given_kind = given_kind.lower()
        if given_kind not in LEVEL_OF_KIND:
            known = ", ".join(sorted(LEVEL_OF_KIND))
            problems.add(line, "gridfile.unknown_kind", kind=given_kind, code=code, known=known)
            given_kind = None
        elif level is not None and given_kind not in KINDS_BY_LEVEL[level]:
            allowed = ", ".join(sorted(KINDS_BY_LEVEL[level]))
            problems.add(
                line,
                "gridfile.kind_level",
                kind=given_kind,
                kind_level=LEVEL_OF_KIND[given_kind],
                code=code,
                level=level,
                allowed=allowed,
            )
            given_kind = None

    handle = cells["leader_handle"]
    leader_name = cells["leader_name"]
    if not handle:
        problems.add(line, "gridfile.no_leader_handle", code=code)
    elif not _HANDLE_RE.fullmatch(handle):
        problems.add(line, "gridfile.bad_handle", handle=handle)
    if not leader_name:
        problems.add(line, "gridfile.no_leader_name", code=code)

    phone = cells["leader_phone"] or None
    if phone is not None and not _PHONE_RE.fullmatch(re.sub(r"[\s-]", "", phone)):
        problems.add(line, "gridfile.bad_phone", phone=phone, code=code)
    email = cells["leader_email"] or None
    if email is not None and not _EMAIL_RE.fullmatch(email):
        problems.add(line, "gridfile.bad_email", email=email, code=code)

    channels: list[str] = []
    for part in _CHANNEL_SPLIT_RE.split(cells.get("channels", "")):
        channel = part.strip().lower()
        if not channel:
            continue
        if channel not in CHANNELS:
            problems.add(
                line,
                "gridfile.unknown_channel",
                channel=part.strip(),
                code=code,
                allowed=", ".join(CHANNELS),
            )
        elif channel not in channels:
            channels.append(channel)

    webhook = cells.get("webhook") or None
    if webhook is not None:
        parts = urlsplit(webhook)
        if parts.scheme not in {"http", "https"} or not parts.netloc or " " in webhook:
            problems.add(line, "gridfile.bad_webhook", webhook=webhook, code=code)

    return _Draft(
        line=line,
        code=code,
        name=name,
        level=level,
        given_kind=given_kind,
        parent_code=cells["parent_code"] or None,
        leader_handle=handle,
        leader_name=leader_name,
        leader_phone=phone,
        leader_email=email,
        channels=tuple(channels),
        webhook=webhook,
    )


# --- checks across rows ----------------------------------------------------------------------


def _check_people(drafts: Iterable[_Draft], problems: Problems) -> None:
    """A handle is one person: the same name everywhere, and no two different phones or emails."""
    first: dict[str, _Draft] = {}
    for d in drafts:
        if not d.leader_handle:
            continue
        seen = first.setdefault(d.leader_handle, d)
        if seen is d:
            continue
        for label, label_zh, here, there in (
            ("name", "姓名", d.leader_name, seen.leader_name),
            ("phone", "电话", d.leader_phone, seen.leader_phone),
            ("email", "邮箱", d.leader_email, seen.leader_email),
        ):
            if here and there and here != there:
                problems.add(
                    d.line,
                    "gridfile.leader_differs",
                    handle=d.leader_handle,
                    field=label,
                    field_zh=label_zh,
                    here=here,
                    there=there,
                    first=seen.line,
                )


def _check_structure(
    by_code: dict[str, _Draft],
    broken: set[str],
    stored: Mapping[str, StoredGrid],
    problems: Problems,
) -> None:
    _check_zone(by_code, stored, problems)
    _mark_cycles(by_code, stored, problems)
    # by level, so that a parent's kind is resolved before its children need it
    for d in sorted(by_code.values(), key=lambda d: (d.level or 5, d.line)):
        _check_parent_and_kind(d, by_code, broken, stored, problems)


def _check_zone(
    by_code: dict[str, _Draft], stored: Mapping[str, StoredGrid], problems: Problems
) -> None:
    zone = next((g.code for g in stored.values() if g.level == 1), None)
    for d in by_code.values():
        if d.level != 1:
            continue
        if d.parent_code is not None:
            problems.add(d.line, "gridfile.zone_parent", code=d.code, parent=d.parent_code)
        if zone is None:
            zone = d.code
        elif d.code != zone:
            problems.add(d.line, "gridfile.second_zone", code=d.code, zone=zone)


def _mark_cycles(
    by_code: dict[str, _Draft], stored: Mapping[str, StoredGrid], problems: Problems
) -> None:
    """Follow parents (the file's, else the stored ones) and report every grid of a cycle."""

    def parent_of(code: str) -> str | None:
        d = by_code.get(code)
        if d is not None:
            return d.parent_code
        s = stored.get(code)
        return s.parent_code if s is not None else None

    done: set[str] = set()
    for start in by_code:
        if start in done:
            continue
        path: list[str] = []
        on_path: dict[str, int] = {}
        code: str | None = start
        while code is not None and code not in done and code not in on_path:
            on_path[code] = len(path)
            path.append(code)
            code = parent_of(code)
        if code is not None and code in on_path:
            cycle = path[on_path[code] :]
            shown = " → ".join([*cycle, cycle[0]])
            for member in cycle:
                d = by_code.get(member)
                if d is None:
                    continue  # a stored grid pulled into the cycle by the file's rows
                d.in_cycle = True
                if d.parent_code == d.code:
                    problems.add(d.line, "gridfile.own_parent", code=d.code)
                else:
                    problems.add(d.line, "gridfile.cycle", code=d.code, cycle=shown)
        done.update(path)


def _check_parent_and_kind(
    d: _Draft,
    by_code: dict[str, _Draft],
    broken: set[str],
    stored: Mapping[str, StoredGrid],
    problems: Problems,
) -> None:
    old = stored.get(d.code)
    if old is not None:
        _check_not_moved(d, old, problems)

    parent_level: int | None = None
    parent_kind: str | None = None
    parent_ok = False
    if d.level is not None and d.level > 1:
        if d.parent_code is None:
            problems.add(d.line, "gridfile.no_parent", level=d.level, code=d.code)
        elif d.in_cycle:
            pass  # reported as a cycle; its level and kind follow from that fix
        elif d.parent_code in by_code:
            parent = by_code[d.parent_code]
            parent_level, parent_kind = parent.level, parent.kind
            parent_ok = True
        elif d.parent_code in stored:
            parent_s = stored[d.parent_code]
            parent_level, parent_kind = parent_s.level, parent_s.kind
            parent_ok = True
        elif d.parent_code not in broken:
            problems.add(d.line, "gridfile.unknown_parent", parent=d.parent_code, code=d.code)
    if parent_ok and parent_level is not None and d.level != parent_level + 1:
        problems.add(
            d.line,
            "gridfile.parent_level",
            code=d.code,
            level=d.level,
            parent=d.parent_code,
            parent_level=parent_level,
        )
        parent_kind = None  # the kinds cannot fit either; one problem is enough

    if d.level is None:
        return
    if d.given_kind is not None:
        d.kind = d.given_kind
        children = CHILD_KINDS.get(parent_kind or "")
        if children is not None and d.kind not in children:
            allowed = ", ".join(sorted(children)) or "none"
            problems.add(
                d.line,
                "gridfile.parent_kind",
                kind=d.kind,
                parent_kind=parent_kind,
                parent=d.parent_code,
                allowed=allowed,
            )
    elif old is not None and old.level == d.level:
        d.kind = old.kind
    elif d.level == 1:
        d.kind = "zone"
    elif parent_kind is not None:
        d.kind = DEFAULT_CHILD_KIND.get(parent_kind)
    elif d.level == 2:
        d.kind = "work_area"
    if d.kind is None and parent_kind is not None:
        # a stored parent of a kind this version does not know
        problems.add(d.line, "gridfile.kind_unknown", code=d.code)

    if "webhook" in d.channels and d.webhook is None and old is None:
        problems.add(d.line, "gridfile.no_webhook", code=d.code)


def _check_not_moved(d: _Draft, old: StoredGrid, problems: Problems) -> None:
    if d.level is not None and d.level != old.level:
        problems.add(d.line, "gridfile.moved_level", code=d.code, old=old.level, level=d.level)
    if d.parent_code != old.parent_code and not (d.level is not None and d.level != old.level):
        problems.add(
            d.line,
            "gridfile.moved_parent",
            code=d.code,
            old=old.parent_code or "(none)",
            old_zh=old.parent_code or "（无）",
            parent=d.parent_code or "(none)",
            parent_zh=d.parent_code or "（无）",
        )
    if d.given_kind is not None and d.given_kind != old.kind and d.level == old.level:
        problems.add(d.line, "gridfile.kind_changed", code=d.code, old=old.kind, kind=d.given_kind)


def _finish(d: _Draft) -> GridRow:
    # only called when no problem was found, so every optional field is settled
    assert d.level is not None and d.kind is not None
    return GridRow(
        line=d.line,
        code=d.code,
        name=d.name,
        level=d.level,
        kind=d.kind,
        parent_code=d.parent_code,
        leader_handle=d.leader_handle,
        leader_name=d.leader_name,
        leader_phone=d.leader_phone,
        leader_email=d.leader_email,
        channels=d.channels,
        webhook=d.webhook,
    )
