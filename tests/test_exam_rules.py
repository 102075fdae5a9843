"""The exam's rules added by issue 11: answer sheets as data, the cross-inspection plan on the
example zone, boards by the exam score, the floor and the red board, tiers on the city's score.

Expected figures are literals worked out by hand from the rules in closeloop/exam/.
"""

from __future__ import annotations

import csv
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from closeloop.exam.boards import ScoringConfig, month_board
from closeloop.exam.plan import Assignment, PlanError, make_plan
from closeloop.exam.rewards import covering_low_month, deduction_months
from closeloop.exam.scoring import ExamFileError, ExamLine, exam_scores, read_exam_csv
from closeloop.exam.sheets import SheetsError, load_sheets, sheets_from_data
from tests.conftest import REPO

SHEETS = load_sheets(REPO / "workflows" / "exam.toml")
HEADER = "month,inspector_grid,grid,sheet,item,score,max_score,note"
INSPECTORS = (
    "JS-A1",
    "JS-A2",
    "JS-A3",
    "JS-E01",
    "JS-E02",
    "JS-E03",
    "JS-E04",
    "JS-E05",
    "JS-E06",
    "JS-C1",
)


# --------------------------------------------------------------------------- answer sheets


def test_the_example_zone_ships_three_sheets_from_the_articles_problems() -> None:
    by_sheet = {s: [i.key for i in SHEETS.of(s)] for s in ("basic", "required", "bonus")}
    assert by_sheet == {
        "basic": ["dead_corners", "piling", "roads", "street_business"],
        "required": ["illegal_building", "parking", "tickets_closed", "no_rebound"],
        "bonus": ["fencing", "greening", "village_rules"],
    }
    # basic + required make the full mark; the bonus sheet makes up for lost points
    assert SHEETS.max_points("basic") + SHEETS.max_points("required") == 100
    assert SHEETS.max_points("bonus") == 10
    assert SHEETS.item("illegal_building").name_zh == "乱搭乱建"
    assert SHEETS.find("bonus", "空地围栏") == SHEETS.item("fencing")
    assert SHEETS.find("basic", "Roads") == SHEETS.item("roads")
    assert SHEETS.find("basic", "parking") is None  # a required item, not a basic one
    assert all(i.checks_zh and i.checks_en for i in SHEETS)


def test_a_zone_overrides_the_sheets_with_its_own_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(
        '[[basic]]\nkey = "all"\nname_zh = "全部"\nname_en = "All"\nmax = 100\n'
        'checks_zh = "整体"\nchecks_en = "Overall"\n',
        encoding="utf-8",
    )
    sheets = load_sheets(path)
    assert [i.key for i in sheets] == ["all"] and sheets.max_points("bonus") == 0


ITEM = {"key": "a", "name_zh": "甲", "name_en": "A", "max": 10, "checks_zh": "查", "checks_en": "c"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"basic": [{**ITEM, "max": 0}]}, "basic[0].max: must be a number greater than 0"),
        ({"basic": [{**ITEM, "max": "ten"}]}, "basic[0].max: must be a number"),
        ({"basic": [ITEM], "bonus": [ITEM]}, "'a' is already an item of the basic sheet"),
        ({"basic": [{**ITEM, "key": "Bad Key"}]}, "basic[0].key"),
        ({"basic": [{**ITEM, "name_en": ""}]}, "basic[0].name_en"),
        ({"basic": [{**ITEM, "weight": 1}]}, "unknown key(s) weight"),
        ({"bonus": [ITEM]}, "the basic and required sheets have no item"),
        ({"extra": []}, "unknown table(s) extra"),
        ({"basic": [ITEM, {**ITEM, "key": "b"}]}, "share the name"),
    ],
)
def test_bad_sheet_files_are_refused_naming_the_place(data: dict, message: str) -> None:
    with pytest.raises(SheetsError) as info:
        sheets_from_data(data)
    assert message in str(info.value)


