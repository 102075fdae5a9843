"""The grid CSV reader: the article's example zone, every refusal with its line, and speed."""

from __future__ import annotations

import importlib.util
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

from closeloop.csvfile import decode
from closeloop.gridfile import (
    GridFileError,
    GridRow,
    StoredGrid,
    format_grid_csv,
    read_grid_csv,
)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "zones" / "example" / "grids.csv"
HEADER = "code,name,level,parent_code,leader_handle,leader_name,leader_phone,leader_email"
HEADER_KIND = HEADER + ",kind"
NAMED_VILLAGES = {"堰头村", "曹园村", "苏溪村", "九龙村", "荆山夏村"}


def csv_text(*rows: str, header: str = HEADER_KIND) -> str:
    return "\n".join([header, *rows]) + "\n"


# A small valid file: header is line 1, so JS is line 2, ... JS-A1-V01-G01 is line 4.
BASE = (
    "JS,金山经济开发区,1,,zone.lead,胡主任,13800000001,zone.lead@example.org,zone",
    "JS-A1,第一农村工作片,2,JS,area1.lead,李片长,13800000002,area1.lead@example.org,work_area",
    "JS-A1-V01,堰头村,3,JS-A1,yantou.lead,王书记,,,village",
)

STORED = {
    "JS": StoredGrid("JS", 1, "zone", None),
    "JS-A1": StoredGrid("JS-A1", 2, "work_area", "JS"),
    "JS-A1-V01": StoredGrid("JS-A1-V01", 3, "village", "JS-A1"),
    "JS-E01": StoredGrid("JS-E01", 2, "enterprise_group", "JS"),
}


def refused(text: str, stored: dict[str, StoredGrid] | None = None) -> list[str]:
    with pytest.raises(GridFileError) as info:
        read_grid_csv(text, stored or {})
    assert str(info.value).count("\n") == len(info.value.problems)
    return info.value.problems


def only_problem(text: str, stored: dict[str, StoredGrid] | None = None) -> str:
    problems = refused(text, stored)
    assert len(problems) == 1, problems
    return problems[0]


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "make_example_zone", ROOT / "tools" / "make_example_zone.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- the example zone ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def example() -> list[GridRow]:
    return read_grid_csv(EXAMPLE.read_text(encoding="utf-8"))


def test_example_zone_has_the_articles_counts(example: list[GridRow]) -> None:
    levels = Counter(r.level for r in example)
    kinds = Counter(r.kind for r in example)
    assert levels[1] == 1 and levels[2] == 17 and levels[3] == 117
    assert (kinds["work_area"], kinds["enterprise_group"], kinds["community"]) == (3, 13, 1)
    assert (kinds["village"], kinds["enterprise_grid"], kinds["community_section"]) == (21, 91, 5)
    assert levels[4] > 117
    assert levels[4] == kinds["household_group"] + kinds["enterprise"]


def test_example_zone_villages_and_micro_grids(example: list[GridRow]) -> None:
    villages = {r.code: r for r in example if r.kind == "village"}
    assert {v.name for v in villages.values()} >= NAMED_VILLAGES
    groups_per_village = Counter(
        r.parent_code for r in example if r.kind == "household_group" and r.parent_code in villages
    )
    assert set(groups_per_village) == set(villages)
    assert all(3 <= n <= 6 for n in groups_per_village.values())
    jiulong = next(v for v in villages.values() if v.name == "九龙村")
    assert any("邵塘" in r.name for r in example if r.parent_code == jiulong.code)
    enterprises = Counter(r.parent_code for r in example if r.kind == "enterprise")
    grids = {r.code for r in example if r.kind == "enterprise_grid"}
    assert set(enterprises) == grids and all(1 <= n <= 3 for n in enterprises.values())
    section_codes = {r.code for r in example if r.kind == "community_section"}
    sections = Counter(r.parent_code for r in example if r.parent_code in section_codes)
    assert len(sections) == 5 and all(2 <= n <= 4 for n in sections.values())


def test_example_zone_people_are_memorable_and_clearly_fake(example: list[GridRow]) -> None:
    by_code = {r.code: r for r in example}
    assert by_code["JS"].leader_handle == "zone.lead"
    yantou = next(r for r in example if r.name == "堰头村")
    assert yantou.leader_handle == "yantou.lead"
    assert any(r.leader_handle == "yantou.g1" and r.parent_code == yantou.code for r in example)
    handles = [r.leader_handle for r in example]
    assert len(set(handles)) == len(handles)
    for r in example:
        assert r.leader_phone is not None and r.leader_phone.startswith("1380000")
        assert len(r.leader_phone) == 11
        assert r.leader_email == f"{r.leader_handle}@example.org"


