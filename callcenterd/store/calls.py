"""The write side of call records: every state change of a live call, and its timeline."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from callcenterd.domain.clock import from_iso, to_iso
from callcenterd.domain.messages import CallFacts, OutgoingMessage
from callcenterd.store import call_legs as legs
from callcenterd.store.db import Database, WriteBatch, set_sql
from callcenterd.store.outbox import enqueue_in

# The messages a fact causes (webhook deliveries, SMS...), enqueued in the fact's own
# transaction: both are written, or neither. Empty: no outbox work at all.
Messages = Sequence[OutgoingMessage]
NO_MESSAGES: Messages = ()


@dataclass(frozen=True, slots=True)
class CallEnd:
    """How a call ended, as its record keeps it."""

    status: str  # completed | missed
    reason: str
    duration: int  # talk seconds
    operator_id: str | None = None
    wait_seconds: float | None = None  # None: keep what the record has
    queue_id: str | None = None  # None: keep what the record has
    reconciled: bool = False  # closed by reconciliation, not by an event
    held_seconds: float = 0.0  # a hold still running at the end


@dataclass(frozen=True, slots=True)
class OpenCall:
    """A call record still `incoming` or `answered`: live, or left open by a crash."""

    id: str
    channel_id: str
    caller_number: str
    called_number: str | None
    status: str
    queue_id: str | None
    operator_id: str | None
    start_time: datetime
    answer_time: datetime | None
    legs_used: int
    priority: int = 0
    # Its operator's leg still up (answered, not ended), the talk of its parts that ended (a
    # transferred call's earlier operators) and when it was last put on hold, if not unheld.
    operator_leg: str | None = None
    talked_seconds: float = 0.0
    held_at: datetime | None = None


def _held_at(last_hold_event: str | None) -> datetime | None:
    """'held <iso>' -> that time; 'unheld ...' or none -> not on hold."""
    if last_hold_event is None or not last_hold_event.startswith("held "):
        return None
    return from_iso(last_hold_event.removeprefix("held "))


class CallWriter:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def open_calls(self, routed_by: str = "ari") -> list[OpenCall]:
        rows = await self._db.fetch_all(
            "SELECT c.id, c.channel_id, c.caller_number, c.called_number, c.status, c.queue_id,"
            " c.operator_id, c.start_time, c.answer_time, c.priority,"
            " (SELECT COUNT(*) FROM call_events e WHERE e.call_id = c.id AND e.kind = 'ringing')"
            " AS legs_used,"
            " (SELECT l.leg_id FROM call_legs l WHERE l.call_id = c.id"
            "  AND l.operator_id = c.operator_id AND l.answered_at IS NOT NULL"
            "  AND l.ended_at IS NULL ORDER BY l.answered_at DESC LIMIT 1) AS operator_leg,"
            " (SELECT TOTAL(l.talk_seconds) FROM call_legs l WHERE l.call_id = c.id"
            "  AND l.ended_at IS NOT NULL) AS talked_seconds,"
            " (SELECT e.kind || ' ' || e.at FROM call_events e WHERE e.call_id = c.id"
            "  AND e.kind IN ('held', 'unheld') ORDER BY e.at DESC, e.id DESC LIMIT 1) AS hold"
            " FROM calls c WHERE c.status IN ('incoming', 'answered') AND c.routed_by = ?"
            " ORDER BY c.start_time",
            (routed_by,),
        )
        return [
            OpenCall(
                id=row["id"],
                channel_id=row["channel_id"],
                caller_number=row["caller_number"],
                called_number=row["called_number"],
                status=row["status"],
                queue_id=row["queue_id"],
                operator_id=row["operator_id"],
                start_time=from_iso(row["start_time"]),
                answer_time=from_iso(row["answer_time"]) if row["answer_time"] else None,
                legs_used=int(row["legs_used"]),
                priority=int(row["priority"]),
                operator_leg=row["operator_leg"],
                talked_seconds=float(row["talked_seconds"]),
                held_at=_held_at(row["hold"]),
            )
            for row in rows
        ]

    async def facts_of(self, call_id: str) -> CallFacts | None:
        """What message sources know of a call, from its record (after a restart)."""
        row = await self._db.fetch_one(
            "SELECT caller_number, called_number, queue_id, status, reason FROM calls WHERE id = ?",
            (call_id,),
        )
        if row is None:
            return None
        return CallFacts(
            call_id,
            row["caller_number"],
            row["called_number"],
            row["queue_id"],
            status=row["status"],
            reason=row["reason"],
        )

    async def answered_by(self, since: datetime) -> list[tuple[str, str]]:
        """(caller number, operator id) of the calls answered that started since then, oldest
        first (calls_caller_start and calls_start make it an index range)."""
        rows = await self._db.fetch_all(
            "SELECT caller_number, operator_id FROM calls WHERE start_time >= ?"
            " AND answer_time IS NOT NULL AND operator_id IS NOT NULL ORDER BY start_time",
            (to_iso(since),),
        )
        return [(row["caller_number"], row["operator_id"]) for row in rows]

    async def started(
        self,
        *,
        call_id: str,
        channel_id: str,
        caller_number: str,
        called_number: str | None,
        at: datetime,
        routed_by: str = "ari",
        priority: int = 0,
        messages: Messages = NO_MESSAGES,
    ) -> None:
        stamp = to_iso(at)
        async with self._db.batch() as tx:
            tx.add(
                "INSERT INTO calls (id, channel_id, caller_number, called_number, status,"
                " start_time, routed_by, priority, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, 'incoming', ?, ?, ?, ?, ?)",
                (
                    call_id,
                    channel_id,
                    caller_number,
                    called_number,
                    stamp,
                    routed_by,
                    priority,
                    stamp,
                    stamp,
                ),
            )
            _event(tx, call_id, at, "started", None, {"channel_id": channel_id})
            if messages:
                tx.then(lambda conn: enqueue_in(conn, messages, at))

    async def queued(
        self,
        call_id: str,
        at: datetime,
        queue_id: str | None,
        position: int,
        *,
        moved_from: str | None = None,
        asterisk_queue: str | None = None,
        messages: Messages = NO_MESSAGES,
    ) -> None:
        data: dict[str, Any] = {"position": position, "moved_from": moved_from}
        if asterisk_queue is not None:
            data["asterisk_queue"] = asterisk_queue
        async with self._db.batch() as tx:
            _change(tx, call_id, at, queue_id=queue_id)
            _event(tx, call_id, at, "queued", None, data)
            if messages:
                tx.then(lambda conn: enqueue_in(conn, messages, at))

    async def ringing(
        self,
        call_id: str,
        at: datetime,
        leg_id: str,
        operator_id: str | None,
        *,
        extension: str | None = None,
        node: str | None = None,
        messages: Messages = NO_MESSAGES,
    ) -> None:
        """An operator's phone rings (the operator is added to `operators_tried` once); a
        phone no operator has (AMI fallback) is kept on the timeline by its extension."""
        data: dict[str, Any] = {"leg_id": leg_id}
        async with self._db.batch() as tx:
            if operator_id is None:
                data["extension"] = extension
            else:
                tx.add(
                    "UPDATE calls SET operators_tried = json_insert(operators_tried, '$[#]', ?),"
                    " updated_at = ? WHERE id = ? AND NOT EXISTS"
                    " (SELECT 1 FROM json_each(operators_tried) WHERE value = ?)",
                    (operator_id, to_iso(at), call_id, operator_id),
                )
            _event(tx, call_id, at, "ringing", operator_id, data)
            legs.leg_rung(tx, call_id, leg_id, operator_id, node, at)
            if messages:
                tx.then(lambda conn: enqueue_in(conn, messages, at))

    async def leg_ended(
        self, call_id: str, at: datetime, leg_id: str, operator_id: str | None, outcome: str
    ) -> None:
        async with self._db.batch() as tx:
            data = {"leg_id": leg_id, "outcome": outcome}
            _event(tx, call_id, at, "leg_ended", operator_id, data)
            legs.leg_closed(tx, call_id, at, outcome, leg_id=leg_id)

    async def answered(
        self,
        call_id: str,
        at: datetime,
        operator_id: str | None,
        wait_seconds: float,
        *,
        extension: str | None = None,
        leg_id: str | None = None,
        transferred: bool = False,
        messages: Messages = NO_MESSAGES,
    ) -> None:
        """`transferred`: a later operator after a transfer (the first answer's time and
        wait stay as they are)."""
        async with self._db.batch() as tx:
            if transferred:
                _change(tx, call_id, at, operator_id=operator_id)
            else:
                _change(
                    tx,
                    call_id,
                    at,
                    status="answered",
                    answer_time=to_iso(at),
                    operator_id=operator_id,
                    wait_seconds=round(wait_seconds, 3),
                )
            data: dict[str, Any] = (
                {} if operator_id or extension is None else {"extension": extension}
            )
            if leg_id is not None:
                data["leg_id"] = leg_id
                legs.leg_answered(tx, call_id, leg_id, at)
            _event(tx, call_id, at, "answered", operator_id, data)
            if messages:
                tx.then(lambda conn: enqueue_in(conn, messages, at))

    async def ended(
        self, call_id: str, at: datetime, end: CallEnd, messages: Messages = NO_MESSAGES
    ) -> None:
        columns: dict[str, Any] = {
            "status": end.status,
            "reason": end.reason,
            "end_time": to_iso(at),
            "duration": end.duration,
        }
        if end.wait_seconds is not None:
            columns["wait_seconds"] = round(end.wait_seconds, 3)
        if end.queue_id is not None:
            columns["queue_id"] = end.queue_id
        if end.reconciled:
            kind, data = "reconciled", {"outcome": end.status, "reason": end.reason}
        else:
            kind, data = "ended", {"reason": end.reason}
        async with self._db.batch() as tx:
            if end.held_seconds:
                legs.hold_added(tx, call_id, end.operator_id, end.held_seconds)
            _change(tx, call_id, at, **columns)
            legs.leg_closed(tx, call_id, at, end.reason)
            _event(tx, call_id, at, kind, end.operator_id, data)
            if messages:
                tx.then(lambda conn: enqueue_in(conn, messages, at))

    # --- hold and transfers (issue 11) ------------------------------------------------------
    async def held(
        self, call_id: str, at: datetime, operator_id: str, messages: Messages = NO_MESSAGES
    ) -> None:
        async with self._db.batch() as tx:
            _change(tx, call_id, at)
            _event(tx, call_id, at, "held", operator_id, {})
            if messages:
                tx.then(lambda conn: enqueue_in(conn, messages, at))

    async def unheld(
        self,
        call_id: str,
        at: datetime,
        operator_id: str,
        seconds: float,
        messages: Messages = NO_MESSAGES,
    ) -> None:
        async with self._db.batch() as tx:
            legs.hold_added(tx, call_id, operator_id, seconds)
            _change(tx, call_id, at)
            _event(tx, call_id, at, "unheld", operator_id, {"seconds": round(seconds, 3)})
            if messages:
                tx.then(lambda conn: enqueue_in(conn, messages, at))

    async def transfer_started(
        self,
        call_id: str,
        at: datetime,
        operator_id: str,
        data: dict[str, Any],
        messages: Messages = NO_MESSAGES,
    ) -> None:
        async with self._db.batch() as tx:
            _event(tx, call_id, at, "transfer_started", operator_id, data)
            if messages:
                tx.then(lambda conn: enqueue_in(conn, messages, at))

    async def consult_answered(
        self, call_id: str, at: datetime, leg_id: str, operator_id: str
    ) -> None:
        async with self._db.batch() as tx:
            legs.leg_answered(tx, call_id, leg_id, at)
            _event(tx, call_id, at, "consult_answered", operator_id, {"leg_id": leg_id})

    async def transferred(
        self,
        call_id: str,
        at: datetime,
        operator_id: str,
        from_leg_id: str,
        held_seconds: float,
        data: dict[str, Any],
        *,
        to_operator_id: str | None = None,
        messages: Messages = NO_MESSAGES,
    ) -> None:
        """The operator's leg ends as transferred; an attended transfer's target has the
        call from now (`to_operator_id`)."""
        async with self._db.batch() as tx:
            if held_seconds:
                legs.hold_added(tx, call_id, operator_id, held_seconds)
            legs.leg_closed(tx, call_id, at, "transferred", leg_id=from_leg_id)
            if to_operator_id is not None:
                _change(tx, call_id, at, operator_id=to_operator_id)
            else:
                _change(tx, call_id, at)
            _event(tx, call_id, at, "transferred", operator_id, data)
            if messages:
                tx.then(lambda conn: enqueue_in(conn, messages, at))

    async def transfer_failed(
        self,
        call_id: str,
        at: datetime,
        operator_id: str | None,
        leg_id: str,
        reason: str,
        held_seconds: float,
        *,
        answered: bool,
        messages: Messages = NO_MESSAGES,
    ) -> None:
        """The target did not take the call; an answered consultation's leg ends here."""
        async with self._db.batch() as tx:
            if held_seconds:
                legs.hold_added(tx, call_id, operator_id, held_seconds)
            if answered:
                legs.leg_closed(tx, call_id, at, reason, leg_id=leg_id)
            data = {"leg_id": leg_id, "reason": reason}
            _event(tx, call_id, at, "transfer_failed", operator_id, data)
            if messages:
                tx.then(lambda conn: enqueue_in(conn, messages, at))

    async def recording_started(self, call_id: str, at: datetime, name: str) -> None:
        async with self._db.batch() as tx:
            _change(tx, call_id, at, recording=name)
            _event(tx, call_id, at, "recording_started", None, {})

    async def note(self, call_id: str, at: datetime, kind: str, data: dict[str, Any]) -> None:
        """A timeline entry that changes nothing else (what reconciliation did)."""
        async with self._db.batch() as tx:
            _event(tx, call_id, at, kind, None, data)


