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
- A problem (:class:`Problem`) is a code of :mod:`closeloop.errors` with its parameters and its
  line, never a sentence: the same refusal reads "line 4: ..." in English (the command line's
  default) and "第 4 行：..." on a Chinese page. A coded error met on a line keeps its code.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from closeloop import errors
from closeloop.errors import CodedError
from closeloop.tickets import Invalid


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem of a file: a code of the catalogue, the parameters its templates name, and
    its line (0: the file as a whole; None: of no line, a field of a form)."""

    line: int | None
    code: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def text(self, locale: str = "en", words: Callable[[str], str] | None = None) -> str:
        """``line N: ...`` / ``第 N 行：...`` (``file: ...`` for the file) in ``locale``."""
        said = errors.text(self.code, self.params, locale, words)
        if self.line is None:
            return said
        if self.line > 0:
            return errors.text("csv.line", {"line": self.line, "problem": said}, locale)
        return errors.text("csv.file", {"problem": said}, locale)


class Listed:
    """An error listing problems: ``items`` by line, ``problems`` them in English,
    :meth:`lines` in a reader's language."""

    items: list[Problem]

    @property
    def problems(self) -> list[str]:
        return self.lines("en")

    def lines(self, locale: str = "en", words: Callable[[str], str] | None = None) -> list[str]:
        return [p.text(locale, words) for p in self.items]


class CsvFileError(Listed, CodedError, ValueError):
    """A file refused whole; ``items`` are its problems ordered by line, ``problems`` them
    in English, :meth:`lines` in a reader's language."""

    # The code of the head line, which names the file; a subclass names its own.
    refused = "csv.refused"
    indent = "  "

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.items = list(problems)
        count = len(self.items)
        super().__init__(self.refused, count=count, plural="s" if count != 1 else "")

    def text(self, locale: str, words: Callable[[str], str] | None = None) -> str:
        head = super().text(locale, words)
        return "\n".join([head, *(self.indent + line for line in self.lines(locale, words))])

    def __str__(self) -> str:
        return self.text("en")


def joined(
    problems: Iterable[Problem], locale: str = "en", words: Callable[[str], str] | None = None
) -> str:
    """Problems in one sentence: ``a; b`` in English, ``甲；乙。`` in Chinese."""
    texts = [p.text(locale, words) for p in problems]
    if locale != "zh_CN":
        return "; ".join(texts)
    return "；".join(t.rstrip("。") for t in texts) + "。"


class ProblemsRefused(Invalid):
    """Input refused whole with every problem named (a campaign day's findings, a meeting, a
    patrol): ``code``'s templates say ``{problems}``, joined in the reader's language."""

    def __init__(self, code: str, /, *, problems: Sequence[Problem]) -> None:
        self.items = list(problems)
        super().__init__(code, problems=joined(self.items))

    def text(self, locale: str, words: Callable[[str], str] | None = None) -> str:
        said = joined(self.items, locale, words)
        return errors.text(self.code, {**self.params, "problems": said}, locale, words)


@dataclass(slots=True)
class Problems:
    """The problems of one file as they are found, each with its line (0: the file)."""

    items: list[tuple[int, int, Problem]] = field(default_factory=list)

    def add(self, line: int, code: str, /, **params: Any) -> None:
        """A problem of ``line`` said by ``code`` of the catalogue with its ``params``."""
        if code not in errors.CATALOGUE:
            raise KeyError(code)
        self.items.append((line, len(self.items), Problem(line, code, params)))

    def extend(self, problems: Iterable[Problem]) -> None:
        """Problems already made (a check between lines), each of its own line."""
        for problem in problems:
            self.items.append((problem.line or 0, len(self.items), problem))

    def add_error(self, line: int, error: CodedError) -> None:
        """A coded error met on ``line`` (a parser's ``Invalid``), its code and parameters kept."""
        self.add(line, error.code, **error.params)

    def __bool__(self) -> bool:
        return bool(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def found(self) -> list[Problem]:
        """The file's own problems first, then by line, in the order found within a line."""
        return [problem for _, _, problem in sorted(self.items, key=lambda i: i[:2])]

    def rendered(self, locale: str = "en") -> list[str]:
        """``file: ...`` first, then ``line N: ...`` by line, in ``locale``."""
        return [problem.text(locale) for problem in self.found()]


@dataclass(frozen=True, slots=True)
class Row:
    """One data row: its line and its cells by column name ("" for an optional column the
    header does not have)."""

    line: int
    cells: Mapping[str, str]

    def __getitem__(self, column: str) -> str:
        return self.cells[column]


# Byte patterns of what people upload instead of a CSV text, and the code that says what it is.
_NOT_TEXT: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xfe", "csv.utf16_excel"),
    (b"\xfe\xff", "csv.utf16"),
    (b"PK\x03\x04", "csv.xlsx"),
    (b"\xd0\xcf\x11\xe0", "csv.xls"),
)


def decode(data: bytes) -> str:
    """The text of an uploaded file: UTF-8 (an Excel BOM dropped), else GBK/GB18030.

    Raises :class:`CsvFileError` naming what the bytes are when they are neither.
    """
    for magic, code in _NOT_TEXT:
        if data.startswith(magic):
            raise CsvFileError([Problem(0, code)])
    if b"\x00" in data:
        raise CsvFileError([Problem(0, "csv.binary", {"at": data.index(0)})])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise CsvFileError([Problem(0, "csv.undecodable", {"at": exc.start})]) from None


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
            problems.add(reader.line_num, "csv.malformed", reason=str(exc))
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
            problems.add(0, "csv.empty")
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
            problems.add(line, "csv.width", found=len(cells), header=width)
            table.misshapen.append(row)
        else:
            table.rows.append(row)
    if not table.rows and not problems:
        problems.add(header_line, "csv.no_rows")
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
        problems.add(line, "csv.unnamed_columns", columns=", ".join(unnamed))
    missing = [c for c in required if c not in names]
    if missing:
        problems.add(line, "csv.missing_columns", columns=", ".join(missing))
    unknown = [h for h, name in zip(header, names, strict=True) if name and name not in known]
    if unknown:
        problems.add(
            line,
            "csv.unknown_columns",
            columns=", ".join(repr(c) for c in unknown),
            expected=",".join(known),
        )
    repeated = sorted({name for name in names if name in known and names.count(name) > 1})
    if repeated:
        problems.add(line, "csv.repeated_columns", columns=", ".join(repeated))
    if len(problems) > before:
        return None
    return {name: i for i, name in enumerate(names)}