def test_example_file_is_what_the_seeded_generator_writes() -> None:
    generator = load_generator()
    text = EXAMPLE.read_text(encoding="utf-8-sig")
    assert generator.render() == text
    assert generator.render(7) != text  # the seed matters, so the check above is not vacuous
    assert EXAMPLE.read_bytes().startswith(b"\xef\xbb\xbf")  # Excel needs the BOM for Chinese


def test_format_reads_back_to_the_same_rows(example: list[GridRow]) -> None:
    again = read_grid_csv(format_grid_csv(example))
    assert [(r.code, r.kind, r.leader_name) for r in again] == [
        (r.code, r.kind, r.leader_name) for r in example
    ]


# --- valid files -----------------------------------------------------------------------------


def test_minimal_file_parses_with_bom_crlf_and_trailing_spaces() -> None:
    text = "\ufeff" + csv_text(*BASE).replace("\n", "\r\n").replace(",王书记,", ",王书记  ,")
    rows = read_grid_csv(text)
    assert [r.code for r in rows] == ["JS", "JS-A1", "JS-A1-V01"]
    assert rows[2].leader_name == "王书记"
    assert rows[2].leader_phone is None and rows[2].leader_email is None
    assert rows[2].line == 4


def test_rows_come_back_parents_before_children() -> None:
    text = csv_text(
        "JS-A1-V01-G01,堰头村第1户组,4,JS-A1-V01,yantou.g1,赵组长,,,",
        BASE[2],
        BASE[1],
        BASE[0],
    )
    rows = read_grid_csv(text)
    assert [r.code for r in rows] == ["JS", "JS-A1", "JS-A1-V01", "JS-A1-V01-G01"]
    assert [r.line for r in rows] == [5, 4, 3, 2]


def test_kinds_are_inferred_from_level_and_parent_when_absent() -> None:
    text = csv_text(
        "JS,区,1,,a,甲,,,",
        "JS-A1,片,2,JS,b,乙,,,",
        "JS-A1-V01,村,3,JS-A1,c,丙,,,",
        "JS-A1-V01-G1,户组,4,JS-A1-V01,d,丁,,,",
        "JS-E01,联企,2,JS,e,戊,,,enterprise_group",
        "JS-E01-S01,小网格,3,JS-E01,f,己,,,",
        "JS-E01-S01-Q1,公司,4,JS-E01-S01,g,庚,,,",
        "JS-C1,社区,2,JS,h,辛,,,community",
        "JS-C1-S1,片区,3,JS-C1,i,壬,,,",
        "JS-C1-S1-G1,组,4,JS-C1-S1,j,癸,,,",
        header=HEADER + ",kind",
    )
    kinds = {r.code: r.kind for r in read_grid_csv(text)}
    assert kinds == {
        "JS": "zone",
        "JS-A1": "work_area",
        "JS-A1-V01": "village",
        "JS-A1-V01-G1": "household_group",
        "JS-E01": "enterprise_group",
        "JS-E01-S01": "enterprise_grid",
        "JS-E01-S01-Q1": "enterprise",
        "JS-C1": "community",
        "JS-C1-S1": "community_section",
        "JS-C1-S1-G1": "household_group",
    }
    # and without the kind column at all
    no_kind = "\n".join([HEADER, "JS,区,1,,a,甲,,", "JS-A1,片,2,JS,b,乙,,"])
    assert [r.kind for r in read_grid_csv(no_kind)] == ["zone", "work_area"]


def test_stored_parents_are_accepted_and_give_their_kind() -> None:
    text = csv_text(
        "JS-A1-V01-G01,堰头村第1户组,4,JS-A1-V01,yantou.g1,赵组长,,,",
        "JS-E01-S01,第一联企网格第1小网格,3,JS-E01,ent01.s1,钱干部,,,",
    )
    rows = read_grid_csv(text, STORED)
    assert {r.code: r.kind for r in rows} == {
        "JS-A1-V01-G01": "household_group",
        "JS-E01-S01": "enterprise_grid",
    }


