"""The one CSV reader every import uses: encodings Excel writes, line numbers an editor shows,
the header's checks, rows of the wrong width, and problems listed by line."""

from __future__ import annotations

from pathlib import Path

import pytest

from closeloop.csvfile import (
    CsvFileError,
    Problem,
    Problems,
    Row,
    decode,
    read_file,
    read_rows,
    records,
)
from closeloop.tickets import Invalid

TEXT = "grid,名称\nJS-A1-V01,堰头村\n"  # 堰 is outside GB2312, inside GBK


def problems_of(text: str, required: tuple[str, ...] = ("a", "b"), **kw: object) -> list[str]:
    problems = Problems()
    read_rows(text, required, problems=problems, **kw)  # type: ignore[arg-type]
    return problems.rendered()


# --- bytes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        TEXT.encode("utf-8"),
        b"\xef\xbb\xbf" + TEXT.encode("utf-8"),  # Excel's "CSV UTF-8"
        TEXT.encode("gbk"),  # Excel's "CSV (逗号分隔)" on a Chinese Windows
        TEXT.encode("gb18030"),
    ],
    ids=["utf-8", "utf-8 with BOM", "gbk", "gb18030"],
)
def test_decode_reads_what_excel_writes(data: bytes) -> None:
    assert decode(data) == TEXT


def test_decode_reads_gb18030_beyond_gbk() -> None:
    text = "name\n𠮷\n"  # a four-byte GB18030 sequence, not in GBK
    assert decode(text.encode("gb18030")) == text


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (TEXT.encode("utf-16"), "UTF-16 text"),
        (b"PK\x03\x04\x14\x00\x06\x00", "an Excel workbook (.xlsx)"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Excel workbook (.xls)"),
        (b"a,b\n1,\x00\n", "binary data (a NUL byte at 6)"),
        (b"a,b\n\x80,1\n", "neither UTF-8 nor GBK/GB18030 text (byte 4)"),
    ],
    ids=["utf-16", "xlsx", "xls", "nul", "undecodable"],
)
def test_decode_refuses_anything_else_saying_what_it_is(data: bytes, said: str) -> None:
    with pytest.raises(CsvFileError) as info:
        decode(data)
    [problem] = info.value.problems
    assert problem.startswith(f"file: {said}")
    assert problem.endswith('save it from Excel as "CSV UTF-8" or "CSV (逗号分隔)"')
    assert str(info.value).startswith("the file is refused, 1 problem:\n  file: ")
    [chinese] = info.value.lines("zh_CN")
    assert chinese.startswith("文件：") and chinese.endswith("“CSV UTF-8”或“CSV (逗号分隔)”。")


