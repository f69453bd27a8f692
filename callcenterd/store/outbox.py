"""The outbox's rows: enqueued inside the transaction of the fact that caused them."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiosqlite

from callcenterd.domain.clock import from_iso, to_iso
from callcenterd.domain.messages import MessageKind, OutgoingMessage, QueuedMessage
from callcenterd.store.db import Database, marks


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


# --- the worker's and the admins' side ------------------------------------------------------
STATES = ("queued", "sent", "failed", "cancelled")
_COLUMNS = (
    "id, kind, recipient, topic, idempotency_key, content, state, attempts, next_attempt_at,"
    " last_error, last_status_code, created_at, updated_at, sent_at"
)


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """A message with its whole state, as admins see it."""

    id: int
    kind: MessageKind
    recipient: str
    topic: str
    idempotency_key: str
    content: dict[str, Any]
    state: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    last_status_code: int | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None

    def queued(self) -> QueuedMessage:
        return QueuedMessage(
            self.id,
            self.kind,
            self.recipient,
            self.idempotency_key,
            self.content,
            self.topic,
            self.attempts,
            self.created_at,
        )


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """Messages per (state, kind), and when the oldest message waiting to go was created."""

    counts: dict[tuple[str, str], int]
    oldest_waiting: datetime | None


def _row(row: sqlite3.Row) -> OutboxRow:
    return OutboxRow(
        id=row["id"],
        kind=MessageKind(row["kind"]),
        recipient=row["recipient"],
        topic=row["topic"],
        idempotency_key=row["idempotency_key"],
        content=json.loads(row["content"]),
        state=row["state"],
        attempts=row["attempts"],
        next_attempt_at=from_iso(row["next_attempt_at"]),
        last_error=row["last_error"],
        last_status_code=row["last_status_code"],
        created_at=from_iso(row["created_at"]),
        updated_at=from_iso(row["updated_at"]),
        sent_at=from_iso(row["sent_at"]) if row["sent_at"] else None,
    )


def _filters(state: str | None, kind: str | None, recipient: str | None) -> tuple[str, list[Any]]:
    clauses, params = [], []
    for column, value in (("state", state), ("kind", kind), ("recipient", recipient)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


class OutboxRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    # --- the worker ---------------------------------------------------------------------------
    async def due(
        self, now: datetime, limit: int, in_flight: Collection[int]
    ) -> list[QueuedMessage]:
        """Queued messages whose time has come, oldest due first, except those being sent."""
        skip = sorted(in_flight)
        rows = await self._db.fetch_all(
            f"SELECT {_COLUMNS} FROM outbox WHERE state = 'queued' AND next_attempt_at <= ?"
            f" AND id NOT IN ({marks(skip)}) ORDER BY next_attempt_at, id LIMIT ?",
            (to_iso(now), *skip, limit),
        )
        return [_row(row).queued() for row in rows]

    async def next_due_at(self, in_flight: Collection[int]) -> datetime | None:
        """When the next queued message not being sent is due (the worker sleeps until then)."""
        skip = sorted(in_flight)
        value = await self._db.fetch_value(
            "SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'queued'"
            f" AND id NOT IN ({marks(skip)})",
            skip,
        )
        return from_iso(value) if value else None

    async def mark_sent(self, message_id: int, at: datetime, status_code: int | None) -> bool:
        """The far end accepted it. Also from `cancelled`: it went, whatever was asked since."""
        stamp = to_iso(at)
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE outbox SET state = 'sent', sent_at = ?, updated_at = ?, attempts ="
                " attempts + 1, last_status_code = ?, last_error = NULL"
                " WHERE id = ? AND state IN ('queued', 'cancelled')",
                (stamp, stamp, status_code, message_id),
            )
            return cursor.rowcount > 0

    async def schedule_retry(
        self,
        message_id: int,
        at: datetime,
        next_attempt_at: datetime,
        error: str,
        status_code: int | None,
    ) -> bool:
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?,"
                " last_status_code = ?, updated_at = ? WHERE id = ? AND state = 'queued'",
                (to_iso(next_attempt_at), error, status_code, to_iso(at), message_id),
            )
            return cursor.rowcount > 0

    @staticmethod
    async def mark_failed_in(
        conn: aiosqlite.Connection,
        message_id: int,
        at: datetime,
        error: str,
        status_code: int | None,
    ) -> bool:
        """Finally failed, in the caller's transaction (which may enqueue what that causes)."""
        cursor = await conn.execute(
            "UPDATE outbox SET state = 'failed', attempts = attempts + 1, last_error = ?,"
            " last_status_code = ?, updated_at = ? WHERE id = ? AND state = 'queued'",
            (error, status_code, to_iso(at), message_id),
        )
        return cursor.rowcount > 0

    # --- admins ---------------------------------------------------------------------------------
    async def page(
        self,
        *,
        state: str | None = None,
        kind: str | None = None,
        recipient: str | None = None,
        skip: int = 0,
        limit: int = 50,
    ) -> tuple[list[OutboxRow], int]:
        """Newest first, and how many match in all."""
        where, params = _filters(state, kind, recipient)
        rows = await self._db.fetch_all(
            f"SELECT {_COLUMNS} FROM outbox{where} ORDER BY id DESC LIMIT ? OFFSET ?",
            (*params, limit, skip),
        )
        total = await self._db.fetch_value(f"SELECT COUNT(*) FROM outbox{where}", params)
        return [_row(row) for row in rows], int(total)

    async def get(self, message_id: int) -> OutboxRow | None:
        row = await self._db.fetch_one(f"SELECT {_COLUMNS} FROM outbox WHERE id = ?", (message_id,))
        return _row(row) if row else None

    async def by_key(self, idempotency_key: str) -> OutboxRow | None:
        row = await self._db.fetch_one(
            f"SELECT {_COLUMNS} FROM outbox WHERE idempotency_key = ?", (idempotency_key,)
        )
        return _row(row) if row else None

    @staticmethod
    async def requeue_in(
        conn: aiosqlite.Connection, message_id: int, at: datetime, from_states: Sequence[str]
    ) -> bool:
        """Queue again, due now, with a fresh count of tries (the admin asked for a new round;
        the last error and answer code stay until the next try replaces them)."""
        cursor = await conn.execute(
            "UPDATE outbox SET state = 'queued', attempts = 0, next_attempt_at = ?, sent_at = NULL,"
            f" updated_at = ? WHERE id = ? AND state IN ({marks(from_states)})",
            (to_iso(at), to_iso(at), message_id, *from_states),
        )
        return cursor.rowcount > 0

    @staticmethod
    async def cancel_in(
        conn: aiosqlite.Connection, message_id: int, at: datetime, reason: str | None = None
    ) -> bool:
        cursor = await conn.execute(
            "UPDATE outbox SET state = 'cancelled', updated_at = ?,"
            " last_error = COALESCE(?, last_error) WHERE id = ? AND state = 'queued'",
            (to_iso(at), reason, message_id),
        )
        return cursor.rowcount > 0

    @staticmethod
    async def cancel_recipient_in(
        conn: aiosqlite.Connection, kind: MessageKind, recipient: str, at: datetime, reason: str
    ) -> int:
        """Every queued message to one recipient (a webhook deleted or switched off)."""
        cursor = await conn.execute(
            "UPDATE outbox SET state = 'cancelled', updated_at = ?, last_error = ?"
            " WHERE kind = ? AND recipient = ? AND state = 'queued'",
            (to_iso(at), reason, kind.value, recipient),
        )
        return cursor.rowcount

    async def stats(self, now: datetime) -> OutboxStats:
        rows = await self._db.fetch_all(
            "SELECT state, kind, COUNT(*) AS n FROM outbox GROUP BY state, kind"
        )
        # A message not tried yet whose time has not come (a reminder for later) is not
        # waiting: it does not count as the oldest.
        oldest = await self._db.fetch_value(
            "SELECT MIN(created_at) FROM outbox WHERE state = 'queued'"
            " AND (attempts > 0 OR next_attempt_at <= ?)",
            (to_iso(now),),
        )
        return OutboxStats(
            {(row["state"], row["kind"]): int(row["n"]) for row in rows},
            from_iso(oldest) if oldest else None,
        )
