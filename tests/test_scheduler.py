"""The job table, trigger specs and the scheduler process (start, a sweep, SIGTERM/SIGINT)."""

from __future__ import annotations

import logging
import re
import signal
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from closeloop import escalation, scheduler, service
from closeloop.app import App, ManualClock
from closeloop.config import ConfigError
from closeloop.models import escalations
from closeloop.service import NewProblem
from tests.conftest import NOW
from tests.factories import count
from tests.sweep_helpers import copy_sqlite, minimal_config, poll, spawn

CN = ZoneInfo("Asia/Shanghai")


# Job functions for the tests; the scheduler imports them by name (a second copy of this module),
# so they report through their return value.
def record(app: App, now: datetime) -> tuple[Any, ...]:
    return ("record", now)


def record_stoppable(app: App, now: datetime, *, should_stop: Any) -> tuple[Any, ...]:
    return ("stoppable", now, should_stop())


def broken(app: App, now: datetime) -> None:
    raise RuntimeError("the job broke")


def with_jobs(app: App, **jobs: str) -> App:
    raw = {**app.settings.raw, "scheduler": {"jobs": jobs}}
    return replace(app, settings=replace(app.settings, raw=raw))


class TestSpecs:
    def test_every(self) -> None:
        s = scheduler.parse_spec("every 1m", CN)
        assert s is not None and isinstance(s.trigger, IntervalTrigger)
        assert (s.trigger.interval, s.grace_seconds, s.run_at_start) == (
            timedelta(minutes=1),
            60,
            True,
        )
        s = scheduler.parse_spec("EVERY 30s", CN)
        assert s is not None and s.grace_seconds == 30

    def test_daily_weekly_and_cron_run_in_zone_time(self) -> None:
        base = datetime(2026, 4, 1, 12, 0, tzinfo=CN)  # a Wednesday noon
        for text, expected in [
            ("daily 17:30", datetime(2026, 4, 1, 17, 30, tzinfo=CN)),
            ("daily 8:05", datetime(2026, 4, 2, 8, 5, tzinfo=CN)),
            ("weekly mon 08:00", datetime(2026, 4, 6, 8, 0, tzinfo=CN)),
            ("cron 0 8 * * fri", datetime(2026, 4, 3, 8, 0, tzinfo=CN)),
        ]:
            s = scheduler.parse_spec(text, CN)
            assert s is not None and isinstance(s.trigger, CronTrigger)
            assert not s.run_at_start
            assert s.trigger.get_next_fire_time(None, base) == expected, text

    def test_off(self) -> None:
        assert scheduler.parse_spec(" off ", CN) is None

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("every minute", "cannot read 'every minute'"),
            ("every 0s", "shorter than a second"),
            ("daily 25:00", "not a time of day"),
            ("cron 61 * * * *", "cron 61"),
            ("hourly", "cannot read"),
        ],
    )
    def test_bad_specs_name_the_job(self, text: str, message: str) -> None:
        with pytest.raises(ConfigError, match=message) as err:
            scheduler.parse_spec(text, CN, "[scheduler.jobs] sweep")
        assert "[scheduler.jobs] sweep" in str(err.value)