def test_reimporting_stored_grids_keeps_their_kind_and_updates_leaders() -> None:
    text = csv_text(
        "JS,金山经济开发区,1,,zone.new,新主任,,,",
        "JS-E01,第一联企网格,2,JS,ent01.lead,孙主任,,,",
        header=HEADER + ",kind",
    )
    rows = read_grid_csv(text, STORED)
    assert [(r.code, r.kind, r.leader_handle) for r in rows] == [
        ("JS", "zone", "zone.new"),
        ("JS-E01", "enterprise_group", "ent01.lead"),
    ]


def test_one_person_may_lead_several_grids() -> None:
    text = csv_text(*BASE, "JS-A2,第二农村工作片,2,JS,area1.lead,李片长,,,work_area")
    assert len(read_grid_csv(text)) == 4


def test_channels_and_webhook_are_read() -> None:
    text = csv_text(
        "JS,区,1,,zone.lead,甲,,,zone, Email ; webhook;email,https://hooks.example.org/js",
        header=HEADER_KIND + ",channels,webhook",
    )
    (row,) = read_grid_csv(text)
    assert row.channels == ("email", "webhook")
    assert row.webhook == "https://hooks.example.org/js"


def test_quoted_multiline_cell_keeps_line_numbers_true() -> None:
    text = csv_text(
        BASE[0], '"JS-A1","第一\n农村工作片",2,JS,area1.lead,李,,,', "JS-A1-V01,村,3,X,v,王,,,"
    )
    problems = refused(text)
    assert problems == [
        "line 5: unknown parent 'X' for grid 'JS-A1-V01' (neither in this file nor stored)"
    ]


def test_blank_lines_and_excel_empty_columns_are_ignored() -> None:
    text = "\n".join([HEADER_KIND + ",,", "", BASE[0] + ",,", ",,,,,,,,,,", BASE[1] + ",,", ""])
    rows = read_grid_csv(text)
    assert [(r.code, r.line) for r in rows] == [("JS", 3), ("JS-A1", 5)]


# --- each refusal, with its line -------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (",无代码,3,JS-A1,x,某,,,", "line 5: empty code"),
        ("JS A9,空格,3,JS-A1,x,某,,,", "line 5: code 'JS A9' may use only"),
        ("JS-A1-V02,,3,JS-A1,x,某,,,", "line 5: empty name for grid 'JS-A1-V02'"),
        ("JS-A1-V02,村,three,JS-A1,x,某,,,", "line 5: level 'three' of grid 'JS-A1-V02' is not"),
        ("JS-A1-V02,村,5,JS-A1,x,某,,,", "line 5: level '5' of grid 'JS-A1-V02' is not one of"),
        ("JS-A1-V02,村,3,,x,某,,,", "line 5: level-3 grid 'JS-A1-V02' needs a parent_code"),
        ("JS-A1-V02,村,3,JS-A9,x,某,,,", "line 5: unknown parent 'JS-A9' for grid 'JS-A1-V02'"),
        ("JS-A1-V02,村,4,JS-A1,x,某,,,", "line 5: grid 'JS-A1-V02' is level 4 but its parent"),
        ("JS-A1-V02,村,3,JS-A1,,某,,,", "line 5: missing leader_handle for grid 'JS-A1-V02'"),
        ("JS-A1-V02,村,3,JS-A1,x,,,,", "line 5: missing leader_name for grid 'JS-A1-V02'"),
        ("JS-A1-V02,村,3,JS-A1,Wang Li,某,,,", "line 5: leader_handle 'Wang Li' may use only"),
        ("JS-A1-V02,村,3,JS-A1,x,某,,x@y,", "line 5: bad leader_email 'x@y'"),
        ("JS-A1-V02,村,3,JS-A1,x,某,call me,,", "line 5: bad leader_phone 'call me'"),
        ("JS-A1-V02,村,3,JS-A1,x,某,,,hamlet", "line 5: unknown kind 'hamlet'"),
        (
            "JS-A1-V02,村,3,JS-A1,x,某,,,household_group",
            "line 5: kind 'household_group' is a level-4 kind, grid 'JS-A1-V02' is level 3",
        ),
        (
            "JS-A1-V02,村,3,JS-A1,x,某,,,enterprise_grid",
            "line 5: a 'enterprise_grid' grid cannot "
            "be under the 'work_area' grid 'JS-A1' (allowed: village)",
        ),
        ("JS-A1-V02,村,3,JS-A1,x,某,,", "line 5: 8 fields where the header has 9"),
        ("JS-A1-V02,村,3,JS-A1,x,某,,,village,oops", "line 5: 10 fields where the header has 9"),
        ("JS-A1,重复,2,JS,x,某,,,", "line 5: duplicate code 'JS-A1' (first on line 3)"),
        ("JS2,第二个区,1,,x,某,,,", "line 5: a second zone 'JS2': there is one level-1 grid, 'JS'"),
        (
            "JS-A1-V02,村,3,JS-A1,yantou.lead,王五,,,",
            "line 5: leader 'yantou.lead' has name "
            "'王五' here but '王书记' on line 4; a handle is one person",
        ),
        (
            "JS-A1-V02,村,3,JS-A1,area1.lead,李片长,13900000000,,",
            "line 5: leader 'area1.lead' has phone '13900000000' here but '13800000002' on line 3",
        ),
    ],
)
def test_each_problem_is_reported_on_its_line(row: str, expected: str) -> None:
    problem = only_problem(csv_text(*BASE, row))
    assert problem.startswith(expected), problem


