"""The command line end to end, as scripts use it, both backends: in this process through
`closeloop.cli.main` (tests/cli_support.run_cli), and in a real process for the exit status."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from closeloop.app import App
from tests.cli_support import Run, command_line, config_copy, run_cli

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def cli(app: App, tmp_path: Path) -> Run:
    # In this process (tests/cli_support.run_cli); the exit status and the `error:` line of a
    # real process are checked by test_a_database_that_is_not_ready_is_one_clear_line and
    # tests/test_cli_usage.py.
    return command_line(app, tmp_path)


def as_json(proc: subprocess.CompletedProcess[str]):  # type: ignore[no-untyped-def]
    return json.loads(proc.stdout)


def expect_error(proc: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in proc.stderr


def test_init_is_safe_to_run_twice(cli) -> None:  # type: ignore[no-untyped-def]
    first = cli("init")
    second = cli("init")
    assert "0 grids created, 428 updated" in second.stdout
    assert first.stdout.split(";")[0] == second.stdout.split(";")[0]  # same schema revision


def test_a_ticket_through_the_whole_loop(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    photo = tmp_path / "清理后.png"
    photo.write_bytes(PNG)
    t = as_json(
        cli(
            "submit",
            "--grid",
            "JS-A1-V01-G03",
            "--category",
            "random_piling",
            "--title",
            "河边垃圾",
            "--address",
            "村口",
            "--lat",
            "29.1",
            "--lon",
            "119.6",
            "--reporter",
            "李大伯",
            "--at",
            "2026-04-01T09:00:00+08:00",
            "--json",
        )
    )
    ref = t["ref"]
    assert t["state"] == "assigned" and t["assignee"] == "yantou.g3"
    assert t["due_at"] == "2026-04-02T09:00:00+08:00"
    for key in (
        "ref",
        "state",
        "category",
        "grid",
        "responsible_grid",
        "assignee",
        "due_at",
        "created_at",
        "rework_count",
        "recurrence_of",
        "escalation_level",
    ):
        assert key in t
    cli(
        "ticket",
        "fix",
        ref,
        "--by",
        "yantou.g3",
        "--note",
        "已清运",
        "--evidence",
        str(photo),
        "--at",
        "2026-04-01T11:00:00+08:00",
    )
    expect_error(cli("ticket", "verify", ref, "--by", "yantou.g3", ok=False), "may not verify")
    cli(
        "ticket",
        "reject",
        ref,
        "--by",
        "yantou.lead",
        "--reason",
        "没清干净",
        "--at",
        "2026-04-01T12:00:00+08:00",
    )
    cli(
        "ticket",
        "fix",
        ref,
        "--by",
        "yantou.g3",
        "--note",
        "再次清理",
        "--at",
        "2026-04-01T14:00:00+08:00",
    )
    cli("ticket", "verify", ref, "--by", "yantou.lead", "--at", "2026-04-01T15:00:00+08:00")
    cli("ticket", "close", ref, "--by", "duban.wang", "--at", "2026-04-01T15:30:00+08:00")
    shown = as_json(cli("ticket", "show", ref, "--json"))
    assert shown["state"] == "closed" and shown["rework_count"] == 1
    assert [(e["step"], e["from"], e["to"], e["by"]) for e in shown["events"]] == [
        ("submit", "reported", "assigned", "李大伯"),
        ("fix", "assigned", "fixed", "yantou.g3"),
        ("reject", "fixed", "assigned", "yantou.lead"),
        ("fix", "assigned", "fixed", "yantou.g3"),
        ("verify", "fixed", "verified", "yantou.lead"),
        ("close", "verified", "closed", "duban.wang"),
    ]
    assert shown["events"][2]["note"] == "没清干净"
    assert shown["events"][1]["at"] == "2026-04-01T11:00:00+08:00"
    assert [f["name"] for f in shown["evidence"]] == ["清理后.png"]
    human = cli("ticket", "show", ref).stdout
    assert ref in human and "已销号" in human


def test_errors_are_one_line_and_write_nothing(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ref = as_json(
        cli("submit", "--grid", "JS-A1-V01", "--category", "road", "--title", "泥路", "--json")
    )["ref"]
    expect_error(
        cli("ticket", "close", ref, "--by", "yantou.lead", ok=False),
        "'close' may run only from: verified",
    )
    expect_error(
        cli("submit", "--grid", "JS-A1-V01", "--category", "noise", "--title", "x", ok=False),
        "unknown category 'noise'",
        "random_piling",
    )
    expect_error(
        cli("submit", "--grid", "XX", "--category", "road", "--title", "x", ok=False),
        "unknown grid 'XX'",
    )
    expect_error(
        cli(
            "ticket",
            "fix",
            ref,
            "--by",
            "yantou.lead",
            "--at",
            "yesterday",
            "--note",
            "x",
            ok=False,
        ),
        "ISO 8601",
    )
    expect_error(
        cli(
            "ticket",
            "fix",
            ref,
            "--by",
            "yantou.lead",
            "--note",
            "x",
            "--evidence",
            str(tmp_path / "missing.jpg"),
            ok=False,
        ),
        "missing.jpg",
    )
    bad = tmp_path / "bad.txt"
    bad.write_text("not a photo")
    expect_error(
        cli(
            "ticket",
            "fix",
            ref,
            "--by",
            "yantou.lead",
            "--note",
            "x",
            "--evidence",
            str(bad),
            ok=False,
        ),
        "photo",
    )
    expect_error(cli("ticket", "show", "EP-2026-999999", ok=False), "no ticket EP-2026-999999")
    shown = as_json(cli("ticket", "show", ref, "--json"))
    assert shown["state"] == "assigned" and len(shown["events"]) == 1
    assert shown["evidence"] == []


def test_an_error_line_speaks_the_language_of_lang(cli) -> None:  # type: ignore[no-untyped-def]
    """The same error, by its code, in English (the default) and in Chinese (--lang zh_CN or
    CLOSELOOP_LANG), the workflow's labels naming the step and the state."""
    ref = as_json(
        cli("submit", "--grid", "JS-A1-V01", "--category", "road", "--title", "泥路", "--json")
    )["ref"]
    close = ("ticket", "close", ref, "--by", "yantou.lead")
    expect_error(cli(*close, ok=False), f"cannot close {ref} that is assigned")
    zh = cli("--lang", "zh_CN", *close, ok=False)
    expect_error(zh, "这个问题现在是“待整改”，不能执行“销号”")
    assert zh.stderr.count("\n") == 1 and "cannot" not in zh.stderr
    fix = ("ticket", "fix", ref, "--by", "yantou.lead")
    expect_error(cli(*fix, ok=False), "'fix' needs --note")
    expect_error(cli("--lang", "zh", *fix, ok=False), "error: 请填写：说明。")
    expect_error(cli("--lang", "en", "ticket", "show", "EP-2026-999999", ok=False), "no ticket")
    expect_error(
        cli("--lang", "zh_CN", "ticket", "show", "EP-2026-999999", ok=False),
        "没有找到这个问题",
    )


