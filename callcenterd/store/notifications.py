"""What the email notifications read: who is told (supervisors per queue, managers, admins),
the missed calls of a digest window, and where the last digest ended."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from callcenterd.domain.clock import from_iso, to_iso
from callcenterd.domain.users import Role
from callcenterd.store.db import Database

# A missed call ends within this long of its start (it waited, it was never talked to), so
# a digest's query stays on one range of calls_status_start.
LONGEST_MISSED_CALL = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class MissedCallRow:
    call_id: str
    caller_number: str
    queue_id: str | None
    ended_at: datetime
    wait_seconds: float | None
    reason: str | None


class NotificationDirectory:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def supervisors_by_queue(self) -> dict[str, tuple[str, ...]]:
        """Live queue id -> the addresses of the active supervisors whose group has an
        operator who is a member of the queue."""
        rows = await self._db.fetch_all(
            "SELECT DISTINCT m.queue_id, u.email FROM queue_members m"
            " JOIN queues q ON q.id = m.queue_id AND q.deleted_at IS NULL"
            " JOIN operators o ON o.id = m.operator_id AND o.deleted_at IS NULL"
            " JOIN users u ON u.group_id = o.group_id"
            " WHERE u.role = 'supervisor' AND u.is_active = 1 AND u.deleted_at IS NULL"
            " ORDER BY m.queue_id, u.email"
        )
        found: dict[str, list[str]] = {}
        for row in rows:
            found.setdefault(row["queue_id"], []).append(row["email"])
        return {queue_id: tuple(emails) for queue_id, emails in found.items()}

    async def active_emails(self, role: Role) -> tuple[str, ...]:
        rows = await self._db.fetch_all(
            "SELECT email FROM users WHERE role = ? AND is_active = 1 AND deleted_at IS NULL"
            " ORDER BY email",
            (role.value,),
        )
        return tuple(row["email"] for row in rows)

    async def missed_calls(self, since: datetime, until: datetime) -> list[MissedCallRow]:
        """Calls that ended missed in [since, until), oldest first."""
        rows = await self._db.fetch_all(
            "SELECT id, caller_number, queue_id, end_time, wait_seconds, reason FROM calls"
            " WHERE status = 'missed' AND start_time >= ? AND start_time < ?"
            " AND end_time >= ? AND end_time < ? ORDER BY end_time, id",
            (
                to_iso(since - LONGEST_MISSED_CALL),
                to_iso(until),
                to_iso(since),
                to_iso(until),
            ),
        )
        return [
            MissedCallRow(
                call_id=row["id"],
                caller_number=row["caller_number"],
                queue_id=row["queue_id"],
                ended_at=from_iso(row["end_time"]),
                wait_seconds=row["wait_seconds"],
                reason=row["reason"],
            )
            for row in rows
        ]

    async def last_key_of_topic(self, topic: str) -> str | None:
        """The greatest idempotency key of the emails of `topic` in the outbox (a digest's
        keys sort by the window they close)."""
        value = await self._db.fetch_value(
            "SELECT MAX(idempotency_key) FROM outbox WHERE kind = 'email' AND topic = ?",
            (topic,),
        )
        return str(value) if value is not None else None
