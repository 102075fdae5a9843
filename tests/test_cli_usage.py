"""Usage errors on every command: one `error:` line with a help hint, status 2, no traceback.

The tree is walked in-process (the framework's own command objects, `main()` called with the
words of a command line); a few real processes check the same from the outside.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from closeloop.cli import app, main, usage_error_base


def command_tree() -> list[tuple[tuple[str, ...], bool]]:
    """Every command and group below the root, as (path, is_group), the root included."""
    found: list[tuple[tuple[str, ...], bool]] = []

    def walk(command: object, path: tuple[str, ...]) -> None:
        children = getattr(command, "commands", None)
        found.append((path, children is not None))
        for name, child in sorted((children or {}).items()):
            if not getattr(child, "hidden", False):
                walk(child, (*path, name))

    walk(typer.main.get_command(app), ())
    return found


TREE = command_tree()
GROUPS = [path for path, is_group in TREE if is_group]


def run(capsys: pytest.CaptureFixture[str], *words: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        main(list(words), prog_name="closeloop")
    out, err = capsys.readouterr()
    code = exit_.value.code
    return (code if isinstance(code, int) else 1), out, err


def expect_usage_error(code: int, err: str, help_of: tuple[str, ...]) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    assert f"see '{' '.join(('closeloop', *help_of))} --help'" in lines[0], err


def test_the_walk_sees_the_whole_tree() -> None:
    paths = {path for path, _ in TREE}
    # A sample from each level, so an empty or truncated walk cannot pass.
    for expected in [
        (),
        ("init",),
        ("submit",),
        ("ticket",),
        ("ticket", "fix"),
        ("ticket", "request-extension"),
        ("grid", "import"),
        ("exam", "board"),
        ("outbox", "retry"),
        ("report", "weekly"),
        ("serve",),
    ]:
        assert expected in paths, expected
    assert len(GROUPS) >= 6
    assert len(TREE) >= 35


def test_the_base_class_is_the_frameworks_own() -> None:
    base = usage_error_base()
    assert issubclass(typer.BadParameter, base)
    # The class the running framework raises for an unknown command derives from it, whichever
    # module (click, typer._click) it lives in.
    command = typer.main.get_command(app)
    with pytest.raises(base):
        command.main(["nosuch"], standalone_mode=False)


@pytest.mark.parametrize("path", [p for p, _ in TREE], ids=lambda p: " ".join(p) or "closeloop")
def test_help_exits_0(capsys: pytest.CaptureFixture[str], path: tuple[str, ...]) -> None:
    code, out, err = run(capsys, *path, "--help")
    assert code == 0, err
    assert out.startswith(f"Usage: closeloop {' '.join(path)}".rstrip()), out
    assert err == ""


@pytest.mark.parametrize("path", [p for p, _ in TREE], ids=lambda p: " ".join(p) or "closeloop")
def test_an_unknown_option_is_one_error_line(
    capsys: pytest.CaptureFixture[str], path: tuple[str, ...]
) -> None:
    code, out, err = run(capsys, *path, "--no-such-option")
    expect_usage_error(code, err, path)
    assert "--no-such-option" in err
    assert out == ""


@pytest.mark.parametrize("path", GROUPS, ids=lambda p: " ".join(p) or "closeloop")
def test_an_unknown_command_is_one_error_line(
    capsys: pytest.CaptureFixture[str], path: tuple[str, ...]
) -> None:
    code, _, err = run(capsys, *path, "nosuch")
    expect_usage_error(code, err, path)
    assert "No such command 'nosuch'" in err


@pytest.mark.parametrize(
    ("words", "help_of", "said"),
    [
        (["submit", "--grid"], ("submit",), "'--grid' requires an argument"),
        (["submit", "--lat", "north"], ("submit",), "Invalid value for '--lat'"),
        (["ticket", "show"], ("ticket", "show"), "Missing argument"),
        (["--db"], (), "'--db' requires an argument"),
        (["ticket", "fix", "T-1", "--by"], ("ticket", "fix"), "'--by' requires an argument"),
    ],
)
def test_missing_and_malformed_values(
    capsys: pytest.CaptureFixture[str], words: list[str], help_of: tuple[str, ...], said: str
) -> None:
    code, _, err = run(capsys, *words)
    expect_usage_error(code, err, help_of)
    assert said in err


def test_a_group_without_a_command_shows_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "ticket")
    assert code == 2
    assert "Usage: closeloop ticket" in err
    assert "Traceback" not in err


def closeloop_process(*words: str, module: bool = False) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "closeloop"
    head = [sys.executable, "-m", "closeloop"] if module or not script.exists() else [str(script)]
    return subprocess.run(
        [*head, *words],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "CLOSELOOP_DB": "sqlite://"},
    )


@pytest.mark.parametrize(
    "words",
    [["nosuch"], ["exam", "nosuch"], ["submit", "--nosuch"], ["submit", "--grid"]],
    ids=" ".join,
)
def test_usage_errors_of_a_real_process(words: list[str]) -> None:
    proc = closeloop_process(*words)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stdout == ""


def test_help_and_a_usage_error_through_python_m() -> None:
    help_ = closeloop_process("ticket", "fix", "--help", module=True)
    assert help_.returncode == 0 and "--by" in help_.stdout, help_.stderr
    proc = closeloop_process("ticket", "fix", "--nosuch", module=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: No such option: --nosuch"), proc.stderr
    assert "see 'python -m closeloop ticket fix --help'" in proc.stderr
