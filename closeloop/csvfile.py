"""Reading a CSV file that people import: one reader for the grid file, members.csv, exam
scores, the city's scores and a campaign day's findings.

Pure but for :func:`read_file`: bytes or text in, rows and problems out. The rules are the
same for every import:

- Encoding: UTF-8, with or without the byte-order mark Excel writes for "CSV UTF-8", else
  GB18030 (a superset of GBK, what Excel on a Chinese Windows writes for "CSV (逗号分隔)").
  UTF-16 ("Unicode text"), a workbook or a binary file is refused, saying what it is.
- Line numbers are those an editor or Excel shows: the header is line 1, and a record whose
  quoted cell spans lines has the number of its first line. Blank lines are skipped and cells
  are stripped.
- The header names the columns in any order and case; the empty columns Excel keeps right of
  the table are ignored. A missing, unknown, unnamed or repeated column refuses the file before
  any row is read.
- A row with more or fewer cells than the header is a problem of its line; the importer checks
  the cells of the others and adds its own problems to the same :class:`Problems`.
- The file is refused whole (:class:`CsvFileError`) with every problem listed by line.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from closeloop.tickets import Invalid


class CsvFileError(ValueError):
    """A file refused whole; ``problems`` lists every problem found, ordered by line."""

    what = "the file"

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        head = f"{self.what} is refused, {count} problem{'s' if count != 1 else ''}:"
        super().__init__("\n".join([head, *(f"  {p}" for p in self.problems)]))


@dataclass(slots=True)
class Problems:
    """The problems of one file, each with its line (0: the file as a whole)."""

    items: list[tuple[int, int, str]] = field(default_factory=list)

    def add(self, line: int, message: str) -> None:
        self.items.append((line, len(self.items), message))

    def __bool__(self) -> bool:
        return bool(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def rendered(self) -> list[str]:
        """``file: ...`` first, then ``line N: ...`` by line, in the order found within a line."""
        return [
            f"line {line}: {message}" if line > 0 else f"file: {message}"
            for line, _, message in sorted(self.items)
        ]


@dataclass(frozen=True, slots=True)
class Row:
    """One data row: its line and its cells by column name ("" for an optional column the
    header does not have)."""

    line: int
    cells: Mapping[str, str]

    def __getitem__(self, column: str) -> str:
        return self.cells[column]


# Byte patterns of what people upload instead of a CSV text, and what to tell them.
_NOT_TEXT: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xfe", 'UTF-16 text (Excel\'s "Unicode text")'),
    (b"\xfe\xff", "UTF-16 text"),
    (b"PK\x03\x04", "an Excel workbook (.xlsx) or another zip file"),
    (b"\xd0\xcf\x11\xe0", "an old Excel workbook (.xls)"),
)
_SAVE_AS = 'save it from Excel as "CSV UTF-8" or "CSV (逗号分隔)"'


def decode(data: bytes) -> str:
    """The text of an uploaded file: UTF-8 (an Excel BOM dropped), else GBK/GB18030.

    Raises :class:`CsvFileError` naming what the bytes are when they are neither.
    """
    for magic, what in _NOT_TEXT:
        if data.startswith(magic):
            raise CsvFileError([f"file: {what}, not a CSV text; {_SAVE_AS}"])
    if b"\x00" in data:
        raise CsvFileError([f"file: binary data (a NUL byte at {data.index(0)}); {_SAVE_AS}"])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise CsvFileError(
            [f"file: neither UTF-8 nor GBK/GB18030 text (byte {exc.start}); {_SAVE_AS}"]
        ) from None


def read_file(path: Path) -> str:
    """The decoded text of a file named on the command line (the one function here that reads)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise Invalid("file.not_found", path=path) from None
    except IsADirectoryError:
        raise Invalid("file.folder_not_csv", path=path) from None
    return decode(data)


def records(text: str, problems: Problems) -> Iterator[tuple[int, list[str]]]:
    """Non-blank records with the line each starts on, cells stripped. Malformed quoting is a
    problem of its line and ends the reading (what follows cannot be trusted)."""
    if text.startswith("\ufeff"):
        text = text[1:]
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    start = 1
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            problems.add(reader.line_num, f"malformed CSV ({exc}); reading stopped here")
            return
        cells = [c.strip() for c in record]
        if any(cells):
            yield start, cells
        start = reader.line_num + 1


@dataclass(frozen=True, slots=True)
class Table:
    """The rows of a file, and those of the wrong width (already a problem), whose cells are
    what they are: an importer may want to know a code no other row should be blamed for."""

    rows: list[Row]
    misshapen: list[Row]


def read_rows(
    text: str,
    required: Sequence[str],
    optional: Sequence[str] = (),
    *,
    problems: Problems,
) -> Table:
    """The rows of a CSV text whose header has the ``required`` columns and maybe ``optional``
    ones. Problems of the file, its header and the width of rows go to ``problems``. An empty
    file, a header problem or a header without rows gives no rows."""
    found = records(text, problems)
    first = next(found, None)
    if first is None:
        if not problems:
            problems.add(0, "the file is empty; it needs a header and at least one row")
        return Table([], [])
    header_line, header = first
    while header and not header[-1]:
        header.pop()
    columns = _columns(header_line, header, required, optional, problems)
    if columns is None:
        return Table([], [])
    width = len(header)
    absent = dict.fromkeys((c for c in optional if c not in columns), "")
    table = Table([], [])
    for line, cells in found:
        row = Row(
            line,
            {name: (cells[i] if i < len(cells) else "") for name, i in columns.items()} | absent,
        )
        if len(cells) < width or any(cells[width:]):
            problems.add(line, f"{len(cells)} fields where the header has {width}")
            table.misshapen.append(row)
        else:
            table.rows.append(row)
    if not table.rows and not problems:
        problems.add(header_line, "the header is not followed by any row")
    return table


def _columns(
    line: int,
    header: list[str],
    required: Sequence[str],
    optional: Sequence[str],
    problems: Problems,
) -> dict[str, int] | None:
    before = len(problems)
    known = (*required, *optional)
    names = [h.lower() for h in header]
    unnamed = [str(i + 1) for i, name in enumerate(names) if not name]
    if unnamed:
        problems.add(line, f"column(s) {', '.join(unnamed)} without a name")
    missing = [c for c in required if c not in names]
    if missing:
        problems.add(line, f"missing column(s) {', '.join(missing)}")
    unknown = [h for h, name in zip(header, names, strict=True) if name and name not in known]
    if unknown:
        problems.add(
            line,
            f"unknown column(s) {', '.join(repr(c) for c in unknown)} (expected {','.join(known)})",
        )
    repeated = sorted({name for name in names if name in known and names.count(name) > 1})
    if repeated:
        problems.add(line, f"column(s) given twice: {', '.join(repeated)}")
    if len(problems) > before:
        return None
    return {name: i for i, name in enumerate(names)}