def test_an_import_with_unknown_items_or_scores_above_the_maximum_is_refused_whole() -> None:
    text = "\n".join(
        [
            HEADER,
            "2026-04,JS-A2,JS-A1-V01,basic,roads,9,,",  # fine: max_score from the sheet
            "2026-04,JS-A2,JS-A1-V01,basic,环境卫生,9,10,",  # not an item
            "2026-04,JS-A2,JS-A1-V01,基础卷,卫生死角,16,15,",  # above 15
            "2026-04,JS-A2,JS-A1-V01,required,乱搭乱建,10,10,",  # the item's max is 20
            "2026-04,JS-A2,JS-A1-V01,bonus,parking,1,,",  # parking is a required item
        ]
    )
    with pytest.raises(ExamFileError) as info:
        read_exam_csv(text + "\n", ("JS-A2", "JS-A1-V01"), sheets=SHEETS)
    assert info.value.problems == [
        "line 3: unknown item '环境卫生' of the basic sheet"
        " (its items: dead_corners, piling, roads, street_business)",
        "line 4: score 16 is out of range 0..15",
        "line 5: max_score 10 is not the maximum 20 of item 'illegal_building'",
        "line 6: unknown item 'parking' of the bonus sheet"
        " (its items: fencing, greening, village_rules)",
    ]
    good = read_exam_csv(
        f"{HEADER}\n2026-04,JS-A2,JS-A1-V01,必答卷,乱搭乱建,18,,\n",
        ("JS-A2", "JS-A1-V01"),
        sheets=SHEETS,
    )
    assert [(ln.sheet, ln.item, ln.score, ln.max_score) for ln in good] == [
        ("required", "illegal_building", Decimal(18), Decimal(20))
    ]


# --------------------------------------------------------------------------- the plan


