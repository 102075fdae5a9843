"""Every CSV import reads what Excel writes the same way (closeloop.csvfile): a file saved as
"CSV UTF-8" (with its BOM) and one saved as "CSV (逗号分隔)" on a Chinese Windows (GBK) are
both imported; a UTF-16 file is refused by each, saying what it is. The encoding does not
depend on the database, so this runs on SQLite only."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from closeloop.app import App
from closeloop.campaigns import service as campaigns
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
