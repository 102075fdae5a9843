"""One way to log: ISO 8601 times with the zone's offset, one line per delivery batch and per
job run; `serve` says why a web worker went; the web settings that keep workers alive."""

from __future__ import annotations

import logging
import re
import signal
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from closeloop import delivery, logs, scheduler, service
from closeloop.app import App
from closeloop.config import ConfigError
from closeloop.web.serve import why_gone
from closeloop.web.settings import WebSettings
from notifiers.webhook import WebhookChannel
from tests.notify_support import add_notices, napp, receiver, set_person  # noqa: F401
from tests.webtools import with_config

ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d"


def record(message: str, when: datetime) -> logging.LogRecord:
    r = logging.LogRecord("closeloop.test", logging.INFO, __file__, 1, message, None, None)
    r.created = when.timestamp()
    return r


def test_lines_carry_iso_8601_times_with_the_zones_offset() -> None:
    when = datetime(2026, 4, 1, 1, 0, 0, 125000, tzinfo=UTC)
    zoned = logs.IsoFormatter(tz=ZoneInfo("Asia/Shanghai")).format(record("hello", when))
    assert zoned == "2026-04-01T09:00:00.125+08:00 INFO closeloop.test: hello"
    by_name = logs.IsoFormatter(tz="Asia/Shanghai").format(record("hello", when))
    assert by_name == zoned
    assert logs.IsoFormatter().format(record("x", when)).startswith("2026-04-01T01:00:00.125+00:00")
    # uvicorn's lines are made by the same formatter (its dictConfig names it by path).
    config = logs.uvicorn_config(ZoneInfo("Asia/Shanghai"))
    assert config["formatters"]["iso"] == {
        "()": "closeloop.logs.IsoFormatter",
        "tz": "Asia/Shanghai",
    }
    assert re.fullmatch(ISO, logs.iso_now(ZoneInfo("Asia/Shanghai")))


def test_one_line_per_delivery_batch(
    napp: App,  # noqa: F811
    receiver,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    hook = receiver()
    set_person(napp, "yantou.g3", channels="webhook", webhook=f"{hook.base}/hook")
    ref = service.submit(
        napp,
        service.NewProblem(grid="JS-A1-V01-G03", category="random_piling", title="河边垃圾堆"),
        datetime(2026, 4, 1, 1, 0, tzinfo=UTC),
    )
    add_notices(napp, ref, 24, handle="yantou.g3", channel="webhook")
    caplog.set_level(logging.INFO, logger="closeloop.delivery")
    channel = WebhookChannel(timeout=5, trust_env=False)
    try:
        report = delivery.deliver_due(
            napp, datetime.now(UTC), batch=10, channels={"webhook": channel}
        )
    finally:
        channel.close()
    assert report.sent == 25
    lines = [r.getMessage() for r in caplog.records if r.name == "closeloop.delivery"]
    assert len(lines) == 3  # batches of 10, 10 and 5
    assert re.fullmatch(
        r"batch of 10 in \d+\.\d\ds: 10 sent, 0 to retry, 0 dead, 0 left for later", lines[0]
    )
    assert lines[2].startswith("batch of 5 in ") and ": 5 sent," in lines[2]


def test_one_line_per_job_run(app: App, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="closeloop.scheduler")
    job = next(j for j in scheduler.JOBS if j.id == "sweep")
    scheduler.run_job(app, job, now=lambda: datetime(2026, 4, 1, 1, 0, tzinfo=UTC))
    lines = [r.getMessage() for r in caplog.records if r.name == "closeloop.scheduler"]
    assert len(lines) == 1 and lines[0].startswith("job sweep done in ")


def test_serve_says_why_a_worker_went() -> None:
    assert (
        why_gone(42, -signal.SIGKILL, False, 30) == "web worker 42 was killed by SIGKILL; replaced"
    )
    assert why_gone(42, 3, False, 30) == "web worker 42 exited with status 3; replaced"
    hung = why_gone(42, -signal.SIGKILL, True, 30)
    assert "did not answer the health check within 30 s" in hung
    assert "worker_healthcheck_seconds" in hung


def test_worker_timeouts_come_from_config_with_sensible_defaults(app: App) -> None:
    cfg = WebSettings.from_settings(app.settings)
    assert (cfg.worker_healthcheck_seconds, cfg.graceful_shutdown_seconds) == (30, 30)
    assert cfg.idempotency_hours == 24
    changed = with_config(app, "web", worker_healthcheck_seconds=60, graceful_shutdown_seconds=5)
    cfg = WebSettings.from_settings(changed.settings)
    assert (cfg.worker_healthcheck_seconds, cfg.graceful_shutdown_seconds) == (60, 5)
    for key, bad in (
        ("worker_healthcheck_seconds", 0),
        ("worker_healthcheck_seconds", 2.5),
        ("graceful_shutdown_seconds", "30"),
        ("idempotency_hours", 12),
    ):
        with pytest.raises(ConfigError, match=key):
            WebSettings.from_settings(with_config(app, "web", **{key: bad}).settings)