def example_zone() -> tuple[dict[str, str], dict[str, str]]:
    """The example zone's 117 small grids with their medium grid, and every grid's level."""
    with (REPO / "zones" / "example" / "grids.csv").open(encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    small = {r["code"]: r["parent_code"] for r in rows if r["level"] == "3"}
    return small, {r["code"]: r["level"] for r in rows}


def test_a_year_of_plans_on_the_example_zone() -> None:
    small, levels = example_zone()
    assert len(small) == 117 and all(levels[i] == "2" for i in INSPECTORS)
    previous: tuple[Assignment, ...] = ()
    seen: list[set[tuple[str, str]]] = []
    for m in range(1, 13):
        month = f"2026-{m:02d}"
        plan = make_plan(month, INSPECTORS, small, previous)
        pairs = {(a.inspector_grid, a.grid) for a in plan.assignments}
        graded = Counter(a.grid for a in plan.assignments)
        # every examined grid exactly once
        assert set(graded) == set(small) and set(graded.values()) == {1}, month
        # never itself, never the inspector's own medium grid (always avoidable here)
        assert all(i != g for i, g in pairs)
        assert all(small[g] != i for i, g in pairs), month
        assert plan.own_medium == 0
        # balanced: 117 over 10 -> seven inspectors take 12, three take 11
        counts = Counter(a.inspector_grid for a in plan.assignments)
        assert set(counts) == set(INSPECTORS)
        assert sorted(counts.values()) == [11] * 3 + [12] * 7, month
        # no pair of the month before
        assert not pairs & {(a.inspector_grid, a.grid) for a in previous}, month
        assert plan.repeats == 0
        # deterministic: the same month gives the same plan
        assert make_plan(month, INSPECTORS, small, previous) == plan
        seen.append(pairs)
        previous = plan.assignments
    # the months differ from each other, not only from the one before
    assert len({frozenset(p) for p in seen}) == 12


def test_the_plan_gives_way_on_soft_rules_only_when_it_must() -> None:
    # Two inspectors, both medium grids; every examined grid belongs to M1.
    examined = {"V1": "M1", "V2": "M1", "V3": "M1", "V4": "M1"}
    plan = make_plan("2026-04", ["M1", "M2"], examined)
    counts = Counter(a.inspector_grid for a in plan.assignments)
    assert counts == {"M1": 2, "M2": 2}  # balance beats avoiding M1's own grids
    assert plan.own_medium == 2
    # the next month repeats no pair: each inspector takes the other two
    nxt = make_plan("2026-05", ["M1", "M2"], examined, plan.assignments)
    assert nxt.repeats == 0
    assert {(a.inspector_grid, a.grid) for a in nxt.assignments}.isdisjoint(
        {(a.inspector_grid, a.grid) for a in plan.assignments}
    )


def test_an_inspector_that_is_examined_never_inspects_itself() -> None:
    examined = {"V1": "M1", "V2": "M1", "V3": "M2"}
    for m in range(1, 13):
        plan = make_plan(f"2026-{m:02d}", ["V1", "V2"], examined)
        assert all(a.inspector_grid != a.grid for a in plan.assignments)
    with pytest.raises(PlanError, match="other than themselves"):
        make_plan("2026-04", ["V1"], {"V1": "M1"})
    with pytest.raises(PlanError, match="no inspecting grid"):
        make_plan("2026-04", [], examined)


# --------------------------------------------------------------------------- boards and rewards


def exam(month: str, totals: dict[str, int]) -> dict:
    lines = [
        ExamLine(i, month, "A", grid, "basic", "all", Decimal(score), Decimal(100))
        for i, (grid, score) in enumerate(totals.items(), start=2)
    ]
    return exam_scores(lines)


def test_boards_rank_by_the_exam_score_and_show_the_rates_beside_it() -> None:
    # V1 reported many problems and closed few on time; V2 reported none. The exam alone decides.
    rates = {"V1": {"on_time_rate": 0.2, "closure_rate": 0.5}}
    board = month_board("2026-04", exam("2026-04", {"V1": 90, "V2": 85}), rates, ScoringConfig())
    assert [(r.grid, r.score, r.on_time_rate) for r in board.rows] == [
        ("V1", Decimal("90.00"), 0.2),
        ("V2", Decimal("85.00"), None),
    ]


def test_a_grid_below_the_floor_is_never_on_the_red_board() -> None:
    # Four grids, boards of two: the better half is V1 (70) and V2 (49 < 60).
    board = month_board(
        "2026-04",
        exam("2026-04", {"V1": 70, "V2": 49, "V3": 40, "V4": 30}),
        {},
        ScoringConfig(red_size=2, yellow_size=2),
    )
    assert [r.grid for r in board.red] == ["V1"]
    assert [r.grid for r in board.yellow] == ["V3", "V4"]
    assert [r.grid for r in board.accountability] == ["V2", "V3", "V4"]
    # all below the floor: an empty red board, never both boards
    low = month_board("2026-04", exam("2026-04", {"V1": 49, "V2": 30}), {}, ScoringConfig())
    assert low.red == () and [r.grid for r in low.yellow] == ["V2"]
    assert not any(r.red and r.yellow for r in [*board.rows, *low.rows])


def test_tiers_follow_the_city_score_where_a_grid_has_one() -> None:
    city = {"V1": Decimal("72.5"), "V2": Decimal("55")}
    scores = exam("2026-04", {"V1": 95, "V2": 88, "V3": 81})
    board = month_board("2026-04", scores, {}, ScoringConfig(), (), city)
    got = [
        (r.grid, r.score, r.city_score, r.basis, r.tier_zh, r.reward, r.below_floor, r.red)
        for r in board.rows
    ]
    assert got == [
        # exam 95 ranks first; the city's 72.5 decides the tier: 三档
        ("V1", Decimal("95.00"), Decimal("72.5"), "city", "三档", Decimal(10000), False, True),
        # the city's 55 is below the floor: no reward, 问责, and off the red board
        ("V2", Decimal("88.00"), Decimal("55"), "city", None, Decimal(0), True, False),
        # no city score: the exam decides: 二档
        ("V3", Decimal("81.00"), None, "exam", "二档", Decimal(20000), False, False),
    ]
    by_exam = month_board("2026-04", scores, {}, ScoringConfig(tiers_on="exam"), (), city)
    assert [(r.basis, r.tier_zh) for r in by_exam.rows] == [
        ("exam", "一档"),
        ("exam", "二档"),
        ("exam", "二档"),
    ]
    with pytest.raises(ValueError, match=r"not within 0\.\.100"):
        month_board("2026-04", scores, {}, ScoringConfig(), (), {"V1": Decimal(101)})


def test_the_deduction_covers_the_three_months_after_a_low_month() -> None:
    assert deduction_months("2026-11") == ("2026-12", "2027-01", "2027-02")
    assert covering_low_month("2026-11", ["2026-11"]) is None  # not the low month itself
    assert covering_low_month("2027-02", ["2026-11"]) == "2026-11"
    assert covering_low_month("2027-03", ["2026-11"]) is None
    assert covering_low_month("2027-01", ["2026-11", "2026-12"]) == "2026-12"
