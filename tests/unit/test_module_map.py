"""The README's "Where things live" is a map of the tree: every file and folder it names
exists where it says, and every module and package of closeloop/ is on it."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "closeloop"
# The names at the start of a map line, one space apart: folders (ending "/", maybe nested)
# and modules; two spaces or a word that is neither start the description.
_NAME = re.compile(r"([\w.-]+(?:/[\w.-]+)*/|[\w.-]+\.py)(?:( )|\s{2,}|$)")
# A module named in a description: in the line's folder, or from the top with a folder part.
_MODULE = re.compile(r"(?<![\w/.])([\w-]+(?:/[\w-]+)*\.py)\b")


def map_lines() -> list[str]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Where things live", 1)[1]
    return section.split("```", 2)[1].strip("\n").splitlines()


def mapped() -> dict[Path, int]:
    """Every path the map names, with its line: the names at the start of a line are in the
    folder of the nearest less indented folder line above; a module named in a description is
    in the folder the line is about."""
    found: dict[Path, int] = {}
    folders: list[tuple[int, Path]] = []  # (indent, path): the folders the lines are under
    here = REPO
    for number, line in enumerate(map_lines(), start=1):
        indent = len(line) - len(line.lstrip(" "))
        rest = line.strip()
        names = []
        while (m := _NAME.match(rest)) is not None:
            names.append(m.group(1))
            rest = rest[m.end() :]
            if m.group(2) is None:
                break
        if names:
            while folders and folders[-1][0] >= indent:
                folders.pop()
            parent = folders[-1][1] if folders else REPO
            here = parent
            for name in names:
                found[parent / name] = number
                if name.endswith("/"):
                    folders.append((indent, parent / name))
                    here = parent / name
        for module in _MODULE.findall(rest):
            found.setdefault((REPO if "/" in module else here) / module, number)
    return found


def test_every_path_the_map_names_exists() -> None:
    missing = [
        f"line {n}: {path.relative_to(REPO)}" for path, n in mapped().items() if not path.exists()
    ]
    assert not missing, "the README names what is not there:\n" + "\n".join(missing)


def test_every_module_and_package_of_closeloop_is_on_the_map() -> None:
    named = set(mapped())
    modules = [p for p in PACKAGE.glob("*.py") if not p.name.startswith("__")]
    packages = [p.parent for p in PACKAGE.rglob("__init__.py") if p.parent != PACKAGE]
    absent = sorted(str(p.relative_to(REPO)) for p in [*modules, *packages] if p not in named)
    assert not absent, "the README's map leaves out: " + ", ".join(absent)


def test_the_map_reads_nested_folders_and_modules_in_descriptions() -> None:
    # the parser itself: a check that names nothing would pass on any README
    named = set(mapped())
    for path in (
        PACKAGE / "service.py",
        PACKAGE / "web" / "pages",
        PACKAGE / "web" / "pages" / "base.py",
        PACKAGE / "reports" / "scheduled.py",
        REPO / "zones" / "example",
        REPO / "tests" / "unit",
        REPO / "tools" / "dev.py",
    ):
        assert path in named, path
