"""The outbox's rows: enqueued inside the transaction of the fact that caused them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta

import aiosqlite

from callcenterd.domain.clock import to_iso
from callcenterd.domain.messages import OutgoingMessage


async def enqueue_in(
    conn: aiosqlite.Connection, messages: Sequence[OutgoingMessage], at: datetime
) -> int:
    """Queue `messages` in the caller's transaction; the number actually queued.

    A message whose idempotency key is already in the outbox is skipped (the same fact
    written twice, say after a restart), and so is one inside its throttle window.
    """
    queued = 0
    for message in messages:
        if message.throttle_seconds and await _recently_sent_to(conn, message, at):
            continue
        cursor = await conn.execute(
            "INSERT OR IGNORE INTO outbox (kind, recipient, topic, idempotency_key, content,"
            " next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                message.kind.value,
                message.recipient,
                message.topic,
                message.idempotency_key,
                json.dumps(message.content, ensure_ascii=False),
                to_iso(message.not_before or at),
                to_iso(at),
                to_iso(at),
            ),
        )
        queued += cursor.rowcount
    return queued


async def _recently_sent_to(
    conn: aiosqlite.Connection, message: OutgoingMessage, at: datetime
) -> bool:
    assert message.throttle_seconds is not None
    since = at - timedelta(seconds=message.throttle_seconds)
    async with conn.execute(
        "SELECT 1 FROM outbox WHERE kind = ? AND recipient = ? AND topic = ?"
        " AND created_at > ? AND state != 'cancelled' LIMIT 1",
        (message.kind.value, message.recipient, message.topic, to_iso(since)),
    ) as cursor:
        return await cursor.fetchone() is not None
