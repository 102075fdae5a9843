"""requirements/*.txt: the locks that `tools/dev.py start`, `test` and CI install from.

They must cover pyproject.toml's ranges, carry hashes, agree with each other (dev holds every
pin of run, so one environment serves both commands), and be what this test run runs on.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")
# The lock is made for CI's interpreter and platform (tools/dev.py LOCK_PYTHON, LOCK_PLATFORM).
LOCK_ENV = {"python_version": "3.11", "sys_platform": "linux", "platform_machine": "x86_64"}


def load_dev(root: Path = ROOT) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"dev_{id(root)}", root / "tools" / "dev.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_lock(path: Path) -> dict[str, tuple[str, frozenset[str]]]:
    """name -> (version, hashes) of every pin in a lock."""
    pins: dict[str, tuple[str, frozenset[str]]] = {}
    name = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if match := PIN.match(line):
            name = canonicalize_name(match[1])
            pins[name] = (match[2], frozenset())
        elif (hashed := re.search(r"--hash=(sha256:[0-9a-f]{64})", line)) and name:
            version, hashes = pins[name]
            pins[name] = (version, hashes | {hashed[1]})
    return pins


RUN = read_lock(ROOT / "requirements" / "run.txt")
DEV = read_lock(ROOT / "requirements" / "dev.txt")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def requirements(kind: str) -> list[Requirement]:
    texts = PYPROJECT["project"]["dependencies"] + PYPROJECT["build-system"]["requires"]
    if kind == "dev":
        texts = texts + PYPROJECT["project"]["optional-dependencies"]["dev"]
    return [Requirement(text) for text in texts]


@pytest.mark.parametrize(("kind", "pins"), [("run", RUN), ("dev", DEV)])
def test_every_pyproject_range_is_pinned_within_it_with_hashes(
    kind: str, pins: dict[str, tuple[str, frozenset[str]]]
) -> None:
    assert len(pins) > 20
    for name, (version, hashes) in pins.items():
        assert hashes, f"{name}=={version} has no hash"
    for req in requirements(kind):
        if req.marker and not req.marker.evaluate(LOCK_ENV):
            continue
        name = canonicalize_name(req.name)
        assert name in pins, f"{req} is not in requirements/{kind}.txt: run tools/dev.py lock"
        version = pins[name][0]
        assert req.specifier.contains(version, prereleases=True), f"{req} but locked {version}"
        if name == "psycopg":
            assert "psycopg-binary" in pins  # the [binary] extra is locked too


def test_the_dev_lock_holds_the_run_lock_pin_for_pin() -> None:
    for name, pinned in RUN.items():
        assert DEV.get(name) == pinned, name


def test_the_locks_were_made_from_this_pyproject() -> None:
    dev = load_dev()
    for kind in ("run", "dev"):
        assert dev.check_lock(kind) == ROOT / "requirements" / f"{kind}.txt"


def test_this_test_run_runs_on_the_locked_versions() -> None:
    wrong = {}
    for name, (version, _) in DEV.items():
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            wrong[name] = (version, installed)
    assert not wrong, f"locked vs installed {wrong}: run `python3 tools/dev.py test`"


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """tools/dev.py with the project's pyproject.toml and locks, in a folder of its own."""
    for name in ("tools/dev.py", "pyproject.toml", "requirements/run.txt", "requirements/dev.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def test_a_dependency_added_without_a_lock_refresh_stops_the_install(checkout: Path) -> None:
    pyproject = checkout / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    pyproject.write_text(text.replace('"httpx>=0.27",', '"httpx>=0.27",\n    "shapely>=2",'))
    for command in ("test", "start"):
        proc = subprocess.run(
            [sys.executable, "tools/dev.py", command],
            cwd=checkout,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode != 0
        assert "does not match the dependencies in pyproject.toml" in proc.stderr
        assert "python3 tools/dev.py lock" in proc.stderr
        assert not (checkout / ".venv").exists()  # refused before anything was installed


def test_a_change_outside_the_dependencies_needs_no_new_lock(checkout: Path) -> None:
    pyproject = checkout / "pyproject.toml"
    pyproject.write_text(pyproject.read_text(encoding="utf-8").replace("line-length = 100", "x=1"))
    dev = load_dev(checkout)
    assert dev.check_lock("dev") == checkout / "requirements" / "dev.txt"


def test_start_after_test_installs_nothing_and_test_after_start_installs_the_dev_lock(
    checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dev = load_dev(checkout)
    dev.PY.parent.mkdir(parents=True)
    dev.PY.touch()  # an existing .venv
    commands: list[tuple[str, ...]] = []
    record = lambda *cmd, **_: commands.append(tuple(map(str, cmd)))  # noqa: E731
    monkeypatch.setattr(dev, "run", record)
    monkeypatch.setattr(dev, "run_talking", record)

    dev.STAMP.write_text(dev.stamp_for("dev"))  # what `test` leaves behind
    dev.install("run")
    dev.install("dev")
    assert commands == []

    dev.STAMP.write_text(dev.stamp_for("run"))  # what `start` leaves behind
    dev.install("dev")
    pip = [c for c in commands if "--require-hashes" in c]
    assert len(pip) == 1 and pip[0][-1] == str(checkout / "requirements" / "dev.txt")
    editable = [c for c in commands if "-e" in c]
    assert editable and "--no-deps" in editable[0] and "--no-build-isolation" in editable[0]
    assert dev.STAMP.read_text() == dev.stamp_for("dev")
