"""Each operator's part of a call (migration 0010): the legs rung, answered and ended.

Written inside the call writer's transactions (store/calls.py), so a leg's row and the
call's timeline entry about it are one change. An answered leg's talk is its answered time
less the hold within it: a transferred call's talk is split between its operators.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from callcenterd.analytics.kpis import OperatorParts
from callcenterd.domain.clock import from_iso, to_iso
from callcenterd.store.db import Database, WriteBatch, marks

# Seconds between an ISO column and a bound ISO time (SQLite reads the trailing Z as UTC).
_ELAPSED = "MAX(0, (julianday(?) - julianday(answered_at)) * 86400.0)"


@dataclass(frozen=True, slots=True)
class CallLeg:
    leg_id: str
    operator_id: str | None
    node: str | None
    rung_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    outcome: str | None
    talk_seconds: float
    hold_seconds: float


def leg_rung(
    tx: WriteBatch,
    call_id: str,
    leg_id: str,
    operator_id: str | None,
    node: str | None,
    at: datetime,
) -> None:
    tx.add(
        "INSERT OR IGNORE INTO call_legs (call_id, leg_id, operator_id, node, rung_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (call_id, leg_id, operator_id, node, to_iso(at)),
    )


def leg_answered(tx: WriteBatch, call_id: str, leg_id: str, at: datetime) -> None:
    tx.add(
        "UPDATE call_legs SET answered_at = ? WHERE call_id = ? AND leg_id = ?"
        " AND answered_at IS NULL",
        (to_iso(at), call_id, leg_id),
    )


def leg_closed(
    tx: WriteBatch,
    call_id: str,
    at: datetime,
    outcome: str,
    *,
    leg_id: str | None = None,
) -> None:
    """End a leg (`leg_id`), or every answered leg still open (the call ended)."""
    stamp = to_iso(at)
    which = "leg_id = ?" if leg_id is not None else "answered_at IS NOT NULL"
    params: tuple[object, ...] = (call_id, leg_id) if leg_id is not None else (call_id,)
    tx.add(
        "UPDATE call_legs SET ended_at = ?, outcome = ?,"
        " talk_seconds = CASE WHEN answered_at IS NULL THEN 0"
        f" ELSE MAX(0, {_ELAPSED} - hold_seconds) END"
        f" WHERE call_id = ? AND {which} AND ended_at IS NULL",
        (stamp, outcome, stamp, *params),
    )


def hold_added(tx: WriteBatch, call_id: str, operator_id: str | None, seconds: float) -> None:
    """A hold ended: its seconds go to the call and to the operator's open leg."""
    tx.add("UPDATE calls SET hold_seconds = hold_seconds + ? WHERE id = ?", (seconds, call_id))
    tx.add(
        "UPDATE call_legs SET hold_seconds = hold_seconds + ? WHERE call_id = ?"
        " AND operator_id IS ? AND answered_at IS NOT NULL AND ended_at IS NULL",
        (seconds, call_id, operator_id),
    )


class CallLegs:
    """The read side: a call's legs in the order they were rung."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def of_call(self, call_id: str) -> list[CallLeg]:
        rows = await self._db.fetch_all(
            "SELECT leg_id, operator_id, node, rung_at, answered_at, ended_at, outcome,"
            " talk_seconds, hold_seconds FROM call_legs WHERE call_id = ?"
            " ORDER BY rung_at, leg_id",
            (call_id,),
        )
        return [
            CallLeg(
                leg_id=row["leg_id"],
                operator_id=row["operator_id"],
                node=row["node"],
                rung_at=from_iso(row["rung_at"]),
                answered_at=from_iso(row["answered_at"]) if row["answered_at"] else None,
                ended_at=from_iso(row["ended_at"]) if row["ended_at"] else None,
                outcome=row["outcome"],
                talk_seconds=round(float(row["talk_seconds"]), 3),
                hold_seconds=round(float(row["hold_seconds"]), 3),
            )
            for row in rows
        ]

    async def parts_by_operator(
        self, operator_ids: Sequence[str], since: datetime, until: datetime
    ) -> dict[str, OperatorParts]:
        """Each operator's answered legs of the calls that started in [since, until) (the
        window of every other figure): a transferred call counts for each operator who had
        it, with their own talk and hold."""
        if not operator_ids:
            return {}
        rows = await self._db.fetch_all(
            "SELECT l.operator_id, COUNT(*) AS n, COUNT(l.ended_at) AS finished,"
            " TOTAL(l.talk_seconds) AS talk, TOTAL(l.hold_seconds) AS hold"
            " FROM calls c JOIN call_legs l ON l.call_id = c.id"
            " WHERE c.start_time >= ? AND c.start_time < ?"
            f" AND l.operator_id IN ({marks(operator_ids)}) AND l.answered_at IS NOT NULL"
            " GROUP BY l.operator_id",
            (to_iso(since), to_iso(until), *operator_ids),
        )
        return {
            row["operator_id"]: OperatorParts(
                int(row["n"]), int(row["finished"]), float(row["talk"]), float(row["hold"])
            )
            for row in rows
        }
