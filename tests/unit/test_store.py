"""The SQLite store: migrations, transactions, error mapping, and a database it cannot write."""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import aiosqlite
import pytest

from callcenterd.errors import Conflict, DatabaseUnavailable, InvalidData
from callcenterd.store.db import Database, Migration, bundled_migrations
from tests.eventually import eventually

NOW = "2026-11-28T12:00:00.000000Z"
CORE_TABLES = {
    "schema_migrations",
    "health",
    "groups",
    "users",
    "operators",
    "queues",
    "queue_members",
    "calls",
    "call_events",
    "system_settings",
    "revoked_tokens",
    "audit_log",
}


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "callcenterd.sqlite3"


@pytest.fixture
async def db(db_path: Path) -> AsyncIterator[Database]:
    database = Database(db_path)
    await database.open()
    await database.migrate()
    yield database
    await database.close()


def _raw(path: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Read the file with a separate, plain sqlite3 connection (committed data only)."""
    conn = sqlite3.connect(path)
    try:
        return list(conn.execute(sql, params).fetchall())
    finally:
        conn.close()


def _tables(path: Path) -> set[str]:
    rows = _raw(path, "SELECT name FROM sqlite_master WHERE type = 'table'")
    return {str(row[0]) for row in rows if not str(row[0]).startswith("sqlite_")}


def _wal_file(path: Path) -> Path:
    return path.with_name(path.name + "-wal")


def _declared_tables() -> set[str]:
    names: set[str] = set()
    for migration in bundled_migrations():
        names |= set(re.findall(r"CREATE TABLE (?:IF NOT EXISTS )?(\w+)", migration.sql))
    return names


async def _add_group(db: Database, group_id: str, name: str) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO groups (id, name, created_at, updated_at) VALUES (?, ?, ?, ?)",
            (group_id, name, NOW, NOW),
        )


async def _group_names(db: Database) -> list[str]:
    return [row["name"] for row in await db.fetch_all("SELECT name FROM groups ORDER BY name")]


def _latest() -> int:
    return bundled_migrations()[-1].version


# --- migrations ----------------------------------------------------------------------------
def test_bundled_migrations_are_numbered_without_gaps() -> None:
    migrations = bundled_migrations()
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert migrations[0].name == "initial"
    assert all(m.sql.strip() for m in migrations)


async def test_migrations_on_an_empty_database(db_path: Path) -> None:
    db = Database(db_path)
    await db.open()
    try:
        assert await db.schema_version() == 0
        applied = await db.migrate()
        assert [m.version for m in applied] == [m.version for m in bundled_migrations()]
        assert await db.schema_version() == _latest()
        rows = await db.fetch_all("SELECT version, name, applied_at FROM schema_migrations")
        assert [(r["version"], r["name"]) for r in rows] == [
            (m.version, m.name) for m in bundled_migrations()
        ]
        assert all(r["applied_at"].endswith("Z") for r in rows)
        # Foreign keys are enforced on the connections the daemon uses.
        assert await db.fetch_value("PRAGMA foreign_keys") == 1
        async with db.transaction() as conn, conn.execute("PRAGMA foreign_keys") as cursor:
            assert [tuple(row) for row in await cursor.fetchall()] == [(1,)]
        with pytest.raises(InvalidData) as caught:
            async with db.transaction() as conn:
                await conn.execute(
                    "INSERT INTO users (id, username, email, name, password_hash, role, group_id,"
                    " password_changed_at, created_at, updated_at)"
                    " VALUES ('u1', 'x', 'x@example.com', 'X', 'h', 'admin', 'no-such-group',"
                    " ?, ?, ?)",
                    (NOW, NOW, NOW),
                )
        assert "FOREIGN KEY" in caught.value.detail
        assert caught.value.code == "DB_003"
    finally:
        await db.close()
    tables = _tables(db_path)
    assert tables >= CORE_TABLES
    assert _declared_tables() | {"schema_migrations"} <= tables
    # WAL is a property of the file: a fresh connection sees it too.
    assert _raw(db_path, "PRAGMA journal_mode") == [("wal",)]
    assert _raw(db_path, "SELECT COUNT(*) FROM health") == [(1,)]


async def test_migrating_an_up_to_date_database_applies_nothing(db_path: Path) -> None:
    db = Database(db_path)
    await db.open()
    await db.migrate()
    await _add_group(db, "g1", "Sales")
    await _add_group(db, "g2", "Support")
    await db.close()
    before = _raw(db_path, "SELECT version, name, applied_at FROM schema_migrations")

    reopened = Database(db_path)
    await reopened.open()
    try:
        assert await reopened.migrate() == []
        assert await reopened.migrate() == []
        assert await reopened.schema_version() == _latest()
        assert await _group_names(reopened) == ["Sales", "Support"]
    finally:
        await reopened.close()
    assert _raw(db_path, "SELECT version, name, applied_at FROM schema_migrations") == before


async def test_a_new_migration_applies_only_itself_and_keeps_data(db: Database) -> None:
    await _add_group(db, "g1", "Sales")
    n = _latest()
    extra = Migration(n + 1, "group_colour", "ALTER TABLE groups ADD COLUMN colour TEXT;")
    applied = await db.migrate([*bundled_migrations(), extra])
    assert applied == [extra]
    assert await db.schema_version() == n + 1
    row = await db.fetch_one("SELECT name, colour FROM groups WHERE id = 'g1'")
    assert row is not None
    assert (row["name"], row["colour"]) == ("Sales", None)


async def test_a_failing_migration_rolls_back_completely(db: Database, db_path: Path) -> None:
    await _add_group(db, "g1", "Sales")
    n = _latest()
    broken = Migration(
        n + 1,
        "broken",
        # Statements that succeed, then one that fails: none of it may remain.
        "CREATE TABLE half_done (x INTEGER);\n"
        "INSERT INTO half_done VALUES (1);\n"
        "UPDATE groups SET name = 'Renamed';\n"
        "INSERT INTO no_such_table VALUES (1);\n",
    )
    with pytest.raises(DatabaseUnavailable) as caught:
        await db.migrate([*bundled_migrations(), broken])
    assert f"{n + 1:04d}_broken" in caught.value.detail
    assert "no_such_table" in caught.value.detail
    assert caught.value.code == "DB_001"
    assert await db.schema_version() == n
    assert await _group_names(db) == ["Sales"]
    assert "half_done" not in _tables(db_path)
    assert _raw(db_path, "SELECT MAX(version) FROM schema_migrations") == [(n,)]
    # The writer is free again and not stuck in a transaction.
    await _add_group(db, "g2", "Support")
    assert await _group_names(db) == ["Sales", "Support"]
    # The fixed migration applies later.
    fixed = Migration(n + 1, "fixed", "CREATE TABLE half_done (x INTEGER);")
    assert await db.migrate([*bundled_migrations(), fixed]) == [fixed]


async def test_migrations_before_a_failing_one_stay_applied(db: Database, db_path: Path) -> None:
    n = _latest()
    good = Migration(n + 1, "good", "CREATE TABLE good_one (x INTEGER);")
    bad = Migration(n + 2, "bad", "CREATE TABLE bad_one (x INTEGER); SELEC 1;")
    with pytest.raises(DatabaseUnavailable, match=f"{n + 2:04d}_bad"):
        await db.migrate([*bundled_migrations(), good, bad])
    assert await db.schema_version() == n + 1
    tables = _tables(db_path)
    assert "good_one" in tables
    assert "bad_one" not in tables


async def test_a_database_newer_than_the_code_is_refused(db: Database) -> None:
    n = _latest()
    await db.migrate([*bundled_migrations(), Migration(n + 1, "future", "SELECT 1;")])
    # An older callcenterd (one that knows only the bundled migrations) must not run on it.
    with pytest.raises(DatabaseUnavailable, match="newer than this callcenterd knows"):
        await db.migrate()
    assert await db.schema_version() == n + 1


async def test_an_empty_migration_list_applies_nothing(db_path: Path) -> None:
    db = Database(db_path)
    await db.open()
    try:
        assert await db.migrate([]) == []
        assert await db.schema_version() == 0
    finally:
        await db.close()


# --- transactions and errors ---------------------------------------------------------------
async def test_transaction_rolls_back_on_exception(db: Database) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with db.transaction() as conn:
            await conn.execute(
                "INSERT INTO groups (id, name, created_at, updated_at)"
                " VALUES ('g1', 'Sales', ?, ?)",
                (NOW, NOW),
            )
            raise Boom()
    assert await _group_names(db) == []
    # The lock was released and the connection is usable.
    await _add_group(db, "g1", "Sales")
    assert await _group_names(db) == ["Sales"]


async def test_transaction_rolls_back_on_a_failing_statement(db: Database) -> None:
    with pytest.raises(DatabaseUnavailable):
        async with db.transaction() as conn:
            await conn.execute(
                "INSERT INTO groups (id, name, created_at, updated_at)"
                " VALUES ('g1', 'Sales', ?, ?)",
                (NOW, NOW),
            )
            await conn.execute("UPDATE no_such_table SET x = 1")
    assert await _group_names(db) == []


_INSERT_GROUP = "INSERT INTO groups (id, name, created_at, updated_at) VALUES (?, ?, ?, ?)"


async def test_a_batch_commits_its_statements_together(db: Database) -> None:
    async with db.batch() as tx:
        tx.add(_INSERT_GROUP, ("g1", "Sales", NOW, NOW))
        tx.add(_INSERT_GROUP, ("g2", "Support", NOW, NOW))
        assert await _group_names(db) == []  # nothing is written before the block ends
    assert await _group_names(db) == ["Sales", "Support"]


async def test_a_batch_with_a_failing_statement_writes_nothing(db: Database) -> None:
    with pytest.raises(Conflict):
        async with db.batch() as tx:
            tx.add(_INSERT_GROUP, ("g1", "Sales", NOW, NOW))
            tx.add(_INSERT_GROUP, ("g2", "SALES", NOW, NOW))  # the name index: case-insensitive
    assert await _group_names(db) == []
    with pytest.raises(DatabaseUnavailable):
        async with db.batch() as tx:
            tx.add(_INSERT_GROUP, ("g1", "Sales", NOW, NOW))
            tx.add("UPDATE no_such_table SET x = 1")
    assert await _group_names(db) == []
    await _add_group(db, "g1", "Sales")  # the writer is free and not inside a transaction
    assert await _group_names(db) == ["Sales"]


async def test_a_batch_step_runs_in_the_same_transaction(db: Database) -> None:
    class Boom(Exception):
        pass

    async def step(conn: aiosqlite.Connection) -> None:
        await conn.execute(_INSERT_GROUP, ("g2", "Support", NOW, NOW))
        raise Boom()

    with pytest.raises(Boom):
        async with db.batch() as tx:
            tx.add(_INSERT_GROUP, ("g1", "Sales", NOW, NOW))
            tx.then(step)
    assert await _group_names(db) == []

    async def good_step(conn: aiosqlite.Connection) -> None:
        await conn.execute(_INSERT_GROUP, ("g2", "Support", NOW, NOW))

    async with db.batch() as tx:
        tx.add(_INSERT_GROUP, ("g1", "Sales", NOW, NOW))
        tx.then(good_step)
    assert await _group_names(db) == ["Sales", "Support"]


async def test_transaction_commits_and_readers_see_only_committed_data(db: Database) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO groups (id, name, created_at, updated_at) VALUES ('g1', 'Sales', ?, ?)",
            (NOW, NOW),
        )
        # WAL: the reader connection does not see the open transaction's write.
        assert await _group_names(db) == []
    assert await _group_names(db) == ["Sales"]


async def test_writes_are_serialised(db: Database) -> None:
    async def add(i: int) -> None:
        await _add_group(db, f"g{i}", f"Group {i:02d}")

    await asyncio.gather(*(add(i) for i in range(20)))
    assert len(await _group_names(db)) == 20


async def test_unique_violation_maps_to_db_004(db: Database) -> None:
    await _add_group(db, "g1", "Sales")
    with pytest.raises(Conflict) as caught:
        await _add_group(db, "g2", "SALES")  # the index is case-insensitive
    assert caught.value.code == "DB_004"
    assert caught.value.status == 409
    assert "groups.name" in caught.value.detail
    with pytest.raises(Conflict):
        await _add_group(db, "g1", "Other")  # primary key
    assert await _group_names(db) == ["Sales"]


async def test_check_constraint_maps_to_db_003(db: Database) -> None:
    with pytest.raises(InvalidData) as caught:
        async with db.transaction() as conn:
            await conn.execute(
                "INSERT INTO users (id, username, email, name, password_hash, role,"
                " password_changed_at, created_at, updated_at)"
                " VALUES ('u1', 'x', 'x@example.com', 'X', 'h', 'pope', ?, ?, ?)",
                (NOW, NOW, NOW),
            )
    assert caught.value.code == "DB_003"


async def test_a_closed_database_is_unavailable(db_path: Path) -> None:
    db = Database(db_path)
    with pytest.raises(DatabaseUnavailable):
        await db.fetch_value("SELECT 1")
    with pytest.raises(DatabaseUnavailable):
        async with db.transaction():
            pass


# --- a database the daemon cannot write or open ---------------------------------------------
def _worker_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if "connection_worker" in t.name}


async def _assert_no_thread_leak(before: set[threading.Thread]) -> None:
    def ended() -> None:
        leaked = _worker_threads() - before
        assert not leaked, f"aiosqlite worker threads leaked: {leaked}"

    await eventually(ended, within=2.0)


async def test_a_file_that_is_not_a_database_is_unavailable_and_leaks_nothing(
    tmp_path: Path,
) -> None:
    # A leaked aiosqlite thread keeps the process alive: the daemon would hang instead of
    # exiting with an error (systemd would wait for its stop timeout).
    path = tmp_path / "garbage.sqlite3"
    path.write_bytes(b"this is not an SQLite database " * 200)
    before = _worker_threads()
    db = Database(path)
    with pytest.raises(DatabaseUnavailable) as caught:
        await db.open()
    assert caught.value.code == "DB_001"
    assert "not a database" in caught.value.detail
    await _assert_no_thread_leak(before)


@contextmanager
def read_only_file(*paths: Path) -> Iterator[str]:
    """Make files truly read-only for this process, even as root.

    Not root: chmod 0444 is enough. Root ignores file modes, so the immutable attribute
    (chattr +i, CAP_LINUX_IMMUTABLE) is used instead: open(O_RDWR) then fails with EPERM
    for root too, and SQLite falls back to a read-only connection, exactly as for a file
    the daemon's user may not write.
    """
    existing = [p for p in paths if p.exists()]
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in existing}
        for p in existing:
            p.chmod(0o444)
        try:
            yield "chmod 0444"
        finally:
            for p, mode in modes.items():
                p.chmod(mode)
        return
    done: list[Path] = []
    try:
        for p in existing:
            result = subprocess.run(["chattr", "+i", str(p)], capture_output=True, check=False)
            if result.returncode != 0:
                pytest.skip(f"cannot make {p} immutable: {result.stderr.decode().strip()}")
            done.append(p)
        try:
            with p.open("r+b"):
                pass
        except PermissionError:
            pass
        else:
            pytest.skip("chattr +i did not make the file read-only here")
        yield "chattr +i"
    finally:
        for p in done:
            subprocess.run(["chattr", "-i", str(p)], check=False)


async def test_a_read_only_database_file_gives_db_001(db_path: Path) -> None:
    db = Database(db_path)
    await db.open()
    await db.migrate()
    await _add_group(db, "g1", "Sales")
    await db.close()  # a clean close checkpoints: the data is all in the main file
    assert not _wal_file(db_path).exists()

    with read_only_file(db_path):
        readonly = Database(db_path)
        await readonly.open()
        try:
            # Reads work, and a database already at the current version needs no write...
            assert await readonly.migrate() == []
            assert await _group_names(readonly) == ["Sales"]
            # ...but every write is refused as DB_001, which /readyz reports.
            with pytest.raises(DatabaseUnavailable) as caught:
                await readonly.check_writable()
            assert caught.value.code == "DB_001"
            assert caught.value.status == 503
            assert "readonly" in caught.value.detail
            with pytest.raises(DatabaseUnavailable):
                await _add_group(readonly, "g2", "Support")
            # A pending migration cannot be applied either.
            extra = Migration(_latest() + 1, "extra", "CREATE TABLE extra (x INTEGER);")
            with pytest.raises(DatabaseUnavailable, match="_extra failed"):
                await readonly.migrate([*bundled_migrations(), extra])
            assert await _group_names(readonly) == ["Sales"]
        finally:
            await readonly.close()


@contextmanager
def read_only_mount(folder: Path) -> Iterator[None]:
    """Bind-mount `folder` onto itself read-only (needs CAP_SYS_ADMIN), like a disk that
    the kernel remounted read-only after errors."""
    bind = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True)
    if bind.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {bind.stderr.decode().strip()}")
    try:
        remount = subprocess.run(
            ["mount", "-o", "remount,bind,ro", str(folder)], capture_output=True
        )
        if remount.returncode != 0:
            pytest.skip(f"cannot remount read-only here: {remount.stderr.decode().strip()}")
        yield
    finally:
        if subprocess.run(["umount", str(folder)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(folder)], check=False)


async def test_a_database_on_a_read_only_filesystem_fails_to_open_cleanly(
    db_path: Path,
) -> None:
    db = Database(db_path)
    await db.open()
    await db.migrate()
    await db.close()
    before = _worker_threads()
    with read_only_mount(db_path.parent):
        # WAL needs its -shm file next to the database: on a read-only file system SQLite
        # cannot even read. The daemon must say so and exit, not hang on a leaked thread.
        with pytest.raises(DatabaseUnavailable) as caught:
            await Database(db_path).open()
        assert caught.value.code == "DB_001"
        await _assert_no_thread_leak(before)
