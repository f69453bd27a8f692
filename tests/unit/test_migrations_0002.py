"""Migration 0002 on a database at version 1 that holds rows: nothing is lost, defaults fill in."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from callcenterd.store.db import Database, bundled_migrations

T0 = "2026-01-05T09:00:00.000000Z"


def _seed_v1(conn: sqlite3.Connection) -> None:
    conn.executescript(
        f"""
        INSERT INTO groups VALUES ('g1', 'Sales', '', '{T0}', '{T0}');
        INSERT INTO users (id, username, email, name, password_hash, role, group_id,
            password_changed_at, created_at, updated_at)
        VALUES ('u1', 'op1', 'op1@example.com', 'Op One', 'x', 'operator', 'g1', '{T0}', '{T0}',
                '{T0}'),
               ('u2', 'op2', 'op2@example.com', 'Op Two', 'x', 'operator', 'g1', '{T0}', '{T0}',
                '{T0}');
        INSERT INTO operators (id, user_id, extension, group_id, status, skills, last_activity,
            created_at, updated_at)
        VALUES ('o1', 'u1', '1001', 'g1', 'online', '["en"]', '{T0}', '{T0}', '{T0}'),
               ('o2', 'u2', '1002', 'g1', 'busy', '[]', '{T0}', '{T0}', '{T0}');
        INSERT INTO queues (id, name, description, asterisk_name, max_wait_time, priority,
            strategy, created_at, updated_at)
        VALUES ('q1', 'Main', 'main line', 'main', 120, 3, 'linear', '{T0}', '{T0}');
        INSERT INTO queue_members (queue_id, operator_id, penalty) VALUES ('q1', 'o2', 1);
        INSERT INTO queue_members (queue_id, operator_id, penalty) VALUES ('q1', 'o1', 0);
        INSERT INTO calls (id, channel_id, caller_number, operator_id, queue_id, status,
            start_time, answer_time, end_time, duration, notes, rating, created_at, updated_at)
        VALUES ('c1', 'ch-1', '+100', 'o1', 'q1', 'completed', '{T0}', '{T0}', '{T0}', 42,
                'kept', 4, '{T0}', '{T0}'),
               ('c2', 'ch-2', '+200', NULL, 'q1', 'missed', '{T0}', NULL, '{T0}', 0, NULL, NULL,
                '{T0}', '{T0}');
        INSERT INTO call_events (call_id, at, kind, operator_id, data)
        VALUES ('c1', '{T0}', 'answered', 'o1', '{{}}');
        """
    )


def _rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return [tuple(row) for row in conn.execute(sql).fetchall()]
    finally:
        conn.close()


@pytest.fixture
async def migrated(tmp_path: Path) -> Path:
    path = tmp_path / "v1.sqlite3"
    db = Database(path)
    await db.open()
    try:
        first, *_ = bundled_migrations()
        assert [m.version for m in await db.migrate([first])] == [1]
        conn = sqlite3.connect(path)
        _seed_v1(conn)
        conn.commit()
        conn.close()
        applied = await db.migrate(bundled_migrations()[:2])
        assert [m.version for m in applied] == [2]
        assert await db.schema_version() == 2
    finally:
        await db.close()
    return path


async def test_rows_survive_and_get_defaults(migrated: Path) -> None:
    assert _rows(migrated, "SELECT id, name FROM groups") == [("g1", "Sales")]
    assert _rows(migrated, "SELECT id, username FROM users ORDER BY id") == [
        ("u1", "op1"),
        ("u2", "op2"),
    ]
    # Displayed status kept; chosen presence starts offline for everyone.
    assert _rows(
        migrated, "SELECT id, status, skills, presence, presence_reason FROM operators ORDER BY id"
    ) == [("o1", "online", '["en"]', "offline", None), ("o2", "busy", "[]", "offline", None)]
    assert _rows(
        migrated,
        "SELECT name, description, asterisk_name, max_wait_time, priority, strategy, numbers,"
        " required_skills, is_default, ring_timeout, retry_delay, wrapup_seconds, join_empty,"
        " overflow_action, overflow_queue_id, music_class, deleted_at FROM queues",
    ) == [
        (
            "Main",
            "main line",
            "main",
            120,
            3,
            "linear",
            "[]",
            "[]",
            0,
            15,
            5,
            0,
            1,
            "hangup",
            None,
            "default",
            None,
        )
    ]
    # Existing members keep the order they were added in.
    assert _rows(
        migrated, "SELECT operator_id, penalty, position FROM queue_members ORDER BY position"
    ) == [("o2", 1, 0), ("o1", 0, 1)]
    assert _rows(
        migrated,
        "SELECT id, operator_id, status, duration, notes, rating, operators_tried"
        " FROM calls ORDER BY id",
    ) == [
        ("c1", "o1", "completed", 42, "kept", 4, "[]"),
        ("c2", None, "missed", 0, None, None, "[]"),
    ]
    assert _rows(migrated, "SELECT call_id, kind, operator_id FROM call_events") == [
        ("c1", "answered", "o1")
    ]
    # The who-was-rung index is filled from the answered calls already there.
    assert _rows(migrated, "SELECT operator_id, call_id FROM call_operators") == [("o1", "c1")]


async def test_new_constraints_and_triggers(migrated: Path) -> None:
    conn = sqlite3.connect(migrated)
    try:
        conn.execute("UPDATE queues SET is_default = 1 WHERE id = 'q1'")
        conn.execute(
            "INSERT INTO queues (id, name, asterisk_name, created_at, updated_at)"
            f" VALUES ('q2', 'Other', 'other', '{T0}', '{T0}')"
        )
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("UPDATE queues SET is_default = 1 WHERE id = 'q2'")
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("UPDATE queues SET overflow_action = 'elsewhere' WHERE id = 'q2'")
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("UPDATE operators SET presence = 'busy' WHERE id = 'o1'")
        # A deleted queue frees its names.
        conn.execute(f"UPDATE queues SET deleted_at = '{T0}' WHERE id = 'q2'")
        conn.execute(
            "INSERT INTO queues (id, name, asterisk_name, created_at, updated_at)"
            f" VALUES ('q3', 'Other', 'other', '{T0}', '{T0}')"
        )
        # Writers of calls need not know about call_operators: the triggers keep it.
        conn.execute(
            "INSERT INTO calls (id, channel_id, caller_number, status, start_time, created_at,"
            f" updated_at, operators_tried) VALUES ('c3', 'ch-3', '+300', 'incoming', '{T0}',"
            f" '{T0}', '{T0}', '[\"o2\"]')"
        )
        conn.execute(
            "UPDATE calls SET operators_tried = json_insert(operators_tried, '$[#]', 'o1')"
            " WHERE id = 'c3'"
        )
        conn.execute("UPDATE calls SET operator_id = 'o1', status = 'answered' WHERE id = 'c3'")
        found = conn.execute(
            "SELECT operator_id FROM call_operators WHERE call_id = 'c3' ORDER BY operator_id"
        ).fetchall()
        assert [row[0] for row in found] == ["o1", "o2"]
        # Not JSON: the row is still written, it just lists nobody.
        conn.execute(
            "INSERT INTO calls (id, channel_id, caller_number, status, start_time, created_at,"
            f" updated_at, operators_tried) VALUES ('c4', 'ch-4', '+400', 'incoming', '{T0}',"
            f" '{T0}', '{T0}', 'not json')"
        )
        assert (
            conn.execute("SELECT COUNT(*) FROM call_operators WHERE call_id = 'c4'").fetchone()[0]
            == 0
        )
    finally:
        conn.close()
