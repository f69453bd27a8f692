"""Queues and their members: configurations, membership, and the checks a queue change needs."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiosqlite

from callcenterd.domain.clock import from_iso, to_iso
from callcenterd.domain.queues import (
    Member,
    OverflowAction,
    Presence,
    QueueConfig,
    Strategy,
)
from callcenterd.domain.users import OperatorStatus
from callcenterd.store.db import Database, fetch_all_in, insert_sql, marks, set_sql

_QUEUE_COLUMNS = (
    "id, name, description, asterisk_name, max_wait_time, priority, strategy, is_active,"
    " numbers, required_skills, is_default, ring_timeout, retry_delay, wrapup_seconds,"
    " join_empty, overflow_action, overflow_queue_id, music_class, greeting, announce_every,"
    " announce_wait, last_operator_wait, callback_enabled, callback_offer_after,"
    " sms_missed_call, sms_callback_scheduled, sms_callback_reminder, notification_language,"
    " created_at, updated_at"
)


@dataclass(frozen=True, slots=True)
class QueueMember:
    operator_id: str
    extension: str
    name: str
    penalty: int
    position: int
    status: OperatorStatus
    presence: Presence


@dataclass(frozen=True, slots=True)
class StoredQueue:
    """A queue as stored: its routing configuration plus what only people read."""

    config: QueueConfig
    description: str
    members: tuple[QueueMember, ...]
    created_at: datetime
    updated_at: datetime

    @property
    def id(self) -> str:
        return self.config.id


def _member(row: sqlite3.Row) -> QueueMember:
    return QueueMember(
        operator_id=row["operator_id"],
        extension=row["extension"],
        name=row["name"],
        penalty=row["penalty"],
        position=row["position"],
        status=OperatorStatus(row["status"]),
        presence=Presence(row["presence"]),
    )


def _queue(row: sqlite3.Row, members: Sequence[QueueMember]) -> StoredQueue:
    config = QueueConfig(
        id=row["id"],
        name=row["name"],
        asterisk_name=row["asterisk_name"],
        strategy=Strategy(row["strategy"]),
        priority=row["priority"],
        members=tuple(Member(m.operator_id, m.penalty) for m in members),
        required_skills=frozenset(json.loads(row["required_skills"])),
        numbers=tuple(json.loads(row["numbers"])),
        is_default=bool(row["is_default"]),
        is_active=bool(row["is_active"]),
        max_wait_time=float(row["max_wait_time"]),
        ring_timeout=float(row["ring_timeout"]),
        retry_delay=float(row["retry_delay"]),
        wrapup_seconds=float(row["wrapup_seconds"]),
        join_empty=bool(row["join_empty"]),
        overflow_action=OverflowAction(row["overflow_action"]),
        overflow_queue_id=row["overflow_queue_id"],
        music_class=row["music_class"],
        greeting=row["greeting"],
        announce_every=float(row["announce_every"]),
        announce_wait=bool(row["announce_wait"]),
        last_operator_wait=float(row["last_operator_wait"]),
        callback_enabled=None if row["callback_enabled"] is None else bool(row["callback_enabled"]),
        callback_offer_after=float(row["callback_offer_after"]),
        sms_missed_call=bool(row["sms_missed_call"]),
        sms_callback_scheduled=bool(row["sms_callback_scheduled"]),
        sms_callback_reminder=bool(row["sms_callback_reminder"]),
        notification_language=row["notification_language"],
    )
    return StoredQueue(
        config=config,
        description=row["description"],
        members=tuple(members),
        created_at=from_iso(row["created_at"]),
        updated_at=from_iso(row["updated_at"]),
    )


_MEMBERS_SQL = (
    "SELECT m.queue_id, m.operator_id, m.penalty, m.position, o.extension, o.status, o.presence,"
    " u.name FROM queue_members m JOIN operators o ON o.id = m.operator_id"
    " JOIN users u ON u.id = o.user_id WHERE o.deleted_at IS NULL"
)


class QueueRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    # --- reads (the reader connection) ------------------------------------------------------
    async def live_queues(self) -> list[StoredQueue]:
        rows = await self._db.fetch_all(
            f"SELECT {_QUEUE_COLUMNS} FROM queues WHERE deleted_at IS NULL"
            " ORDER BY priority DESC, name COLLATE NOCASE"
        )
        members: dict[str, list[QueueMember]] = {}
        for row in await self._db.fetch_all(
            f"{_MEMBERS_SQL} ORDER BY m.queue_id, m.position, m.operator_id"
        ):
            members.setdefault(row["queue_id"], []).append(_member(row))
        return [_queue(row, members.get(row["id"], [])) for row in rows]

    async def get(self, queue_id: str) -> StoredQueue | None:
        row = await self._db.fetch_one(
            f"SELECT {_QUEUE_COLUMNS} FROM queues WHERE id = ? AND deleted_at IS NULL",
            (queue_id,),
        )
        if row is None:
            return None
        members = await self._db.fetch_all(
            f"{_MEMBERS_SQL} AND m.queue_id = ? ORDER BY m.position, m.operator_id", (queue_id,)
        )
        return _queue(row, [_member(m) for m in members])

    async def open_calls(self) -> dict[str, tuple[int, int]]:
        """Per queue: (answered, incoming) calls now, from the open-calls index."""
        rows = await self._db.fetch_all(
            "SELECT queue_id, status, COUNT(*) AS n FROM calls"
            " WHERE status IN ('incoming', 'answered') AND queue_id IS NOT NULL"
            " GROUP BY queue_id, status"
        )
        counts: dict[str, tuple[int, int]] = {}
        for row in rows:
            answered, incoming = counts.get(row["queue_id"], (0, 0))
            if row["status"] == "answered":
                answered = row["n"]
            else:
                incoming = row["n"]
            counts[row["queue_id"]] = (answered, incoming)
        return counts

    async def configs(self) -> list[QueueConfig]:
        return [queue.config for queue in await self.live_queues()]

    # --- inside a write transaction ---------------------------------------------------------
    @staticmethod
    async def name_taken(conn: aiosqlite.Connection, name: str, except_id: str | None) -> bool:
        rows = await fetch_all_in(
            conn,
            "SELECT 1 FROM queues WHERE name = ? COLLATE NOCASE AND deleted_at IS NULL"
            " AND id IS NOT ?",
            (name, except_id),
        )
        return bool(rows)

    @staticmethod
    async def asterisk_name_taken(
        conn: aiosqlite.Connection, asterisk_name: str, except_id: str | None
    ) -> bool:
        # app_queue compares queue names without regard to case.
        rows = await fetch_all_in(
            conn,
            "SELECT 1 FROM queues WHERE asterisk_name = ? COLLATE NOCASE"
            " AND deleted_at IS NULL AND id IS NOT ?",
            (asterisk_name, except_id),
        )
        return bool(rows)

    @staticmethod
    async def numbers_taken(
        conn: aiosqlite.Connection, numbers: Sequence[str], except_id: str | None
    ) -> list[tuple[str, str]]:
        """(number, queue name) for each of `numbers` another live queue already answers."""
        if not numbers:
            return []
        rows = await fetch_all_in(
            conn,
            "SELECT n.value AS number, q.name FROM queues q, json_each(q.numbers) n"
            f" WHERE q.deleted_at IS NULL AND q.id IS NOT ? AND n.value IN ({marks(numbers)})"
            " ORDER BY n.value",
            (except_id, *numbers),
        )
        return [(row["number"], row["name"]) for row in rows]

    @staticmethod
    async def default_queue(conn: aiosqlite.Connection, except_id: str | None) -> str | None:
        """The name of the live default queue other than `except_id`, if any."""
        rows = await fetch_all_in(
            conn,
            "SELECT name FROM queues WHERE is_default = 1 AND deleted_at IS NULL AND id IS NOT ?",
            (except_id,),
        )
        return str(rows[0]["name"]) if rows else None

    @staticmethod
    async def exists(conn: aiosqlite.Connection, queue_id: str) -> bool:
        rows = await fetch_all_in(
            conn, "SELECT 1 FROM queues WHERE id = ? AND deleted_at IS NULL", (queue_id,)
        )
        return bool(rows)

    @staticmethod
    async def overflow_targets(conn: aiosqlite.Connection) -> dict[str, str | None]:
        """Live queue id -> the queue it overflows into (None: it overflows nowhere)."""
        rows = await fetch_all_in(
            conn,
            "SELECT id, CASE WHEN overflow_action = 'queue' THEN overflow_queue_id END AS target"
            " FROM queues WHERE deleted_at IS NULL",
        )
        return {row["id"]: row["target"] for row in rows}

    @staticmethod
    async def overflowing_into(conn: aiosqlite.Connection, queue_id: str) -> list[str]:
        rows = await fetch_all_in(
            conn,
            "SELECT name FROM queues WHERE overflow_queue_id = ? AND overflow_action = 'queue'"
            " AND deleted_at IS NULL AND id != ? ORDER BY name",
            (queue_id, queue_id),
        )
        return [row["name"] for row in rows]

    @staticmethod
    async def waiting_calls(conn: aiosqlite.Connection, queue_id: str) -> int:
        rows = await fetch_all_in(
            conn,
            "SELECT COUNT(*) FROM calls WHERE status = 'incoming' AND queue_id = ?",
            (queue_id,),
        )
        return int(rows[0][0])

    @staticmethod
    async def insert(conn: aiosqlite.Connection, values: Mapping[str, Any]) -> None:
        await conn.execute(*insert_sql("queues", values))

    @staticmethod
    async def update(conn: aiosqlite.Connection, queue_id: str, changes: Mapping[str, Any]) -> None:
        assignments, params = set_sql(changes)
        await conn.execute(f"UPDATE queues SET {assignments} WHERE id = ?", (*params, queue_id))

    @staticmethod
    async def replace_members(
        conn: aiosqlite.Connection, queue_id: str, members: Iterable[Member]
    ) -> None:
        """Set the queue's members, in order (position 0 first)."""
        await conn.execute("DELETE FROM queue_members WHERE queue_id = ?", (queue_id,))
        await conn.executemany(
            "INSERT INTO queue_members (queue_id, operator_id, penalty, position)"
            " VALUES (?, ?, ?, ?)",
            [(queue_id, m.operator_id, m.penalty, i) for i, m in enumerate(members)],
        )

    @staticmethod
    async def soft_delete(conn: aiosqlite.Connection, queue_id: str, at: datetime) -> None:
        """Keep the row for call history; membership and the default flag go."""
        stamp = to_iso(at)
        await conn.execute("DELETE FROM queue_members WHERE queue_id = ?", (queue_id,))
        await conn.execute(
            "UPDATE queues SET deleted_at = ?, updated_at = ?, is_default = 0, is_active = 0"
            " WHERE id = ?",
            (stamp, stamp, queue_id),
        )


async def all_queue_configs(db: Database) -> list[QueueConfig]:
    """Every live queue as the engine needs it: the dispatcher loads these at start."""
    return await QueueRepository(db).configs()
