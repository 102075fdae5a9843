"""Every CSV import reads what Excel writes the same way (closeloop.csvfile): a file saved as
"CSV UTF-8" (with its BOM) and one saved as "CSV (逗号分隔)" on a Chinese Windows (GBK) are
both imported; a UTF-16 file is refused by each, saying what it is. The encoding does not
depend on the database, so this runs on SQLite only."""

from __future__ import annotations

import re
from pathlib import Path
from unittest.mock import patch

import pytest
from sqlalchemy import select

from closeloop.app import App
from closeloop.campaigns import service as campaigns
from closeloop.cli.common import State
from closeloop.models import city_scores, exam_lines, grid_members, grids, metadata, tickets
from tests.cli_support import refused, run, run_json
from tests.factories import count
from tests.report_data import REAL_NOW

ENCODINGS = {"bom": "utf-8-sig", "gbk": "gbk"}
V1 = "JS-A1-V01"  # 堰头村: 堰 is in GBK but not in GB2312


@pytest.fixture
def app(sqlite_app: App) -> App:
    metadata.create_all(sqlite_app.engine)
    return sqlite_app


def written(tmp_path: Path, text: str, encoding: str) -> str:
    path = tmp_path / f"import-{encoding}.csv"
    path.write_bytes(text.encode(encoding))
    return str(path)


GRIDS = (
    "code,name,level,parent_code,leader_handle,leader_name,leader_phone,leader_email\n"
    f"{V1}-G90,堰头村第90户组,4,{V1},g90.lead,周九十,13800001234,\n"
)
MEMBERS = f"grid_code,handle,name,role,duty\n{V1},yantou.fs,林第一,第一书记,垃圾分类\n"
EXAM = (
    "month,inspector_grid,grid,sheet,item,score,max_score,note\n"
    f"2026-04,JS-E01,{V1},基础卷,道路路面,9,10,堰头村口\n"
    f"2026-04,JS-E01,{V1},必答卷,乱停车,8,10,\n"
)
CITY = f"month,grid,score\n2026-04,{V1},88.5\n"
FINDINGS = f"grid,category,title,address\n{V1}-G01,random_piling,村口柴堆,堰头村口\n"


@pytest.mark.parametrize("encoding", ENCODINGS.values(), ids=ENCODINGS.keys())
def test_grid_import(app: App, tmp_path: Path, encoding: str) -> None:
    assert "1 grids created" in run(app, "grid", "import", written(tmp_path, GRIDS, encoding))
    with app.engine.connect() as conn:
        name = conn.execute(select(grids.c.name).where(grids.c.code == f"{V1}-G90")).scalar()
    assert name == "堰头村第90户组"


@pytest.mark.parametrize("encoding", ENCODINGS.values(), ids=ENCODINGS.keys())
def test_members_import(app: App, tmp_path: Path, encoding: str) -> None:
    path = written(tmp_path, MEMBERS, encoding)
    assert run_json(app, "member", "import", path)["members"] == 1
    [member] = run_json(app, "member", "list", "--grid", V1)
    assert (member["name"], member["role"], member["duty"]) == ("林第一", "第一书记", "垃圾分类")
    assert count(app, grid_members) == 1


@pytest.mark.parametrize("encoding", ENCODINGS.values(), ids=ENCODINGS.keys())
def test_exam_import(app: App, tmp_path: Path, encoding: str) -> None:
    out = run(app, "exam", "import", written(tmp_path, EXAM, encoding))
    assert "2 exam lines for 1 grids in 2026-04" in out
    with app.engine.connect() as conn:
        notes = conn.execute(select(exam_lines.c.note).order_by(exam_lines.c.id)).scalars().all()
    assert notes == ["堰头村口", None]


@pytest.mark.parametrize("encoding", ENCODINGS.values(), ids=ENCODINGS.keys())
def test_city_scores_import(app: App, tmp_path: Path, encoding: str) -> None:
    out = run(app, "exam", "city-import", written(tmp_path, CITY, encoding))
    assert "1 city scores in 2026-04" in out
    assert count(app, city_scores) == 1


