"""Migration 0013: calls answered before call_legs existed get the leg they had, so the
operators' figures (now read from the legs) of those periods stay what they were."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from callcenterd.store.call_legs import CallLegs
from callcenterd.store.db import Database, bundled_migrations
from tests.unit.test_migrations_0004 import _add_operator, _stamp

T0 = datetime(2026, 3, 12, 8, 0, tzinfo=UTC)


def _add_call(
    conn: sqlite3.Connection, call_id: str, operator_id: str | None, talk: int | None
) -> None:
    answered = operator_id is not None
    conn.execute(
        "INSERT INTO calls (id, channel_id, caller_number, operator_id, status, reason,"
        " start_time, answer_time, end_time, duration, created_at, updated_at)"
        " VALUES (?, ?, '5551', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            call_id,
            f"ch-{call_id}",
            operator_id,
            ("completed" if talk is not None else "answered") if answered else "missed",
            "caller_hangup" if talk is not None and answered else None,
            _stamp(T0),
            _stamp(T0 + timedelta(seconds=5)) if answered else None,
            _stamp(T0 + timedelta(seconds=5 + talk)) if talk is not None else None,
            talk,
            _stamp(T0),
            _stamp(T0),
        ),
    )


async def test_answered_calls_get_their_leg_and_figures_stay(tmp_path: Path) -> None:
    path = tmp_path / "v12.sqlite3"
    db = Database(path)
    await db.open()
    try:
        await db.migrate(bundled_migrations()[:12])
        conn = sqlite3.connect(path)
        _add_operator(conn, "op-1001", T0)
        _add_call(conn, "c1", "op-1001", 60)  # completed, 60 s
        _add_call(conn, "c2", "op-1001", None)  # still talking when upgraded
        _add_call(conn, "c3", None, None)  # missed: no leg
        # c4 has its legs already (written after 0010): left alone.
        _add_call(conn, "c4", "op-1001", 30)
        conn.execute(
            "INSERT INTO call_legs (call_id, leg_id, operator_id, rung_at, answered_at,"
            " ended_at, outcome, talk_seconds) VALUES ('c4', 'c4-1', 'op-1001', ?, ?, ?,"
            " 'caller_hangup', 30)",
            (_stamp(T0), _stamp(T0 + timedelta(seconds=5)), _stamp(T0 + timedelta(seconds=35))),
        )
        conn.commit()
        assert [m.version for m in await db.migrate(bundled_migrations()[:13])] == [13]
        legs = conn.execute(
            "SELECT call_id, outcome, talk_seconds, ended_at IS NULL FROM call_legs"
            " ORDER BY call_id"
        ).fetchall()
        assert legs == [
            ("c1", "caller_hangup", 60.0, 0),
            ("c2", None, 0.0, 1),
            ("c4", "caller_hangup", 30.0, 0),
        ]
        parts = await CallLegs(db).parts_by_operator(["op-1001"], T0, T0 + timedelta(hours=1))
        assert (parts["op-1001"].answered, parts["op-1001"].finished) == (3, 2)
        assert parts["op-1001"].talk_seconds == 90.0
        conn.close()
    finally:
        await db.close()
