"""The retention purge (store/retention.py, services/retention.py) on a real SQLite file, and
recordings deleted through ARI's REST API served by a real aiohttp server on loopback."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from callcenterd.domain.clock import to_iso
from callcenterd.services.retention import (
    AriRecordings,
    RetentionService,
    cutoffs,
    next_run,
)
from callcenterd.settings import RetentionSettings
from callcenterd.store.analytics import AnalyticsStore, StatsScope
from callcenterd.store.call_stats import Thresholds
from callcenterd.store.db import Database
from callcenterd.store.retention import RetentionStore
from callcenterd.telephony.ari import AriEndpoint
from callcenterd.telephony.ari_client import AriClient
from callcenterd.telephony.ari_control import AriCallControl
from tests.conftest import FakeClock, free_port

NOW = datetime(2026, 6, 15, 10, 30, tzinfo=UTC)
# 30 days of call records: from the UTC midnight before NOW - 30 days.
CALL_CUTOFF = datetime(2026, 5, 16, tzinfo=UTC)
THRESHOLDS = Thresholds(20, 5)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(tmp_path / "retention.sqlite3")
    await database.open()
    await database.migrate()
    await AnalyticsStore(database).prepare_rollups(THRESHOLDS)  # the rollups' triggers
    yield database
    await database.close()


class FakeAri:
    """ARI's stored recordings: GET lists them, DELETE removes one (404 when unknown)."""

    def __init__(self, names: set[str]) -> None:
        self.stored = set(names)
        self.deletes: list[str] = []
        self.app = web.Application()
        self.app.router.add_delete("/ari/recordings/stored/{name}", self.delete)

    async def delete(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.deletes.append(name)
        if name not in self.stored:
            return web.json_response({"message": "Recording not found"}, status=404)
        self.stored.discard(name)
        return web.Response(status=204)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


async def ari_server(names: set[str]) -> tuple[FakeAri, TestServer]:
    fake = FakeAri(names)
    server = TestServer(fake.app, host="127.0.0.1")
    await server.start_server()
    return fake, server


def control_at(session: aiohttp.ClientSession, url: str) -> AriCallControl:
    return AriCallControl(AriClient(session, AriEndpoint(url, "u", "p", "callcenterd", 2.0)))


def sql(db: Database, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db.path)
    try:
        rows = conn.execute(statement, params).fetchall()
        conn.commit()
        return rows
    finally:
        conn.close()


def add_call(
    db: Database,
    call_id: str,
    start: datetime,
    *,
    status: str = "completed",
    recording: str | None = None,
    queue_id: str = "q1",
    operator_id: str | None = "o1",
) -> None:
    """A call with two timeline entries and one leg, as the call writer leaves them."""
    closed = status in ("completed", "missed")
    sql(
        db,
        "INSERT INTO calls (id, channel_id, caller_number, operator_id, queue_id, status,"
        " reason, start_time, end_time, wait_seconds, duration, recording, operators_tried,"
        " created_at, updated_at) VALUES (?, ?, '+15550100', ?, ?, ?, ?, ?, ?, 7.5, ?, ?, ?, ?, ?)",
        (
            call_id,
            f"ch-{call_id}",
            operator_id,
            queue_id,
            status,
            "caller_hangup" if closed else None,
            to_iso(start),
            to_iso(start + timedelta(minutes=2)) if closed else None,
            90 if status == "completed" else None,
            recording,
            json.dumps([operator_id] if operator_id else []),
            to_iso(start),
            to_iso(start),
        ),
    )
    for kind in ("started", "answered"):
        sql(
            db,
            "INSERT INTO call_events (call_id, at, kind, data) VALUES (?, ?, ?, '{}')",
            (call_id, to_iso(start), kind),
        )
    sql(
        db,
        "INSERT INTO call_legs (call_id, leg_id, operator_id, rung_at, answered_at, ended_at,"
        " outcome, talk_seconds) VALUES (?, ?, NULL, ?, ?, ?, 'completed', 90)",
        (call_id, f"{call_id}-1", to_iso(start), to_iso(start), to_iso(start)),
    )


def add_audit(db: Database, at: datetime) -> None:
    sql(
        db,
        "INSERT INTO audit_log (at, action, entity, changes) VALUES (?, 'update', 'queue', '{}')",
        (to_iso(at),),
    )


def add_outbox(db: Database, key: str, state: str, updated: datetime) -> None:
    sql(
        db,
        "INSERT INTO outbox (kind, recipient, idempotency_key, content, state, next_attempt_at,"
        " created_at, updated_at) VALUES ('email', 'a@example.com', ?, '{}', ?, ?, ?, ?)",
        (key, state, to_iso(updated), to_iso(updated), to_iso(updated)),
    )


def ids(db: Database, table: str, column: str = "id") -> set[Any]:
    return {row[0] for row in sql(db, f"SELECT {column} FROM {table}")}


def service(
    db: Database,
    control: AriCallControl | None,
    batch_size: int = 500,
    **days: Any,
) -> RetentionService:
    return RetentionService(
        RetentionStore(db),
        AriRecordings(lambda: control),
        RetentionSettings(batch_size=batch_size, **days),
        FakeClock(NOW),
        ZoneInfo("Europe/Berlin"),
    )


def dump(db: Database) -> dict[str, list[str]]:
    """Every row of every table, and the schema (the purge lifts a trigger for a moment)."""
    tables = [row[0] for row in sql(db, "SELECT name FROM sqlite_master WHERE type = 'table'")]
    rows = {
        table: sorted(repr(row) for row in sql(db, f"SELECT * FROM {table}")) for table in tables
    }
    rows["sqlite_master"] = sorted(repr(row) for row in sql(db, "SELECT * FROM sqlite_master"))
    return rows


# --- the cutoffs and the nightly time ---------------------------------------------------------
def test_cutoffs_count_call_records_in_whole_utc_days_and_zero_keeps_forever() -> None:
    limits = cutoffs(NOW, RetentionSettings(calls_days=30, audit_log_days=7, outbox_days=1))
    assert limits.calls == CALL_CUTOFF
    assert limits.recordings == CALL_CUTOFF  # a call's recording goes with it
    assert limits.audit_log == NOW - timedelta(days=7)
    assert limits.outbox == NOW - timedelta(days=1)
    shorter = cutoffs(NOW, RetentionSettings(calls_days=30, recordings_days=10))
    assert shorter.recordings == NOW - timedelta(days=10)
    assert cutoffs(NOW, RetentionSettings()) == cutoffs(NOW, RetentionSettings(calls_days=0))
    assert cutoffs(NOW, RetentionSettings()).calls is None


def test_next_run_is_the_next_local_hh_mm() -> None:
    berlin = ZoneInfo("Europe/Berlin")  # UTC+2 in June
    assert next_run(NOW, "03:30", berlin) == datetime(2026, 6, 16, 1, 30, tzinfo=UTC)
    assert next_run(NOW, "13:00", berlin) == datetime(2026, 6, 15, 11, 0, tzinfo=UTC)
    exactly = datetime(2026, 6, 15, 11, 0, tzinfo=UTC)
    assert next_run(exactly, "13:00", berlin) == datetime(2026, 6, 16, 11, 0, tzinfo=UTC)


# --- call records -----------------------------------------------------------------------------
async def test_calls_older_than_the_cutoff_go_with_their_events_and_legs(db: Database) -> None:
    add_call(db, "old", CALL_CUTOFF - timedelta(days=3))
    add_call(db, "just-before", CALL_CUTOFF - timedelta(microseconds=1))
    add_call(db, "at-cutoff", CALL_CUTOFF)  # exactly at the cutoff: kept
    add_call(db, "recent", NOW - timedelta(days=1))
    report = await service(db, None, calls_days=30).purge()
    assert (report.calls, report.call_events, report.call_legs) == (2, 4, 2)
    assert ids(db, "calls") == {"at-cutoff", "recent"}
    assert ids(db, "call_events", "call_id") == {"at-cutoff", "recent"}
    assert ids(db, "call_legs", "call_id") == {"at-cutoff", "recent"}
    assert ids(db, "call_operators", "call_id") == {"at-cutoff", "recent"}


async def test_purged_calls_stay_in_the_rollups_and_a_rebuild_keeps_them(db: Database) -> None:
    for n in range(6):
        add_call(db, f"old{n}", CALL_CUTOFF - timedelta(days=2, minutes=7 * n))
    add_call(db, "recent", NOW - timedelta(days=1))
    store = AnalyticsStore(db)
    window = (CALL_CUTOFF - timedelta(days=5), NOW.replace(hour=0, minute=0))
    before = await store.totals(*window, StatsScope(), THRESHOLDS)
    assert before.entered == 7
    await service(db, None, calls_days=30).purge()
    assert ids(db, "calls") == {"recent"}
    assert await store.totals(*window, StatsScope(), THRESHOLDS) == before
    by_queue = await store.by_queue(*window, StatsScope(), THRESHOLDS)
    assert by_queue["q1"] == before
    # A rebuild (new thresholds, or a lost definition) starts at the oldest call kept.
    sql(db, "DELETE FROM call_stats_definition")
    assert await store.prepare_rollups(THRESHOLDS) is True
    assert await store.totals(*window, StatsScope(), THRESHOLDS) == before


async def test_everything_purged_then_a_rebuild_keeps_the_rollups(db: Database) -> None:
    add_call(db, "old", CALL_CUTOFF - timedelta(days=2))
    await service(db, None, calls_days=30).purge()
    assert ids(db, "calls") == set()
    sql(db, "DELETE FROM call_stats_definition")
    await AnalyticsStore(db).prepare_rollups(THRESHOLDS)
    window = (CALL_CUTOFF - timedelta(days=5), CALL_CUTOFF)
    assert (await AnalyticsStore(db).totals(*window, StatsScope(), THRESHOLDS)).entered == 1


async def test_a_hand_deletion_still_lowers_the_rollups(db: Database) -> None:
    """The purge lifts the delete trigger for its own transactions only."""
    add_call(db, "old", CALL_CUTOFF - timedelta(days=2))
    add_call(db, "other", CALL_CUTOFF - timedelta(days=2))
    await service(db, None, batch_size=1, calls_days=30).purge()
    assert sql(db, "SELECT name FROM sqlite_master WHERE name = 'call_stats_delete'")
    add_call(db, "fresh", NOW - timedelta(days=1))
    sql(db, "DELETE FROM calls WHERE id = 'fresh'")
    window = (NOW - timedelta(days=2), NOW.replace(hour=0, minute=0))
    assert (await AnalyticsStore(db).totals(*window, StatsScope(), THRESHOLDS)).entered == 0


async def test_calls_are_deleted_in_batches(db: Database) -> None:
    for n in range(7):
        add_call(db, f"old{n}", CALL_CUTOFF - timedelta(days=1, minutes=n))
    store = RetentionStore(db)
    batches: list[int] = []
    original = store.delete_calls_before

    async def counted(before: datetime, limit: int) -> Any:
        found = await original(before, limit)
        batches.append(found.calls)
        return found

    store.delete_calls_before = counted  # type: ignore[method-assign]
    purge = RetentionService(
        store,
        AriRecordings(lambda: None),
        RetentionSettings(calls_days=30, batch_size=3),
        FakeClock(NOW),
        UTC,
    )
    report = await purge.purge()
    assert batches == [3, 3, 1]
    assert report.calls == 7 and ids(db, "calls") == set()


async def test_an_open_call_holds_the_purge_at_its_utc_day(db: Database) -> None:
    stuck = CALL_CUTOFF - timedelta(days=4, hours=-5)  # 05:00 UTC, four days before the cutoff
    add_call(db, "older", stuck - timedelta(days=1))
    add_call(db, "same-day", stuck - timedelta(hours=2))  # 03:00 the same UTC day
    add_call(db, "stuck", stuck, status="answered")
    add_call(db, "after", stuck + timedelta(days=1))
    report = await service(db, None, calls_days=30).purge()
    assert report.calls == 1
    # Nothing older than a call kept: the days from the open call's on stay whole.
    assert ids(db, "calls") == {"same-day", "stuck", "after"}


# --- recordings -------------------------------------------------------------------------------
async def test_a_purged_calls_recording_file_is_deleted(
    db: Database, session: aiohttp.ClientSession
) -> None:
    fake, server = await ari_server({"old", "recent"})
    try:
        add_call(db, "old", CALL_CUTOFF - timedelta(days=2), recording="old")
        add_call(db, "gone", CALL_CUTOFF - timedelta(days=2), recording="gone")  # not in ARI
        add_call(db, "recent", NOW - timedelta(days=2), recording="recent")
        control = control_at(session, str(server.make_url("")).rstrip("/"))
        report = await service(db, control, calls_days=30).purge()
        assert (report.calls, report.recordings, report.recordings_kept) == (2, 2, 0)
        assert fake.stored == {"recent"}
        assert sorted(fake.deletes) == ["gone", "old"]
        assert ids(db, "calls") == {"recent"}
    finally:
        await server.close()


async def test_a_shorter_recording_retention_keeps_the_calls(
    db: Database, session: aiohttp.ClientSession
) -> None:
    fake, server = await ari_server({"r1", "r2"})
    try:
        add_call(db, "c1", NOW - timedelta(days=12), recording="r1")
        add_call(db, "c2", NOW - timedelta(days=5), recording="r2")
        control = control_at(session, str(server.make_url("")).rstrip("/"))
        report = await service(db, control, calls_days=30, recordings_days=10).purge()
        assert (report.calls, report.recordings) == (0, 1)
        assert fake.stored == {"r2"}
        assert sql(db, "SELECT id, recording FROM calls ORDER BY id") == [
            ("c1", None),
            ("c2", "r2"),
        ]
        entries = sql(db, "SELECT kind, data FROM call_events WHERE call_id = 'c1' ORDER BY id")
        assert entries[-1] == ("recording_deleted", '{"reason":"retention"}')
        # Figures untouched: `recording` is no column the rollups' triggers watch.
        window = (NOW - timedelta(days=20), NOW.replace(hour=0, minute=0))
        counts = await AnalyticsStore(db).totals(*window, StatsScope(), THRESHOLDS)
        assert counts.entered == 2
    finally:
        await server.close()


async def test_unreachable_asterisk_keeps_recorded_calls_for_the_next_run(
    db: Database, session: aiohttp.ClientSession
) -> None:
    add_call(db, "older", CALL_CUTOFF - timedelta(days=6))
    add_call(db, "recorded", CALL_CUTOFF - timedelta(days=4, hours=-3), recording="recorded")
    add_call(db, "later", CALL_CUTOFF - timedelta(days=2))
    closed_port = control_at(session, f"http://127.0.0.1:{free_port()}")
    report = await service(db, closed_port, calls_days=30).purge()
    assert (report.calls, report.recordings, report.recordings_kept) == (1, 0, 1)
    assert ids(db, "calls") == {"recorded", "later"}
    # No ARI connection at all: the same.
    assert (await service(db, None, calls_days=30).purge()).recordings_kept == 1


# --- audit log and outbox ---------------------------------------------------------------------
async def test_audit_log_and_final_outbox_rows_older_than_their_retention(db: Database) -> None:
    audit_cutoff = NOW - timedelta(days=7)
    add_audit(db, audit_cutoff - timedelta(seconds=1))
    add_audit(db, audit_cutoff)  # exactly at the cutoff: kept
    add_audit(db, NOW)
    outbox_cutoff = NOW - timedelta(days=3)
    old = outbox_cutoff - timedelta(hours=1)
    for state in ("sent", "failed", "cancelled", "queued"):
        add_outbox(db, f"old-{state}", state, old)
    add_outbox(db, "at-cutoff", "sent", outbox_cutoff)
    add_outbox(db, "recent", "sent", NOW)
    report = await service(db, None, batch_size=2, audit_log_days=7, outbox_days=3).purge()
    assert (report.audit_log, report.outbox) == (1, 3)
    assert len(ids(db, "audit_log")) == 2
    assert ids(db, "outbox", "idempotency_key") == {"old-queued", "at-cutoff", "recent"}


async def test_nothing_configured_deletes_nothing(db: Database) -> None:
    add_call(db, "ancient", datetime(2000, 1, 1, tzinfo=UTC))
    add_audit(db, datetime(2000, 1, 1, tzinfo=UTC))
    report = await service(db, None).purge()
    assert report.counts() == dict.fromkeys(report.counts(), 0)
    assert ids(db, "calls") == {"ancient"}


# --- dry run ----------------------------------------------------------------------------------
async def test_the_dry_run_counts_and_changes_nothing(
    db: Database, session: aiohttp.ClientSession
) -> None:
    fake, server = await ari_server({"r-old", "r-mid"})
    try:
        add_call(db, "old", CALL_CUTOFF - timedelta(days=2), recording="r-old")
        add_call(db, "mid", NOW - timedelta(days=12), recording="r-mid")
        add_call(db, "recent", NOW - timedelta(days=1))
        add_audit(db, NOW - timedelta(days=40))
        add_outbox(db, "sent-old", "sent", NOW - timedelta(days=40))
        add_outbox(db, "queued-old", "queued", NOW - timedelta(days=40))
        control = control_at(session, str(server.make_url("")).rstrip("/"))
        days = {"calls_days": 30, "recordings_days": 10, "audit_log_days": 30, "outbox_days": 30}
        before = dump(db)
        dry = await service(db, control, **days).purge(dry_run=True)
        assert dump(db) == before
        assert fake.deletes == [] and fake.stored == {"r-old", "r-mid"}
        assert dry.dry_run
        expected = {
            "calls": 1,
            "call_events": 2,
            "call_legs": 1,
            "recordings": 2,
            "audit_log": 1,
            "outbox": 1,
            "recordings_kept": 0,
        }
        assert dry.counts() == expected
        # The real run deletes what the dry run announced.
        real = await service(db, control, **days).purge()
        assert real.counts() == expected and not real.dry_run
    finally:
        await server.close()


async def test_the_nightly_run_waits_for_run_at_then_purges(db: Database) -> None:
    add_call(db, "old", CALL_CUTOFF - timedelta(days=2))
    purge = service(db, None, calls_days=30, run_at="03:30")
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 2:
            raise asyncio.CancelledError  # the daemon stopping

    with pytest.raises(asyncio.CancelledError):
        await purge.nightly(sleep)
    # 10:30 UTC is 12:30 in Berlin: the next 03:30 there is 15 hours later.
    assert waits[0] == 15 * 3600
    assert ids(db, "calls") == set()  # the first night's run purged
