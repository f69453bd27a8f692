"""The quarter-hour rollups (migration 0005 + generated triggers) agree with the calls."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from callcenterd.store.analytics import AnalyticsStore, StatsScope, figures_query
from callcenterd.store.call_stats import Grouping, Thresholds
from callcenterd.store.db import Database

T0 = datetime(2025, 3, 10, 0, 0, tzinfo=UTC)
GROUPINGS: tuple[Grouping, ...] = ("total", "slot", "queue", "operator")
OUTCOMES = [
    ("completed", "caller_hangup"),
    ("missed", "abandoned"),
    ("missed", "timeout"),
    ("missed", "no_operator"),
    ("missed", None),  # closed by hand without a reason
    ("answered", None),
    ("incoming", None),
]


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(tmp_path / "rollup.sqlite3")
    await database.open()
    await database.migrate()
    yield database
    await database.close()


def _insert(conn: sqlite3.Connection, rng: random.Random, n: int) -> None:
    start = T0 + timedelta(seconds=rng.randrange(3 * 86400))
    status, reason = rng.choice(OUTCOMES)
    answered = status in ("answered", "completed")
    conn.execute(
        "INSERT INTO calls (id, channel_id, caller_number, operator_id, queue_id, status,"
        " reason, start_time, wait_seconds, duration, created_at, updated_at)"
        " VALUES (?, ?, '+1', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            f"c{n}",
            f"ch{n}",
            rng.choice(["o1", "o2", "o3"]) if answered else None,
            rng.choice(["q1", "q2", None]),
            status,
            reason,
            _stamp(start),
            None if status == "incoming" else round(rng.uniform(0, 60), 3),
            rng.randrange(600) if status == "completed" else None,
            _stamp(start),
            _stamp(start),
        ),
    )


async def _rows(db: Database, sql: tuple[str, list[Any]]) -> list[tuple[Any, ...]]:
    return sorted(
        tuple(round(v, 6) if isinstance(v, float) else v for v in row)
        for row in await db.fetch_all(*sql)
    )


async def _agree(db: Database, thresholds: Thresholds) -> None:
    start, end = T0 - timedelta(days=1), T0 + timedelta(days=4)
    scopes = [
        StatsScope(),
        StatsScope(queue_ids=("q1",)),
        StatsScope(operator_ids=("o2",)),
        # A group: queue q1's calls, and o1's and o3's calls wherever they came from.
        StatsScope(queue_ids=("q1",), operator_ids=("o1", "o3")),
        StatsScope(queue_ids=(), operator_ids=()),
    ]
    for scope in scopes:
        for grouping in GROUPINGS:
            rollup = figures_query(grouping, start, end, scope, thresholds, "rollup")
            index = figures_query(grouping, start, end, scope, thresholds, "index")
            assert await _rows(db, rollup) == await _rows(db, index), (grouping, scope)


async def test_rollups_follow_inserts_updates_deletes_and_threshold_changes(
    db: Database,
) -> None:
    store = AnalyticsStore(db)
    # Calls stored before the rollups existed are counted by the first build.
    rng = random.Random(4)
    conn = sqlite3.connect(db.path)
    for n in range(150):
        _insert(conn, rng, n)
    conn.commit()
    thresholds = Thresholds(20, 5)
    assert await store.prepare_rollups(thresholds) is True
    assert await store.prepare_rollups(thresholds) is False  # same definition: kept
    await _agree(db, thresholds)
    # Live writes as the dispatcher makes them: new calls; waiting calls moved to another
    # queue (overflow) or re-dated, then answered, then completed; a deletion.
    for n in range(150, 300):
        _insert(conn, rng, n)
    waiting = [row[0] for row in conn.execute("SELECT id FROM calls WHERE status = 'incoming'")]
    conn.execute("UPDATE calls SET queue_id = 'q2' WHERE id = ?", (waiting[0],))
    conn.execute("UPDATE calls SET start_time = ? WHERE id = ?", (_stamp(T0), waiting[1]))
    conn.execute(
        "UPDATE calls SET status = 'answered', operator_id = 'o1', wait_seconds = 12"
        " WHERE status = 'incoming'"
    )
    conn.execute(
        "UPDATE calls SET status = 'completed', reason = 'operator_hangup', duration = 90"
        " WHERE id IN (SELECT id FROM calls WHERE status = 'answered' LIMIT 10)"
    )
    conn.execute("UPDATE calls SET notes = 'no figure changes' WHERE id = 'c5'")
    conn.execute("DELETE FROM calls WHERE id IN ('c6', 'c7')")
    conn.commit()
    await _agree(db, thresholds)
    # New thresholds: rebuilt with the new definition.
    stricter = Thresholds(10, 3)
    assert await store.prepare_rollups(stricter) is True
    await _agree(db, stricter)
    conn.close()


async def test_windows_off_quarter_hours_read_the_calls(db: Database) -> None:
    thresholds = Thresholds(20, 5)
    group = StatsScope(queue_ids=("q1",), operator_ids=("o1",))
    day = T0 + timedelta(days=1)
    for scope in (StatsScope(), group, StatsScope(operator_ids=("o1",))):
        sql, _ = figures_query("total", T0, day, scope, thresholds)
        assert "call_stats_" in sql and "calls_stats" not in sql
        sql, _ = figures_query("total", T0 + timedelta(minutes=7), day, scope, thresholds)
        assert "calls_stats" in sql and "call_stats_" not in sql