def test_the_command_lines_own_refusals_speak_the_language_of_lang(cli) -> None:  # type: ignore[no-untyped-def]
    """What the command line refuses itself (an option it reads, before any service runs) is
    said by its code too: English as always, Chinese with --lang zh."""
    callback = ("ticket", "callback", "EP-2026-000001", "--by", "zone.sup", "--solved", "maybe")
    callback += ("--satisfaction", "satisfied")
    expect_error(cli(*callback, ok=False), "error: --solved must be yes or no, not 'maybe'")
    zh = cli("--lang", "zh", *callback, ok=False)
    assert zh.stderr == "error: --solved 只能是 yes 或 no，不能是 'maybe'。\n"
    patrol = ("patrol", "add", "--by", "yantou.lead", "--at", "2026-04-03T09:30:00")
    expect_error(
        cli(*patrol, ok=False),
        "error: --at '2026-04-03T09:30:00' needs a time zone offset, e.g. "
        "2026-04-01T09:30:00+08:00",
    )
    expect_error(
        cli("--lang", "zh_CN", *patrol, ok=False),
        "error: --at '2026-04-03T09:30:00' 需要带时区，例如 2026-04-01T09:30:00+08:00。",
    )
    checkin = ("patrol", "add", "--by", "yantou.lead", "--at", "2026-04-03T09:30:00+08:00")
    checkin += ("--grid", "JS-A1-V01-G01@north")
    expect_error(cli(*checkin, ok=False), "coordinates are CODE@LAT,LON")
    zh = cli("--lang", "zh", *checkin, ok=False)
    expect_error(zh, "error: --grid 'JS-A1-V01-G01@north'：坐标应写成 网格代码@纬度,经度")
    assert "coordinates" not in zh.stderr