class TestJobTable:
    def test_the_default_table_sweeps_every_minute(self, sqlite_app: App) -> None:
        table = scheduler.schedules(sqlite_app)
        assert next(iter(table)) == "sweep"
        job, schedule = table["sweep"]
        assert job.target == "closeloop.escalation:sweep_job" and job.stoppable
        assert schedule.text == "every 1m"
        assert scheduler.resolve(job.target) is escalation.sweep_job

    def test_config_changes_a_time_or_switches_a_job_off(self, sqlite_app: App) -> None:
        assert scheduler.schedules(with_jobs(sqlite_app, sweep="every 5m"))["sweep"][1].text == (
            "every 5m"
        )
        assert "sweep" not in scheduler.schedules(with_jobs(sqlite_app, sweep="off"))
        with pytest.raises(ConfigError, match=r"unknown job\(s\) \['report'\]"):
            scheduler.schedules(with_jobs(sqlite_app, report="daily 08:00"))

    def test_a_job_is_one_line_in_the_table(self, sqlite_app: App) -> None:
        jobs = [
            *scheduler.JOBS,
            scheduler.JobSpec("record", "tests.test_scheduler:record", "daily 17:30", "test"),
        ]
        app = with_jobs(sqlite_app, record="weekly fri 16:00")
        sched = scheduler.build_scheduler(app, jobs=jobs)
        assert isinstance(sched, BlockingScheduler)
        found = {j.id: j for j in sched.get_jobs()}
        assert {"sweep", "record"} <= set(found)
        assert "fri" in str(found["record"].trigger)

    def test_jobs_are_registered_with_fixed_ids_one_at_a_time_coalesced(
        self, sqlite_app: App
    ) -> None:
        sched = scheduler.build_scheduler(sqlite_app, background=True)
        assert isinstance(sched, BackgroundScheduler)
        job = sched.get_job("sweep")
        assert (job.id, job.coalesce, job.max_instances, job.misfire_grace_time) == (
            "sweep",
            True,
            1,
            60,
        )
        assert job.func is scheduler.run_job
        assert job.args[1] is next(j for j in scheduler.JOBS if j.id == "sweep")
        # Registering again at the next start replaces the job instead of adding a twin.
        sched.start(paused=True)
        try:
            assert "sweep" in scheduler.register_jobs(sched, sqlite_app)
            assert [j.id for j in sched.get_jobs()].count("sweep") == 1
            first = sched.get_job("sweep").next_run_time
            assert first is not None and first.utcoffset() == timedelta(0)
        finally:
            sched.shutdown(wait=False)

    def test_run_job_passes_now_and_the_stop_flag(self, sqlite_app: App) -> None:
        plain = scheduler.JobSpec("r", "tests.test_scheduler:record", "every 1m", "t")
        stoppable = scheduler.JobSpec(
            "s", "tests.test_scheduler:record_stoppable", "every 1m", "t", stoppable=True
        )
        assert scheduler.run_job(sqlite_app, plain, now=lambda: NOW) == ("record", NOW)
        assert scheduler.run_job(
            sqlite_app, stoppable, should_stop=lambda: True, now=lambda: NOW
        ) == ("stoppable", NOW, True)

    def test_run_job_reads_the_app_s_clock(self, sqlite_app: App) -> None:
        plain = scheduler.JobSpec("r", "tests.test_scheduler:record", "every 1m", "t")
        later = NOW + timedelta(days=3)
        on_a_clock = replace(sqlite_app, clock=ManualClock(later))
        assert scheduler.run_job(on_a_clock, plain) == ("record", later)

    def test_a_failing_job_is_logged_and_the_scheduler_goes_on(
        self, sqlite_app: App, caplog: pytest.LogCaptureFixture
    ) -> None:
        job = scheduler.JobSpec("b", "tests.test_scheduler:broken", "every 1m", "t")
        with caplog.at_level(logging.ERROR, "closeloop.scheduler"):
            assert scheduler.run_job(sqlite_app, job) is None
        assert "job b failed" in caplog.text and "the job broke" in caplog.text

    def test_bad_targets(self) -> None:
        with pytest.raises(ConfigError, match="must look like"):
            scheduler.resolve("closeloop.escalation.sweep_job")
        with pytest.raises(ConfigError, match="no such function"):
            scheduler.resolve("closeloop.escalation:nothing_here")


def test_the_sweep_job_stops_between_batches(sqlite_app: App) -> None:
    for _ in range(7):
        service.submit(
            sqlite_app, NewProblem(grid="JS-A1-V01-G03", category="random_piling", title="x"), NOW
        )
    later = NOW + timedelta(days=1, hours=1)
    stop = escalation.sweep(sqlite_app, later, batch=2, should_stop=lambda: True)
    assert stop.tickets_checked == 2
    rest = escalation.sweep(sqlite_app, later, batch=2)
    assert rest.tickets_checked == 5  # nothing lost: the rest was still due
    assert count(sqlite_app, escalations) == 7


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_scheduler_process_sweeps_and_stops_cleanly_on_a_signal(
    sqlite_template: Path, tmp_path: Path, signum: signal.Signals
) -> None:
    from closeloop.bootstrap import bootstrap
    from closeloop.config import load_settings

    url = copy_sqlite(sqlite_template, tmp_path / "sched.db")
    # only the sweep: the other jobs of the table are switched off for this test
    jobs = {j.id: "off" for j in scheduler.JOBS} | {"sweep": "every 1s"}
    config = minimal_config(tmp_path, url, jobs)
    app = bootstrap(load_settings(config))
    real_now = datetime.now(UTC)
    service.submit(
        app,
        NewProblem(grid="JS-A1-V01-G03", category="random_parking", title="p"),
        real_now - timedelta(hours=3),  # 2 h to fix: one hour late now
    )
    proc = spawn(config, "scheduler")
    try:
        assert poll(lambda: count(app, escalations) == 1, limit=60), proc.stderr
        proc.send_signal(signum)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "job sweep" in err and "scheduler stopped" in err
    # Its log lines in the one format: ISO 8601 in the zone's time, with its offset.
    runs = [line for line in err.splitlines() if "job sweep done in" in line]
    assert runs and all(
        re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+08:00 INFO closeloop\.scheduler: ", line)
        for line in runs
    ), runs
    assert signal.Signals(signum).name in err
    assert count(app, escalations) == 1
    app.engine.dispose()
