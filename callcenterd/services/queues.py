"""Managing queues: validation, storage, audit, and telling the routing engine.

Every change is stored and audited in one transaction; then the queue as stored is submitted
to the routing port (`QueueUpserted` with its `QueueConfig`, or `QueueRemoved`), so the
engine always routes with what the database holds.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiosqlite
import structlog

from callcenterd.contract.routing import MemberIn, MemberSpec, QueueCreate, QueueUpdate
from callcenterd.contract.validation import field_error
from callcenterd.domain.clock import to_iso
from callcenterd.domain.events import QueueRemoved, QueueUpserted
from callcenterd.domain.queues import Member, OverflowAction
from callcenterd.errors import Conflict, NotFound
from callcenterd.security import Clock, Principal
from callcenterd.services.context import audit
from callcenterd.services.routing_port import RoutingPort
from callcenterd.store.db import Database
from callcenterd.store.operators import OperatorDirectory
from callcenterd.store.queues import QueueMember as QueueMember  # re-exported for api/
from callcenterd.store.queues import QueueRepository, StoredQueue

log = structlog.get_logger(__name__)

QueuesChanged = Callable[[], Awaitable[None]]

# Columns written straight from the request (the rest are derived or JSON-encoded).
_PLAIN = (
    "name",
    "description",
    "asterisk_name",
    "max_wait_time",
    "priority",
    "strategy",
    "is_default",
    "is_active",
    "ring_timeout",
    "retry_delay",
    "wrapup_seconds",
    "join_empty",
    "overflow_action",
    "overflow_queue_id",
    "music_class",
    "greeting",
    "announce_every",
    "announce_wait",
    "last_operator_wait",
    "callback_enabled",
    "callback_offer_after",
    "sms_missed_call",
    "sms_callback_scheduled",
    "sms_callback_reminder",
    "notification_language",
)


@dataclass(frozen=True, slots=True)
class QueueView:
    queue: StoredQueue
    current_calls: int  # answered now
    waiting_calls: int  # incoming (waiting) now


class QueueService:
    def __init__(
        self, db: Database, queues: QueueRepository, routing: RoutingPort, clock: Clock
    ) -> None:
        self._db = db
        self._queues = queues
        self.routing = routing  # public so tests (and the app) can swap the port
        self._clock = clock
        self._listeners: list[QueuesChanged] = []

    def on_change(self, listener: QueuesChanged) -> None:
        """Called after each stored change of a queue (created, updated, deleted)."""
        self._listeners.append(listener)

    async def _changed(self) -> None:
        for listener in self._listeners:
            await listener()

    # --- reads ------------------------------------------------------------------------------
    async def list_queues(self) -> list[QueueView]:
        counts = await self._queues.open_calls()
        return [
            QueueView(queue, *counts.get(queue.id, (0, 0)))
            for queue in await self._queues.live_queues()
        ]

    async def _stored(self, queue_id: str) -> StoredQueue:
        queue = await self._queues.get(queue_id)
        if queue is None:
            raise NotFound("Queue not found")
        return queue

    async def get(self, queue_id: str) -> QueueView:
        queue = await self._stored(queue_id)
        counts = await self._queues.open_calls()
        return QueueView(queue, *counts.get(queue_id, (0, 0)))

    async def members(self, queue_id: str) -> tuple[QueueMember, ...]:
        return (await self._stored(queue_id)).members

    # --- changes ----------------------------------------------------------------------------
    async def create(self, body: QueueCreate, actor: Principal) -> QueueView:
        queue_id = str(uuid.uuid4())
        now = to_iso(self._clock())
        values = body.model_dump(mode="json", include=set(_PLAIN))
        async with self._db.transaction() as conn:
            await self._check(conn, queue_id=None, values=values, numbers=body.numbers)
            members = await self._resolve_members(conn, body.members)
            values["overflow_queue_id"] = await self._check_overflow(
                conn, queue_id, OverflowAction(values["overflow_action"]), body.overflow_queue_id
            )
            await self._queues.insert(
                conn,
                {
                    "id": queue_id,
                    **values,
                    "numbers": json.dumps(body.numbers),
                    "required_skills": json.dumps(sorted(body.required_skills)),
                    "created_at": now,
                    "updated_at": now,
                },
            )
            await self._queues.replace_members(conn, queue_id, members)
            await audit(
                conn,
                self._clock(),
                actor,
                "queue",
                "create",
                queue_id,
                body.model_dump(mode="json"),
            )
        log.info("queue_created", queue_id=queue_id, queue=body.asterisk_name)
        return await self._publish(queue_id)

    async def update(self, queue_id: str, body: QueueUpdate, actor: Principal) -> QueueView:
        current = await self._stored(queue_id)
        sent = body.model_fields_set
        changes: dict[str, Any] = {
            name: value
            for name, value in body.model_dump(mode="json", include=set(_PLAIN)).items()
            if name in sent
        }
        config = current.config
        async with self._db.transaction() as conn:
            await self._check(
                conn,
                queue_id=queue_id,
                values=changes,
                numbers=body.numbers if "numbers" in sent else None,
            )
            members = None
            if "members" in sent and body.members is not None:
                members = await self._resolve_members(conn, body.members)
            action = OverflowAction(changes.get("overflow_action", config.overflow_action))
            if "overflow_queue_id" in sent:
                target = body.overflow_queue_id
            else:
                # Switching the action away from 'queue' drops the target without being asked.
                target = config.overflow_queue_id if action is OverflowAction.QUEUE else None
            target = await self._check_overflow(conn, queue_id, action, target)
            if target != config.overflow_queue_id:
                changes["overflow_queue_id"] = target
            if "numbers" in sent and body.numbers is not None:
                changes["numbers"] = json.dumps(body.numbers)
            if "required_skills" in sent and body.required_skills is not None:
                changes["required_skills"] = json.dumps(sorted(body.required_skills))
            await self._queues.update(
                conn, queue_id, {**changes, "updated_at": to_iso(self._clock())}
            )
            if members is not None:
                await self._queues.replace_members(conn, queue_id, members)
            await audit(
                conn,
                self._clock(),
                actor,
                "queue",
                "update",
                queue_id,
                body.model_dump(mode="json", exclude_unset=True),
            )
        log.info("queue_updated", queue_id=queue_id, fields=sorted(sent))
        return await self._publish(queue_id)

    async def delete(self, queue_id: str, actor: Principal) -> None:
        current = await self._stored(queue_id)
        async with self._db.transaction() as conn:
            waiting = await self._queues.waiting_calls(conn, queue_id)
            if waiting:
                raise Conflict(
                    f"Queue has {waiting} call(s) waiting; delete it when they are answered"
                    " or gone (or make it inactive first)"
                )
            referrers = await self._queues.overflowing_into(conn, queue_id)
            if referrers:
                raise Conflict(
                    f"Queue(s) {', '.join(referrers)} overflow into this queue; change them first"
                )
            await self._queues.soft_delete(conn, queue_id, self._clock())
            await audit(
                conn,
                self._clock(),
                actor,
                "queue",
                "delete",
                queue_id,
                {"name": current.config.name, "asterisk_name": current.config.asterisk_name},
            )
        log.info("queue_deleted", queue_id=queue_id)
        await self.routing.submit(QueueRemoved(queue_id))
        await self._changed()

    async def _publish(self, queue_id: str) -> QueueView:
        """Tell the engine about the queue as stored, then answer with it."""
        view = await self.get(queue_id)
        await self.routing.submit(QueueUpserted(view.queue.config))
        await self._changed()
        return view

    # --- rules ------------------------------------------------------------------------------
    async def _check(
        self,
        conn: aiosqlite.Connection,
        *,
        queue_id: str | None,
        values: dict[str, Any],
        numbers: list[str] | None,
    ) -> None:
        name = values.get("name")
        if name is not None and await self._queues.name_taken(conn, name, queue_id):
            raise Conflict(f"A queue named {name!r} exists", field="name")
        asterisk_name = values.get("asterisk_name")
        if asterisk_name is not None and await self._queues.asterisk_name_taken(
            conn, asterisk_name, queue_id
        ):
            raise Conflict(
                f"A queue with asterisk_name {asterisk_name!r} exists", field="asterisk_name"
            )
        if numbers:
            taken = await self._queues.numbers_taken(conn, numbers, queue_id)
            if taken:
                listed = ", ".join(f"{number} (queue {owner!r})" for number, owner in taken)
                raise Conflict(
                    f"Number(s) already answered by another queue: {listed}", field="numbers"
                )
        if values.get("is_default"):
            default = await self._queues.default_queue(conn, queue_id)
            if default is not None:
                raise Conflict(
                    f"Queue {default!r} is the default queue; unset it there first",
                    field="is_default",
                )

    async def _resolve_members(
        self, conn: aiosqlite.Connection, specs: list[MemberSpec]
    ) -> list[Member]:
        """Extensions or operator ids -> live operator ids, in the order given."""
        entries = [MemberIn(extension=spec) if isinstance(spec, str) else spec for spec in specs]
        extensions = [e.extension for e in entries if e.extension is not None]
        by_extension = await OperatorDirectory.operators_by_extension(conn, extensions)
        ids = [e.operator_id for e in entries if e.operator_id is not None]
        live = await OperatorDirectory.live_operators(conn, ids)
        members: list[Member] = []
        seen: set[str] = set()
        for index, entry in enumerate(entries):
            if entry.extension is not None:
                operator_id = by_extension.get(entry.extension)
                if operator_id is None:
                    raise field_error(
                        "body",
                        "members",
                        f"members[{index}]: no operator has extension {entry.extension}",
                    )
            else:
                assert entry.operator_id is not None
                operator_id = entry.operator_id
                if operator_id not in live:
                    raise field_error(
                        "body", "members", f"members[{index}]: no operator {operator_id}"
                    )
            if operator_id in seen:
                raise field_error(
                    "body", "members", f"members[{index}]: the operator is listed twice"
                )
            seen.add(operator_id)
            members.append(Member(operator_id, entry.penalty))
        return members

    async def _check_overflow(
        self,
        conn: aiosqlite.Connection,
        queue_id: str,
        action: OverflowAction,
        target: str | None,
    ) -> str | None:
        """The overflow target to store: required (a live other queue, no loop) for 'queue'."""
        if action is not OverflowAction.QUEUE:
            if target is not None:
                raise field_error(
                    "body",
                    "overflow_queue_id",
                    "overflow_queue_id only applies with overflow_action 'queue'",
                )
            return None
        if target is None:
            raise field_error(
                "body", "overflow_queue_id", "overflow_action 'queue' needs overflow_queue_id"
            )
        if target == queue_id:
            raise field_error("body", "overflow_queue_id", "a queue cannot overflow into itself")
        targets = await self._queues.overflow_targets(conn)
        if target not in targets:
            raise field_error("body", "overflow_queue_id", f"queue {target} does not exist")
        # Follow the chain from the target: coming back here would bounce callers forever.
        seen = {queue_id}
        hop: str | None = target
        while hop is not None and hop not in seen:
            seen.add(hop)
            hop = targets.get(hop)
        if hop == queue_id:
            raise field_error(
                "body", "overflow_queue_id", "this overflow would make a loop of queues"
            )
        return target
