"""The replay in memory against the replay through the engine, on the same file.

Runs `closeloop replay`'s default path (tickets in memory, in-memory SQLite, notices counted but
not stored) on the first --rows rows of a file and times it; then the same with the notices
stored, and the path through the engine (every submit, step and sweep a transaction of `service`
and `escalation.sweep`, in a temporary SQLite file, as before), and checks that every figure of
the summaries is the same and that every stored row is (tickets, stages, events, escalations,
notices, reference counters; every column, ids included).
Prints both rates; the last line is one JSON object with `rows_per_s`.

    .venv/bin/python benchmarks/replay.py                                 # 3,000 rows, LA 2018-12
    .venv/bin/python benchmarks/replay.py --rows 7000 --file ../shared/data/la311_2017-12_subset.csv
    .venv/bin/python benchmarks/replay.py --fast-only --repeat 3          # no slow run

Target: >= 1,000 rows/s in memory, with the same results.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# This folder holds http.py, which would shadow the standard library's http module for
# everything imported after (httpx, starlette): the repository takes the folder's place.
sys.path.remove(str(Path(__file__).resolve().parent))
sys.path.insert(0, str(REPO))

from sqlalchemy import Engine, select  # noqa: E402

from closeloop import replay  # noqa: E402
from closeloop.models import (  # noqa: E402
    escalations,
    notifications,
    ref_counters,
    stages,
    ticket_events,
    tickets,
)

DATA = REPO.parent / "shared" / "data"
SCENARIO = REPO / "docs" / "replay-la311.toml"
CONFIG = REPO / "config.toml"
TABLES = (tickets, stages, ticket_events, escalations, notifications, ref_counters)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextmanager
def first_rows(file: Path, rows: int) -> Iterator[Path]:
    """The header and the first `rows` rows of `file` (all of them when it has fewer)."""
    with tempfile.TemporaryDirectory(prefix="closeloop-replay-bench-") as folder:
        lines = file.read_text(encoding="utf-8-sig").splitlines(keepends=True)
        path = Path(folder) / file.name
        path.write_text("".join(lines[: rows + 1]), encoding="utf-8")
        yield path


def stored(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the replay's tables, as sorted tuples of all columns."""
    out = {}
    with engine.connect() as conn:
        for table in TABLES:
            out[table.name] = sorted(
                (tuple(repr(v) for v in row) for row in conn.execute(select(table))),
            )
    return out


def run_once(
    path: Path, *, through_engine: bool = False, store_notices: bool = False
) -> tuple[float, dict[str, Any], Any]:
    """One replay; returns (seconds, summary, stored rows); the CPU seconds go in the summary
    as `cpu_s` (they move less than wall time on a shared machine)."""
    captured: dict[str, Any] = {}
    original = replay.Replay.summarise

    def summarise(self: replay.Replay, start: Any, end: Any) -> dict[str, Any]:
        captured["rows"] = stored(self.app.engine)
        return original(self, start, end)

    replay.Replay.summarise = summarise  # type: ignore[method-assign]
    try:
        started, cpu = time.perf_counter(), time.process_time()
        summary = replay.run(
            path,
            SCENARIO,
            config_path=CONFIG,
            through_engine=through_engine,
            store_notices=store_notices,
        )
        took = time.perf_counter() - started
        cpu = time.process_time() - cpu
    finally:
        replay.Replay.summarise = original  # type: ignore[method-assign]
    summary.pop("wall_seconds")
    captured["cpu_s"] = cpu
    return took, summary, captured


def differences(a: dict[str, Any], b: dict[str, Any], path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            out += differences(a.get(k), b.get(k), f"{path}.{k}")
        return out
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def row_differences(fast: dict[str, Any], slow: dict[str, Any]) -> list[str]:
    out = []
    for table in TABLES:
        f, s = Counter(fast[table.name]), Counter(slow[table.name])
        if f != s:
            only_fast, only_slow = f - s, s - f
            out.append(
                f"{table.name}: {sum(only_fast.values())} rows only in memory, "
                f"{sum(only_slow.values())} only through the engine; e.g. "
                f"{next(iter(only_fast), None)} vs {next(iter(only_slow), None)}"
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", type=Path, default=DATA / "la311_2018-12_mini.csv")
    parser.add_argument("--rows", type=int, default=3_000)
    parser.add_argument("--repeat", type=int, default=1, help="timed runs in memory (best)")
    parser.add_argument("--fast-only", action="store_true", help="skip the run through the engine")
    args = parser.parse_args()
    figures: dict[str, Any] = {"file": args.file.name}
    with first_rows(args.file, args.rows) as path:
        times, cpus = [], []
        for _ in range(args.repeat):
            took, fast, extra = run_once(path)
            times.append(took)
            cpus.append(extra["cpu_s"])
        rows = fast["tickets"] + fast["skipped"]["count"]
        best, cpu = min(times), min(cpus)
        figures.update(
            rows=rows,
            fast_s=round(best, 2),
            fast_cpu_s=round(cpu, 2),
            rows_per_s=round(rows / best),
            rows_per_cpu_s=round(rows / cpu),
        )
        print(
            f"in memory: {rows:,} rows in {best:.2f} s ({cpu:.2f} s of CPU), "
            f"{rows / best:,.0f} rows/s",
            flush=True,
        )
        if not args.fast_only:
            log("in memory, the notices stored too, to compare the rows ...")
            _, stored_fast, fast_rows = run_once(path, store_notices=True)
            fast_rows = fast_rows["rows"]
            log("through the engine (every step its own transaction) ...")
            slow_took, slow, slow_extra = run_once(path, through_engine=True)
            slow_rows = slow_extra["rows"]
            figures.update(
                slow_s=round(slow_took, 1),
                slow_rows_per_s=round(rows / slow_took, 1),
                speedup=round(slow_took / best, 1),
            )
            print(
                f"through the engine: {slow_took:.1f} s, {rows / slow_took:,.1f} rows/s "
                f"(in memory {slow_took / best:.1f}x faster)",
                flush=True,
            )
            summary_diff = differences(fast, slow) + differences(stored_fast, slow)
            rows_diff = row_differences(fast_rows, slow_rows)
            for line in summary_diff + rows_diff:
                print(f"DIFFERENT {line}", flush=True)
            figures.update(same_summary=not summary_diff, same_rows=not rows_diff)
            print(
                "same summary: "
                + ("yes" if not summary_diff else f"NO ({len(summary_diff)} figures differ)")
                + "; same stored rows: "
                + ("yes" if not rows_diff else f"NO ({len(rows_diff)} tables differ)"),
                flush=True,
            )
        figures["summary"] = {k: fast[k] for k in ("tickets", "closed", "escalations")}
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
