"""Reading and validating `members.csv`: the people of a grid beside its leader.

Pure: text in, checked rows out; the file is refused whole and every problem is named with its
line, like the grid file (`closeloop.gridfile`). One row per member of a grid::

    grid_code,handle,name,phone,email,role,duty

`role` is what the person is on that grid (第一书记, 联村干部, 村支书, 党员代表, 执法中队 ...),
`duty` their division of labour (分工), optional. A person may be a member of several grids.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection
from dataclasses import dataclass

from closeloop.gridfile import _EMAIL_RE, _HANDLE_RE, _PHONE_RE, GridFileError

COLUMNS: tuple[str, ...] = ("grid_code", "handle", "name", "phone", "email", "role", "duty")
REQUIRED: tuple[str, ...] = ("grid_code", "handle", "name", "role")


@dataclass(frozen=True, slots=True)
class MemberRow:
    line: int
    grid_code: str
    handle: str
    name: str
    phone: str | None
    email: str | None
    role: str
    duty: str | None


class MemberFileError(GridFileError):
    """The members file is refused; ``problems`` lists every problem, ordered by line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(problems)
        count = len(self.problems)
        head = f"the members file is refused, {count} problem{'s' if count != 1 else ''}:"
        ValueError.__init__(self, "\n".join([head, *(f"  {p}" for p in self.problems)]))


def read_members_csv(text: str, grid_codes: Collection[str]) -> list[MemberRow]:
    """Parse and check a members file against the stored grid codes; every problem at once."""
    problems: list[str] = []
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise MemberFileError(["file: empty; the header is " + ",".join(COLUMNS)]) from None
    missing = [c for c in REQUIRED if c not in header]
    unknown = [h for h in header if h not in COLUMNS]
    if missing or unknown:
        if missing:
            problems.append(f"line 1: missing column {', '.join(missing)}")
        if unknown:
            problems.append(f"line 1: unknown column {', '.join(unknown)}")
        raise MemberFileError(problems)
    index = {name: header.index(name) for name in header}
    rows: list[MemberRow] = []
    seen: dict[tuple[str, str], int] = {}
    names: dict[str, tuple[str, int]] = {}
    for line, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) > len(header):
            problems.append(f"line {line}: {len(cells)} cells, the header has {len(header)}")
            continue

        def cell(name: str, cells: list[str] = cells) -> str:
            i = index.get(name)
            return cells[i].strip() if i is not None and i < len(cells) else ""

        before = len(problems)
        code, handle, name, role = cell("grid_code"), cell("handle"), cell("name"), cell("role")
        phone, email, duty = cell("phone") or None, cell("email") or None, cell("duty") or None
        if not code:
            problems.append(f"line {line}: grid_code is empty")
        elif code not in grid_codes:
            problems.append(f"line {line}: unknown grid '{code}'")
        if not _HANDLE_RE.fullmatch(handle):
            problems.append(
                f"line {line}: handle {handle!r} must be lower-case letters, digits, '.', '_', '-'"
            )
        if not name:
            problems.append(f"line {line}: name is empty")
        elif len(name) > 100:
            problems.append(f"line {line}: name is longer than 100 characters")
        if not role:
            problems.append(f"line {line}: role is empty (e.g. 第一书记, 联村干部, 村支书)")
        elif len(role) > 64:
            problems.append(f"line {line}: role is longer than 64 characters")
        if duty is not None and len(duty) > 200:
            problems.append(f"line {line}: duty is longer than 200 characters")
        if phone is not None and not _PHONE_RE.fullmatch(phone.replace(" ", "").replace("-", "")):
            problems.append(f"line {line}: phone {phone!r} is not a phone number")
        if email is not None and not _EMAIL_RE.fullmatch(email):
            problems.append(f"line {line}: email {email!r} is not an e-mail address")
        if (code, handle) in seen:
            problems.append(
                f"line {line}: {handle} is listed twice for {code} (line {seen[code, handle]})"
            )
        seen.setdefault((code, handle), line)
        if handle in names and names[handle][0] != name:
            problems.append(
                f"line {line}: {handle} is named {name!r} here and {names[handle][0]!r} "
                f"on line {names[handle][1]}"
            )
        names.setdefault(handle, (name, line))
        if len(problems) == before:
            rows.append(MemberRow(line, code, handle, name, phone, email, role, duty))
    if not rows and not problems:
        problems.append("file: no member rows")
    if problems:
        raise MemberFileError(problems)
    return rows
