"""The rollups (quarter hours, 0005; days, 0006; generated triggers) agree with the calls."""

from __future__ import annotations

import itertools
import random
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from callcenterd.store.analytics import AnalyticsStore, StatsScope, figures_query
from callcenterd.store.call_stats import Grouping, Thresholds
from callcenterd.store.db import Database

T0 = datetime(2025, 3, 10, 0, 0, tzinfo=UTC)
GROUPINGS: tuple[Grouping, ...] = ("total", "hour", "queue", "operator")
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


# Whole days only (day rollups); days plus quarter-hour edges, as local midnights east and
# west of UTC give; and less than a day across midnight (quarter hours only).
WINDOWS = [
    (T0 - timedelta(days=1), T0 + timedelta(days=4)),
    (T0 + timedelta(hours=23), T0 + timedelta(days=2, hours=23)),
    (T0 + timedelta(hours=5, minutes=45), T0 + timedelta(days=1, hours=5, minutes=45)),
    (T0 + timedelta(hours=22), T0 + timedelta(hours=26, minutes=15)),
]


async def _agree(db: Database, thresholds: Thresholds) -> None:
    scopes = [
        StatsScope(),
        StatsScope(queue_ids=("q1",)),
        StatsScope(operator_ids=("o2",)),
        # A group: queue q1's calls, and o1's and o3's calls wherever they came from.
        StatsScope(queue_ids=("q1",), operator_ids=("o1", "o3")),
        StatsScope(queue_ids=(), operator_ids=()),
    ]
    for (start, end), scope, grouping in itertools.product(WINDOWS, scopes, GROUPINGS):
        rollup = figures_query(grouping, start, end, scope, thresholds, "rollup")
        index = figures_query(grouping, start, end, scope, thresholds, "index")
        assert await _rows(db, rollup) == await _rows(db, index), (start, end, grouping, scope)


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


@pytest.mark.parametrize("zone", ["Europe/Berlin", "Asia/Kathmandu", "America/St_Johns"])
async def test_local_hours_match_the_calls_across_a_dst_change(db: Database, zone: str) -> None:
    """Each call lands in the local hour it started in, rollups or not, DST or odd offsets."""
    tz = ZoneInfo(zone)
    store = AnalyticsStore(db)
    thresholds = Thresholds(20, 5)
    await store.prepare_rollups(thresholds)
    # Two days around Europe's and America's spring change (30 and 9 March 2025), every 7 min.
    first = datetime(2025, 3, 29, tzinfo=UTC)
    starts = [first + timedelta(minutes=7 * n) for n in range(2 * 24 * 60 // 7)]
    starts += [datetime(2025, 3, 9, 5, 59, tzinfo=UTC), datetime(2025, 3, 9, 6, 1, tzinfo=UTC)]
    conn = sqlite3.connect(db.path)
    for n, start in enumerate(starts):
        conn.execute(
            "INSERT INTO calls (id, channel_id, caller_number, status, start_time, created_at,"
            " updated_at) VALUES (?, ?, '+1', 'missed', ?, ?, ?)",
            (f"h{n}", f"ch{n}", _stamp(start), _stamp(start), _stamp(start)),
        )
    conn.commit()
    conn.close()
    windows = [
        (datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC)),  # the rollups
        (datetime(2025, 3, 1, 0, 7, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC)),  # the index
    ]
    for start, end in windows:
        expected = [0] * 24
        for moment in starts:
            if start <= moment < end:
                expected[moment.astimezone(tz).hour] += 1
        hours = await store.by_local_hour(start, end, StatsScope(), thresholds, tz)
        assert [hour.entered for hour in hours] == expected, (zone, start)
