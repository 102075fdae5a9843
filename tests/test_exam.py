"""The monthly exam's pure rules: CSV checks, exam scores, board score, tiers, boards and the
three-month deduction.

Golden figures are written as literals with the arithmetic beside them, worked out by hand from
the rules in closeloop/exam/ (scoring, boards, rewards), never by calling the code under test.
"""

from __future__ import annotations

import tomllib
from decimal import Decimal
from fractions import Fraction

import pytest

from closeloop.exam.boards import (
    Board,
    GridIndicators,
    GridResult,
    ScoringConfig,
    ScoringConfigError,
    grid_history,
    month_board,
)
from closeloop.exam.rewards import Tier
from closeloop.exam.scoring import (
    ExamFileError,
    ExamLine,
    exam_scores,
    read_exam_csv,
    round_half_up,
)
from closeloop.exam.sheets import SHEETS, parse_sheet
from closeloop.months import add_months, month_index, parse_month

HEADER = "month,inspector_grid,grid,sheet,item,score,max_score,note"
INSPECTORS = ("A", "B", "C")
GRADED = ("G1", "G2", "G3", "G4", "G5")
KNOWN = (*INSPECTORS, *GRADED)


def csv_text(*rows: str) -> str:
    return "\n".join([HEADER, *rows]) + "\n"


def problems_of(text: str, **kwargs: object) -> list[str]:
    with pytest.raises(ExamFileError) as info:
        read_exam_csv(text, KNOWN, **kwargs)  # type: ignore[arg-type]
    return info.value.problems


# --------------------------------------------------------------------------- months


def test_add_months_crosses_year_ends_both_ways() -> None:
    assert add_months("2026-11", 2) == "2027-01"
    assert add_months("2026-12", 1) == "2027-01"
    assert add_months("2027-01", -1) == "2026-12"
    assert add_months("2026-04", 0) == "2026-04"
    assert add_months("2026-04", 24) == "2028-04"
    assert month_index("2027-01") - month_index("2026-11") == 2


@pytest.mark.parametrize("bad", ["2026-13", "2026-00", "2026-4", "26-04", "2026/04", "", "0000-01"])
def test_bad_months_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="YYYY-MM"):
        parse_month(bad)
    with pytest.raises(ValueError):
        add_months(bad, 1)


def test_add_months_refuses_leaving_four_digit_years() -> None:
    with pytest.raises(ValueError, match=r"0001\.\.9999"):
        add_months("9999-12", 1)


def test_sheets_accept_english_and_chinese_names() -> None:
    assert SHEETS == ("basic", "required", "bonus")
    assert [parse_sheet(n) for n in ("基础卷", "必答卷", "加分卷")] == list(SHEETS)
    assert parse_sheet(" Basic ") == "basic"
    with pytest.raises(ValueError, match="unknown sheet"):
        parse_sheet("附加卷")


# --------------------------------------------------------------------------- CSV problems


def test_a_good_file_is_read_with_bom_blank_lines_chinese_sheets_and_notes() -> None:
    text = "\ufeff" + csv_text(
        "2026-04,A,G1,基础卷,路面保洁,8.5,10,",
        "",
        '2026-04, B ,G1,required,"乱堆乱放, 清理",9,10,"有""问题"" 已整改"',
    )
    lines = read_exam_csv(text, KNOWN, GRADED, inspectors=INSPECTORS)
    assert lines == [
        ExamLine(2, "2026-04", "A", "G1", "basic", "路面保洁", Decimal("8.5"), Decimal(10), None),
        ExamLine(
            4,
            "2026-04",
            "B",
            "G1",
            "required",
            "乱堆乱放, 清理",
            Decimal(9),
            Decimal(10),
            '有"问题" 已整改',
        ),
    ]


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("2026-04,G1,G1,basic,x,5,10,", "line 3: grid 'G1' scores itself"),
        ("2026-04,A,X9,basic,x,5,10,", "line 3: unknown grid 'X9'"),
        ("2026-04,Z,G1,basic,x,5,10,", "line 3: unknown inspector grid 'Z'"),
        ("2026-04,A,G1,basic,x,11,10,", "line 3: score 11 is out of range 0..10"),
        ("2026-04,A,G1,basic,x,-1,10,", "line 3: score -1 is out of range 0..10"),
        ("2026-04,A,G1,basic,x,abc,10,", "line 3: score 'abc' is not a number"),
        ("2026-04,A,G1,basic,x,NaN,10,", "line 3: score 'NaN' is not a number"),
        ("2026-04,A,G1,basic,x,1e1,10,", "line 3: score '1e1' is not a number"),
        ("2026-04,A,G1,basic,x,0,0,", "line 3: max_score 0 must be greater than 0"),
        ("2026-04,A,G1,basic,x,5,,", "line 3: max_score '' is not a number"),
        ("2026-4,A,G1,basic,x,5,10,", "line 3: month '2026-4' is not of the form YYYY-MM"),
        ("2026-04,A,G1,附加卷,x,5,10,", "line 3: unknown sheet '附加卷'"),
        ("2026-04,A,G1,basic,,5,10,", "line 3: item is empty"),
        ("2026-04,,G1,basic,x,5,10,", "line 3: inspector_grid is empty"),
        ("2026-04,A,G1,basic,x,5,10", "line 3: 7 fields where the header has 8"),
    ],
)
def test_each_line_problem_is_reported_with_its_line(row: str, expected: str) -> None:
    text = csv_text("2026-04,B,G2,basic,x,5,10,", row)
    problems = problems_of(text)
    assert len(problems) == 1
    assert problems[0].startswith(expected)


