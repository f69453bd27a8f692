"""`callcenterd purge [--dry-run]` run in-process on a database of the `migrate` command."""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from callcenterd import cli
from callcenterd.domain.clock import to_iso


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean CALLCENTERD_* environment on a temporary state folder, 30 days of records."""
    for name in list(os.environ):
        if name.startswith("CALLCENTERD_") or name == "STATE_DIRECTORY":
            monkeypatch.delenv(name)
    monkeypatch.setattr(cli, "DEFAULT_CONFIG", tmp_path / "absent.toml")
    monkeypatch.setattr(cli, "configure_logging", lambda fmt, level: None)
    state_dir = tmp_path / "state"
    monkeypatch.setenv("CALLCENTERD_STATE_DIR", str(state_dir))
    monkeypatch.setenv("CALLCENTERD_RETENTION_CALLS_DAYS", "30")
    monkeypatch.setenv("CALLCENTERD_RETENTION_AUDIT_LOG_DAYS", "30")
    return state_dir


def _seed(database: Path) -> None:
    now = datetime.now(UTC)
    conn = sqlite3.connect(database)
    try:
        for call_id, age in (("old-1", 40), ("old-2", 35), ("recent", 2)):
            start = to_iso(now - timedelta(days=age))
            conn.execute(
                "INSERT INTO calls (id, channel_id, caller_number, status, reason, start_time,"
                " created_at, updated_at) VALUES (?, ?, '+15550100', 'missed', 'abandoned',"
                " ?, ?, ?)",
                (call_id, f"ch-{call_id}", start, start, start),
            )
            conn.execute(
                "INSERT INTO call_events (call_id, at, kind) VALUES (?, ?, 'started')",
                (call_id, start),
            )
        for age in (60, 1):
            conn.execute(
                "INSERT INTO audit_log (at, action, entity) VALUES (?, 'update', 'queue')",
                (to_iso(now - timedelta(days=age)),),
            )
        conn.commit()
    finally:
        conn.close()


def _counts(database: Path) -> tuple[int, int, int]:
    conn = sqlite3.connect(database)
    try:
        return tuple(  # type: ignore[return-value]
            conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("calls", "call_events", "audit_log")
        )
    finally:
        conn.close()


def test_purge_dry_run_prints_the_counts_and_changes_nothing(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["migrate"]) == 0
    database = state / "callcenterd.sqlite3"
    _seed(database)
    capsys.readouterr()
    assert cli.main(["purge", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would delete" in out
    assert "calls        2 (older than 30 days)" in out
    assert "call_events  2" in out
    assert "audit_log    1 (older than 30 days)" in out
    assert "outbox       0 (kept forever)" in out
    assert _counts(database) == (3, 3, 2)


def test_purge_deletes_and_prints_what_it_deleted(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["migrate"]) == 0
    database = state / "callcenterd.sqlite3"
    _seed(database)
    capsys.readouterr()
    assert cli.main(["purge"]) == 0
    out = capsys.readouterr().out
    assert "deleted:" in out and "calls        2" in out and "audit_log    1" in out
    assert _counts(database) == (1, 1, 1)
    # The rollups were built before: the purged calls are still counted there.
    conn = sqlite3.connect(database)
    try:
        assert conn.execute("SELECT TOTAL(entered) FROM call_stats_queue_day").fetchone() == (3.0,)
    finally:
        conn.close()
    # Nothing left to purge: a second run deletes nothing, and still exits 0.
    assert cli.main(["purge"]) == 0
    assert "calls        0" in capsys.readouterr().out
