"""What the retention purge deletes, in short batches (services/retention.py decides when).

Every delete runs in its own short transaction of at most `limit` rows, so the routing
writer waits for one batch at most, never for the whole purge.

Deleting calls leaves the statistics alone. The dashboards read the rollups (migrations
0005/0006), which the generated trigger `call_stats_delete` would lower for every deleted
call: a purge's batch lifts that trigger for its own transaction only (DDL is
transactional in SQLite; nobody else writes meanwhile), so the rollups keep counting the
calls purged. `AnalyticsStore.prepare_rollups` in turn rebuilds only the days from the
oldest call kept on (store/call_stats.py `rebuild_since_sql`), so a later rebuild does not lose
them either. For that, a purge removes whole UTC days (the rollups' day) and never leaves a
call older than the newest one it deleted: see `oldest_kept_call_before`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import aiosqlite

from callcenterd.domain.clock import from_iso, to_iso
from callcenterd.store.call_stats import TRIGGERS
from callcenterd.store.db import Database, fetch_all_in, marks

# A call record still being written (the dispatcher's): never purged, nor its recording.
OPEN_STATUSES = ("incoming", "answered")
# Outbox rows nobody will send again (0015): the only ones a purge removes.
FINAL_OUTBOX_STATES = ("sent", "failed", "cancelled")
_DELETE_TRIGGER = TRIGGERS[2]  # call_stats_delete
# The timeline entry left on a call whose recording a retention deleted.
RECORDING_DELETED = "recording_deleted"


@dataclass(frozen=True, slots=True)
class CallsPurged:
    """Rows of call records: the calls, their timeline entries and their legs."""

    calls: int = 0
    events: int = 0
    legs: int = 0

    def __add__(self, other: CallsPurged) -> CallsPurged:
        return CallsPurged(
            self.calls + other.calls, self.events + other.events, self.legs + other.legs
        )


@dataclass(frozen=True, slots=True)
class StoredRecording:
    call_id: str
    name: str


_CLOSED = f"status NOT IN ({', '.join(repr(s) for s in OPEN_STATUSES)})"
_FINAL = f"state IN ({', '.join(repr(s) for s in FINAL_OUTBOX_STATES)})"


class RetentionStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    # --- calls --------------------------------------------------------------------------------
    async def count_calls_before(self, before: datetime) -> CallsPurged:
        row = await self._db.fetch_one(
            "SELECT COUNT(*) AS calls,"
            " (SELECT COUNT(*) FROM call_events e JOIN calls c ON c.id = e.call_id"
            "  WHERE c.start_time < ?1) AS events,"
            " (SELECT COUNT(*) FROM call_legs l JOIN calls c ON c.id = l.call_id"
            "  WHERE c.start_time < ?1) AS legs"
            " FROM calls WHERE start_time < ?1",
            (to_iso(before),),
        )
        assert row is not None
        return CallsPurged(int(row["calls"]), int(row["events"]), int(row["legs"]))

    async def oldest_kept_call_before(
        self, before: datetime, *, with_recordings: bool
    ) -> datetime | None:
        """The start of the oldest call before `before` that must stay: one still open, and
        (`with_recordings`) one whose recording is still stored. A purge stops short of it."""
        recorded = " OR (recording IS NOT NULL AND recording != '')" if with_recordings else ""
        value = await self._db.fetch_value(
            f"SELECT MIN(start_time) FROM calls WHERE start_time < ? AND (NOT {_CLOSED}{recorded})",
            (to_iso(before),),
        )
        return from_iso(value) if value else None

    async def delete_calls_before(self, before: datetime, limit: int) -> CallsPurged:
        """Delete up to `limit` of the oldest calls started before `before` (their events,
        legs and who-was-rung rows go with them: ON DELETE CASCADE); the rollups keep them."""
        async with self._db.transaction() as conn:
            rows = await fetch_all_in(
                conn,
                "SELECT id FROM calls WHERE start_time < ? ORDER BY start_time LIMIT ?",
                (to_iso(before), limit),
            )
            ids = [row["id"] for row in rows]
            if not ids:
                return CallsPurged()
            counted = await fetch_all_in(
                conn,
                f"SELECT (SELECT COUNT(*) FROM call_events WHERE call_id IN ({marks(ids)})),"
                f" (SELECT COUNT(*) FROM call_legs WHERE call_id IN ({marks(ids)}))",
                (*ids, *ids),
            )
            trigger = await _lift_delete_trigger(conn)
            await conn.execute(f"DELETE FROM calls WHERE id IN ({marks(ids)})", ids)
            if trigger is not None:
                await conn.execute(trigger)
        return CallsPurged(len(ids), int(counted[0][0]), int(counted[0][1]))

    # --- recordings ---------------------------------------------------------------------------
    async def count_recordings_before(self, before: datetime) -> int:
        return int(
            await self._db.fetch_value(
                "SELECT COUNT(*) FROM calls WHERE start_time < ? AND recording IS NOT NULL"
                f" AND recording != '' AND {_CLOSED}",
                (to_iso(before),),
            )
        )

    async def recordings_before(self, before: datetime, limit: int) -> list[StoredRecording]:
        """The oldest recordings of ended calls started before `before`."""
        rows = await self._db.fetch_all(
            "SELECT id, recording FROM calls WHERE start_time < ? AND recording IS NOT NULL"
            f" AND recording != '' AND {_CLOSED} ORDER BY start_time LIMIT ?",
            (to_iso(before), limit),
        )
        return [StoredRecording(row["id"], row["recording"]) for row in rows]

    async def recordings_of_calls(self, call_ids: list[str]) -> list[StoredRecording]:
        if not call_ids:
            return []
        rows = await self._db.fetch_all(
            f"SELECT id, recording FROM calls WHERE id IN ({marks(call_ids)})"
            " AND recording IS NOT NULL AND recording != '' ORDER BY start_time",
            call_ids,
        )
        return [StoredRecording(row["id"], row["recording"]) for row in rows]

    async def recordings_deleted(
        self, call_ids: list[str], at: datetime, why: str, purged_before: datetime | None = None
    ) -> int:
        """The calls' recordings are gone from Asterisk: the name cleared, and a timeline
        entry on each call that stays (those started before `purged_before` are about to be
        purged: no entry for them).

        `recording` is not among the columns the rollups' triggers watch: no figure moves.
        """
        if not call_ids:
            return 0
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                f"UPDATE calls SET recording = NULL, updated_at = ? WHERE id IN ({marks(call_ids)})"
                " AND recording IS NOT NULL",
                (to_iso(at), *call_ids),
            )
            await conn.execute(
                "INSERT INTO call_events (call_id, at, kind, operator_id, data)"
                " SELECT id, ?, ?, NULL, json_object('reason', ?) FROM calls"
                f" WHERE id IN ({marks(call_ids)}) AND start_time >= ?",
                (
                    to_iso(at),
                    RECORDING_DELETED,
                    why,
                    *call_ids,
                    "" if purged_before is None else to_iso(purged_before),
                ),
            )
            return cursor.rowcount

    # --- audit log and outbox -----------------------------------------------------------------
    async def count_audit_before(self, before: datetime) -> int:
        return int(
            await self._db.fetch_value(
                "SELECT COUNT(*) FROM audit_log WHERE at < ?", (to_iso(before),)
            )
        )

    async def delete_audit_before(self, before: datetime, limit: int) -> int:
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "DELETE FROM audit_log WHERE id IN"
                " (SELECT id FROM audit_log WHERE at < ? ORDER BY at, id LIMIT ?)",
                (to_iso(before), limit),
            )
            return cursor.rowcount

    async def count_outbox_before(self, before: datetime) -> int:
        """Messages in a final state whose last change is older than `before`."""
        return int(
            await self._db.fetch_value(
                f"SELECT COUNT(*) FROM outbox WHERE {_FINAL} AND updated_at < ?",
                (to_iso(before),),
            )
        )

    async def delete_outbox_before(self, before: datetime, limit: int) -> int:
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "DELETE FROM outbox WHERE id IN"
                f" (SELECT id FROM outbox WHERE {_FINAL} AND updated_at < ? ORDER BY id LIMIT ?)",
                (to_iso(before), limit),
            )
            return cursor.rowcount


async def _lift_delete_trigger(conn: aiosqlite.Connection) -> str | None:
    """Drop the rollups' delete trigger inside this transaction; its SQL, to put it back
    before the commit (None: not installed yet, the rollups are not built)."""
    rows = await fetch_all_in(
        conn,
        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?",
        (_DELETE_TRIGGER,),
    )
    if not rows:
        return None
    await conn.execute(f"DROP TRIGGER {_DELETE_TRIGGER}")
    return str(rows[0]["sql"])
