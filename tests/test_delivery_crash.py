"""Deliverers as real processes: several at once never send a notice twice; one killed with
SIGKILL in the middle of a batch loses nothing and repeats at most one notice (the one in flight,
sent and not yet marked), with the same idempotency key. On SQLite and PostgreSQL.

The receiver is a real HTTP server in the test process that counts what arrives by its
Idempotency-Key header.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from closeloop import delivery, service
from closeloop.app import App
from closeloop.models import notifications
from notifiers.webhook import WebhookChannel
from tests.conftest import CONFIG, NOW
from tests.notify_support import (  # noqa: F401  (fixtures)
    Receiver,
    add_notices,
    napp,
    receiver,
    set_person,
    statuses,
)

pytestmark = pytest.mark.slow

# A deliverer process: waits for the go file, then delivers what is due (once) or runs the
# delivery loop until killed, posting to the webhook channel.
SCRIPT = """
import json, sys, time
from datetime import UTC, datetime
from pathlib import Path
from closeloop import delivery
from closeloop.bootstrap import bootstrap
from closeloop.config import load_settings
from notifiers.webhook import WebhookChannel

config, url, mode, batch, go = sys.argv[1:6]
app = bootstrap(load_settings(Path(config), url))
channels = {"webhook": WebhookChannel(timeout=30, trust_env=False)}
deadline = time.monotonic() + 60
while not Path(go).exists() and time.monotonic() < deadline:
    time.sleep(0.01)
if mode == "once":
    report = delivery.deliver_due(app, datetime.now(UTC), batch=int(batch), channels=channels)
else:
    report = delivery.run(app, batch=int(batch), channels=channels)
print(json.dumps(report.as_dict()), flush=True)
"""

PILE = service.NewProblem(grid="JS-A1-V01-G03", category="random_piling", title="河边垃圾堆")
Make = Callable[..., Receiver]


def start_deliverers(app: App, count: int, mode: str, batch: int, go: Path) -> list[Any]:
    url = app.engine.url.render_as_string(hide_password=False)
    return [
        subprocess.Popen(
            [sys.executable, "-c", SCRIPT, str(CONFIG), url, mode, str(batch), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=CONFIG.parent,
        )
        for _ in range(count)
    ]


def wait_for(condition: Callable[[], bool], seconds: float = 60) -> None:
    """Poll a real process's progress, bounded: the only waiting these tests do."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("gave up waiting")
        time.sleep(0.02)


def prepared(app: App, hook: Receiver, extra: int) -> list[str]:
    set_person(app, "yantou.g3", channels="webhook", webhook=f"{hook.base}/hook")
    ref = service.submit(app, PILE, NOW)
    add_notices(app, ref, extra, handle="yantou.g3", channel="webhook")
    with app.engine.connect() as conn:
        return list(conn.execute(select(notifications.c.idempotency_key)).scalars())


def test_deliverer_processes_never_send_a_notice_twice(
    napp: App,  # noqa: F811
    receiver: Make,  # noqa: F811
    tmp_path: Path,
) -> None:
    hook = receiver(delay=0.002)
    keys = prepared(napp, hook, 199)
    go = tmp_path / "go"
    procs = start_deliverers(napp, 4, "once", 10, go)
    go.touch()
    reports = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        reports.append(json.loads(out.strip().splitlines()[-1]))
    counts = hook.keys()
    assert set(counts) == set(keys)
    assert set(counts.values()) == {1}
    assert sum(r["sent"] for r in reports) == 200
    assert sum(1 for r in reports if r["sent"]) > 1  # they shared the work
    assert statuses(napp) == Counter({"sent": 200})