def test_second_zone_against_a_stored_zone() -> None:
    problem = only_problem(csv_text("XX,另一个区,1,,x,某,,,zone"), STORED)
    assert problem == "line 2: a second zone 'XX': there is one level-1 grid, 'JS'"


def test_the_zone_has_no_parent() -> None:
    problem = only_problem(csv_text("JS,区,1,JS-X,x,某,,,"))
    assert (
        problem == "line 2: grid 'JS' is level 1 (the zone) and cannot have a parent ('JS-X' given)"
    )


def test_a_cycle_reports_every_grid_in_it() -> None:
    text = csv_text(
        BASE[0],
        "A,甲,3,B,a,甲,,,",
        "B,乙,3,A,b,乙,,,",
        "C,丙,4,C,c,丙,,,",
    )
    assert refused(text) == [
        "line 3: grid 'A' is in a parent cycle: A → B → A",
        "line 4: grid 'B' is in a parent cycle: A → B → A",
        "line 5: grid 'C' is its own parent",
    ]


def test_a_cycle_through_a_stored_grid() -> None:
    # the file moves the stored JS-A1 under a new grid whose parent is JS-A1
    text = csv_text("JS-A1,片,2,N,a,甲,,,", "N,新,2,JS-A1,b,乙,,,")
    problems = refused(text, STORED)
    assert "line 2: grid 'JS-A1' is in a parent cycle: JS-A1 → N → JS-A1" in problems
    assert "line 3: grid 'N' is in a parent cycle: JS-A1 → N → JS-A1" in problems
    assert any(p.startswith("line 2: grid 'JS-A1' is stored under 'JS'") for p in problems)


def test_moving_or_rekinding_a_stored_grid_is_refused() -> None:
    text = csv_text(
        "JS-A1-V01,堰头村,3,JS-E01,yantou.lead,王,,,",
        "JS-A1,片,3,JS-E01,area1.lead,李,,,",
        "JS-E01,联企,2,JS,ent01.lead,孙,,,community",
    )
    problems = refused(text, STORED)
    assert problems[0] == (
        "line 2: grid 'JS-A1-V01' is stored under 'JS-A1', here under 'JS-E01': "
        "moving a grid is not an import's job"
    )
    assert problems[1].startswith(
        "line 3: grid 'JS-A1' is stored at level 2, here 3: moving a grid is not an import's job"
    )
    assert (
        "line 4: grid 'JS-E01' is stored as 'enterprise_group', here 'community': "
        "changing a grid's kind is not an import's job"
    ) in problems


def test_header_problems_refuse_the_whole_file() -> None:
    text = "code,name,level,parent,leader_handle,leader_name,leader_phone,leader_email\n" + BASE[0]
    assert refused(text) == [
        "line 1: missing column(s) parent_code",
        "line 1: unknown column(s) 'parent' (expected " + HEADER + ",kind,channels,webhook)",
    ]
    assert refused(HEADER + ",kind,kind\n") == ["line 1: column(s) given twice: kind"]


@pytest.mark.parametrize("text", ["", "\ufeff", "\n\n", " , ,\n"])
def test_an_empty_file_is_refused(text: str) -> None:
    assert refused(text) == ["file: the file is empty; it needs a header and at least one row"]


def test_a_header_without_rows_is_refused() -> None:
    assert refused(HEADER_KIND + "\n\n") == ["line 1: the header is not followed by any row"]


