"""`callcenterd backup`: a consistent copy of a live database."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from callcenterd.cli import main
from callcenterd.store.db import Database


async def test_backup_copies_committed_rows_while_a_write_is_open(tmp_path: Path) -> None:
    db = Database(tmp_path / "live.sqlite3")
    await db.open()
    await db.migrate()
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO groups (id, name, created_at, updated_at) VALUES ('g1', 'A', 'x', 'x')"
        )
    # A second writer holds an open transaction: the backup sees only committed data.
    other = sqlite3.connect(tmp_path / "live.sqlite3", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute(
        "INSERT INTO groups (id, name, created_at, updated_at) VALUES ('g2', 'B', 'x', 'x')"
    )
    await db.backup(tmp_path / "copy.sqlite3")
    other.execute("ROLLBACK")
    other.close()
    await db.close()

    copy = sqlite3.connect(tmp_path / "copy.sqlite3")
    assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert copy.execute("SELECT id FROM groups").fetchall() == [("g1",)]
    assert copy.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0] >= 2
    assert not (tmp_path / "copy.sqlite3.partial").exists()


def test_backup_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CALLCENTERD_STATE_DIR", str(tmp_path / "state"))
    assert main(["migrate"]) == 0
    assert main(["backup", str(tmp_path / "out" / "backup.sqlite3")]) == 0
    assert "backed up" in capsys.readouterr().out
    copy = sqlite3.connect(tmp_path / "out" / "backup.sqlite3")
    assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
