"""Retention: what is older than its kind's retention goes, nightly or by `callcenterd purge`.

Kinds (settings [retention], days; 0 keeps forever):
- call records: the calls with their timeline, legs and who-was-rung index, from the UTC
  midnight before `now - calls_days` (whole days: the rollups' day, see store/retention.py),
  and their recordings, files included;
- recordings alone, when `recordings_days` is shorter: the file deleted in Asterisk, the
  call's recording name cleared, a `recording_deleted` timeline entry; the call stays;
- the audit log, and the outbox's messages in a final state (sent, failed, cancelled).

Past statistics stay right: every call figure of the dashboards, the call and queue
statistics and the forecasts is read from the rollups, which a purge does not touch. What
still reads call rows covers the calls kept only: an operator's legs (calls answered, talk,
hold, occupancy), the calls they were offered and rang unanswered, their ratings and first-call
resolution, and any window not on quarter hours (read from the calls' index).

A call is never purged while open, nor while its recording could not be deleted (Asterisk
unreachable): the purge then stops at the UTC day of the oldest such call, so no call older
than one it deleted stays behind (the rollups' rebuild relies on that), and it goes at a
later run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, fields
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Protocol

import structlog

from callcenterd.security import Clock
from callcenterd.settings import RetentionSettings
from callcenterd.store.retention import CallsPurged, RetentionStore, StoredRecording
from callcenterd.telephony.call_control import CallControl
from callcenterd.telephony.errors import AriNotFound, TelephonyError

log = structlog.get_logger(__name__)


class RecordingsUnavailable(Exception):
    """The recordings' store (Asterisk) cannot be asked now: the recordings stay."""


class RecordingFiles(Protocol):
    """Where recordings live: deleting one removes its file."""

    async def delete(self, name: str) -> bool:
        """True: deleted; False: there was none by that name. RecordingsUnavailable: it
        could not be asked."""
        ...


class AriRecordings:
    """Recordings stored by Asterisk (`POST /bridges/{id}/record` names them by call id),
    deleted through ARI: `DELETE /ari/recordings/stored/{name}` removes the file.

    `control` answers the ARI connection to ask (the daemon's link; the command line's own),
    None while there is none."""

    def __init__(self, control: Callable[[], CallControl | None]) -> None:
        self._control = control

    async def delete(self, name: str) -> bool:
        control = self._control()
        if control is None:
            raise RecordingsUnavailable("ARI is not connected")
        try:
            await control.delete_recording(name)
        except AriNotFound:
            return False
        except TelephonyError as err:
            raise RecordingsUnavailable(str(err)) from err
        return True


@dataclass(frozen=True, slots=True)
class PurgeReport:
    """Rows (and recordings) of each kind a purge deleted, or would delete (dry run)."""

    dry_run: bool
    calls: int = 0
    call_events: int = 0
    call_legs: int = 0
    recordings: int = 0
    audit_log: int = 0
    outbox: int = 0
    # Recordings left because Asterisk could not be asked (their calls stay too).
    recordings_kept: int = 0

    def counts(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "dry_run"}


@dataclass(frozen=True, slots=True)
class Cutoffs:
    """Before when each kind goes; None: kept forever."""

    calls: datetime | None
    recordings: datetime | None
    audit_log: datetime | None
    outbox: datetime | None


