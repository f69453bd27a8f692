"""Erasing a phone number from every table that can hold one (services/privacy.py).

A number is matched as callers are (domain/callers.py `number_key`: its digits), in any
form it was written in, inside JSON or text too (`mentions_number`, registered as an SQL
function by store/db.py). Rows are found on a reader (a scan: erasures are rare, and the
writer is not held meanwhile), then rewritten in short transactions of `BATCH` rows.

What holds numbers: calls (caller_number, called_number, notes), their timeline
(call_events.data: transfer targets, notes of what happened), callbacks (number, reason),
VIP callers (deleted), the outbox (rows addressed to the number are deleted; others
mentioning it are rewritten, their idempotency key too) and the audit log (entity_id,
changes: a VIP entry's key, say).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from callcenterd.domain.callers import ERASED, erase_number
from callcenterd.store.db import Database, fetch_all_in, marks

BATCH = 200
_OPEN_CALLS = "('incoming', 'answered')"
_OPEN_CALLBACKS = "('pending', 'dialing')"


@dataclass(frozen=True, slots=True)
class Erasable:
    table: str
    key: str  # primary key column
    columns: tuple[str, ...]  # text columns that may hold the number


CALLS = Erasable("calls", "id", ("caller_number", "called_number", "notes"))
CALL_EVENTS = Erasable("call_events", "id", ("data",))
CALLBACKS = Erasable("callbacks", "id", ("number", "reason"))
OUTBOX = Erasable(
    "outbox", "id", ("recipient", "topic", "content", "last_error", "idempotency_key")
)
AUDIT_LOG = Erasable("audit_log", "id", ("entity_id", "changes"))


class PrivacyStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def open_activity(self, key: str) -> str | None:
        """What holds the number live: 'call' (a call in progress), 'callback' (one still
        to serve), or None."""
        call = await self._db.fetch_one(
            f"SELECT 1 FROM calls INDEXED BY calls_open WHERE status IN {_OPEN_CALLS}"
            " AND (number_key(caller_number) = ?1 OR number_key(called_number) = ?1) LIMIT 1",
            (key,),
        )
        if call is not None:
            return "call"
        callback = await self._db.fetch_one(
            f"SELECT 1 FROM callbacks WHERE status IN {_OPEN_CALLBACKS}"
            " AND number_key(number) = ? LIMIT 1",
            (key,),
        )
        return "callback" if callback is not None else None

    async def recorded_calls(self, key: str) -> list[str]:
        """The calls from or to the number that have a recording."""
        rows = await self._db.fetch_all(
            "SELECT id FROM calls WHERE recording IS NOT NULL AND recording != ''"
            " AND (number_key(caller_number) = ?1 OR number_key(called_number) = ?1)"
            " ORDER BY start_time",
            (key,),
        )
        return [row["id"] for row in rows]

    async def mentioning(self, erasable: Erasable, key: str) -> list[object]:
        where = " OR ".join(f"mentions_number({column}, ?1)" for column in erasable.columns)
        rows = await self._db.fetch_all(
            f"SELECT {erasable.key} FROM {erasable.table} WHERE {where}", (key,)
        )
        return [row[0] for row in rows]

    async def rewrite(self, erasable: Erasable, ids: list[object], key: str) -> int:
        """Each row's mentions of the number replaced (domain/callers.py ERASED)."""
        done = 0
        for first in range(0, len(ids), BATCH):
            chunk = ids[first : first + BATCH]
            columns = ", ".join(erasable.columns)
            async with self._db.transaction() as conn:
                rows = await fetch_all_in(
                    conn,
                    f"SELECT {erasable.key}, {columns} FROM {erasable.table}"
                    f" WHERE {erasable.key} IN ({marks(chunk)})",
                    chunk,
                )
                for row in rows:
                    changes = _erased(erasable, row, key)
                    if not changes:
                        continue
                    assignments = ", ".join(f"{column} = ?" for column in changes)
                    await conn.execute(
                        f"UPDATE {erasable.table} SET {assignments} WHERE {erasable.key} = ?",
                        (*changes.values(), row[0]),
                    )
                    done += 1
        return done

    async def delete_vip(self, key: str) -> int:
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "DELETE FROM vip_callers WHERE number_key = ?1 OR number_key(number) = ?1",
                (key,),
            )
            return cursor.rowcount

    async def delete_outbox_to(self, key: str) -> int:
        """Messages addressed to the number (an SMS): nothing is left worth keeping."""
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "DELETE FROM outbox WHERE number_key(recipient) = ?", (key,)
            )
            return cursor.rowcount


def _erased(erasable: Erasable, row: sqlite3.Row, key: str) -> dict[str, object]:
    changes: dict[str, object] = {}
    for index, column in enumerate(erasable.columns, start=1):
        value = row[index]
        if not isinstance(value, str):
            continue
        erased = erase_number(value, key)
        if erased == value:
            continue
        if column == "idempotency_key":
            # Unique: two erased keys must not collide.
            erased = f"{ERASED}:{row[0]}"
        changes[column] = erased
    return changes
