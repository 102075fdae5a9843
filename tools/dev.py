"""The set-up commands of the README, for a fresh machine with only Python 3.11+.

    python3 tools/dev.py start   install the locked dependencies into .venv, run the example zone
    python3 tools/dev.py test    install the locked dev tools too, then ruff, mypy and the tests
    python3 tools/dev.py lock    regenerate requirements/*.txt from pyproject.toml

Both installs come from the locks in requirements/ (every package pinned, with hashes): run.txt
for running, dev.txt for development (a superset of run.txt with the same pins, so `start` after
`test` installs nothing). pyproject.toml keeps the ranges for people who install closeloop into
an environment of their own.

WHEN YOU CHANGE A DEPENDENCY in pyproject.toml (`dependencies`, the `dev` extra or the
build-system's `requires`), run `python3 tools/dev.py lock` and commit requirements/ with it:
`start` and `test` refuse to install from a lock that no longer matches pyproject.toml.
`lock --upgrade` moves every pin to the newest version the ranges allow.

Standard library only: this runs before anything is installed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import venv
from collections.abc import Iterable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
STAMP = VENV / ".closeloop-installed"
LOCKS = {"run": ROOT / "requirements" / "run.txt", "dev": ROOT / "requirements" / "dev.txt"}
# The interpreter and platform the locks are resolved for: CI's and the developers' machines.
LOCK_PYTHON = "3.11"
LOCK_PLATFORM = "x86_64-unknown-linux-gnu"
LOCK_COMMAND = "python3 tools/dev.py lock"
INPUTS_LINE = "# pyproject inputs sha256: "
# Debian packages the browser tests need: the browser itself and a font with Chinese glyphs.
DEBIAN_PACKAGES = {
    "chromium": Path("/usr/bin/chromium"),
    "fonts-noto-cjk": Path("/usr/share/fonts/opentype/noto"),
}


def say(message: str) -> None:
    print(f"[closeloop] {message}", flush=True)


def run(*cmd: str | Path, **kwargs: object) -> None:
    done = subprocess.run([str(c) for c in cmd], cwd=ROOT, **kwargs)  # type: ignore[call-overload]
    if done.returncode != 0:
        sys.exit(f"[closeloop] {Path(cmd[0]).name} failed (exit status {done.returncode})")


def run_talking(*cmd: str | Path, what: str, env: dict[str, str] | None = None) -> None:
    """Run a long step showing its own lines, and a line of ours whenever it is silent for 10 s.

    pip says nothing while it unpacks dozens of packages; on a busy 2-core machine that is
    minutes of silence without this.
    """
    began = time.monotonic()
    proc = subprocess.Popen(
        [str(c) for c in cmd],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    assert proc.stdout is not None
    last = [time.monotonic()]

    def forward() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            print(line, end="", flush=True)
            last[0] = time.monotonic()

    reader = threading.Thread(target=forward, daemon=True)
    reader.start()
    while proc.poll() is None:
        reader.join(timeout=1)
        if time.monotonic() - last[0] >= 10:
            say(f"still {what} ({time.monotonic() - began:.0f} s)")
            last[0] = time.monotonic()
    reader.join()
    if proc.returncode != 0:
        sys.exit(f"[closeloop] {what} failed (exit status {proc.returncode}); see the lines above")


def lock_inputs(kind: str) -> dict[str, list[str]]:
    """What a lock is made from: pyproject's dependencies (and dev extra) and the build backend."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    inputs = {
        "dependencies": pyproject["project"]["dependencies"],
        "build-system": pyproject["build-system"]["requires"],
    }
    if kind == "dev":
        inputs["dev"] = pyproject["project"]["optional-dependencies"]["dev"]
    return inputs


def inputs_digest(kind: str) -> str:
    return hashlib.sha256(json.dumps(lock_inputs(kind), sort_keys=True).encode()).hexdigest()


