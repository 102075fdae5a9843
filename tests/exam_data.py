"""The monthly exam's scores for April 2026 that the exam, page, report and spreadsheet tests
share.

Items are those of workflows/exam.toml: 道路路面 (roads, basic, max 10), 乱停车 (parking,
required, max 10), 空地围栏 (fencing, bonus, max 4). Exam = (basic + required) / their max * 100
+ bonus, at most 100; an item's points are the mean over its inspectors.
"""

from __future__ import annotations

HEADER = "month,inspector_grid,grid,sheet,item,score,max_score,note"
V = {n: f"JS-A1-V0{n}" for n in range(1, 6)}  # 堰头 曹园 东河 西塘 楼下


def csv(*lines: str) -> str:
    return "\n".join([HEADER, *lines]) + "\n"


def sheet(month: str, inspector: str, grid: str, basic: float, required: float) -> list[str]:
    return [
        f"{month},{inspector},{grid},basic,道路路面,{basic},10,",
        f"{month},{inspector},{grid},required,乱停车,{required},10,",
    ]


APRIL = csv(
    # 堰头: basic (9+8)/2 = 8.5, required (8+9)/2 = 8.5 -> 17/20 = 85, bonus 2 -> exam 87
    *sheet("2026-04", "JS-E01", V[1], 9, 8),
    *sheet("2026-04", "JS-E02", V[1], 8, 9),
    f"2026-04,JS-E01,{V[1]},加分卷,空地围栏,2,4,示范点",
    # 曹园: basic 9.5, required 10 -> 97.5
    *sheet("2026-04", "JS-E01", V[2], 10, 10),
    *sheet("2026-04", "JS-E02", V[2], 9, 10),
    # 东河: 5 + 5 -> 50
    *sheet("2026-04", "JS-E01", V[3], 5, 5),
    # 西塘: basic 10, required 9.5 -> 97.5, bonus 4 -> 101.5, capped at 100
    *sheet("2026-04", "JS-E01", V[4], 10, 9),
    *sheet("2026-04", "JS-E02", V[4], 10, 10),
    f"2026-04,JS-E01,{V[4]},bonus,fencing,4,,",
    # 楼下: 7 + 7 -> 70
    *sheet("2026-04", "JS-C1", V[5], 7, 7),
)
