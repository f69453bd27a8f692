"""SQLite connection setup, the single writer, and numbered migrations.

One connection writes, under an asyncio lock, in short transactions; another
reads (WAL lets it read while the writer writes). SQL lives only in ``store/``.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence, Sized
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

from callcenterd.domain.callers import mentions_number, number_key
from callcenterd.errors import Conflict, DatabaseUnavailable, InvalidData
from callcenterd.security import private_dir, private_file, restrict

_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


def identifiers(names: Iterable[str]) -> list[str]:
    """Column names for dynamic SQL: refuse anything that is not a plain identifier."""
    checked = list(names)
    for name in checked:
        if not _IDENTIFIER.match(name):
            raise ValueError(f"not a column name: {name!r}")
    return checked


def marks(values: Sized) -> str:
    """One bound-parameter mark per value: `?, ?, ?`."""
    return ", ".join("?" * len(values))


def insert_sql(table: str, values: Mapping[str, Any]) -> tuple[str, list[Any]]:
    columns = identifiers([table, *values])[1:]
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks(columns)})",
        list(values.values()),
    )


def set_sql(changes: Mapping[str, Any]) -> tuple[str, list[Any]]:
    return ", ".join(f"{c} = ?" for c in identifiers(changes)), list(changes.values())


async def fetch_all_in(
    conn: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()
) -> list[sqlite3.Row]:
    """Every row of a query, on a connection already held (inside a transaction)."""
    async with conn.execute(sql, params) as cursor:
        return list(await cursor.fetchall())


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def bundled_migrations() -> list[Migration]:
    folder = resources.files("callcenterd.store") / "migrations"
    found = []
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise RuntimeError("migrations must be numbered 0001, 0002, ... without gaps")
    return found


def _translate(err: sqlite3.Error) -> Exception:
    """Map SQLite failures to the API's DB_* errors."""
    message = str(err)
    if isinstance(err, sqlite3.IntegrityError):
        if "UNIQUE" in message:
            return Conflict(f"Uniqueness violation: {message.split(':', 1)[-1].strip()}")
        return InvalidData(f"Constraint violated: {message}")
    if isinstance(err, sqlite3.OperationalError) and any(
        word in message for word in ("readonly", "disk", "locked", "unable to open", "I/O")
    ):
        return DatabaseUnavailable(f"Database unavailable: {message}")
    return DatabaseUnavailable(f"Database error: {message}")


def _casefold(value: object) -> object:
    return value.casefold() if isinstance(value, str) else value


def _number_key(value: object) -> object:
    return number_key(value) if isinstance(value, str) else None


def _mentions(text: object, key: object) -> int:
    return int(isinstance(text, str) and isinstance(key, str) and mentions_number(text, key))


async def _pragma(conn: aiosqlite.Connection, setting: str) -> None:
    # Step the statement to completion: a half-read PRAGMA keeps its lock.
    async with conn.execute(f"PRAGMA {setting}") as cursor:
        await cursor.fetchall()


Statement = tuple[str, Sequence[Any]]
# A step of a batch that needs the transaction's connection itself (it reads, or counts).
BatchStep = Callable[[aiosqlite.Connection], Awaitable[object]]