def test_duplicate_lines_name_the_first_line() -> None:
    text = csv_text(
        "2026-04,A,G1,basic,x,5,10,",
        "2026-04,A,G2,basic,x,5,10,",
        "2026-04,A,G1,基础卷,x,6,10,second try",
    )
    assert problems_of(text) == [
        "line 4: duplicate of line 2 (same month, inspector_grid, grid, sheet and item)"
    ]


def test_same_item_in_another_month_is_not_a_duplicate_and_months_may_mix() -> None:
    text = csv_text("2026-04,A,G1,basic,x,5,10,", "2026-05,A,G1,basic,x,6,10,")
    assert [line.month for line in read_exam_csv(text, KNOWN)] == ["2026-04", "2026-05"]


def test_inspectors_of_one_item_must_agree_on_its_max_score() -> None:
    text = csv_text("2026-04,A,G1,basic,x,5,10,", "2026-04,B,G1,basic,x,5,8,")
    assert problems_of(text) == [
        "line 3: max_score 8 differs from 10 on line 2 for the same month, grid, sheet and item"
    ]


def test_a_grid_with_only_bonus_items_has_no_exam() -> None:
    text = csv_text("2026-04,A,G1,basic,x,5,10,", "2026-04,A,G2,bonus,y,2,5,")
    assert problems_of(text) == [
        "line 3: grid 'G2' has bonus items in 2026-04 but no basic or required item,"
        " so it has no exam score"
    ]


def test_every_problem_of_every_line_is_listed_in_line_order() -> None:
    text = csv_text(
        "2026-13,G1,G1,foo,,x,0,",  # line 2: five problems
        "2026-04,A,G1,basic,x,5,10,",  # line 3: fine
        "2026-04,Z,G2,basic,x,11,10,",  # line 4: two problems
        "2026-04,A,G1,basic,x,5,10,",  # line 5: duplicate of line 3
    )
    assert problems_of(text) == [
        "line 2: month '2026-13' is not of the form YYYY-MM (e.g. 2026-04)",
        "line 2: grid 'G1' scores itself",
        "line 2: unknown sheet 'foo' (expected basic/基础卷, required/必答卷 or bonus/加分卷)",
        "line 2: item is empty",
        "line 2: score 'x' is not a number",
        "line 2: max_score 0 must be greater than 0",
        "line 4: unknown inspector grid 'Z'",
        "line 4: score 11 is out of range 0..10",
        "line 5: duplicate of line 3 (same month, inspector_grid, grid, sheet and item)",
    ]


def test_exam_and_inspector_sets_restrict_the_file() -> None:
    text = csv_text("2026-04,G2,A,basic,x,5,10,")
    problems = problems_of(text, exam_grids=GRADED, inspectors=INSPECTORS)
    assert problems == [
        "line 2: grid 'G2' is not an inspecting grid",
        "line 2: grid 'A' is not under exam",
    ]


def test_the_error_message_carries_every_problem() -> None:
    text = csv_text("2026-04,G1,G1,basic,x,5,10,", "2026-04,A,X9,basic,x,5,10,")
    with pytest.raises(ExamFileError) as info:
        read_exam_csv(text, KNOWN)
    assert isinstance(info.value, ValueError)
    assert str(info.value).splitlines() == [
        "exam file refused, 2 problems:",
        "line 2: grid 'G1' scores itself",
        "line 3: unknown grid 'X9'",
    ]