def test_channel_and_webhook_problems() -> None:
    text = csv_text(
        "JS,区,1,,zone.lead,甲,,,zone,sms;email,",
        "JS-A1,片,2,JS,a,乙,,,work_area,webhook,",
        "JS-A2,片,2,JS,b,丙,,,work_area,,ftp://hooks.example.org",
        header=HEADER_KIND + ",channels,webhook",
    )
    assert refused(text) == [
        "line 2: unknown channel 'sms' for grid 'JS' (allowed: console, file, email, webhook)",
        "line 3: grid 'JS-A1' has channel 'webhook' but no webhook URL",
        "line 4: webhook 'ftp://hooks.example.org' of grid 'JS-A2' is not an http(s) URL",
    ]


def test_many_problems_are_reported_at_once_in_line_order() -> None:
    text = csv_text(
        "JS-A1-V01-G01,户组,4,JS-A1-V01,g1,赵,,,",  # fine, parent below
        BASE[0],
        "JS-A1,片,2,JS,BAD HANDLE,李,,,",
        "JS-A1-V01,村,3,JS-A1,v1,王,,not-an-email,",
        "JS-A1-V02,村,3,NOPE,v2,钱,,,",
        "JS-A1,又一个,2,JS,a2,孙,,,",
        "JS-A1-V03,村,x,JS-A1,v3,周,,,",
    )
    problems = refused(text)
    assert [p.split(":")[0] for p in problems] == [
        "line 4",
        "line 5",
        "line 6",
        "line 7",
        "line 8",
    ]
    assert "unknown parent 'NOPE'" in problems[2]
    assert "duplicate code 'JS-A1' (first on line 4)" in problems[3]
    with pytest.raises(GridFileError) as info:
        read_grid_csv(text, {})
    assert "GridFileError" not in str(info.value)
    assert str(info.value).startswith("the grid file is refused, 5 problems:")
    # The same problems in Chinese, by the same lines, and no English sentence among them.
    chinese = info.value.lines("zh_CN")
    assert [p.split("：")[0] for p in chinese] == [
        "第 4 行",
        "第 5 行",
        "第 6 行",
        "第 7 行",
        "第 8 行",
    ]
    assert chinese[2] == "第 6 行：网格 JS-A1-V02 的上级 NOPE 不存在（本文件和已有网格中都没有）。"
    assert chinese[3] == "第 7 行：网格代码 JS-A1 重复（第一次出现在第 4 行）。"
    assert info.value.text("zh_CN").startswith("网格文件未导入，共 5 个问题：\n  第 4 行：")


def test_children_of_an_unreadable_row_do_not_pile_up_problems() -> None:
    text = csv_text(*BASE, "JS-A2,片,2,JS,a,李,,,work_area,extra", "JS-A2-V01,村,3,JS-A2,b,王,,,")
    assert refused(text) == ["line 5: 10 fields where the header has 9"]


# --- bytes -----------------------------------------------------------------------------------


def test_decode_accepts_utf8_with_bom_and_excels_gbk() -> None:
    text = csv_text(*BASE)
    assert decode(b"\xef\xbb\xbf" + text.encode()) == text
    assert decode(text.encode("gbk")) == text
    assert [r.name for r in read_grid_csv(decode(text.encode("gbk")))][2] == "堰头村"


# --- scale -----------------------------------------------------------------------------------


def test_fifty_thousand_rows_in_parents_first_order() -> None:
    # Speed belongs to benchmarks, not to tests that a busy machine can fail; this checks the
    # large case is read whole and ordered.
    lines = [HEADER_KIND, "Z,区,1,,z,甲,13800000000,z@example.org,zone"]
    for m in range(50):
        medium = f"Z-M{m}"
        lines.append(f"{medium},中,2,Z,m{m},乙,,,work_area")
        for s in range(20):
            small = f"{medium}-S{s}"
            lines.append(f"{small},小,3,{medium},m{m}.s{s},丙,,,village")
            for g in range(49):
                lines.append(f"{small}-G{g},微,4,{small},m{m}.s{s}.g{g},丁,,,")
    text = "\n".join(lines) + "\n"
    assert len(lines) - 1 == 1 + 50 + 1000 + 49_000
    rows = read_grid_csv(text)
    assert len(rows) == 50_051
    assert rows[0].code == "Z" and rows[-1].kind == "household_group"
    assert [r.level for r in rows] == sorted(r.level for r in rows)
