"""Call records survive a database that is briefly unavailable (full disk, lock)."""

from __future__ import annotations

import pytest

from callcenterd.errors import DatabaseUnavailable
from callcenterd.services import dispatcher


async def test_a_record_write_is_retried_until_the_database_takes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dispatcher, "RECORD_RETRY_DELAYS", (0.0, 0.0, 0.0))
    attempts: list[int] = []

    async def write() -> None:
        attempts.append(1)
        if len(attempts) < 3:
            raise DatabaseUnavailable("database or disk is full")

    await dispatcher._retrying(write, "call-1")()
    assert len(attempts) == 3


async def test_a_record_write_gives_up_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dispatcher, "RECORD_RETRY_DELAYS", (0.0, 0.0))
    attempts: list[int] = []

    async def write() -> None:
        attempts.append(1)
        raise DatabaseUnavailable("database or disk is full")

    with pytest.raises(DatabaseUnavailable):
        await dispatcher._retrying(write, "call-1")()
    assert len(attempts) == 3