@pytest.mark.parametrize("text", ["", "\ufeff", "  \n\n"])
def test_an_empty_file_is_refused(text: str) -> None:
    assert problems_of(text) == ["file: the file is empty; it needs a header and at least one row"]


def test_a_header_without_lines_is_refused() -> None:
    assert problems_of(HEADER + "\n\n") == ["line 1: the header is not followed by any row"]


def test_header_problems_stop_the_reading() -> None:
    text = "month,inspector,grid,sheet,item,score,score,note\n2026-04,A,G1,basic,x,5,10,\n"
    assert problems_of(text) == [
        "line 1: missing column(s) inspector_grid, max_score",
        "line 1: unknown column(s) 'inspector' (expected " + HEADER + ")",
        "line 1: column(s) given twice: score",
    ]


def test_header_columns_may_come_in_any_order_and_case() -> None:
    text = "Grid,MONTH,inspector_grid,sheet,item,score,max_score,note\nG1,2026-04,A,bonus,y,1,5,\n"
    text += "G1,2026-04,A,basic,x,5,10,\n"
    lines = read_exam_csv(text, KNOWN)
    assert [(ln.grid, ln.month, ln.sheet) for ln in lines] == [
        ("G1", "2026-04", "bonus"),
        ("G1", "2026-04", "basic"),
    ]


def test_malformed_quoting_is_reported_with_its_line() -> None:
    text = csv_text("2026-04,A,G1,basic,x,5,10,", '2026-04,A,G2,basic,"x"y,5,10,')
    problems = problems_of(text)
    assert len(problems) == 1
    assert problems[0].startswith("line 3: malformed CSV")


# --------------------------------------------------------------------------- golden month

# Inspectors A and B score every graded grid; C scores G5 only. Items: basic b1 (max 40) and
# b2 (max 20), required r1 (max 40), bonus x1 (max 5); so basic + required max = 100.
GOLDEN_NOVEMBER = csv_text(
    "2026-11,A,G1,basic,b1,38,40,",
    "2026-11,B,G1,basic,b1,36,40,",
    "2026-11,A,G1,basic,b2,19,20,",
    "2026-11,B,G1,basic,b2,18,20,",
    "2026-11,A,G1,required,r1,39,40,",
    "2026-11,B,G1,required,r1,37,40,",
    "2026-11,A,G1,bonus,x1,5,5,",
    "2026-11,B,G1,bonus,x1,3,5,",
    "2026-11,A,G2,基础卷,b1,40,40,",
    "2026-11,B,G2,基础卷,b1,40,40,",
    "2026-11,A,G2,基础卷,b2,20,20,",
    "2026-11,B,G2,基础卷,b2,20,20,",
    "2026-11,A,G2,必答卷,r1,40,40,",
    "2026-11,B,G2,必答卷,r1,39,40,",
    "2026-11,A,G2,加分卷,x1,5,5,",
    "2026-11,B,G2,加分卷,x1,5,5,",
    "2026-11,A,G3,basic,b1,30,40,",
    "2026-11,B,G3,basic,b1,31,40,",
    "2026-11,A,G3,basic,b2,15,20,",
    "2026-11,B,G3,basic,b2,14,20,",
    "2026-11,A,G3,required,r1,30,40,",
    "2026-11,B,G3,required,r1,30,40,",
    "2026-11,A,G3,bonus,x1,2,5,only A scored the bonus",
    "2026-11,A,G4,basic,b1,25,40,",
    "2026-11,B,G4,basic,b1,24,40,",
    "2026-11,A,G4,basic,b2,10,20,",
    "2026-11,B,G4,basic,b2,11,20,",
    "2026-11,A,G4,required,r1,20,40,",
    "2026-11,B,G4,required,r1,21,40,",
    "2026-11,A,G5,basic,b1,33,40,",
    "2026-11,B,G5,basic,b1,34,40,",
    "2026-11,C,G5,basic,b1,34,40,",
    "2026-11,A,G5,basic,b2,16,20,",
    "2026-11,B,G5,basic,b2,17,20,",
    "2026-11,C,G5,basic,b2,16,20,",
    "2026-11,A,G5,required,r1,35,40,",
    "2026-11,B,G5,required,r1,35,40,",
    "2026-11,C,G5,required,r1,36,40,",
)
GOLDEN_INDICATORS: dict[str, GridIndicators | dict[str, float | None]] = {
    "G1": {"on_time_rate": 0.9, "closure_rate": 0.8},
    "G2": GridIndicators(on_time_rate=0.5, closure_rate=0.6),
    # G3 is missing: no ticket was due, both indicators drop out.
    "G4": {"on_time_rate": 0.2, "closure_rate": 0.1},
    "G5": {"on_time_rate": 0.75, "closure_rate": None},
    "A": {"on_time_rate": 0.0, "closure_rate": 0.0},  # not examined: ignored
}
# The old default, weights mixing in the ticket rates, which a zone may still choose.
MIXED = {"exam": Decimal("0.7"), "on_time_rate": Decimal("0.2"), "closure_rate": Decimal("0.1")}
SMALL_BOARDS = ScoringConfig(weights=MIXED, red_size=2, yellow_size=2)


