"""VIP callers: the list admins keep, and the priority a caller's number is given.

The list is held in memory (loaded at start, kept in step with every change), so a call's
arrival costs a dictionary lookup, not a query.
"""

from __future__ import annotations

import re

import structlog

from callcenterd.contract.routing import NUMBER_PATTERN, VipCallerIn
from callcenterd.contract.validation import field_error
from callcenterd.domain.callers import VipCaller, number_key
from callcenterd.errors import NotFound
from callcenterd.security import Clock, Principal
from callcenterd.services.context import audit
from callcenterd.store.db import Database
from callcenterd.store.vip_callers import VipCallerRepository

log = structlog.get_logger(__name__)


class VipCallers:
    def __init__(self, db: Database, repository: VipCallerRepository, clock: Clock) -> None:
        self._db = db
        self._repository = repository
        self._clock = clock
        self._priorities: dict[str, int] = {}  # number key -> priority

    async def load(self) -> None:
        self._priorities = {vip.number_key: vip.priority for vip in await self._repository.list()}

    def priority_of(self, caller_number: str) -> int:
        """The listed priority of a caller's number; 0 when not listed."""
        return self._priorities.get(number_key(caller_number), 0)

    async def list(self) -> list[VipCaller]:
        return await self._repository.list()

    async def put(self, number: str, body: VipCallerIn, actor: Principal) -> VipCaller:
        key = _key(number)
        async with self._db.transaction() as conn:
            await self._repository.put(conn, key, number, body.priority, body.note, self._clock())
            await audit(conn, self._clock(), actor, "vip_caller", "put", key, body.model_dump())
        self._priorities[key] = body.priority
        log.info("vip_caller_saved", number_key=key, priority=body.priority)
        found = await self._repository.get(key)
        assert found is not None
        return found

    async def delete(self, number: str, actor: Principal) -> None:
        key = _key(number)
        async with self._db.transaction() as conn:
            if not await self._repository.delete(conn, key):
                raise NotFound("No VIP caller with this number")
            await audit(conn, self._clock(), actor, "vip_caller", "delete", key, {})
        self._priorities.pop(key, None)


def _key(number: str) -> str:
    if not re.fullmatch(NUMBER_PATTERN, number):
        raise field_error("path", "number", "digits, with an optional leading +")
    return number_key(number)
