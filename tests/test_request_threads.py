"""`[web] request_threads`: how many requests a web process works on at once in its threads."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from anyio import to_thread
from starlette.testclient import TestClient

from closeloop.app import App
from closeloop.config import ConfigError
from closeloop.web.app import create_app
from closeloop.web.settings import WebSettings


def with_web(app: App, **web: Any) -> App:
    raw = dict(app.settings.raw)
    raw["web"] = {**raw.get("web", {}), **web}
    return dataclasses.replace(app, settings=dataclasses.replace(app.settings, raw=raw))


def tokens_while_serving(app: App) -> int:
    with TestClient(create_app(app)) as client:
        assert client.get("/healthz").status_code == 200
        limiter = client.portal.call(to_thread.current_default_thread_limiter)
        return int(limiter.total_tokens)


def test_the_process_serves_as_many_requests_at_once_as_configured(sqlite_app: App) -> None:
    assert tokens_while_serving(sqlite_app) == 3  # the default, where anyio's own is 40
    assert tokens_while_serving(with_web(sqlite_app, request_threads=5)) == 5


@pytest.mark.parametrize("value", [0, -2, 2.5, True, "8"])
def test_a_request_threads_that_is_not_a_whole_number_is_refused(
    sqlite_app: App, value: Any
) -> None:
    with pytest.raises(ConfigError) as refused:
        WebSettings.from_settings(with_web(sqlite_app, request_threads=value).settings)
    assert str(refused.value) == (
        f"[web] request_threads must be a whole number of at least 1, not {value!r}"
    )
    assert refused.value.text("zh_CN") == f"[web] request_threads 必须是正整数，不能是 {value!r}。"
