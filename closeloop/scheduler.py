"""APScheduler 3 wiring, and nothing else: which job runs when. The jobs are plain functions.

The job table
-------------
`JOBS` lists every periodic job with a fixed id, the function it runs ("module:function") and
its default trigger. To add a job, add one line to `JOBS`; the function is called as
`function(app, now)` (with `should_stop=` too when the line says `stoppable=True`) and returns
something printable (counts) or None. A zone changes a trigger, or switches a job off, in
config.toml under the same id:

    [scheduler]
    timezone = "Asia/Shanghai"     # for daily/weekly/cron times (default: [zone] timezone)
    [scheduler.jobs]
    sweep = "every 1m"             # "every <n><s|m|h|d>", "daily 17:30", "weekly mon 08:00",
                                   # "cron <min> <hour> <day> <month> <dow>", or "off"

Why no job store: APScheduler 3 cannot share one between processes and forgets a run a crash
interrupts. What is due and what was done lives in closeloop's tables (next_check_at, the
escalation rows, the outbox), so the jobs are registered afresh from config at each start, with
`replace_existing`, and a restart or a second scheduler process loses and doubles nothing.
Interval jobs run once at start, so the first sweep after downtime catches up at once.

Never start a scheduler inside a web worker: each worker would run every job. A web process that
wants the jobs on a single-process SQLite set-up calls `build_scheduler(app, background=True)`
once, in the one process that owns it.
"""

from __future__ import annotations

import importlib
import logging
import re
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from closeloop.app import App
from closeloop.config import ConfigError

log = logging.getLogger("closeloop.scheduler")


@dataclass(frozen=True)
class JobSpec:
    id: str
    target: str  # "module:function", called as function(app, now)
    default: str  # trigger spec when [scheduler.jobs] does not name the job
    help: str
    stoppable: bool = False  # the function takes should_stop= and checks it between batches


# The job table: one line per job (see the module docstring).
JOBS: list[JobSpec] = [
    JobSpec(
        "sweep",
        "closeloop.escalation:sweep_job",
        "every 1m",
        "reminders before deadlines, escalation after them",
        stoppable=True,
    ),
    JobSpec("deliver", "closeloop.delivery:deliver_job", "every 10s", "send due notices", True),
    JobSpec("digest", "closeloop.digest:digest_job", "every 5m", "digests at each digest time"),
    JobSpec(
        "weekly_report",
        "closeloop.reports.scheduled:send_weekly_report",
        "weekly mon 08:00",
        "the weekly report to the supervisors",
    ),
]

_EVERY = re.compile(r"^every\s+(\d+(?:\.\d+)?)\s*([smhd])$", re.IGNORECASE)
_DAILY = re.compile(
    r"^(?:daily|weekly\s+(mon|tue|wed|thu|fri|sat|sun))\s+(\d{1,2}):(\d{2})$", re.IGNORECASE
)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
CRON_MISFIRE_GRACE = 3600  # a cron job may start up to an hour late (e.g. after a restart)


@dataclass(frozen=True)
class Schedule:
    """A parsed trigger spec."""

    trigger: BaseTrigger
    grace_seconds: int
    run_at_start: bool
    text: str


def parse_spec(text: str, tz: ZoneInfo, where: str = "trigger") -> Schedule | None:
    """Parse "every 1m", "daily 17:30", "weekly mon 08:00", "cron 0 8 * * mon" (zone time for
    the last three) or "off" (None)."""
    if not isinstance(text, str):
        raise ConfigError("schedule.not_text", where=where, text=text)
    spec = text.strip()
    if spec.lower() == "off":
        return None
    every = _EVERY.match(spec)
    if every:
        seconds = float(every.group(1)) * _UNITS[every.group(2).lower()]
        if seconds < 1:
            raise ConfigError("schedule.too_short", where=where, text=text)
        trigger = IntervalTrigger(seconds=seconds, timezone=UTC)
        return Schedule(trigger, max(int(seconds), 1), True, spec)
    daily = _DAILY.match(spec)
    if daily:
        day_of_week, hour, minute = daily.group(1), int(daily.group(2)), int(daily.group(3))
        if hour > 23 or minute > 59:
            raise ConfigError("schedule.time_of_day", where=where, text=text)
        trigger = CronTrigger(
            day_of_week=(day_of_week or "*").lower(), hour=hour, minute=minute, timezone=tz
        )
        return Schedule(trigger, CRON_MISFIRE_GRACE, False, spec)
    if spec.lower().startswith("cron "):
        try:
            trigger = CronTrigger.from_crontab(spec[5:].strip(), timezone=tz)
        except ValueError as exc:
            raise ConfigError("schedule.cron", where=where, text=text, reason=exc) from None
        return Schedule(trigger, CRON_MISFIRE_GRACE, False, spec)
    raise ConfigError("schedule.unreadable", where=where, text=text)


