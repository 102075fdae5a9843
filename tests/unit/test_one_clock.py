"""One clock: the channels closeloop builds read the time from the App's clock, so a test (or
the demo) that moves the App's clock finds that time in what each channel sends: the record of
the file and console channels, an e-mail's Date header, the timestamps signed for DingTalk,
Feishu and the plain JSON webhook. No database: the App's engine is never connected."""

from __future__ import annotations

import dataclasses
import io
import json
import urllib.parse
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest

from closeloop.app import ManualClock
from closeloop.bootstrap import bootstrap
from closeloop.config import load_settings
from closeloop.delivery import make_channels
from notifiers import Message
from notifiers.console import ConsoleChannel
from notifiers.webhook import WebhookChannel, dingtalk_sign, feishu_sign, json_signature

# Far from today, with seconds, so the system clock can never produce it by chance.
THEN = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
SECRET = "robot-secret"


def message(channel: str, address: str) -> Message:
    return Message(
        kind="supervision",
        channel=channel,
        recipient_name="王建国",
        address=address,
        subject="【督办单】EP-2026-000007",
        text="堰头村整改超期",
        html="<p>堰头村整改超期</p>",
        markdown="### 堰头村整改超期",
        idempotency_key="supervision:EP-2026-000007:fix:2:wangjg",
        ticket_ref="EP-2026-000007",
    )


@pytest.fixture
def channels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("CLOSELOOP_TEST_WEBHOOK_SECRET", SECRET)
    settings = load_settings(database_url=f"sqlite:///{tmp_path / 'never.db'}")
    notifiers = dict(settings.section("notifiers"))
    notifiers["file"] = {"path": str(tmp_path / "notices.jsonl")}
    notifiers["email"] = {"host": "smtp.invalid", "sender": "grid@zone.example.cn"}
    notifiers["webhook"] = {"secret_env": "CLOSELOOP_TEST_WEBHOOK_SECRET"}
    settings = dataclasses.replace(settings, raw={**settings.raw, "notifiers": notifiers})
    clock = ManualClock(THEN)
    app = bootstrap(settings, clock=clock)
    built = make_channels(app)
    built["_clock"] = clock
    built["_file"] = tmp_path / "notices.jsonl"
    return built


def test_the_file_channel_records_the_app_s_time(channels: Any) -> None:
    channels["file"].send(message("file", "wangjg"))
    record = json.loads(channels["_file"].read_text(encoding="utf-8"))
    assert datetime.fromisoformat(record["sent_at"]) == THEN


def test_the_console_channel_records_the_app_s_time(channels: Any) -> None:
    console: ConsoleChannel = channels["console"]
    stream = io.StringIO()
    console = dataclasses.replace(console, stream=stream, style="json")
    console.send(message("console", "wangjg"))
    assert datetime.fromisoformat(json.loads(stream.getvalue())["sent_at"]) == THEN
    assert console.clock is channels["_clock"]


def test_an_email_is_dated_by_the_app_s_clock(channels: Any) -> None:
    mail = channels["email"].compose(message("email", "wangjg@yantou.example.cn"))
    assert parsedate_to_datetime(mail["Date"]) == THEN


def test_webhook_signatures_carry_the_app_s_time_and_follow_it(channels: Any) -> None:
    hook: WebhookChannel = channels["webhook"]
    _, url, _, _ = hook.request(message("webhook", "dingtalk+https://oapi.example/robot/send"))
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    ts_ms = int(THEN.timestamp() * 1000)
    assert query["timestamp"] == [str(ts_ms)]
    assert urllib.parse.quote_plus(query["sign"][0]) == dingtalk_sign(SECRET, ts_ms)

    _, _, _, body = hook.request(message("webhook", "feishu+https://open.example/hook/x"))
    payload = json.loads(body)
    ts_s = int(THEN.timestamp())
    assert payload["timestamp"] == str(ts_s) and payload["sign"] == feishu_sign(SECRET, ts_s)

    # Moving the App's clock moves what the channel signs: it reads the clock at each send.
    channels["_clock"].advance(timedelta(minutes=5))
    _, _, headers, body = hook.request(message("webhook", "https://hooks.example/closeloop"))
    later = int((THEN + timedelta(minutes=5)).timestamp())
    assert headers["X-Closeloop-Timestamp"] == str(later)
    assert headers["X-Closeloop-Signature"] == json_signature(SECRET, later, body)
