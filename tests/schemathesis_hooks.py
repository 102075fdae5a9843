"""Hooks for the schemathesis command line run by tests/test_api_schema_checks.py: a client's
habits the schema cannot state, applied to generated requests that are valid by the schema.

- A client sends a fresh Idempotency-Key for each operation (a UUID, as the header's description
  asks); generated keys repeat across unrelated requests, which the server rightly refuses (422).
- Times a step takes are relative to the server's clock and to the ticket, which no JSON Schema
  can say: `at` (when it happened) lies between the ticket's last change and now, `review_on`
  (defer) in the future, `until` (request_extension) after the current deadline. A valid case
  gets `at` = now and later and later future times (the clock is the test's fixed NOW, in
  CLOSELOOP_SCHEMA_NOW). What the server answers to other times is held by
  tests/test_extensions.py and tests/test_loop.py.

A case generated to be invalid is sent as generated: rewriting it would make schemathesis take
it for a valid one (e.g. "missing Authorization", which must be 401).
"""

from __future__ import annotations

import itertools
import os
import uuid
from datetime import datetime, timedelta
from typing import Any

import schemathesis

NOW = datetime.fromisoformat(os.environ["CLOSELOOP_SCHEMA_NOW"])
LATER = itertools.count(1)


@schemathesis.hook
def before_call(ctx: Any, case: Any, **kwargs: Any) -> None:
    if case.meta is not None and case.meta.generation.mode.is_negative:
        return
    if case.headers and "Idempotency-Key" in case.headers:
        case.headers["Idempotency-Key"] = uuid.uuid4().hex
    if "/steps/" in case.path and isinstance(case.body, dict):
        if "at" in case.body:
            case.body["at"] = NOW.isoformat()
        for name in ("until", "review_on"):
            if name in case.body:
                later = NOW + timedelta(days=400, minutes=next(LATER))
                case.body[name] = later.isoformat()