def test_a_bad_config_file_is_one_line_in_the_language_of_lang(tmp_path: Path) -> None:
    config = config_copy(tmp_path)
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace('locale = "zh_CN"', 'locale = "fr"', 1), encoding="utf-8")
    for lang, said in (
        ("en", "error: [zone] locale must be 'zh_CN' or 'en', not 'fr'\n"),
        ("zh", "error: [zone] locale 只能是 'zh_CN' 或 'en'，不能是 'fr'。\n"),
    ):
        proc = run_cli(["--config", str(config), "--lang", lang, "grid", "show", "JS"])
        assert (proc.returncode, proc.stderr) == (2, said)


def test_grid_import_refuses_a_bad_file_whole(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    header = "code,name,level,parent_code,leader_handle,leader_name,leader_phone,leader_email\n"
    bad = tmp_path / "bad.csv"
    bad.write_text(
        header
        + "JS-A1-V01-G90,堰头村第90户组,4,JS-A1-V01,g90.lead,周九十,,\n"
        + "JS-X-1,无名,4,JS-NOPE,x.lead,某某,,\n"
        + "JS-A1-V01-G91,堰头村第91户组,3,JS-A1-V01,g91.lead,周九一,,\n"
        + "JS-A1-V01-G92,堰头村第92户组,4,JS-A1-V01,,,,\n",
        encoding="utf-8",
    )
    proc = cli("grid", "import", str(bad), ok=False)
    expect_error(proc, "line 3", "JS-NOPE", "line 4", "line 5")
    expect_error(cli("grid", "show", "JS-A1-V01-G90", ok=False), "unknown grid")

    good = tmp_path / "good.csv"
    good.write_text(
        header + "JS-A1-V01-G90,堰头村第90户组,4,JS-A1-V01,g90.lead,周九十,13800001234,\n",
        encoding="utf-8",
    )
    assert "1 grids created" in cli("grid", "import", str(good)).stdout
    shown = as_json(cli("grid", "show", "JS-A1-V01-G90", "--json"))
    assert shown["leader"]["handle"] == "g90.lead"
    assert [p["code"] for p in shown["path"]] == ["JS", "JS-A1", "JS-A1-V01", "JS-A1-V01-G90"]
    t = as_json(
        cli(
            "submit",
            "--grid",
            "JS-A1-V01-G90",
            "--category",
            "sanitation",
            "--title",
            "死角",
            "--json",
        )
    )
    assert t["assignee"] == "g90.lead"


def test_inbox_and_lists(cli) -> None:  # type: ignore[no-untyped-def]
    park = as_json(
        cli(
            "submit",
            "--grid",
            "JS-A1-V01-G01",
            "--category",
            "random_parking",
            "--title",
            "货车",
            "--json",
        )
    )["ref"]
    pile = as_json(
        cli(
            "submit",
            "--grid",
            "JS-A1-V01-G03",
            "--category",
            "random_piling",
            "--title",
            "垃圾",
            "--json",
        )
    )["ref"]
    other = as_json(
        cli("submit", "--grid", "JS-E01", "--category", "other", "--title", "企业", "--json")
    )["ref"]
    inbox = as_json(cli("inbox", "yantou.lead", "--json"))
    assert [t["ref"] for t in inbox] == [park, pile]  # 2 h before 24 h
    listed = as_json(cli("tickets", "--grid", "JS-A1", "--state", "assigned", "--json"))
    assert [t["ref"] for t in listed] == [park, pile]
    assert other in [t["ref"] for t in as_json(cli("tickets", "--json"))]
    expect_error(cli("tickets", "--state", "open", ok=False), "unknown state open")
    expect_error(cli("inbox", "nobody", ok=False), "unknown person 'nobody'")
    assert "3 tickets" in cli("tickets").stdout


def test_help_texts(cli) -> None:  # type: ignore[no-untyped-def]
    top = cli("--help").stdout
    for command in ("init", "submit", "ticket", "inbox", "tickets", "grid", "demo"):
        assert command in top
    assert "--to-grid" in cli("ticket", "reassign", "--help").stdout


def test_a_database_that_is_not_ready_is_one_clear_line(tmp_path: Path) -> None:
    def run(db: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "closeloop", "--db", db, "tickets"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    empty = tmp_path / "empty.db"
    empty.touch()
    not_ready = run(f"sqlite:///{empty}")
    expect_error(not_ready, "no such table", "closeloop init")
    assert len(not_ready.stderr.strip().splitlines()) == 1
    expect_error(run(f"sqlite:///{tmp_path}/no/such/folder.db"), "unable to open database file")
