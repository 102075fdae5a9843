"""The weekly report for one week in two SQLite databases, 10,000 and 1,000,000 tickets.

Both databases hold the same 10,000 tickets of the thirteen weeks up to the end of the report
week (2026-W14): the week itself, the four weeks it is compared with and the weeks whose
tickets can still fall due in them. The large one also holds 990,000 older tickets (three years
of history, closed, a few left open). So the ratio of the two times says whether the report's
cost grows with the week's work (ratio near 1) or with the history behind it.

Rows are written with Core bulk inserts (executemany, in chunks), shaped as the service leaves
them: submit/fix/verify/close events, some rejects, reassignments, extensions, deferrals,
escalations and recurrences. The report is timed end to end as the weekly job makes it: the
figures (`build_weekly`) and the HTML file (`render_weekly`), best of three runs per database.

    .venv/bin/python benchmarks/report.py                # builds both in a temporary folder
    .venv/bin/python benchmarks/report.py --dir var/bench --keep   # keep them for a rerun

The last line printed is one JSON object with the figures and the ratio.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, text

# This folder holds http.py, which would shadow the standard library's http module for
# everything imported after (httpx, starlette): the repository takes the folder's place.
sys.path.remove(str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from closeloop import grid as grid_mod
from closeloop import zone
from closeloop.app import App
from closeloop.bootstrap import bootstrap
from closeloop.campaigns import service as campaigns
from closeloop.config import load_settings
from closeloop.models import (
    deferrals,
    escalations,
    extensions,
    grids,
    metadata,
    people,
    stages,
    ticket_events,
    ticket_feedback,
    tickets,
)
from closeloop.reports.render import render_weekly
from closeloop.reports.weekly import build_weekly
from closeloop.service import SOURCES

WEEK = "2026-W14"
NOW = datetime(2026, 4, 6, 1, 0, tzinfo=UTC)  # Monday 09:00 in the zone
RECENT_START = datetime(2026, 1, 4, 16, 0, tzinfo=UTC)  # Mon 5 Jan 2026 00:00 in the zone
RECENT_END = datetime(2026, 4, 5, 16, 0, tzinfo=UTC)  # the end of W14
HISTORY_START = datetime(2023, 1, 1, 16, 0, tzinfo=UTC)
SMALL, BIG = 10_000, 1_000_000
OPEN_IN_HISTORY = 200  # old tickets still open: the overdue backlog
CHUNK = 20_000


class Zone:
    """What the generator needs of the example zone: grids to file on, leaders, a supervisor."""

    def __init__(self, app: App) -> None:
        with app.engine.connect() as conn:
            rows = conn.execute(select(grids.c.id, grids.c.level, grids.c.path, grids.c.leader_id))
            self.grids = {r.id: r for r in rows}
            self.supervisor = conn.execute(
                select(people.c.id).where(people.c.handle == "duban.wang")
            ).scalar_one()
        self.homes = [g.id for g in self.grids.values() if g.level >= 3]
        self.categories = list(app.workflow.categories)

    def responsible(self, grid_id: int) -> tuple[int, int | None]:
        ids = [int(p) for p in self.grids[grid_id].path.strip("/").split("/")]
        for gid in reversed(ids):
            if self.grids[gid].leader_id is not None:
                return gid, self.grids[gid].leader_id
        raise AssertionError("the zone has a leader")


class Writer:
    """Buffers rows per table and writes them in chunks with executemany."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.buffers: dict[Any, list[dict[str, Any]]] = {}
        self.written = 0

    def add(self, table: Any, row: dict[str, Any]) -> None:
        buf = self.buffers.setdefault(table, [])
        buf.append(row)
        if len(buf) >= CHUNK:
            self.flush(table)

    def flush(self, table: Any = None) -> None:
        tables = [table] if table is not None else list(self.buffers)
        # Parents first: tickets before the rows that point at them.
        order = {tickets: 0, ticket_events: 1, extensions: 2, deferrals: 2, escalations: 2,
                 stages: 2, ticket_feedback: 2}  # fmt: skip
        for t in sorted(tables, key=lambda t: order.get(t, 3)):
            if t is not tickets and self.buffers.get(tickets):
                self._write(tickets)
            self._write(t)

    def _write(self, table: Any) -> None:
        rows = self.buffers.get(table)
        if not rows:
            return
        with self.app.engine.begin() as conn:
            conn.execute(insert(table), rows)
        self.written += len(rows)
        self.buffers[table] = []


