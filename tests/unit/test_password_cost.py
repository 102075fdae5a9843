"""Tests hash passwords cheaply; production does not."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from closeloop.web import auth


def test_the_tests_hash_at_the_lowest_cost() -> None:
    assert auth._hasher.time_cost == 1 and auth._hasher.memory_cost == 8
    stored = auth.hash_password("pass-word-123")
    assert stored.startswith("$argon2id$v=19$m=8,t=1,p=1$")


def test_production_hashes_at_argon2_cffi_s_default_cost(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLOSELOOP_PASSWORD_HASH", raising=False)
    hasher = auth._password_hasher()
    default = PasswordHasher()
    assert (hasher.time_cost, hasher.memory_cost) == (default.time_cost, default.memory_cost)
    assert default.memory_cost >= 65536
    # a hash made at the tests' cost is rehashed at a production login
    assert hasher.check_needs_rehash(auth.hash_password("pass-word-123"))