def check_lock(kind: str) -> Path:
    """The lock for `kind`, or exit loudly when pyproject.toml's dependencies have moved on."""
    path = LOCKS[kind]
    rel = path.relative_to(ROOT)
    if not path.exists():
        sys.exit(f"[closeloop] {rel} is missing: run `{LOCK_COMMAND}` and commit requirements/")
    if f"{INPUTS_LINE}{inputs_digest(kind)}\n" not in path.read_text(encoding="utf-8"):
        sys.exit(
            f"[closeloop] {rel} does not match the dependencies in pyproject.toml (changed since "
            f"the lock was made). Run `{LOCK_COMMAND}` and commit requirements/ with the change; "
            "nothing is installed from an out-of-date lock."
        )
    return path


def stamp_for(kind: str) -> str:
    lock = hashlib.sha256(LOCKS[kind].read_bytes()).hexdigest()
    project = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    return f"{kind} {lock} {project}"


def ensure_venv() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - this script runs before the venv exists
        sys.exit("closeloop needs Python 3.11 or newer")
    if not PY.exists():
        say(f"creating the virtual environment in {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)


def install(kind: str) -> None:
    """Install the lock `kind` and closeloop itself (editable) into .venv, unless already there.

    The dev lock holds every pin of the run lock, so an environment installed for `test` serves
    `start` as it is.
    """
    lock = check_lock(kind)
    ensure_venv()
    said = STAMP.read_text() if STAMP.exists() else ""
    if said in {stamp_for(k) for k in (["dev"] if kind == "dev" else ["run", "dev"])}:
        return
    began = time.monotonic()
    seconds = "about 1 min" if kind == "run" else "2-4 min"
    say(f"installing the locked packages of {lock.relative_to(ROOT)} ({seconds} the first time)")
    # pip's own output shows each package as it is fetched; --require-hashes: nothing but the lock.
    run_talking(PY, "-m", "pip", "install", "--require-hashes", "-r", lock, what="installing")
    say("installing closeloop itself (editable)")
    # The build backend comes from the lock too (no isolated build env fetched on the side).
    run_talking(
        PY,
        "-m",
        "pip",
        "install",
        "--no-deps",
        "--no-build-isolation",
        "-e",
        ".",
        what="installing",
    )
    STAMP.write_text(stamp_for(kind))
    say(f"installed in {time.monotonic() - began:.0f} s")


def ensure_browser() -> None:
    """Install Debian's chromium and a CJK font for the browser tests, when we may."""
    missing = [name for name, path in DEBIAN_PACKAGES.items() if not path.exists()]
    if not missing:
        return
    can_apt = shutil.which("apt-get") is not None and hasattr(os, "geteuid") and os.geteuid() == 0
    if not can_apt:
        say(
            f"not installing {', '.join(missing)} (needs root and apt-get); "
            "browser tests will say they are skipped"
        )
        return
    say(f"installing Debian packages: {', '.join(missing)} (about 40 s; apt's lines follow)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # -q: apt's status lines (Get:, Unpacking, Setting up) without the progress bars.
    run_talking("apt-get", "update", "-q", what="updating apt's package lists", env=env)
    run_talking(
        "apt-get",
        "install",
        "-y",
        "-q",
        "--no-install-recommends",
        *missing,
        what="installing Debian packages",
        env=env,
    )


def ensure_uv() -> Path:
    """uv, which writes the locks: the version pinned in the dev lock, else the newest."""
    uv = BIN / "uv"
    if uv.exists():
        return uv
    block: list[str] = []
    if LOCKS["dev"].exists():
        for line in LOCKS["dev"].read_text(encoding="utf-8").splitlines():
            if line.startswith("uv=="):
                block = [line]
            elif block and line.startswith("    --hash"):
                block.append(line)
            elif block:
                break
    if block:
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as pinned:
            pinned.write("\n".join(block).rstrip(" \\") + "\n")
        run(PY, "-m", "pip", "install", "--require-hashes", "--no-deps", "-r", pinned.name)
        os.unlink(pinned.name)
    else:
        run(PY, "-m", "pip", "install", "uv")
    return uv


def annotate_build(lines: Iterable[str]) -> Iterator[str]:
    """Say where the build backend's pins come from (uv names no source for piped input)."""
    pinned = ""
    for line in lines:
        if pinned and not line.startswith("    "):
            yield "    # via pyproject.toml [build-system] requires\n"
            pinned = ""
        yield line
        if "==" in line and not line.startswith(" "):
            pinned = line  # a pin whose "# via" line, if any, follows its hashes
        elif line.startswith("    # via"):
            pinned = ""
    if pinned:
        yield "    # via pyproject.toml [build-system] requires\n"


def lock(args: argparse.Namespace) -> None:
    """Resolve pyproject.toml into requirements/dev.txt, then run.txt within the same pins."""
    ensure_venv()
    uv = ensure_uv()
    LOCKS["dev"].parent.mkdir(exist_ok=True)
    for kind in ("dev", "run"):  # dev first: run.txt is constrained to dev.txt's pins
        out = LOCKS[kind]
        cmd: list[str | Path] = [uv, "pip", "compile", "pyproject.toml", "-"]
        cmd += ["--generate-hashes", "--python-version", LOCK_PYTHON]
        cmd += ["--python-platform", LOCK_PLATFORM, "--custom-compile-command", LOCK_COMMAND]
        cmd += ["--quiet", "-o", out]
        if kind == "dev":
            cmd += ["--extra", "dev"]
        else:
            cmd += ["--constraint", LOCKS["dev"]]
        if args.upgrade:
            cmd += ["--upgrade"]
        build = "\n".join(lock_inputs(kind)["build-system"]) + "\n"
        say(f"resolving {out.relative_to(ROOT)}")
        run(*cmd, input=build, text=True)
        lines = out.read_text(encoding="utf-8").splitlines(True)
        text = "".join(annotate_build(line for line in lines if not line.startswith(INPUTS_LINE)))
        out.write_text(f"{INPUTS_LINE}{inputs_digest(kind)}\n{text}", encoding="utf-8")
    say("requirements/run.txt and requirements/dev.txt written: commit them with pyproject.toml")


def start(args: argparse.Namespace) -> None:
    install("run")
    cmd = [str(BIN / "closeloop"), "serve", "--demo", "--host", args.host, "--port", str(args.port)]
    say(" ".join(cmd[1:]))
    os.chdir(ROOT)
    os.execv(cmd[0], cmd)


def _workers(pytest_args: list[str]) -> list[str]:
    """Run the tests on every core (pytest-xdist), a test module per worker, unless told how."""
    told = any(a.startswith(("-n", "--numprocesses", "--dist")) for a in pytest_args)
    return [] if told or "no:xdist" in pytest_args else ["-n", "auto", "--dist", "loadfile"]


def test(args: argparse.Namespace) -> None:
    install("dev")
    ensure_browser()
    steps = [
        [BIN / "ruff", "check", "."],
        [BIN / "ruff", "format", "--check", "."],
        [BIN / "mypy", "closeloop"],
        [PY, "-m", "pytest", *_workers(args.pytest), *args.pytest],
    ]
    for step in steps:
        say(" ".join(str(s) for s in step[:1]).split("/")[-1] + " " + " ".join(map(str, step[1:])))
        result = subprocess.run([str(s) for s in step], cwd=ROOT)
        if result.returncode != 0:
            sys.exit(result.returncode)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_start = sub.add_parser("start", help="install, create the example zone, run the service")
    p_start.add_argument("--host", default="127.0.0.1")
    p_start.add_argument("--port", type=int, default=8000, help="default 8000")
    p_start.set_defaults(func=start)
    p_test = sub.add_parser(
        "test", help="ruff, mypy and the whole test suite; further arguments go to pytest"
    )
    p_test.set_defaults(func=test)
    p_lock = sub.add_parser("lock", help="regenerate requirements/*.txt from pyproject.toml")
    p_lock.add_argument("--upgrade", action="store_true", help="newest versions the ranges allow")
    p_lock.set_defaults(func=lock)
    args, rest = parser.parse_known_args()
    if args.command == "test":
        args.pytest = rest  # e.g. `tools/dev.py test -x -q tests/test_cli.py`
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.func(args)


if __name__ == "__main__":
    main()
