"""Drift, found on purpose: the newest versions pyproject.toml allows, in a throwaway venv.

Not part of the normal run (the lock is what CI tests). Run it before a `tools/dev.py lock
--upgrade`, or to learn whether a zone that installs closeloop with plain pip would get a
working command line today:

    .venv/bin/python -m pytest -m drift -s

It resolves pyproject.toml's ranges afresh (uv, from the package index), installs them into a
new venv and runs the command-line smoke tests there on SQLite: the usage errors of every
command, `init` twice and a ticket through the whole loop. It prints which packages are newer
than the lock. About a minute of CPU (6 s of it the install); longer on a busy machine.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.drift

ROOT = Path(__file__).resolve().parents[1]
SMOKE = [
    "tests/test_cli_usage.py",
    "tests/test_cli.py::test_init_is_safe_to_run_twice[sqlite]",
    "tests/test_cli.py::test_a_ticket_through_the_whole_loop[sqlite]",
]


def locked(path: Path) -> dict[str, str]:
    text = path.read_text(encoding="utf-8")
    return {name.lower(): v for name, v in re.findall(r"^([\w.-]+)==(\S+)", text, re.M)}


def test_the_newest_allowed_versions_pass_the_cli_smoke_tests(tmp_path: Path) -> None:
    uv = Path(sys.executable).parent / "uv"
    assert uv.exists(), "uv is in the dev extra: run `python3 tools/dev.py test` first"
    venv = tmp_path / "venv"
    py = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    dev_extra = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "optional-dependencies"
    ]["dev"]
    pytest_range = next(r for r in dev_extra if r.startswith("pytest>"))
    # Not the lock: the project's own ranges, highest versions, index metadata fetched anew.
    install: list[str | Path] = [uv, "pip", "install", "--python", py, "--refresh"]
    install += ["--resolution", "highest"]
    subprocess.run(
        [*install, str(ROOT), pytest_range],
        check=True,
        timeout=300,
    )
    freeze = subprocess.run(
        [uv, "pip", "freeze", "--python", py], capture_output=True, text=True, check=True
    ).stdout
    newest = {name.lower(): v for name, v in re.findall(r"^([\w.-]+)==(\S+)", freeze, re.M)}
    pins = locked(ROOT / "requirements" / "dev.txt")
    moved = sorted(
        f"{name} {pins[name]} -> {version}"
        for name, version in newest.items()
        if name in pins and pins[name] != version
    )
    print("newer than requirements/dev.txt:", ", ".join(moved) or "nothing")

    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.run(
        [py, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-x", *SMOKE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, (
        f"the CLI smoke tests fail on the newest allowed versions ({', '.join(moved)}):\n"
        + proc.stdout[-6000:]
        + proc.stderr[-2000:]
    )
    # The smoke tests really ran, on the throwaway venv's packages.
    assert re.search(r"\b1[0-9]{2} passed", proc.stdout), proc.stdout[-2000:]