def _change(tx: WriteBatch, call_id: str, at: datetime, **columns: Any) -> None:
    assignments, params = set_sql({**columns, "updated_at": to_iso(at)})
    tx.add(f"UPDATE calls SET {assignments} WHERE id = ?", (*params, call_id))


def _event(
    tx: WriteBatch,
    call_id: str,
    at: datetime,
    kind: str,
    operator_id: str | None,
    data: dict[str, Any],
) -> None:
    tx.add(
        "INSERT INTO call_events (call_id, at, kind, operator_id, data) VALUES (?, ?, ?, ?, ?)",
        (call_id, to_iso(at), kind, operator_id, json.dumps(data)),
    )


class OperatorStatusWriter:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def status(self, operator_id: str, status: str, reason: str | None, at: datetime) -> None:
        async with self._db.batch() as tx:
            tx.add(
                "UPDATE operators SET status = ?, status_reason = ?, last_activity = ?,"
                " updated_at = ? WHERE id = ?",
                (status, reason, to_iso(at), to_iso(at), operator_id),
            )

    async def presence(
        self, operator_id: str, presence: str, reason: str | None, at: datetime
    ) -> None:
        """The engine paused someone (autopause): keep the chosen presence in step.

        The reason is the presence's too, so the pause's interval (0008) is kept under it."""
        async with self._db.batch() as tx:
            tx.add(
                "UPDATE operators SET presence = ?, presence_reason = ?, status_reason = ?,"
                " updated_at = ? WHERE id = ?",
                (presence, reason, reason, to_iso(at), operator_id),
            )