def golden_board(history: tuple[GridResult, ...] = ()) -> Board:
    scores = exam_scores(read_exam_csv(GOLDEN_NOVEMBER, KNOWN, GRADED, inspectors=INSPECTORS))
    return month_board("2026-11", scores, GOLDEN_INDICATORS, SMALL_BOARDS, history)


def test_golden_exam_scores() -> None:
    scores = exam_scores(read_exam_csv(GOLDEN_NOVEMBER, KNOWN))
    assert {grid: s.total for grid, s in scores.items()} == {
        # means b1 (38+36)/2=37, b2 (19+18)/2=18.5, r1 (39+37)/2=38 -> 93.5/100*100=93.5;
        # bonus (5+3)/2=4 -> 97.5
        "G1": Decimal("97.50"),
        # 40 + 20 + (40+39)/2=39.5 -> 99.5; + bonus 5 = 104.5, capped at 100
        "G2": Decimal("100.00"),
        # 30.5 + 14.5 + 30 = 75; bonus scored by A alone: 2 -> 77
        "G3": Decimal("77.00"),
        # 24.5 + 10.5 + 20.5 = 55.5, no bonus
        "G4": Decimal("55.50"),
        # b1 (33+34+34)/3=101/3, b2 (16+17+16)/3=49/3, r1 (35+35+36)/3=106/3 -> 256/3 = 85.333..
        "G5": Decimal("85.33"),
    }
    g5 = scores["G5"]
    assert g5.base == Fraction(256, 3)
    assert g5.bonus == 0
    assert g5.inspectors == ("A", "B", "C")
    assert set(g5.sheets) == {"basic", "required"}
    basic = g5.sheets["basic"]
    assert basic.name_zh == "基础卷"
    assert basic.points == Fraction(150, 3)  # 101/3 + 49/3
    assert basic.max_points == Decimal(60)
    assert [(i.item, i.points, i.shown) for i in basic.items] == [
        ("b1", Fraction(101, 3), Decimal("33.67")),
        ("b2", Fraction(49, 3), Decimal("16.33")),
    ]
    g2 = scores["G2"]
    assert g2.base == Fraction(199, 2)  # 99.5, before the bonus
    assert g2.bonus == 5
    assert scores["G3"].sheets["bonus"].items[0].inspectors == ("A",)


def test_golden_board_scores_ranks_tiers_and_boards() -> None:
    board = golden_board()
    got = [
        (r.rank, r.grid, r.score, r.tier_zh, r.reward, r.red, r.yellow, r.below_floor)
        for r in board.rows
    ]
    assert got == [
        # 0.7*97.5 + 0.2*90 + 0.1*80 = 68.25 + 18 + 8 = 94.25 -> 一档 (>= 90)
        (1, "G1", Decimal("94.25"), "一档", Decimal(30000), True, False, False),
        # 0.7*100 + 0.2*50 + 0.1*60 = 70 + 10 + 6 = 86 -> 二档 (>= 80)
        (2, "G2", Decimal("86.00"), "二档", Decimal(20000), True, False, False),
        # closure None: (0.7*85.33 + 0.2*75) / 0.9 = (59.731 + 15) / 0.9 = 83.0344.. -> 二档
        (3, "G5", Decimal("83.03"), "二档", Decimal(20000), False, False, False),
        # no ticket due: 0.7*77 / 0.7 = 77 -> 三档 (>= 70)
        (4, "G3", Decimal("77.00"), "三档", Decimal(10000), False, True, False),
        # 0.7*55.5 + 0.2*20 + 0.1*10 = 38.85 + 4 + 1 = 43.85 < 60: no tier, penalty, 问责
        (5, "G4", Decimal("43.85"), None, Decimal(0), False, True, True),
    ]
    # Five grids, boards of two: each board takes at most 5 // 2 = 2, G5 in the middle on neither.
    assert [r.grid for r in board.red] == ["G1", "G2"]
    assert [r.grid for r in board.yellow] == ["G3", "G4"]
    g4 = board.rows[-1]
    # below the floor: accountability now, its deduction starts next month
    assert g4.accountability and not g4.penalised
    assert (g4.penalty_source_month, g4.penalty_until) == (None, None)
    assert g4.reward == 0 and g4.reward_lost == 0  # no tier reached, nothing to withhold
    assert [r.grid for r in board.accountability] == ["G4"]
    assert board.penalties == ()
    assert board.rows[0].on_time_rate == 0.9
    assert board.rows[3].on_time_rate is None and board.rows[3].closure_rate is None
    assert board.results == board.rows
    assert {r.month for r in board.rows} == {"2026-11"}


