"""Erasure of a phone number (POST /api/admin/privacy/erase): removed or anonymised wherever
the daemon stored it, its calls' recordings deleted, the act written to the audit log.

The number is matched as callers are everywhere in the daemon (domain/callers.py
`number_key`: its digits, so `+7 900 123-45-67` and `79001234567` are one number). Calls,
their timelines and callbacks keep their rows (the statistics need them) with the number
replaced by `erased`; VIP entries and outbox messages addressed to the number are deleted;
what the daemon remembers in memory (VIP priorities, last-operator routing) forgets it.

Refused (409) while the number has a call in progress or a callback still to serve: the
routing engine holds the number for those and would write it again. Refused (503) when its
calls have recordings and Asterisk cannot be asked to delete them: nothing is changed then.
The audit entry names the number only by a keyed hash (HMAC-SHA256 with the daemon's secret
key: the same number gives the same hash, so two erasures of one number can be told apart
from two numbers) and its last two digits.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields

import structlog

from callcenterd.contract.privacy import ErasureRequest
from callcenterd.domain.callers import number_key
from callcenterd.errors import AsteriskUnavailable, Conflict
from callcenterd.security import Clock, Principal
from callcenterd.services.context import audit
from callcenterd.services.retention import RecordingFiles, delete_files
from callcenterd.store.db import Database
from callcenterd.store.privacy import (
    AUDIT_LOG,
    CALL_EVENTS,
    CALLBACKS,
    CALLS,
    OUTBOX,
    Erasable,
    PrivacyStore,
)
from callcenterd.store.retention import RetentionStore

log = structlog.get_logger(__name__)

# Called with the number's key once it is erased: in-memory copies forget it.
Forget = Callable[[str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ErasureReport:
    number_hash: str
    last_digits: str
    calls: int = 0
    call_events: int = 0
    callbacks: int = 0
    vip_callers: int = 0
    outbox_deleted: int = 0
    outbox_anonymised: int = 0
    audit_log: int = 0
    recordings: int = 0

    def counts(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _NAMING}


_NAMING = ("number_hash", "last_digits")


class PrivacyService:
    def __init__(
        self,
        db: Database,
        store: PrivacyStore,
        retention: RetentionStore,
        recordings: RecordingFiles,
        clock: Clock,
        hash_key: bytes,
        forget: Forget,
    ) -> None:
        self._db = db
        self._store = store
        self._retention = retention
        self._recordings = recordings
        self._clock = clock
        self._hash_key = hash_key
        self._forget = forget

    def number_hash(self, key: str) -> str:
        return hmac.new(self._hash_key, b"erasure:" + key.encode(), hashlib.sha256).hexdigest()[:32]

    async def erase(self, body: ErasureRequest, actor: Principal) -> ErasureReport:
        key = number_key(body.phone_number)
        busy = await self._store.open_activity(key)
        if busy is not None:
            what = "a call in progress" if busy == "call" else "a callback still to serve"
            raise Conflict(
                f"The number has {what}: erase it once that is over"
                + (" (cancel the callback first)" if busy == "callback" else ""),
                field="phone_number",
            )
        recordings = await self._delete_recordings(key)
        # The audit log first: its earlier entries may name the number (a VIP entry's key).
        audit_log = await self._store.rewrite(
            AUDIT_LOG, await self._store.mentioning(AUDIT_LOG, key), key
        )
        report = ErasureReport(
            number_hash=self.number_hash(key),
            last_digits=key[-2:],
            calls=await self._rewrite(CALLS, key),
            call_events=await self._rewrite(CALL_EVENTS, key),
            callbacks=await self._rewrite(CALLBACKS, key),
            vip_callers=await self._store.delete_vip(key),
            outbox_deleted=await self._store.delete_outbox_to(key),
            outbox_anonymised=await self._rewrite(OUTBOX, key),
            audit_log=audit_log,
            recordings=recordings,
        )
        await self._forget(key)
        async with self._db.transaction() as conn:
            await audit(
                conn,
                self._clock(),
                actor,
                "privacy",
                "erase",
                report.number_hash,
                {"last_digits": report.last_digits, **report.counts()},
            )
        log.info("number_erased", number_hash=report.number_hash, **report.counts())
        return report

    async def _rewrite(self, erasable: Erasable, key: str) -> int:
        return await self._store.rewrite(erasable, await self._store.mentioning(erasable, key), key)

    async def _delete_recordings(self, key: str) -> int:
        """All or nothing: a recording that cannot be deleted stops the erasure before any
        change (the admin tries again once Asterisk is reachable)."""
        call_ids = await self._store.recorded_calls(key)
        recordings = await self._retention.recordings_of_calls(call_ids)
        gone, unavailable = await delete_files(self._recordings, recordings)
        # Those already deleted are recorded as such, whatever happens next.
        await self._retention.recordings_deleted(gone, self._clock(), "erasure")
        if unavailable:
            raise AsteriskUnavailable(
                f"The recordings of this number's calls cannot be deleted ({unavailable}):"
                " nothing else was erased; try again once Asterisk is connected"
            )
        return len(gone)