def schedules(app: App, jobs: Sequence[JobSpec] = ()) -> dict[str, tuple[JobSpec, Schedule]]:
    """The jobs to register, with their triggers from config; switched-off jobs left out."""
    jobs = jobs or JOBS
    section = app.settings.section("scheduler")
    tz_name = section.get("timezone")
    try:
        tz = ZoneInfo(tz_name) if tz_name else app.tz
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError("config.timezone", where="scheduler", tz=tz_name) from None
    configured = section.get("jobs", {})
    known = {j.id for j in jobs}
    unknown = set(configured) - known
    if unknown:
        raise ConfigError("schedule.unknown_jobs", unknown=sorted(unknown), known=sorted(known))
    out: dict[str, tuple[JobSpec, Schedule]] = {}
    for job in jobs:
        text = configured.get(job.id, job.default)
        parsed = parse_spec(text, tz, f"[scheduler.jobs] {job.id}")
        if parsed is not None:
            out[job.id] = (job, parsed)
    return out


def resolve(target: str) -> Callable[..., Any]:
    module, _, name = target.partition(":")
    if not module or not name:
        raise ConfigError("schedule.target_form", target=target)
    fn = getattr(importlib.import_module(module), name, None)
    if not callable(fn):
        raise ConfigError("schedule.no_function", target=target)
    return fn


def run_job(
    app: App,
    job: JobSpec,
    should_stop: Callable[[], bool] = lambda: False,
    now: Callable[[], datetime] | None = None,
) -> Any:
    """Run one job now (what the scheduler calls); errors are logged, and the next run retries.
    The time is the App's clock unless `now` is given."""
    now = now or app.clock
    fn = resolve(job.target)
    started = now()
    try:
        kwargs = {"should_stop": should_stop} if job.stoppable else {}
        result = fn(app, started, **kwargs)
    except Exception:
        log.exception("job %s failed; it runs again at its next time", job.id)
        return None
    took = (now() - started).total_seconds()
    log.info("job %s done in %.2fs: %s", job.id, took, result)
    return result


def build_scheduler(
    app: App,
    *,
    background: bool = False,
    stopping: threading.Event | None = None,
    jobs: Sequence[JobSpec] = (),
) -> BaseScheduler:
    """A scheduler (not started) in UTC with every configured job; `background=True` gives a
    BackgroundScheduler for the one process that may own it (never one per web worker)."""
    cls = BackgroundScheduler if background else BlockingScheduler
    sched: BaseScheduler = cls(timezone=UTC)
    register_jobs(sched, app, stopping=stopping, jobs=jobs)
    return sched


def register_jobs(
    sched: BaseScheduler,
    app: App,
    *,
    stopping: threading.Event | None = None,
    jobs: Sequence[JobSpec] = (),
) -> list[str]:
    """Add (or replace, by their fixed ids) the configured jobs: one instance of each at a
    time, late runs coalesced into one, a run up to one interval late still taken."""
    stop = stopping or threading.Event()
    added = []
    for job_id, (job, schedule) in schedules(app, jobs).items():
        sched.add_job(
            run_job,
            trigger=schedule.trigger,
            args=(app, job, stop.is_set),
            id=job_id,
            name=job.help,
            replace_existing=True,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=schedule.grace_seconds,
            **({"next_run_time": app.now()} if schedule.run_at_start else {}),
        )
        added.append(job_id)
    return added


def run_forever(app: App, echo: Callable[[str], None] = print) -> int:
    """`closeloop scheduler`: run the jobs in the foreground until SIGTERM or Ctrl-C, then let a
    running job finish (a sweep stops after its current batch) and return 0."""
    stopping = threading.Event()
    sched = build_scheduler(app, background=False, stopping=stopping)
    stopper: list[threading.Thread] = []

    def on_signal(signum: int, _frame: object) -> None:
        if stopping.is_set():
            return
        stopping.set()
        echo(f"{signal.Signals(signum).name}: finishing the running job, then stopping")
        # shutdown() waits for running jobs; not from inside the signal handler.
        t = threading.Thread(target=sched.shutdown, kwargs={"wait": True}, daemon=False)
        stopper.append(t)
        t.start()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for job in sched.get_jobs():
            echo(f"job {job.id}: {job.trigger} ({job.name})")
        echo("scheduler running; Ctrl-C or SIGTERM stops it")
        sched.start()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    for t in stopper:
        t.join()
    echo("scheduler stopped")
    return 0


def describe(app: App) -> list[dict[str, Any]]:
    """The configured job table, for `closeloop scheduler --list`."""
    return [
        {"id": job_id, "target": job.target, "trigger": schedule.text, "help": job.help}
        for job_id, (job, schedule) in schedules(app).items()
    ]
