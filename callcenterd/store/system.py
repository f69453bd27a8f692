"""System settings, revoked tokens, the audit log, and figures for system info."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import aiosqlite

from callcenterd.domain.clock import to_iso
from callcenterd.store.db import Database


class SettingsRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def load(self) -> dict[str, Any] | None:
        row = await self._db.fetch_one(
            "SELECT data, updated_by, updated_at FROM system_settings WHERE id = 1"
        )
        if row is None:
            return None
        data: dict[str, Any] = json.loads(row["data"])
        data["updated_by"] = row["updated_by"]
        data["updated_at"] = row["updated_at"]
        return data

    @staticmethod
    async def save(
        conn: aiosqlite.Connection, data: dict[str, Any], updated_by: str | None, at: datetime
    ) -> None:
        await conn.execute(
            "INSERT INTO system_settings (id, data, updated_by, updated_at) VALUES (1, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET data = excluded.data,"
            " updated_by = excluded.updated_by, updated_at = excluded.updated_at",
            (json.dumps(data), updated_by, to_iso(at)),
        )


class RevokedTokenRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def live_jtis(self, now: datetime) -> set[str]:
        rows = await self._db.fetch_all(
            "SELECT jti FROM revoked_tokens WHERE expires_at > ?", (to_iso(now),)
        )
        return {row["jti"] for row in rows}

    async def revoke(self, jti: str, user_id: str, expires_at: datetime, now: datetime) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT OR IGNORE INTO revoked_tokens (jti, user_id, expires_at) VALUES (?, ?, ?)",
                (jti, user_id, to_iso(expires_at)),
            )
            # An expired token is refused anyway; keep the table small.
            await conn.execute("DELETE FROM revoked_tokens WHERE expires_at <= ?", (to_iso(now),))


class AuditLog:
    @staticmethod
    async def record(
        conn: aiosqlite.Connection,
        *,
        at: datetime,
        actor_id: str | None,
        action: str,
        entity: str,
        entity_id: str | None,
        changes: dict[str, Any],
        request_id: str | None,
    ) -> None:
        await conn.execute(
            "INSERT INTO audit_log (at, actor_id, action, entity, entity_id, changes, request_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (to_iso(at), actor_id, action, entity, entity_id, json.dumps(changes), request_id),
        )


async def calls_since(db: Database, since: datetime) -> int:
    return int(
        await db.fetch_value("SELECT COUNT(*) FROM calls WHERE start_time >= ?", (to_iso(since),))
    )


class KeyFingerprints:
    """The fingerprints of the keys the database was written with (migration 0018)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def recorded(self) -> dict[str, str]:
        rows = await self._db.fetch_all("SELECT name, fingerprint FROM key_fingerprints")
        return {row["name"]: row["fingerprint"] for row in rows}

    async def record_missing(self, fingerprints: dict[str, str], at: datetime) -> None:
        """Keep the first fingerprint of each key: a database written before it was kept
        adopts the keys it is started with."""
        async with self._db.transaction() as conn:
            for name, fingerprint in fingerprints.items():
                await conn.execute(
                    "INSERT OR IGNORE INTO key_fingerprints (name, fingerprint, recorded_at)"
                    " VALUES (?, ?, ?)",
                    (name, fingerprint, to_iso(at)),
                )