@pytest.mark.parametrize("encoding", ENCODINGS.values(), ids=ENCODINGS.keys())
def test_campaign_findings_import(app: App, tmp_path: Path, encoding: str) -> None:
    c = campaigns.add_campaign(
        app,
        month="2026-04",
        grid_codes=[V1],
        theme="堰头村大会战",
        actions=["clean-up"],
        weekly_themes=("清理垃圾", "拆除违建", "整治停车", "绿化建设"),
        now=REAL_NOW,
    )
    path = written(tmp_path, FINDINGS, encoding)
    filed = run_json(app, "campaign", "findings", str(c.id), path)
    assert len(filed["refs"]) == 1
    with app.engine.connect() as conn:
        title = conn.execute(select(tickets.c.title).where(tickets.c.source == "campaign"))
        assert title.scalar_one() == "村口柴堆"


@pytest.mark.parametrize(
    "command",
    [
        ("grid", "import"),
        ("member", "import"),
        ("exam", "import"),
        ("exam", "city-import"),
        ("campaign", "findings", "1"),
    ],
    ids=lambda c: " ".join(c),
)
def test_a_utf16_file_is_refused_by_every_import(
    app: App, tmp_path: Path, command: tuple[str, ...]
) -> None:
    message = refused(app, *command, written(tmp_path, "a,b\n1,2\n", "utf-16"))
    assert 'file: UTF-16 text (Excel\'s "Unicode text"), not a CSV text' in message
    assert count(app, grids) > 0 and count(app, grid_members) == count(app, exam_lines) == 0


def said_by_the_command_line(app: App, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """The `error:` lines of a refused import, as `closeloop` prints them."""
    from closeloop.cli import main

    with (
        patch.object(State, "app", lambda _self: app),
        patch("sys.argv", ["closeloop", *args]),
        pytest.raises(SystemExit) as info,
    ):
        main()
    assert info.value.code == 2
    return capsys.readouterr().err


BAD = {
    "grid": (
        GRIDS.splitlines()[0] + "\n" + f"{V1}-G91,新户组,4,NOPE,g91.lead,某人,,\nX,短,4\n",
        "error: the grid file is refused, 2 problems:\n"
        f"  line 2: unknown parent 'NOPE' for grid '{V1}-G91' (neither in this file nor stored)\n"
        "  line 3: 3 fields where the header has 8\n",
        "error: 网格文件未导入，共 2 个问题：\n"
        f"  第 2 行：网格 {V1}-G91 的上级 NOPE 不存在（本文件和已有网格中都没有）。\n"
        "  第 3 行：这一行有 3 列，表头有 8 列。\n",
    ),
    "member": (
        "grid_code,handle,name,role,duty\nNOPE,yantou.fs,林第一,,\n",
        "error: the members file is refused, 2 problems:\n"
        "  line 2: unknown grid 'NOPE'\n"
        "  line 2: role is empty (e.g. 第一书记, 联村干部, 村支书)\n",
        "error: 成员文件未导入，共 2 个问题：\n"
        "  第 2 行：没有网格 NOPE。\n"
        "  第 2 行：职务（role）为空（例如 第一书记、联村干部、村支书）。\n",
    ),
    "exam": (
        EXAM.splitlines()[0] + "\n" + f"2026-13,JS-E01,{V1},基础卷,道路路面,abc,10,\n",
        "error: exam file refused, 2 problems:\n"
        "line 2: month '2026-13' is not of the form YYYY-MM (e.g. 2026-04)\n"
        "line 2: score 'abc' is not a number\n",
        "error: 考核文件未导入，共 2 个问题：\n"
        "第 2 行：月份 '2026-13' 有误，应为 YYYY-MM（例如 2026-04）。\n"
        "第 2 行：得分 'abc' 不是数字。\n",
    ),
}


@pytest.mark.parametrize("what", BAD)
def test_a_refused_import_is_said_in_the_command_lines_language(
    app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str], what: str
) -> None:
    text, english, chinese = BAD[what]
    path = written(tmp_path, text, "utf-8")
    assert said_by_the_command_line(app, capsys, what, "import", path) == english
    said = said_by_the_command_line(app, capsys, "--lang", "zh", what, "import", path)
    assert said == chinese
    # every line by its number, and no English sentence inside the Chinese
    assert not re.search(r"[A-Za-z]{3,} [a-z]{3,} [a-z]{3,}", said), said
    assert count(app, grid_members) == count(app, exam_lines) == 0