def test_a_deliverer_killed_mid_batch_loses_nothing_and_repeats_only_the_send_in_flight(
    napp: App,  # noqa: F811
    receiver: Make,  # noqa: F811
    tmp_path: Path,
) -> None:
    # The receiver records every request and holds the 16th and later ones open: the
    # deliverer has sent batch 1 (10 notices, marked) and 6 of batch 2 when it is killed, the
    # first 5 of them answered and marked, the 6th received and never answered.
    hook = receiver(hold_after=15)
    keys = prepared(napp, hook, 59)
    go = tmp_path / "go"
    [proc] = start_deliverers(napp, 1, "loop", 10, go)
    go.touch()
    wait_for(lambda: len(hook.seen) >= 16)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    hook.gate.set()
    wait_for(lambda: hook.active == 0)

    received = hook.keys()
    with napp.engine.connect() as conn:
        left = {
            r.idempotency_key: r
            for r in conn.execute(select(notifications).where(notifications.c.status == "sending"))
        }
    assert len(received) == 16
    assert len(left) == 5  # the send in flight and the 4 untried rows of batch 2
    sent_unmarked = set(left) & set(received)
    assert len(sent_unmarked) == 1
    assert statuses(napp) == Counter({"sent": 15, "sending": 5, "pending": 40})

    # Restarted before the lease ends, a deliverer leaves the dead one's batch alone ...
    lease = delivery.policy(napp).lease
    channel = WebhookChannel(timeout=5, trust_env=False)
    try:
        early = delivery.deliver_due(napp, datetime.now(UTC), channels={"webhook": channel})
        assert early.sent == 40
        assert statuses(napp) == Counter({"sent": 55, "sending": 5})
        # ... and after it, takes that batch over.
        later = datetime.now(UTC) + lease + timedelta(seconds=1)
        late = delivery.deliver_due(napp, later, channels={"webhook": channel})
    finally:
        channel.close()
    assert late.sent == 5
    assert statuses(napp) == Counter({"sent": 60})

    counts = hook.keys()
    assert set(counts) == set(keys)  # every notice arrived
    assert max(counts.values()) == 2  # none more than twice
    twice = {k for k, n in counts.items() if n == 2}
    assert twice == sent_unmarked  # only the one sent and not marked when it died
    for key in twice:
        first, second = [r for r in hook.seen if r.key == key]
        a, b = first.json(), second.json()
        assert a["idempotency_key"] == b["idempotency_key"] == key
        assert (a["kind"], a["ticket_ref"], a["recipient_name"]) == (
            b["kind"],
            b["ticket_ref"],
            b["recipient_name"],
        )
    with napp.engine.connect() as conn:
        attempts = dict(
            conn.execute(select(notifications.c.idempotency_key, notifications.c.attempts)).all()
        )
    assert {attempts[k] for k in left} == {2}
    assert {attempts[k] for k in set(keys) - set(left)} == {1}


@pytest.mark.parametrize("sends", [1, 30, 80])
def test_a_deliverer_killed_after_n_sends_repeats_at_most_one_notice(
    napp: App,  # noqa: F811
    receiver: Make,  # noqa: F811
    tmp_path: Path,
    sends: int,
) -> None:
    # A receiver that answers in 5 ms, nothing held: the kill lands wherever the deliverer is
    # once N posts have arrived (sending, marking, claiming or rendering), in batches of 100.
    hook = receiver(delay=0.005)
    keys = prepared(napp, hook, 149)
    go = tmp_path / "go"
    [proc] = start_deliverers(napp, 1, "loop", 100, go)
    go.touch()
    wait_for(lambda: len(hook.seen) >= sends)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    wait_for(lambda: hook.active == 0)
    before = hook.keys()
    assert len(before) >= sends
    with napp.engine.connect() as conn:
        unmarked = set(
            conn.execute(
                select(notifications.c.idempotency_key).where(notifications.c.status == "sending")
            ).scalars()
        )
    assert len(unmarked & set(before)) <= 1  # at most the send in flight was not marked

    # Another deliverer, once the dead one's lease has run out, sends everything left.
    lease = delivery.policy(napp).lease
    channel = WebhookChannel(timeout=5, trust_env=False)
    try:
        later = datetime.now(UTC) + lease + timedelta(seconds=1)
        delivery.deliver_due(napp, later, channels={"webhook": channel})
    finally:
        channel.close()
    assert statuses(napp) == Counter({"sent": 150})
    counts = hook.keys()
    assert set(counts) == set(keys)  # every notice arrived
    twice = [k for k, n in counts.items() if n > 1]
    assert len(twice) <= 1, f"{len(twice)} notices delivered more than once"
    assert all(counts[k] == 2 for k in twice)
    assert set(twice) <= unmarked & set(before)
