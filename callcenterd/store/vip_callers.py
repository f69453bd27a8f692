"""VIP callers: numbers whose calls get a priority."""

from __future__ import annotations

import sqlite3
from datetime import datetime

import aiosqlite

from callcenterd.domain.callers import VipCaller
from callcenterd.domain.clock import from_iso, to_iso
from callcenterd.store.db import Database


def _vip(row: sqlite3.Row) -> VipCaller:
    return VipCaller(
        row["number_key"],
        row["number"],
        row["priority"],
        row["note"],
        from_iso(row["created_at"]),
        from_iso(row["updated_at"]),
    )


class VipCallerRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def list(self) -> list[VipCaller]:
        rows = await self._db.fetch_all("SELECT * FROM vip_callers ORDER BY number_key")
        return [_vip(row) for row in rows]

    async def get(self, number_key: str) -> VipCaller | None:
        row = await self._db.fetch_one(
            "SELECT * FROM vip_callers WHERE number_key = ?", (number_key,)
        )
        return _vip(row) if row else None

    @staticmethod
    async def put(
        conn: aiosqlite.Connection,
        number_key: str,
        number: str,
        priority: int,
        note: str,
        at: datetime,
    ) -> None:
        stamp = to_iso(at)
        await conn.execute(
            "INSERT INTO vip_callers (number_key, number, priority, note, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (number_key) DO UPDATE SET"
            " number = excluded.number, priority = excluded.priority, note = excluded.note,"
            " updated_at = excluded.updated_at",
            (number_key, number, priority, note, stamp, stamp),
        )

    @staticmethod
    async def delete(conn: aiosqlite.Connection, number_key: str) -> bool:
        cursor = await conn.execute("DELETE FROM vip_callers WHERE number_key = ?", (number_key,))
        return cursor.rowcount > 0