class WriteBatch:
    """The statements of one write transaction, collected first and then run in a single
    trip to the writer's thread (each `await conn.execute` is a trip: a thread hand-off and
    an event-loop wake-up)."""

    def __init__(self) -> None:
        self.statements: list[Statement] = []
        self.step: BatchStep | None = None

    def add(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.statements.append((sql, params))

    def then(self, step: BatchStep) -> None:
        """After the statements, in the same transaction (the outbox's enqueue_in): the
        batch then runs statement by statement on the connection, as transaction() does."""
        self.step = step


def _run_batch(conn: aiosqlite.Connection, statements: list[Statement]) -> None:
    """On the writer's thread: BEGIN IMMEDIATE, the statements, COMMIT; all or nothing."""
    raw = conn._conn  # the sqlite3 connection, used on its own thread only
    raw.execute("BEGIN IMMEDIATE")
    try:
        for sql, params in statements:
            raw.execute(sql, params)
        raw.commit()
    except BaseException:
        if raw.in_transaction:
            raw.rollback()
        raise


# Readers in WAL mode run side by side (and beside the writer), each in its own thread with
# the interpreter released while SQLite works: a month's dashboard on one does not hold up
# the call list or a token check on another.
READERS = 3


class Database:
    def __init__(self, path: Path, readers: int = READERS) -> None:
        self.path = path
        self._writer: aiosqlite.Connection | None = None
        self._readers: list[aiosqlite.Connection] = []
        self._idle_readers: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._reader_count = readers
        self._write_lock = asyncio.Lock()

    async def open(self) -> None:
        if not self.path.parent.exists():
            private_dir(self.path.parent)
        # 0600 before SQLite opens it: SQLite gives the -wal and -shm files the database's mode.
        private_file(self.path)
        try:
            self._writer = await self._connect()
            await _pragma(self._writer, "journal_mode=WAL")
            self._keep_private()
            for _ in range(self._reader_count):
                reader = await self._connect()
                self._readers.append(reader)
                self._idle_readers.put_nowait(reader)
        except sqlite3.Error as err:
            await self.close()
            raise _translate(err) from err

    def _keep_private(self) -> None:
        """The -wal and -shm files too (ones left by an older version or another umask)."""
        for suffix in ("-wal", "-shm"):
            companion = self.path.with_name(self.path.name + suffix)
            if companion.exists():
                restrict(companion)

    async def _connect(self) -> aiosqlite.Connection:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a transaction is
        # exactly the `async with db.transaction()` block.
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            # Unicode case folding for SQL (migration 0003 keys usernames and emails with it).
            await conn.create_function("casefold", 1, _casefold, deterministic=True)
            # A caller's number as it is matched (domain/callers.py): the erasure's queries.
            await conn.create_function("number_key", 1, _number_key, deterministic=True)
            await conn.create_function("mentions_number", 2, _mentions, deterministic=True)
            await _pragma(conn, "foreign_keys=ON")
            await _pragma(conn, "busy_timeout=5000")
            # NORMAL is durable in WAL mode against application crashes; on power loss the
            # last transactions may roll back, but the file is never corrupted.
            await _pragma(conn, "synchronous=NORMAL")
        except BaseException:
            # Its worker thread would otherwise outlive us and keep the process from exiting.
            await conn.close()
            raise
        return conn

    async def close(self) -> None:
        for conn in (*self._readers, self._writer):
            if conn is not None:
                await conn.close()
        self._readers, self._writer = [], None
        self._idle_readers = asyncio.Queue()

    @property
    def _w(self) -> aiosqlite.Connection:
        if self._writer is None:
            raise DatabaseUnavailable("Database is not open")
        return self._writer

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[aiosqlite.Connection]:
        """An idle reader for the block (waits while all are busy)."""
        if not self._readers:
            raise DatabaseUnavailable("Database is not open")
        conn = await self._idle_readers.get()
        try:
            yield conn
        finally:
            if conn in self._readers:  # not one closed meanwhile
                self._idle_readers.put_nowait(conn)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """The one way to write: an exclusive short transaction on the writer."""
        async with self._write_lock:
            conn = self._w
            try:
                await conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    await conn.rollback()
                    raise
                await conn.commit()
            except sqlite3.Error as err:
                if conn.in_transaction:
                    await conn.rollback()
                raise _translate(err) from err

    @asynccontextmanager
    async def batch(self) -> AsyncIterator[WriteBatch]:
        """A write transaction whose statements are collected in the block and committed
        after it in one trip (nothing is written if the block raises)."""
        batch = WriteBatch()
        yield batch
        if batch.step is not None:
            async with self.transaction() as conn:
                for sql, params in batch.statements:
                    await conn.execute(sql, params)
                await batch.step(conn)
            return
        async with self._write_lock:
            conn = self._w
            try:
                # aiosqlite runs a function on the connection's thread (its private hook:
                # the public calls are one trip per statement).
                await conn._execute(_run_batch, conn, batch.statements)  # type: ignore[no-untyped-call]
            except sqlite3.Error as err:
                raise _translate(err) from err

    async def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        try:
            async with self._reading() as conn:
                # One trip to the reader's thread (execute, fetch and close there), not three:
                # each trip costs the loop a wake-up and a GIL hand-over (~100 us of CPU).
                return list(await conn.execute_fetchall(sql, params))
        except sqlite3.Error as err:
            raise _translate(err) from err

    async def fetch_one(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        """The first row of a query of one row at most (by key, an aggregate or LIMIT 1):
        all its rows are read, in one trip to the reader's thread."""
        rows = await self.fetch_all(sql, params)
        return rows[0] if rows else None

    async def fetch_value(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = await self.fetch_one(sql, params)
        return None if row is None else row[0]

    async def check_writable(self) -> None:
        """A real write, so a read-only or full disk shows up in /readyz."""
        async with self.transaction() as conn:
            await conn.execute("UPDATE health SET checked_at = strftime('%Y-%m-%dT%H:%M:%fZ')")

    # --- migrations -------------------------------------------------------------------------
    async def backup(self, destination: Path) -> None:
        """A consistent online copy (SQLite's backup API): safe while the daemon writes."""
        destination.parent.mkdir(parents=True, exist_ok=True)
        partial = destination.with_name(destination.name + ".partial")
        partial.unlink(missing_ok=True)
        private_file(partial)  # a copy of the database: password hashes, secrets
        try:
            target = await aiosqlite.connect(partial)
            try:
                async with self._reading() as source:
                    await source.backup(target)
            finally:
                await target.close()
        except sqlite3.Error as err:
            partial.unlink(missing_ok=True)
            raise _translate(err) from err
        # Renamed only when complete: a crash never leaves a half copy under the real name.
        partial.replace(destination)

    async def schema_version(self) -> int:
        conn = self._w
        try:
            async with conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name='schema_migrations'"
            ) as cursor:
                if await cursor.fetchone() is None:
                    return 0
            async with conn.execute(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations"
            ) as cursor:
                row = await cursor.fetchone()
        except sqlite3.Error as err:
            raise _translate(err) from err
        return int(row[0]) if row else 0

    async def migrate(self, migrations: Iterable[Migration] | None = None) -> list[Migration]:
        """Apply pending migrations, each atomically; return the ones applied."""
        pending = bundled_migrations() if migrations is None else list(migrations)
        applied: list[Migration] = []
        async with self._write_lock:
            conn = self._w
            current = await self.schema_version()
            known = max((m.version for m in pending), default=0)
            if pending and current > known:
                raise DatabaseUnavailable(
                    f"Database {self.path} has schema version {current}, newer than this"
                    f" callcenterd knows ({known}): run the newer callcenterd"
                )
            for migration in pending:
                if migration.version <= current:
                    continue
                script = (
                    "BEGIN IMMEDIATE;\n"
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                    " applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ')));\n"
                    f"{migration.sql}\n"
                    f"INSERT INTO schema_migrations (version, name) "
                    f"VALUES ({migration.version}, '{migration.name}');\n"
                    "COMMIT;"
                )
                try:
                    await conn.executescript(script)
                except sqlite3.Error as err:
                    if conn.in_transaction:
                        await conn.rollback()
                    raise DatabaseUnavailable(
                        f"Migration {migration.version:04d}_{migration.name} failed: {err}"
                    ) from err
                applied.append(migration)
        return applied
