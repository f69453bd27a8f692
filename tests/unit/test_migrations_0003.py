"""Migration 0003 keys existing users by their Unicode case-folded username and email."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from callcenterd.store.db import Database, bundled_migrations


async def test_existing_users_get_casefolded_keys_and_stay_unique(tmp_path: Path) -> None:
    path = tmp_path / "v2.sqlite3"
    db = Database(path)
    await db.open()
    try:
        await db.migrate(bundled_migrations()[:2])
        conn = sqlite3.connect(path)
        conn.execute(
            "INSERT INTO users (id, username, email, name, password_hash, role,"
            " password_changed_at, created_at, updated_at)"
            " VALUES ('u1', 'Оператор', 'Ivan@Example.COM', 'Иван', 'x', 'operator', 't', 't', 't')"
        )
        conn.commit()
        conn.close()
        assert [m.version for m in await db.migrate(bundled_migrations()[:3])] == [3]
    finally:
        await db.close()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT username, username_key, email_key FROM users").fetchall() == [
        ("Оператор", "оператор", "ivan@example.com")
    ]
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute(
            "INSERT INTO users (id, username, email, name, password_hash, role,"
            " password_changed_at, created_at, updated_at, username_key, email_key)"
            " VALUES ('u2', 'ОПЕРАТОР', 'b@example.com', 'B', 'x', 'operator', 't', 't', 't',"
            " 'оператор', 'b@example.com')"
        )