def generate(
    app: App,
    z: Zone,
    writer: Writer,
    *,
    count: int,
    start: datetime,
    end: datetime,
    first_id: int,
    seed: int,
    history: bool,
    progress: str,
) -> int:
    """Write ``count`` tickets filed in [start, end); returns the next free ticket id."""
    rnd = random.Random(seed)
    span = (end - start).total_seconds()
    # Filed in time order, as tickets arrive: ids and times ascend together, and the indexes
    # on times grow at their end instead of taking writes all over the B-tree.
    offsets = sorted(rnd.random() * span for _ in range(count))
    due = app.deadlines.due
    tick = max(count // 20, 1)
    started = time.perf_counter()
    for n in range(count):
        tid = first_id + n
        created = start + timedelta(seconds=offsets[n])
        category = rnd.choice(z.categories)
        home = rnd.choice(z.homes)
        resp, leader = z.responsible(home)
        # History needs no exact deadline (it is all closed); the recent weeks get the real one.
        limit = app.deadlines.limit(category, "fix")
        deadline = (
            created + app.calendar.duration(limit) if history else due(category, "fix", created)
        )
        roll = rnd.random()
        if history:
            outcome = "closed" if n >= OPEN_IN_HISTORY else "assigned"
        else:
            outcome = (
                "closed"
                if roll < 0.70
                else "fixed"
                if roll < 0.80
                else "assigned"
                if roll < 0.95
                else "deferred"
            )
        late = rnd.random() < 0.25
        fixed_at = (
            deadline + timedelta(hours=rnd.uniform(1, 48))
            if late
            else created + (deadline - created) * rnd.uniform(0.1, 0.95)
        )
        events: list[tuple[str, str | None, str, datetime]] = [
            ("submit", "reported", "assigned", created)
        ]
        rework = not history and rnd.random() < 0.05
        if outcome in ("closed", "fixed"):
            if rework:
                events.append(("fix", "assigned", "fixed", fixed_at - timedelta(hours=2)))
                events.append(("reject", "fixed", "assigned", fixed_at - timedelta(hours=1)))
            events.append(("fix", "assigned", "fixed", fixed_at))
        closed_at = None
        if outcome == "closed":
            if not history:
                events.append(("verify", "fixed", "verified", fixed_at + timedelta(hours=1)))
            closed_at = fixed_at + timedelta(hours=2)
            events.append(("close", "verified", "closed", closed_at))
        state = outcome
        stage = {"assigned": "fix", "fixed": "verify"}.get(state)
        due_at = (
            deadline
            if state == "assigned"
            else (fixed_at + timedelta(days=1) if state == "fixed" else None)
        )
        writer.add(
            tickets,
            {
                "id": tid,
                "ref": f"EP-B{seed}-{tid:08d}",
                "workflow": app.workflow.name,
                "category": category,
                "title": f"问题 {tid}",
                "description": "",
                "grid_id": home,
                "responsible_grid_id": resp,
                "assignee_id": leader,
                "state": state,
                "stage": stage,
                "stage_no": len(events),
                "stage_started_at": events[-1][3] if stage else None,
                "due_at": due_at,
                "next_check_at": due_at,
                "escalation_level": 3 if late and state == "assigned" else 0,
                "escalation_round": 0,
                "rework_count": int(rework),
                "extension_count": 0,
                "recurrence_of_id": tid - rnd.randint(1, 5000)
                if rnd.random() < 0.05 and tid - first_id > 5000
                else None,
                "created_at": created,
                "updated_at": events[-1][3],
                "closed_at": closed_at,
                "version": len(events),
                "source": rnd.choice(SOURCES),
                "urgent_at": created if rnd.random() < 0.03 else None,
            },
        )
        # The stage instances as the engine writes them: the fix stage from the submission, and
        # for a fix made, the verification stage (issue 16's 按时核查率 reads these).
        first_fix = next((at for step, _, _, at in events if step == "fix"), None)
        parked = created + timedelta(minutes=20) if state == "deferred" else None
        writer.add(
            stages,
            {
                "ticket_id": tid,
                "stage_no": 1,
                "stage": "fix",
                "started_at": created,
                "started_by": "submit",
                "due_at": deadline,
                "grid_id": resp,
                "owner_id": leader,
                "ended_at": first_fix or parked,
                "ended_by": "fix" if first_fix else "defer" if parked else None,
            },
        )
        if outcome in ("closed", "fixed"):
            # History has no verify event: its check ended when the ticket was closed.
            checked = next((at for step, _, _, at in events if step == "verify"), closed_at)
            writer.add(
                stages,
                {
                    "ticket_id": tid,
                    "stage_no": 2 + 2 * int(rework),
                    "stage": "verify",
                    "started_at": fixed_at,
                    "started_by": "fix",
                    "due_at": fixed_at + timedelta(days=1),
                    "grid_id": resp,
                    "ended_at": checked,
                    "ended_by": "verify" if checked else None,
                },
            )
        if closed_at is not None and rnd.random() < 0.3:
            writer.add(
                ticket_feedback,
                {
                    "ticket_id": tid,
                    "at": closed_at + timedelta(hours=rnd.uniform(2, 72)),
                    "channel": "reporter",
                    "solved": rnd.random() < 0.9,
                    "satisfaction": rnd.choice(("satisfied", "basic", "dissatisfied")),
                    "comment": "",
                },
            )
        for step, before, after, at in events:
            writer.add(
                ticket_events,
                {
                    "ticket_id": tid,
                    "at": at,
                    "recorded_at": at,
                    "step": step,
                    "actor_id": None if step == "submit" else leader,
                    "from_state": before,
                    "to_state": after,
                },
            )
        if late:
            writer.add(
                escalations,
                {
                    "ticket_id": tid,
                    "stage": "fix",
                    "stage_no": 1,
                    "level": 3,
                    "round": 1,
                    "grid_id": resp,
                    "deadline": deadline,
                    "at": deadline + timedelta(minutes=1),
                    "supervision_due": deadline + timedelta(days=1),
                },
            )
        if not history and rnd.random() < 0.02:
            writer.add(
                extensions,
                {
                    "ticket_id": tid,
                    "stage_no": 1,
                    "requested_by_id": leader,
                    "requested_at": created + timedelta(minutes=30),
                    "reason": "bench",
                    "until": deadline + timedelta(days=3),
                    "status": "approved",
                    "decided_by_id": z.supervisor,
                    "decided_at": created + timedelta(hours=1),
                },
            )
        if not history and (state == "deferred" or rnd.random() < 0.01):
            paused = created + timedelta(minutes=20)
            writer.add(
                deferrals,
                {
                    "ticket_id": tid,
                    "by_id": z.supervisor,
                    "at": paused,
                    "reason": "bench",
                    "review_on": paused + timedelta(days=30),
                    "resumed_at": None if state == "deferred" else paused + timedelta(days=2),
                },
            )
        if (n + 1) % tick == 0:
            rate = (n + 1) / (time.perf_counter() - started)
            print(f"  {progress}: {n + 1:,}/{count:,} tickets ({rate:,.0f}/s)", flush=True)
    writer.flush()
    return first_id + count


def build(path: Path, total: int) -> App:
    """A fresh database at ``path`` with the example zone and ``total`` tickets."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    app = bootstrap(load_settings(None, f"sqlite:///{path}"))
    # The current schema with every index of models.py (the migration may lag behind it).
    metadata.create_all(app.engine)
    zone.import_grid_file(app, app.settings.grid_file, NOW)  # type: ignore[arg-type]
    with app.engine.begin() as conn:
        for person in app.settings.staff:
            grid_mod.upsert_person(
                conn, person.handle, person.name, NOW, phone=person.phone, roles=person.roles
            )
    z = Zone(app)
    writer = Writer(app)
    next_id = 1
    if total > SMALL:
        next_id = generate(
            app,
            z,
            writer,
            count=total - SMALL,
            start=HISTORY_START,
            end=RECENT_START,
            first_id=next_id,
            seed=2,
            history=True,
            progress=f"{path.name} history",
        )
    generate(
        app,
        z,
        writer,
        count=SMALL,
        start=RECENT_START,
        end=RECENT_END,
        first_id=next_id,
        seed=1,
        history=False,
        progress=f"{path.name} recent",
    )
    campaigns.add_campaign(
        app,
        month="2026-04",
        grid_codes=["JS-A1-V01", "JS-A1-V02"],
        theme="堰头曹园环境大会战",
        actions=["clean-up"],
        now=NOW,
    )
    with app.engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    return app


def count_tickets(app: App) -> int:
    with app.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM tickets")).scalar_one())


def time_report(app: App, runs: int = 3) -> tuple[float, float, int, dict[str, Any]]:
    """Best of ``runs``: (seconds for the figures, seconds for figures + HTML, HTML bytes)."""
    figures, totals, size, data = [], [], 0, {}
    for _ in range(runs):
        t0 = time.perf_counter()
        report = build_weekly(app, now=NOW, week=WEEK)
        t1 = time.perf_counter()
        html = render_weekly(report, "html", locale="zh_CN", workflow=app.workflow)
        t2 = time.perf_counter()
        figures.append(t1 - t0)
        totals.append(t2 - t0)
        size, data = len(html), report.as_json()["zone"]
    return min(figures), min(totals), size, {"runs": [round(t, 3) for t in totals], **data}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, help="folder for the databases (default: a temp one)")
    parser.add_argument("--keep", action="store_true", help="keep the databases afterwards")
    parser.add_argument(
        "--reuse", action="store_true", help="reuse databases already in --dir of the right size"
    )
    parser.add_argument("--big", type=int, default=BIG, help="tickets in the large database")
    args = parser.parse_args(argv)
    folder = args.dir or Path(tempfile.mkdtemp(prefix="closeloop-report-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    results = {}
    try:
        for name, total in (("small", SMALL), ("big", args.big)):
            path = folder / f"report-{total}.db"
            app = None
            if args.reuse and path.exists():
                app = bootstrap(load_settings(None, f"sqlite:///{path}"))
                if count_tickets(app) != total:
                    app = None
            if app is None:
                print(f"building {path} ({total:,} tickets)", flush=True)
                t0 = time.perf_counter()
                app = build(path, total)
                print(f"  built in {time.perf_counter() - t0:.1f}s", flush=True)
            figures, total_s, size, zone_figures = time_report(app)
            results[name] = {
                "tickets": count_tickets(app),
                "seconds": round(total_s, 3),
                "figures_seconds": round(figures, 3),
                "html_bytes": size,
                "zone": zone_figures,
            }
            print(
                f"{name}: {results[name]['tickets']:,} tickets, weekly report {WEEK} in "
                f"{total_s:.3f}s (figures {figures:.3f}s, HTML {size:,} bytes); "
                f"due {zone_figures['due']}, closed on time {zone_figures['closed_on_time']}",
                flush=True,
            )
            app.engine.dispose()
    finally:
        if not args.keep and args.dir is None:
            shutil.rmtree(folder, ignore_errors=True)
    small, big = results["small"], results["big"]
    ratio = big["seconds"] / small["seconds"]
    # The same week in both: every figure equal but the overdue backlog (old open tickets).
    skip = ("runs", "overdue_open")
    same = {k: v for k, v in small["zone"].items() if k not in skip} == {
        k: v for k, v in big["zone"].items() if k not in skip
    }
    print(f"ratio big/small: {ratio:.2f} (target < 3); big under 3 s: {big['seconds'] < 3}")
    print(
        json.dumps(
            {
                "week": WEEK,
                "small_tickets": small["tickets"],
                "big_tickets": big["tickets"],
                "small_seconds": small["seconds"],
                "big_seconds": big["seconds"],
                "small_figures_seconds": small["figures_seconds"],
                "big_figures_seconds": big["figures_seconds"],
                "ratio": round(ratio, 2),
                "same_week_figures": same,
                "big_under_3s": big["seconds"] < 3,
                "ratio_under_3": ratio < 3,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
