"""Webhooks as stored: the secret arrives and leaves encrypted (the service holds the box)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiosqlite

from callcenterd.domain.clock import from_iso, to_iso
from callcenterd.store.db import Database, set_sql


@dataclass(frozen=True, slots=True)
class StoredWebhook:
    id: str
    url: str
    event_types: str | list[str]  # "*" or the list
    encrypted_secret: str
    active: bool
    description: str
    created_at: datetime
    updated_at: datetime


def _webhook(row: sqlite3.Row) -> StoredWebhook:
    return StoredWebhook(
        id=row["id"],
        url=row["url"],
        event_types=json.loads(row["event_types"]),
        encrypted_secret=row["secret"],
        active=bool(row["active"]),
        description=row["description"],
        created_at=from_iso(row["created_at"]),
        updated_at=from_iso(row["updated_at"]),
    )


class WebhookRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def list(self) -> list[StoredWebhook]:
        rows = await self._db.fetch_all("SELECT * FROM webhooks ORDER BY created_at, id")
        return [_webhook(row) for row in rows]

    async def get(self, webhook_id: str) -> StoredWebhook | None:
        row = await self._db.fetch_one("SELECT * FROM webhooks WHERE id = ?", (webhook_id,))
        return _webhook(row) if row else None

    @staticmethod
    async def create(conn: aiosqlite.Connection, webhook: StoredWebhook) -> None:
        await conn.execute(
            "INSERT INTO webhooks (id, url, event_types, secret, active, description,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                webhook.id,
                webhook.url,
                json.dumps(webhook.event_types),
                webhook.encrypted_secret,
                int(webhook.active),
                webhook.description,
                to_iso(webhook.created_at),
                to_iso(webhook.updated_at),
            ),
        )

    @staticmethod
    async def update(
        conn: aiosqlite.Connection, webhook_id: str, at: datetime, changes: dict[str, Any]
    ) -> bool:
        columns = dict(changes)
        if "event_types" in columns:
            columns["event_types"] = json.dumps(columns["event_types"])
        if "active" in columns:
            columns["active"] = int(columns["active"])
        assignments, params = set_sql({**columns, "updated_at": to_iso(at)})
        cursor = await conn.execute(
            f"UPDATE webhooks SET {assignments} WHERE id = ?", (*params, webhook_id)
        )
        return cursor.rowcount > 0

    @staticmethod
    async def delete(conn: aiosqlite.Connection, webhook_id: str) -> bool:
        cursor = await conn.execute("DELETE FROM webhooks WHERE id = ?", (webhook_id,))
        return cursor.rowcount > 0