# --------------------------------------------------------------------------- penalties


def simple_exam(month: str, totals: dict[str, int]) -> dict:
    """One basic item out of 100 scored by inspector A, so the exam total is the given score."""
    lines = [
        ExamLine(i, month, "A", grid, "basic", "all", Decimal(score), Decimal(100))
        for i, (grid, score) in enumerate(totals.items(), start=2)
    ]
    return exam_scores(lines)


def run_months(plan: dict[str, dict[str, int]]) -> dict[str, Board]:
    """Run consecutive boards, each seeing the results of all earlier ones as history."""
    history: list[GridResult] = []
    boards = {}
    for month, totals in plan.items():
        # Without indicators the score is the exam total itself.
        boards[month] = month_board(month, simple_exam(month, totals), {}, ScoringConfig(), history)
        history.extend(boards[month].results)
    return boards


def row(board: Board, grid: str) -> GridResult:
    return next(r for r in board.rows if r.grid == grid)


def test_three_month_deduction_across_the_year_end() -> None:
    # A low score in November withholds December, January and February (M+1..M+3); November
    # itself pays nothing because it reaches no tier.
    boards = run_months(
        {
            "2026-10": {"V1": 85, "V2": 75},
            "2026-11": {"V1": 59, "V2": 75},  # V1 below the floor of 60
            "2026-12": {"V1": 95, "V2": 75},
            "2027-01": {"V1": 85, "V2": 75},
            "2027-02": {"V1": 75, "V2": 75},
            "2027-03": {"V1": 95, "V2": 75},
        }
    )
    expected = {
        # month: (score, tier, reward earned, reward withheld, withheld?, accountability)
        "2026-10": (Decimal("85.00"), "二档", Decimal(20000), Decimal(0), False, False),
        "2026-11": (Decimal("59.00"), None, Decimal(0), Decimal(0), False, True),
        "2026-12": (Decimal("95.00"), "一档", Decimal(0), Decimal(30000), True, False),
        "2027-01": (Decimal("85.00"), "二档", Decimal(0), Decimal(20000), True, False),
        "2027-02": (Decimal("75.00"), "三档", Decimal(0), Decimal(10000), True, False),
        "2027-03": (Decimal("95.00"), "一档", Decimal(30000), Decimal(0), False, False),
    }
    for month, want in expected.items():
        v1 = row(boards[month], "V1")
        got = (v1.score, v1.tier_zh, v1.reward, v1.reward_lost, v1.penalised, v1.accountability)
        assert got == want, month
        if v1.penalised:
            assert (v1.penalty_source_month, v1.penalty_until) == ("2026-11", "2027-02")
        v2 = row(boards[month], "V2")
        assert (v2.tier_zh, v2.reward, v2.penalised) == ("三档", Decimal(10000), False)
    # three months of reward lost in all: 30000 + 20000 + 10000
    assert sum(row(b, "V1").reward_lost for b in boards.values()) == 60000
    assert [r.grid for r in boards["2026-12"].red] == ["V1"]  # withheld, still best this month


