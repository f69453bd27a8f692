"""Call records by status, for /metrics: one GROUP BY over the (status, start_time) index."""

from __future__ import annotations

from callcenterd.store.db import Database

# The statuses the calls table allows (its CHECK constraint): all reported, zeros included.
CALL_STATUSES = ("incoming", "answered", "completed", "missed")


class CallCounts:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def by_status(self) -> dict[str, int]:
        # calls_status_start covers the query: SQLite counts index entries, never table rows.
        rows = await self._db.fetch_all("SELECT status, COUNT(*) AS n FROM calls GROUP BY status")
        counts = dict.fromkeys(CALL_STATUSES, 0)
        counts.update({row["status"]: int(row["n"]) for row in rows})
        return counts