def utc_day_start(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def cutoffs(now: datetime, retention: RetentionSettings) -> Cutoffs:
    def before(days: int) -> datetime | None:
        return now - timedelta(days=days) if days else None

    calls = before(retention.calls_days)
    recordings = before(retention.recordings_days)
    if calls is not None:
        calls = utc_day_start(calls)
        # A call's recording goes with it at the latest.
        recordings = calls if recordings is None else max(recordings, calls)
    return Cutoffs(
        calls, recordings, before(retention.audit_log_days), before(retention.outbox_days)
    )


def next_run(now: datetime, run_at: str, tz: tzinfo) -> datetime:
    """The next HH:MM (local, in `tz`) strictly after `now`."""
    hours, minutes = (int(part) for part in run_at.split(":"))
    local = now.astimezone(tz)
    candidate = datetime.combine(local.date(), time(hours, minutes), tz)
    while candidate <= local:
        candidate = datetime.combine(candidate.date() + timedelta(days=1), time(hours, minutes), tz)
    return candidate.astimezone(UTC)


class RetentionService:
    def __init__(
        self,
        store: RetentionStore,
        recordings: RecordingFiles,
        retention: RetentionSettings,
        clock: Clock,
        tz: tzinfo,
    ) -> None:
        self._store = store
        self._recordings = recordings
        self._retention = retention
        self._clock = clock
        self._tz = tz
        self._batch = retention.batch_size
        self._running = asyncio.Lock()

    async def purge(self, *, dry_run: bool = False) -> PurgeReport:
        """Delete (or, dry run, count) what each kind's retention says is too old."""
        async with self._running:  # the nightly run and a request never overlap
            now = self._clock()
            limits = cutoffs(now, self._retention)
            if dry_run:
                return await self._count(limits)
            recordings = kept = 0
            if limits.recordings is not None:
                recordings, kept = await self._delete_recordings(
                    limits.recordings, now, limits.calls
                )
            calls = CallsPurged()
            if limits.calls is not None:
                calls = await self._delete_calls(limits.calls)
            audit = outbox = 0
            if limits.audit_log is not None:
                audit = await self._repeat(self._store.delete_audit_before, limits.audit_log)
            if limits.outbox is not None:
                outbox = await self._repeat(self._store.delete_outbox_before, limits.outbox)
            report = PurgeReport(
                False, calls.calls, calls.events, calls.legs, recordings, audit, outbox, kept
            )
            log.info("retention_purged", **report.counts())
            return report

    async def _count(self, limits: Cutoffs) -> PurgeReport:
        calls = CallsPurged()
        if limits.calls is not None:
            # As the real run would go, every recording deleted: only open calls hold it up.
            calls = await self._store.count_calls_before(
                await self._horizon(limits.calls, with_recordings=False)
            )
        return PurgeReport(
            True,
            calls.calls,
            calls.events,
            calls.legs,
            await self._counted(self._store.count_recordings_before, limits.recordings),
            await self._counted(self._store.count_audit_before, limits.audit_log),
            await self._counted(self._store.count_outbox_before, limits.outbox),
        )

    @staticmethod
    async def _counted(count: Callable[[datetime], Awaitable[int]], before: datetime | None) -> int:
        return 0 if before is None else await count(before)

    async def _horizon(self, cutoff: datetime, *, with_recordings: bool) -> datetime:
        """Where the call purge stops: the cutoff, or the UTC day of the oldest call before
        it that must stay (open, or its recording still stored)."""
        oldest = await self._store.oldest_kept_call_before(cutoff, with_recordings=with_recordings)
        return cutoff if oldest is None else min(cutoff, utc_day_start(oldest))

    async def _delete_calls(self, cutoff: datetime) -> CallsPurged:
        horizon = await self._horizon(cutoff, with_recordings=True)
        total = CallsPurged()
        while True:
            batch = await self._store.delete_calls_before(horizon, self._batch)
            total += batch
            if batch.calls < self._batch:
                return total
            await asyncio.sleep(0)  # writers waiting for the lock go first

    async def _delete_recordings(
        self, before: datetime, now: datetime, calls_before: datetime | None
    ) -> tuple[int, int]:
        """Files first (outside any transaction), then their names cleared in one short one.
        Stops at the first recording Asterisk cannot be asked about: (deleted, left)."""
        deleted = 0
        while True:
            batch = await self._store.recordings_before(before, self._batch)
            gone, unavailable = await delete_files(self._recordings, batch)
            await self._store.recordings_deleted(gone, now, "retention", calls_before)
            deleted += len(gone)
            if unavailable:
                left = await self._store.count_recordings_before(before)
                log.warning("retention_recordings_left", left=left, error=unavailable)
                return deleted, left
            if len(batch) < self._batch:
                return deleted, 0
            await asyncio.sleep(0)

    async def _repeat(
        self, delete: Callable[[datetime, int], Awaitable[int]], before: datetime
    ) -> int:
        total = 0
        while True:
            n = await delete(before, self._batch)
            total += n
            if n < self._batch:
                return total
            await asyncio.sleep(0)

    # --- the nightly run ------------------------------------------------------------------------
    async def nightly(self, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        """Purge every night at `run_at` (local time), for as long as the daemon runs."""
        while True:
            now = self._clock()
            due = next_run(now, self._retention.run_at, self._tz)
            await sleep(max(0.0, (due - now).total_seconds()))
            try:
                await self.purge()
            except Exception:
                # Tomorrow is another run: a failing purge must not stop the daemon's others.
                log.exception("retention_purge_failed")


async def delete_files(
    files: RecordingFiles, recordings: Iterable[StoredRecording]
) -> tuple[list[str], str | None]:
    """Delete each recording's file: the call ids whose recording is gone (deleted, or
    already missing), and why the rest could not be (None: no failure)."""
    gone: list[str] = []
    for recording in recordings:
        try:
            await files.delete(recording.name)
        except RecordingsUnavailable as err:
            return gone, str(err) or "recordings unavailable"
        gone.append(recording.call_id)
    return gone, None
