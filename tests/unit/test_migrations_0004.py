"""Migration 0004: the covering statistics index, and the presence log its triggers keep."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from callcenterd.store.analytics import AnalyticsStore, StatsScope, figures_query
from callcenterd.store.call_stats import Grouping, Thresholds
from callcenterd.store.db import Database, bundled_migrations

T0 = datetime(2025, 3, 12, 8, 0, tzinfo=UTC)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _add_operator(conn: sqlite3.Connection, operator_id: str, at: datetime) -> None:
    stamp = _stamp(at)
    conn.execute(
        "INSERT INTO users (id, username, email, name, password_hash, role,"
        " password_changed_at, created_at, updated_at)"
        " VALUES (?, ?, ?, 'Op', 'x', 'operator', ?, ?, ?)",
        (f"u-{operator_id}", operator_id, f"{operator_id}@example.com", stamp, stamp, stamp),
    )
    conn.execute(
        "INSERT INTO operators (id, user_id, extension, last_activity, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (operator_id, f"u-{operator_id}", operator_id[-4:], stamp, stamp, stamp),
    )


async def test_existing_operators_start_their_history_and_changes_are_logged(
    tmp_path: Path,
) -> None:
    path = tmp_path / "v3.sqlite3"
    db = Database(path)
    await db.open()
    try:
        await db.migrate(bundled_migrations()[:3])
        conn = sqlite3.connect(path)
        _add_operator(conn, "op-1001", T0)
        conn.commit()
        assert [m.version for m in await db.migrate(bundled_migrations()[:4])] == [4]

        def presence(value: str, at: datetime) -> None:
            conn.execute(
                "UPDATE operators SET presence = ?, updated_at = ? WHERE id = 'op-1001'",
                (value, _stamp(at)),
            )
            conn.commit()

        presence("online", T0 + timedelta(hours=1))
        # Writing the same presence again is not a change: no entry.
        presence("online", T0 + timedelta(hours=1, minutes=5))
        presence("paused", T0 + timedelta(hours=2))
        presence("offline", T0 + timedelta(hours=3))
        log = conn.execute("SELECT at, presence FROM operator_presence_log ORDER BY id").fetchall()
        assert [row[1] for row in log] == ["offline", "online", "paused", "offline"]
        conn.close()
        store = AnalyticsStore(db)
        # Online 1 h + paused 1 h count as logged in; a window from 30 min in to 2.5 h
        # catches 1 h online (from 1:00) and 30 min paused.
        seconds = await store.logged_in_seconds(
            ["op-1001"], T0 + timedelta(minutes=30), T0 + timedelta(hours=2, minutes=30)
        )
        assert round(seconds["op-1001"]) == 5400
        # A window inside one entry: the entry in force at its start counts.
        seconds = await store.logged_in_seconds(
            ["op-1001"], T0 + timedelta(hours=1, minutes=10), T0 + timedelta(hours=1, minutes=20)
        )
        assert round(seconds["op-1001"]) == 600
    finally:
        await db.close()


async def test_dashboard_aggregates_read_only_the_covering_index(tmp_path: Path) -> None:
    path = tmp_path / "stats.sqlite3"
    db = Database(path)
    await db.open()
    try:
        await db.migrate()
    finally:
        await db.close()
    conn = sqlite3.connect(path)
    thresholds = Thresholds(20, 5)
    groupings: tuple[Grouping, ...] = ("total", "hour", "queue", "operator")
    for grouping in groupings:
        for scope in (StatsScope(), StatsScope(("q1",), ("o1", "o2"))):
            sql, params = figures_query(
                grouping, T0, T0 + timedelta(days=7), scope, thresholds, "index"
            )
            plan = " ".join(
                str(row[-1]) for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)
            )
            assert "USING COVERING INDEX calls_stats" in plan, (grouping, plan)
    conn.close()