def test_a_second_low_month_extends_the_deduction_and_names_the_latest_source() -> None:
    boards = run_months(
        {
            "2026-11": {"V1": 50},
            "2026-12": {"V1": 40},
            "2027-01": {"V1": 90},
            "2027-02": {"V1": 90},
            "2027-03": {"V1": 90},
            "2027-04": {"V1": 90},
        }
    )
    got = [
        (m, row(b, "V1").penalised, row(b, "V1").penalty_source_month, row(b, "V1").penalty_until)
        for m, b in boards.items()
    ]
    assert got == [
        ("2026-11", False, None, None),
        ("2026-12", True, "2026-11", "2027-02"),
        ("2027-01", True, "2026-12", "2027-03"),
        ("2027-02", True, "2026-12", "2027-03"),
        ("2027-03", True, "2026-12", "2027-03"),
        ("2027-04", False, None, None),
    ]


def test_a_deduction_is_listed_for_a_grid_not_examined_this_month() -> None:
    nov = run_months({"2026-11": {"V1": 50, "V2": 80}})["2026-11"]
    dec = month_board("2026-12", simple_exam("2026-12", {"V2": 80}), {}, ScoringConfig(), nov.rows)
    assert [r.grid for r in dec.rows] == ["V2"]
    assert [(p.grid, p.source_month, p.until, p.examined) for p in dec.penalties] == [
        ("V1", "2026-11", "2027-02", False)
    ]


def test_history_of_the_month_itself_or_older_than_three_months_carries_nothing() -> None:
    boards = run_months({"2026-08": {"V1": 10}, "2026-12": {"V1": 90}})
    assert not row(boards["2026-12"], "V1").penalised  # August is four months back
    boards = run_months({"2026-09": {"V1": 10}, "2026-12": {"V1": 90}})
    assert row(boards["2026-12"], "V1").penalised  # September + 3 = December
    # Re-running November with November's own stored low result: the low result is recomputed.
    first = run_months({"2026-11": {"V1": 10}})["2026-11"]
    rerun = month_board(
        "2026-11", simple_exam("2026-11", {"V1": 90}), {}, ScoringConfig(), first.rows
    )
    assert not row(rerun, "V1").penalised and not row(rerun, "V1").below_floor


def test_grid_history_is_in_month_order() -> None:
    boards = run_months({"2026-12": {"V1": 50}, "2027-01": {"V1": 90}})
    stored = [*boards["2027-01"].results, *boards["2026-12"].results]
    history = grid_history(stored, "V1")
    assert [(r.month, r.score, r.tier_zh, r.penalised) for r in history] == [
        ("2026-12", Decimal("50.00"), None, False),
        ("2027-01", Decimal("90.00"), "一档", True),
    ]
    with pytest.raises(ValueError, match="two results for 2026-12"):
        grid_history([*stored, boards["2026-12"].rows[0]], "V1")


# --------------------------------------------------------------------------- boards and tiers


@pytest.mark.parametrize(
    ("count", "red", "yellow"),
    [
        (0, [], []),
        (1, [], []),  # a lone grid is on no board
        (2, ["V01"], ["V02"]),
        (3, ["V01"], ["V03"]),  # 3 // 2 = 1 each, the middle grid on neither
        (7, ["V01", "V02", "V03"], ["V05", "V06", "V07"]),
        (12, ["V01", "V02", "V03", "V04", "V05"], ["V08", "V09", "V10", "V11", "V12"]),
    ],
)
def test_board_sizes_never_overlap(count: int, red: list[str], yellow: list[str]) -> None:
    totals = {f"V{i:02d}": 99 - i for i in range(1, count + 1)}  # V01 best
    board = month_board("2026-04", simple_exam("2026-04", totals), {}, ScoringConfig(), ())
    assert [r.grid for r in board.red] == red
    assert [r.grid for r in board.yellow] == yellow
    assert not any(r.red and r.yellow for r in board.rows)


def test_ties_go_to_the_higher_exam_then_the_lower_code() -> None:
    exam = simple_exam("2026-04", {"V3": 80, "V2": 80, "V1": 70})
    indicators = {
        # V1: 0.7*70 + 0.2*100 + 0.1*100 = 49 + 30 = 79; V2, V3: 0.7*80 + 0.2*85 + 0.1*60
        # = 56 + 17 + 6 = 79. Equal scores; V2 and V3 also equal exams, so code decides.
        "V1": {"on_time_rate": 1.0, "closure_rate": 1.0},
        "V2": {"on_time_rate": 0.85, "closure_rate": 0.6},
        "V3": {"on_time_rate": 0.85, "closure_rate": 0.6},
    }
    board = month_board("2026-04", exam, indicators, ScoringConfig(weights=MIXED), ())
    assert [(r.grid, r.score, r.rank) for r in board.rows] == [
        ("V2", Decimal("79.00"), 1),
        ("V3", Decimal("79.00"), 2),
        ("V1", Decimal("79.00"), 3),
    ]


