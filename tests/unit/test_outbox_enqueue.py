"""Enqueueing into the outbox: once per idempotency key, at most once per throttle window."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from callcenterd.domain.messages import MessageKind, OutgoingMessage
from callcenterd.store.db import Database
from callcenterd.store.outbox import enqueue_in

T0 = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(tmp_path / "outbox.sqlite3")
    await database.open()
    await database.migrate()
    yield database
    await database.close()


def sms(key: str, to: str = "+79161234567", throttle: int | None = None) -> OutgoingMessage:
    return OutgoingMessage(
        MessageKind.SMS,
        to,
        key,
        {"text": "Мы пропустили ваш звонок"},
        topic="missed_call",
        throttle_seconds=throttle,
    )


async def test_the_same_key_is_queued_once(db: Database) -> None:
    async with db.transaction() as conn:
        assert await enqueue_in(conn, [sms("call-1:missed"), sms("call-1:missed")], T0) == 1
    rows = await db.fetch_all("SELECT state, content, next_attempt_at FROM outbox")
    assert [(r["state"], r["next_attempt_at"]) for r in rows] == [
        ("queued", "2026-12-07T10:00:00.000000Z")
    ]
    assert "пропустили" in rows[0]["content"]  # stored as UTF-8 text, not escapes


async def test_a_number_gets_one_message_per_window(db: Database) -> None:
    async with db.transaction() as conn:
        assert await enqueue_in(conn, [sms("a", throttle=3600)], T0) == 1
        later = T0 + timedelta(minutes=59)
        assert await enqueue_in(conn, [sms("b", throttle=3600)], later) == 0
        assert await enqueue_in(conn, [sms("c", to="+79160000000", throttle=3600)], later) == 1
        assert await enqueue_in(conn, [sms("d", throttle=3600)], T0 + timedelta(hours=1)) == 1


async def test_nothing_is_queued_when_the_fact_rolls_back(db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with db.transaction() as conn:
            await enqueue_in(conn, [sms("x")], T0)
            raise RuntimeError("the fact's write failed")
    assert await db.fetch_value("SELECT COUNT(*) FROM outbox") == 0