def test_read_file_decodes_and_names_a_missing_file_or_a_folder(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(TEXT.encode("gbk"))
    assert read_file(path) == TEXT
    with pytest.raises(Invalid, match="file not found: "):
        read_file(tmp_path / "nope.csv")
    with pytest.raises(Invalid, match="is a folder, not a CSV file"):
        read_file(tmp_path)


# --- records and rows -------------------------------------------------------------------------


def test_line_numbers_are_an_editors_with_blank_lines_skipped_and_cells_stripped() -> None:
    text = '\ufeffa,b\r\n\r\n 1 , x \r\n , \r\n2,"two\nlines"\r\n3,y\r\n'
    problems = Problems()
    assert list(records(text, problems)) == [
        (1, ["a", "b"]),
        (3, ["1", "x"]),
        (5, ["2", "two\nlines"]),
        (7, ["3", "y"]),
    ]
    assert not problems


def test_malformed_quoting_is_a_problem_of_its_line_and_stops_the_reading() -> None:
    problems = Problems()
    found = list(records('a,b\n1,x\n2,"x"y\n3,z\n', problems))
    assert found == [(1, ["a", "b"]), (2, ["1", "x"])]
    assert problems.rendered() == [
        "line 3: malformed CSV (',' expected after '\"'); reading stopped here"
    ]


def test_rows_by_column_in_any_order_and_case_with_absent_optional_columns_empty() -> None:
    problems = Problems()
    table = read_rows("B,A,,\n2,1,,\n", ("a", "b"), ("c",), problems=problems)
    assert table.rows == [Row(2, {"b": "2", "a": "1", "c": ""})]
    assert table.rows[0]["a"] == "1" and not problems and table.misshapen == []


def test_rows_of_the_wrong_width_are_problems_and_kept_apart() -> None:
    problems = Problems()
    table = read_rows("a,b\n1\n1,2,3\n1,2,,\n", ("a", "b"), problems=problems)
    assert [r.line for r in table.rows] == [4]  # Excel's empty cells right of the table
    assert table.misshapen == [Row(2, {"a": "1", "b": ""}), Row(3, {"a": "1", "b": "2"})]
    assert problems.rendered() == [
        "line 2: 1 fields where the header has 2",
        "line 3: 3 fields where the header has 2",
    ]


def test_every_header_problem_at_once_and_no_row_read() -> None:
    assert problems_of(",A,x,a,b\n1,2,3,4,5\n", ("a", "b", "c"), optional=("d",)) == [
        "line 1: column(s) 1 without a name",
        "line 1: missing column(s) c",
        "line 1: unknown column(s) 'x' (expected a,b,c,d)",
        "line 1: column(s) given twice: a",
    ]


@pytest.mark.parametrize("text", ["", "\ufeff", "\n\n", " , ,\n"])
def test_an_empty_file(text: str) -> None:
    assert problems_of(text) == ["file: the file is empty; it needs a header and at least one row"]


def test_a_header_without_rows() -> None:
    assert problems_of("\na,b\n\n") == ["line 2: the header is not followed by any row"]


def test_problems_are_listed_by_line_the_files_own_first_in_the_order_found() -> None:
    problems = Problems()
    problems.add(5, "csv.no_rows")
    problems.add(2, "csv.width", found=1, header=2)
    problems.add(0, "csv.empty")
    problems.add(2, "csv.missing_columns", columns="b")
    assert len(problems) == 4
    assert problems.rendered() == [
        "file: the file is empty; it needs a header and at least one row",
        "line 2: 1 fields where the header has 2",
        "line 2: missing column(s) b",
        "line 5: the header is not followed by any row",
    ]
    assert problems.rendered("zh_CN") == [
        "文件：文件是空的：需要一行表头和至少一行数据。",
        "第 2 行：这一行有 1 列，表头有 2 列。",
        "第 2 行：缺少列：b。",
        "第 5 行：表头下面没有数据行。",
    ]
    assert [(p.line, p.code) for p in problems.found()][:2] == [(0, "csv.empty"), (2, "csv.width")]


def test_a_problem_is_a_code_of_the_catalogue_and_a_coded_error_keeps_its_own() -> None:
    problems = Problems()
    with pytest.raises(KeyError):
        problems.add(2, "no.such_code")
    problems.add_error(3, Invalid("grid.unknown_quoted", code="X"))
    [problem] = problems.found()
    assert (problem.line, problem.code, dict(problem.params)) == (
        3,
        "grid.unknown_quoted",
        {"code": "X"},
    )
    assert problems.rendered() == ["line 3: unknown grid 'X'"]
    assert problems.rendered("zh_CN") == ["第 3 行：没有这个网格：X。"]


def test_a_refusal_lists_every_problem_under_a_head_that_names_the_file() -> None:
    class MembersRefused(CsvFileError):
        refused = "memberfile.refused"

    error = MembersRefused([Problem(2, "csv.no_rows"), Problem(3, "csv.empty")])
    assert isinstance(error, ValueError) and error.problems == [
        "line 2: the header is not followed by any row",
        "line 3: the file is empty; it needs a header and at least one row",
    ]
    assert str(error) == (
        "the members file is refused, 2 problems:\n"
        "  line 2: the header is not followed by any row\n"
        "  line 3: the file is empty; it needs a header and at least one row"
    )
    assert error.text("zh_CN") == (
        "成员文件未导入，共 2 个问题：\n  第 2 行：表头下面没有数据行。\n"
        "  第 3 行：文件是空的：需要一行表头和至少一行数据。"
    )
    assert error.lines("zh_CN")[0] == "第 2 行：表头下面没有数据行。"


def test_a_refusal_survives_pickling_with_its_problems() -> None:
    import pickle

    error = CsvFileError([Problem(4, "csv.width", {"found": 3, "header": 5})])
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is CsvFileError and again.items == error.items
    assert (
        str(again) == "the file is refused, 1 problem:\n  line 4: 3 fields where the header has 5"
    )
    assert (
        again.text("zh_CN") == "文件未导入，共 1 个问题：\n  第 4 行：这一行有 3 列，表头有 5 列。"
    )