@pytest.mark.parametrize(
    ("score", "tier", "reward", "below_floor"),
    [
        (100, "一档", 30000, False),
        (90, "一档", 30000, False),  # min_score is reached, not exceeded
        (89, "二档", 20000, False),
        (80, "二档", 20000, False),
        (70, "三档", 10000, False),
        (69, None, 0, False),
        (60, None, 0, False),  # the floor itself is not below the floor
        (59, None, 0, True),
    ],
)
def test_tiers_by_score(score: int, tier: str | None, reward: int, below_floor: bool) -> None:
    board = month_board("2026-04", simple_exam("2026-04", {"V1": score}), {}, ScoringConfig(), ())
    v1 = board.rows[0]
    # below the floor: accountability this month, the deduction from the next month on
    assert (v1.tier_zh, v1.reward, v1.below_floor, v1.penalised) == (
        tier,
        Decimal(reward),
        below_floor,
        False,
    )


def test_tiers_and_floor_compare_the_rounded_published_score() -> None:
    # 13999/20000*100 = 69.995 exactly -> published 70.00, which reaches 三档 (>= 70);
    # 11999/20000*100 = 59.995 -> published 60.00, which is not below the floor of 60.
    lines = [
        ExamLine(2, "2026-04", "A", "V1", "basic", "i", Decimal(13999), Decimal(20000)),
        ExamLine(3, "2026-04", "A", "V2", "basic", "i", Decimal(11999), Decimal(20000)),
    ]
    exam = exam_scores(lines)
    assert exam["V1"].base == Fraction("69.995")
    board = month_board("2026-04", exam, {}, ScoringConfig(), ())
    assert [(r.grid, r.score, r.tier_zh, r.below_floor) for r in board.rows] == [
        ("V1", Decimal("70.00"), "三档", False),
        ("V2", Decimal("60.00"), None, False),
    ]


def test_round_half_up_is_exact() -> None:
    assert round_half_up(Decimal("2.675")) == Decimal("2.68")  # float 2.675 would round down
    assert round_half_up(Fraction(1, 8)) == Decimal("0.13")
    assert round_half_up(Fraction(-1, 8)) == Decimal("-0.13")
    assert round_half_up(Fraction(200, 3)) == Decimal("66.67")
    assert str(round_half_up(100)) == "100.00"


def test_month_board_refuses_bad_inputs() -> None:
    exam = simple_exam("2026-04", {"V1": 80})
    with pytest.raises(ValueError, match="not for 2026-05"):
        month_board("2026-05", exam, {}, ScoringConfig(), ())
    with pytest.raises(ValueError, match=r"not within 0\.\.1"):
        month_board("2026-04", exam, {"V1": {"on_time_rate": 85}}, ScoringConfig(), ())
    with pytest.raises(ValueError, match="unknown key"):
        month_board("2026-04", exam, {"V1": {"ontime": 0.5}}, ScoringConfig(), ())
    with pytest.raises(ValueError, match=r"not within 0\.\.1"):
        month_board("2026-04", exam, {"V1": {"closure_rate": float("nan")}}, ScoringConfig(), ())
    with pytest.raises(ValueError, match="YYYY-MM"):
        month_board("April", exam, {}, ScoringConfig(), ())


def test_exam_scores_refuses_mixed_months_unless_one_is_chosen() -> None:
    lines = read_exam_csv(
        csv_text("2026-04,A,G1,basic,x,5,10,", "2026-05,A,G1,basic,x,8,10,"), KNOWN
    )
    with pytest.raises(ValueError, match="several months"):
        exam_scores(lines)
    # 8 of 10 -> 80
    assert exam_scores(lines, month="2026-05")["G1"].total == Decimal("80.00")
    assert exam_scores([]) == {}


