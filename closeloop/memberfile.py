"""Reading and validating `members.csv`: the people of a grid beside its leader.

Pure: text in, checked rows out; read by `closeloop.csvfile` like every import, so the file is
refused whole and every problem is named with its line. One row per member of a grid::

    grid_code,handle,name,phone,email,role,duty

`role` is what the person is on that grid (第一书记, 联村干部, 村支书, 党员代表, 执法中队 ...),
`duty` their division of labour (分工), optional. A person may be a member of several grids.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from closeloop.csvfile import CsvFileError, Problems, read_rows
from closeloop.gridfile import _EMAIL_RE, _HANDLE_RE, _PHONE_RE

COLUMNS: tuple[str, ...] = ("grid_code", "handle", "name", "phone", "email", "role", "duty")
REQUIRED: tuple[str, ...] = ("grid_code", "handle", "name", "role")
OPTIONAL: tuple[str, ...] = tuple(c for c in COLUMNS if c not in REQUIRED)


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


class MemberFileError(CsvFileError):
    """The members file is refused; ``problems`` lists every problem, ordered by line."""

    refused = "memberfile.refused"


def read_members_csv(text: str, grid_codes: Collection[str]) -> list[MemberRow]:
    """Parse and check a members file against the stored grid codes; every problem at once."""
    problems = Problems()
    table = read_rows(text, REQUIRED, OPTIONAL, problems=problems)
    rows: list[MemberRow] = []
    seen: dict[tuple[str, str], int] = {}
    names: dict[str, tuple[str, int]] = {}
    for row in table.rows:
        line = row.line
        before = len(problems)
        code, handle, name, role = row["grid_code"], row["handle"], row["name"], row["role"]
        phone, email, duty = row["phone"] or None, row["email"] or None, row["duty"] or None
        if not code:
            problems.add(line, "memberfile.no_grid")
        elif code not in grid_codes:
            problems.add(line, "memberfile.unknown_grid", code=code)
        if not _HANDLE_RE.fullmatch(handle):
            problems.add(line, "memberfile.bad_handle", handle=handle)
        if not name:
            problems.add(line, "memberfile.no_name")
        elif len(name) > 100:
            problems.add(line, "memberfile.name_long")
        if not role:
            problems.add(line, "memberfile.no_role")
        elif len(role) > 64:
            problems.add(line, "memberfile.role_long")
        if duty is not None and len(duty) > 200:
            problems.add(line, "memberfile.duty_long")
        if phone is not None and not _PHONE_RE.fullmatch(phone.replace(" ", "").replace("-", "")):
            problems.add(line, "memberfile.bad_phone", phone=phone)
        if email is not None and not _EMAIL_RE.fullmatch(email):
            problems.add(line, "memberfile.bad_email", email=email)
        if (code, handle) in seen:
            problems.add(
                line, "memberfile.twice", handle=handle, code=code, first=seen[code, handle]
            )
        seen.setdefault((code, handle), line)
        if handle in names and names[handle][0] != name:
            problems.add(
                line,
                "memberfile.other_name",
                handle=handle,
                name=name,
                other=names[handle][0],
                first=names[handle][1],
            )
        names.setdefault(handle, (name, line))
        if len(problems) == before:
            rows.append(MemberRow(line, code, handle, name, phone, email, role, duty))
    if problems:
        raise MemberFileError(problems.found())
    return rows
