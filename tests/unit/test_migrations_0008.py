"""Migration 0008: pause spells kept by triggers from the operators row, and the spells of
operators paused before it."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from callcenterd.store.analytics import AnalyticsStore
from callcenterd.store.db import Database, bundled_migrations
from callcenterd.store.operators import OperatorDirectory
from tests.unit.test_migrations_0004 import _add_operator, _stamp

T0 = datetime(2026, 3, 12, 8, 0, tzinfo=UTC)


def _spells(conn: sqlite3.Connection, operator_id: str) -> list[tuple[str, str, str | None]]:
    return conn.execute(
        "SELECT reason, started_at, ended_at FROM operator_pause_intervals"
        " WHERE operator_id = ? ORDER BY id",
        (operator_id,),
    ).fetchall()


async def test_paused_operators_start_a_spell_and_later_changes_are_kept(
    tmp_path: Path,
) -> None:
    path = tmp_path / "v7.sqlite3"
    db = Database(path)
    await db.open()
    try:
        await db.migrate(bundled_migrations()[:7])
        conn = sqlite3.connect(path)
        for operator_id in ("op-1001", "op-1002", "op-1003", "op-1004"):
            _add_operator(conn, operator_id, T0)
        # Before 0008: 1001 autopaused (its reason in status_reason only), 1002 at lunch.
        conn.execute(
            "UPDATE operators SET presence = 'paused', status_reason = 'no_answer',"
            " updated_at = ? WHERE id = 'op-1001'",
            (_stamp(T0 + timedelta(minutes=5)),),
        )
        conn.execute(
            "UPDATE operators SET presence = 'paused', presence_reason = 'lunch',"
            " updated_at = ? WHERE id = 'op-1002'",
            (_stamp(T0 + timedelta(minutes=7)),),
        )
        # 1004 paused without a reason while the phone is unreachable (what is shown).
        conn.execute(
            "UPDATE operators SET presence = 'paused', status_reason = 'unreachable',"
            " updated_at = ? WHERE id = 'op-1004'",
            (_stamp(T0 + timedelta(minutes=9)),),
        )
        conn.commit()
        assert [m.version for m in await db.migrate(bundled_migrations()[:8])] == [8]
        reasons = dict(conn.execute("SELECT id, presence_reason FROM operators").fetchall())
        # The autopause's reason moves to the presence; the shown status's stays where it is.
        assert reasons == {
            "op-1001": "no_answer",
            "op-1002": "lunch",
            "op-1003": None,
            "op-1004": None,
        }
        assert _spells(conn, "op-1004") == [("paused", _stamp(T0 + timedelta(minutes=9)), None)]
        # What the engine starts from: each pause with its own reason, never the shown one.
        directory = OperatorDirectory(db)
        profiles = {p.id: p for p in await directory.profiles()}
        assert profiles["op-1001"].pause_reason == "no_answer"
        assert profiles["op-1004"].pause_reason is None  # shown and counted as 'paused'
        assert profiles["op-1003"].pause_reason is None  # offline
        assert _spells(conn, "op-1001") == [("no_answer", _stamp(T0 + timedelta(minutes=5)), None)]
        assert _spells(conn, "op-1002") == [("lunch", _stamp(T0 + timedelta(minutes=7)), None)]
        assert _spells(conn, "op-1003") == []  # offline: no spell

        def choose(operator_id: str, presence: str, reason: str | None, minutes: int) -> None:
            conn.execute(
                "UPDATE operators SET presence = ?, presence_reason = ?, updated_at = ?"
                " WHERE id = ?",
                (presence, reason, _stamp(T0 + timedelta(minutes=minutes)), operator_id),
            )
            conn.commit()

        choose("op-1003", "online", None, 10)  # not a pause: nothing
        choose("op-1003", "paused", "training", 20)
        choose("op-1003", "paused", "training", 25)  # the same again: not a change
        choose("op-1003", "paused", "meeting", 30)  # a new reason: one spell ends, one starts
        choose("op-1003", "paused", None, 40)  # no reason: 'paused'
        choose("op-1003", "online", None, 50)
        choose("op-1003", "offline", None, 55)
        assert _spells(conn, "op-1003") == [
            ("training", _stamp(T0 + timedelta(minutes=20)), _stamp(T0 + timedelta(minutes=30))),
            ("meeting", _stamp(T0 + timedelta(minutes=30)), _stamp(T0 + timedelta(minutes=40))),
            ("paused", _stamp(T0 + timedelta(minutes=40)), _stamp(T0 + timedelta(minutes=50))),
        ]
        # Status writes (on a call, wrap-up) do not touch the spells.
        conn.execute("UPDATE operators SET status = 'busy', status_reason = 'on_call'")
        conn.commit()
        # A deleted operator's pause ends when they are deleted.
        conn.execute(
            "UPDATE operators SET deleted_at = ? WHERE id = 'op-1002'",
            (_stamp(T0 + timedelta(hours=1)),),
        )
        conn.commit()
        assert _spells(conn, "op-1002")[-1][2] == _stamp(T0 + timedelta(hours=1))
        # Brought back (an operator again) while still paused: a new spell from then.
        conn.execute(
            "UPDATE operators SET deleted_at = NULL, updated_at = ? WHERE id = 'op-1002'",
            (_stamp(T0 + timedelta(hours=4)),),
        )
        conn.commit()
        assert _spells(conn, "op-1002")[-1] == ("lunch", _stamp(T0 + timedelta(hours=4)), None)

        # A deactivated user's pause stops counting; activated again, a new spell starts.
        def activate(active: int, minutes: int) -> None:
            conn.execute(
                "UPDATE users SET is_active = ?, updated_at = ? WHERE id = 'u-op-1001'",
                (active, _stamp(T0 + timedelta(minutes=minutes))),
            )
            conn.commit()

        activate(0, 120)
        choose("op-1001", "paused", "lunch", 130)  # chosen while inactive: no spell yet
        activate(1, 180)
        assert _spells(conn, "op-1001") == [
            ("no_answer", _stamp(T0 + timedelta(minutes=5)), _stamp(T0 + timedelta(minutes=120))),
            ("lunch", _stamp(T0 + timedelta(minutes=180)), None),
        ]
        # One open spell per operator at most, whatever a writer tries.
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute(
                "INSERT INTO operator_pause_intervals (operator_id, reason, started_at)"
                " VALUES ('op-1001', 'lunch', ?)",
                (_stamp(T0),),
            )
        conn.close()

        # The store reads the spells that overlap a window, open ones too.
        store = AnalyticsStore(db)
        found = await store.pause_spells(
            ["op-1001", "op-1003"], T0 + timedelta(minutes=35), T0 + timedelta(minutes=45)
        )
        assert [(s.operator_id, s.reason, s.ended_at is None) for s in found] == [
            ("op-1001", "no_answer", False),
            ("op-1003", "meeting", False),
            ("op-1003", "paused", False),
        ]
    finally:
        await db.close()
