"""The two set-up commands of the README, for a fresh machine with only Python 3.11+.

    python3 tools/dev.py start   install into .venv, create the example zone on SQLite, run it
    python3 tools/dev.py test    install dev tools, then ruff, mypy and the whole test suite

Standard library only: this runs before anything is installed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
STAMP = VENV / ".closeloop-installed"
# Debian packages the browser tests need: the browser itself and a font with Chinese glyphs.
DEBIAN_PACKAGES = {
    "chromium": Path("/usr/bin/chromium"),
    "fonts-noto-cjk": Path("/usr/share/fonts/opentype/noto"),
}


def say(message: str) -> None:
    print(f"[closeloop] {message}", flush=True)


def run(*cmd: str | Path, **kwargs: object) -> None:
    subprocess.run([str(c) for c in cmd], check=True, cwd=ROOT, **kwargs)  # type: ignore[call-overload]


def install(extras: str) -> None:
    """Create .venv and install the project; skipped when pyproject.toml has not changed."""
    if sys.version_info < (3, 11):  # noqa: UP036 - this script runs before the venv exists
        sys.exit("closeloop needs Python 3.11 or newer")
    if not PY.exists():
        say(f"creating the virtual environment in {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == digest:
        return
    say(f"installing closeloop{extras} into .venv")
    run(PY, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    run(PY, "-m", "pip", "install", "--quiet", "-e", f".{extras}")
    STAMP.write_text(digest)


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
    say(f"installing Debian packages: {', '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run("apt-get", "update", "-qq", env=env)
    run(
        "apt-get",
        "install",
        "-y",
        "-qq",
        "--no-install-recommends",
        *missing,
        env=env,
        stdout=subprocess.DEVNULL,
    )


def start(args: argparse.Namespace) -> None:
    install("")
    cmd = [str(BIN / "closeloop"), "serve", "--demo", "--host", args.host, "--port", str(args.port)]
    say(" ".join(cmd[1:]))
    os.chdir(ROOT)
    os.execv(cmd[0], cmd)


def test(args: argparse.Namespace) -> None:
    install("[dev]")
    ensure_browser()
    steps = [
        [BIN / "ruff", "check", "."],
        [BIN / "ruff", "format", "--check", "."],
        [BIN / "mypy", "closeloop"],
        [PY, "-m", "pytest", *args.pytest],
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
    p_start.add_argument("--port", type=int, default=8000)
    p_start.set_defaults(func=start)
    p_test = sub.add_parser("test", help="ruff, mypy and the whole test suite")
    p_test.add_argument("pytest", nargs=argparse.REMAINDER, help="extra pytest arguments")
    p_test.set_defaults(func=test)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