def test_exam_scores_checks_lines_built_in_code() -> None:
    line = ExamLine(7, "2026-04", "A", "G1", "basic", "x", Decimal(5), Decimal(10))
    with pytest.raises(ExamFileError) as info:
        exam_scores([line, line])
    assert info.value.problems == [
        "line 7: duplicate of line 7 (same month, inspector_grid, grid, sheet and item)"
    ]
    selfish = ExamLine(3, "2026-04", "G1", "G1", "basic", "x", Decimal(5), Decimal(10))
    with pytest.raises(ExamFileError, match="scores itself"):
        exam_scores([selfish])
    bonus_only = ExamLine(4, "2026-04", "A", "G1", "bonus", "x", Decimal(5), Decimal(10))
    with pytest.raises(ExamFileError, match="no basic or required item"):
        exam_scores([bonus_only])


# --------------------------------------------------------------------------- configuration


def test_config_from_toml() -> None:
    section = tomllib.loads(
        """
        floor = 55
        red_size = 3
        yellow_size = 4
        weights = { exam = 0.6, on_time_rate = 0.3, closure_rate = 0.1 }
        tiers = [
          { name_zh = "一档", name_en = "Tier 1", min_score = 85, reward = 50000 },
          ["二档", "Tier 2", 70.5, 25000],
        ]
        """
    )
    config = ScoringConfig.from_config(section)
    assert dict(config.weights) == {
        "exam": Decimal("0.6"),
        "on_time_rate": Decimal("0.3"),
        "closure_rate": Decimal("0.1"),
    }
    assert config.tiers == (
        Tier("一档", "Tier 1", Decimal(85), Decimal(50000)),
        Tier("二档", "Tier 2", Decimal("70.5"), Decimal(25000)),
    )
    assert (config.floor, config.red_size, config.yellow_size) == (Decimal(55), 3, 4)


def test_config_defaults() -> None:
    config = ScoringConfig.from_config({})
    # The board is decided by the exam alone unless a zone sets weights.
    assert dict(config.weights) == {
        "exam": Decimal(1),
        "on_time_rate": Decimal(0),
        "closure_rate": Decimal(0),
    }
    assert config.tiers_on == "city"
    assert [(t.name_zh, t.min_score, t.reward) for t in config.tiers] == [
        ("一档", Decimal(90), Decimal(30000)),
        ("二档", Decimal(80), Decimal(20000)),
        ("三档", Decimal(70), Decimal(10000)),
    ]
    assert (config.floor, config.red_size, config.yellow_size) == (Decimal(60), 5, 5)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"weights": {"exam": 0.7, "on_time_rate": 0.2, "closure_rate": 0.2}}, "sum to 1"),
        ({"weights": {"exam": 0.8}}, "sum to 1"),
        ({"tiers_on": "zone"}, "tiers_on"),
        (
            {"weights": {"exam": 0.7, "on_time_rate": 0.2, "closure_rate": 0.1, "x": 0}},
            "unknown x",
        ),
        ({"weights": {"exam": 0.8, "on_time_rate": 0.2}}, None),
        ({"weights": {"exam": 0, "on_time_rate": 0.5, "closure_rate": 0.5}}, "weights.exam"),
        ({"weights": {"exam": 1.2, "on_time_rate": -0.2, "closure_rate": 0}}, "on_time_rate"),
        ({"weights": {"exam": "much", "on_time_rate": 0, "closure_rate": 0}}, "must be a number"),
        ({"tiers": []}, "at least one tier"),
        ({"tiers": [["A", "A", 80, 1], ["B", "B", 90, 1]]}, "strictly descend"),
        ({"tiers": [["A", "A", 90, 1], ["B", "B", 80, 2]]}, "more than the better tier"),
        ({"tiers": [["A", "A", 90, 1], ["B", "B", 50, 0]]}, "floor: 60 is above"),
        ({"tiers": [{"name_zh": "一档", "min_score": 90, "reward": 1}]}, "missing name_en"),
        ({"tiers": [["一档", "", 90, 1]]}, "name_en"),
        ({"tiers": [["一档", "T1", 190, 1]]}, "within 0..100"),
        ({"tiers": "一档"}, "array of tiers"),
        ({"floor": True}, "must be a number"),
        ({"red_size": -1}, "red_size"),
        ({"yellow_size": 2.5}, "yellow_size"),
        ({"ceiling": 100}, "unknown key(s) ceiling"),
    ],
)
def test_config_errors_name_the_key(section: dict, message: str | None) -> None:
    if message is None:  # a weight left out is 0
        assert ScoringConfig.from_config(section).weights["closure_rate"] == 0
        return
    with pytest.raises(ScoringConfigError) as info:
        ScoringConfig.from_config(section)
    assert message in str(info.value)
    assert str(info.value).startswith("exam")
