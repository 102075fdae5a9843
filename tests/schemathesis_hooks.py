"""Hooks for the schemathesis command line run by tests/test_api_schema_checks.py.

A client sends a fresh Idempotency-Key for each operation (a UUID, as the header's description
asks); generated keys repeat across unrelated requests, which the server rightly refuses (422).
"""

from __future__ import annotations

import uuid
from typing import Any

import schemathesis


@schemathesis.hook
def before_call(ctx: Any, case: Any, **kwargs: Any) -> None:
    if case.headers and "Idempotency-Key" in case.headers:
        case.headers["Idempotency-Key"] = uuid.uuid4().hex
