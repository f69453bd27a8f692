"""Users, their groups and their operator rows."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiosqlite

from callcenterd.domain.clock import from_iso, to_iso
from callcenterd.domain.users import Group, Operator, OperatorStatus, Role, User
from callcenterd.store.db import Database, insert_sql, set_sql

_USER_COLUMNS = (
    "id, username, email, name, role, group_id, is_active, token_generation, password_hash,"
    " created_at, updated_at, lf.locked_until,"
    # The user's own phone: an operator's is on their operator row (routing reads it there),
    # anyone else's on the user row (migration 0009).
    " COALESCE((SELECT o.extension FROM operators AS o"
    " WHERE o.user_id = users.id AND o.deleted_at IS NULL), users.extension) AS extension,"
    " (SELECT o.id FROM operators AS o WHERE o.user_id = users.id AND o.deleted_at IS NULL)"
    " AS operator_id"
)
# A user with the lock of their name beside them (the row of the name tried at login).
_USERS = "users LEFT JOIN login_failures AS lf ON lf.username_key = users.username_key"
_OPERATOR_COLUMNS = (
    "id, user_id, extension, group_id, status, status_reason, max_concurrent_calls,"
    " last_activity, created_at, skills"
)


def _user(row: sqlite3.Row) -> User:
    return User(
        id=row["id"],
        username=row["username"],
        email=row["email"],
        name=row["name"],
        role=Role(row["role"]),
        group_id=row["group_id"],
        is_active=bool(row["is_active"]),
        token_generation=row["token_generation"],
        password_hash=row["password_hash"],
        created_at=from_iso(row["created_at"]),
        updated_at=from_iso(row["updated_at"]),
        locked_until=from_iso(row["locked_until"]) if row["locked_until"] else None,
        extension=row["extension"],
        operator_id=row["operator_id"],
    )


def _operator(row: sqlite3.Row) -> Operator:
    return Operator(
        id=row["id"],
        user_id=row["user_id"],
        extension=row["extension"],
        group_id=row["group_id"],
        status=OperatorStatus(row["status"]),
        status_reason=row["status_reason"],
        max_concurrent_calls=row["max_concurrent_calls"],
        last_activity=from_iso(row["last_activity"]),
        created_at=from_iso(row["created_at"]),
        skills=tuple(json.loads(row["skills"])),
    )


def _group(row: sqlite3.Row) -> Group:
    return Group(
        id=row["id"],
        name=row["name"],
        description=row["description"],
        created_at=from_iso(row["created_at"]),
        updated_at=from_iso(row["updated_at"]),
    )


def _with_keys(values: Mapping[str, Any]) -> dict[str, Any]:
    """Add the case-folded lookup keys of a username or email being written."""
    keyed = dict(values)
    for column in ("username", "email"):
        if column in values:
            keyed[f"{column}_key"] = str(values[column]).casefold()
    return keyed


class UserRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, user_id: str) -> User | None:
        row = await self._db.fetch_one(
            f"SELECT {_USER_COLUMNS} FROM {_USERS} WHERE id = ? AND deleted_at IS NULL",
            (user_id,),
        )
        return _user(row) if row else None

    async def get_by_username(self, username: str) -> User | None:
        row = await self._db.fetch_one(
            f"SELECT {_USER_COLUMNS} FROM {_USERS}"
            " WHERE users.username_key = ? AND deleted_at IS NULL",
            (username.casefold(),),
        )
        return _user(row) if row else None

    async def list(self, skip: int, limit: int, role: Role | None) -> list[User]:
        where, params = "deleted_at IS NULL", []
        if role is not None:
            where += " AND role = ?"
            params.append(role.value)
        rows = await self._db.fetch_all(
            f"SELECT {_USER_COLUMNS} FROM {_USERS} WHERE {where} ORDER BY created_at, id"
            " LIMIT ? OFFSET ?",
            (*params, limit, skip),
        )
        return [_user(row) for row in rows]

    async def count(self) -> int:
        return int(
            await self._db.fetch_value("SELECT COUNT(*) FROM users WHERE deleted_at IS NULL")
        )

    # --- inside a write transaction ---------------------------------------------------------
    @staticmethod
    async def taken(
        conn: aiosqlite.Connection, column: str, value: str, except_id: str | None
    ) -> bool:
        if column not in ("username", "email"):  # a real check: it goes into the SQL text
            raise ValueError(f"not a unique user column: {column!r}")
        async with conn.execute(
            f"SELECT 1 FROM users WHERE {column}_key = ? AND deleted_at IS NULL AND id IS NOT ?",
            (value.casefold(), except_id),
        ) as cursor:
            return await cursor.fetchone() is not None

    @staticmethod
    async def active_admins(conn: aiosqlite.Connection) -> int:
        async with conn.execute(
            "SELECT COUNT(*) FROM users"
            " WHERE role = 'admin' AND is_active = 1 AND deleted_at IS NULL"
        ) as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    @staticmethod
    async def insert(conn: aiosqlite.Connection, values: Mapping[str, Any]) -> None:
        await conn.execute(*insert_sql("users", _with_keys(values)))

    @staticmethod
    async def update(conn: aiosqlite.Connection, user_id: str, changes: Mapping[str, Any]) -> None:
        assignments, params = set_sql(_with_keys(changes))
        await conn.execute(f"UPDATE users SET {assignments} WHERE id = ?", (*params, user_id))


class AuthEpoch:
    """The store's auth epoch (migration 0014), read on the calling thread: the event loop.

    It moves on every committed change to users, their phones, the locks on their names and
    revoked tokens, by any process on the store (triggers), so comparing it on each request
    tells whether what was read about users is still true. One indexed row of a WAL database
    is read in microseconds without a thread hop (the aiosqlite readers cost far more). It
    never waits: a busy or unreadable database answers None (unknown).
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None

    def read(self) -> int | None:
        try:
            if self._conn is None:
                # Read-only; timeout 0: never waits for a lock on the loop.
                uri = f"{self._path.resolve().as_uri()}?mode=ro"
                self._conn = sqlite3.connect(uri, uri=True, timeout=0, isolation_level=None)
            row = self._conn.execute("SELECT value FROM auth_epoch WHERE id = 1").fetchone()
        except sqlite3.Error:
            self.close()
            return None
        return int(row[0]) if row else None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


@dataclass(frozen=True, slots=True)
class LoginFailures:
    """The failed logins counted against one name."""

    failures: int
    locked_until: datetime | None


class LoginFailureRepository:
    """Consecutive failed logins per name tried (whether or not a user has it) and locks."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def counted(self, username: str, now: datetime) -> LoginFailures | None:
        """The failures counted against this name (its lock only while it runs at `now`)."""
        row = await self._db.fetch_one(
            "SELECT failures, locked_until FROM login_failures WHERE username_key = ?",
            (username.casefold(),),
        )
        if row is None:
            return None
        until = from_iso(row["locked_until"]) if row["locked_until"] else None
        return LoginFailures(row["failures"], until if until and until > now else None)

    async def record_failure(
        self, username: str, now: datetime, window: timedelta, lock_after: int
    ) -> LoginFailures:
        """Count one more failure (a run older than `window` starts again); the failure that
        makes `lock_after` locks the name for `window`."""
        now_iso, forgotten = to_iso(now), to_iso(now - window)
        async with self._db.transaction() as conn:
            # Failures older than the window are forgotten: one that locked has expired too.
            await conn.execute("DELETE FROM login_failures WHERE last_failure_at < ?", (forgotten,))
            async with conn.execute(
                "INSERT INTO login_failures (username_key, failures, last_failure_at)"
                " VALUES (?, 1, ?) ON CONFLICT (username_key) DO UPDATE"
                " SET failures = failures + 1, last_failure_at = excluded.last_failure_at"
                " RETURNING failures",
                (username.casefold(), now_iso),
            ) as cursor:
                row = await cursor.fetchone()
            failures = int(row[0]) if row else 1
            if failures < lock_after:
                return LoginFailures(failures, None)
            until = now + window
            await conn.execute(
                "UPDATE login_failures SET locked_until = ? WHERE username_key = ?",
                (to_iso(until), username.casefold()),
            )
        return LoginFailures(failures, until)

    async def clear(self, username: str) -> None:
        """A successful login: the count starts again from zero."""
        async with self._db.transaction() as conn:
            await self.unlock(conn, username)

    @staticmethod
    async def unlock(conn: aiosqlite.Connection, username: str) -> None:
        await conn.execute(
            "DELETE FROM login_failures WHERE username_key = ?", (username.casefold(),)
        )


class OperatorRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def for_user(self, user_id: str) -> Operator | None:
        row = await self._db.fetch_one(
            f"SELECT {_OPERATOR_COLUMNS} FROM operators WHERE user_id = ? AND deleted_at IS NULL",
            (user_id,),
        )
        return _operator(row) if row else None

    async def count(self) -> int:
        return int(
            await self._db.fetch_value("SELECT COUNT(*) FROM operators WHERE deleted_at IS NULL")
        )

    @staticmethod
    async def extension_of_user(conn: aiosqlite.Connection, user_id: str) -> str | None:
        """The extension of the user's operator, if they have one (not deleted)."""
        async with conn.execute(
            "SELECT extension FROM operators WHERE user_id = ? AND deleted_at IS NULL", (user_id,)
        ) as cursor:
            row = await cursor.fetchone()
        return str(row[0]) if row else None

    @staticmethod
    async def extension_taken(
        conn: aiosqlite.Connection, extension: str, except_user: str | None
    ) -> bool:
        # One phone, one user: operators' extensions and other users' own phones together.
        async with conn.execute(
            "SELECT 1 FROM operators"
            " WHERE extension = ? AND deleted_at IS NULL AND user_id IS NOT ?"
            " UNION ALL SELECT 1 FROM users"
            " WHERE extension = ? AND deleted_at IS NULL AND id IS NOT ?",
            (extension, except_user, extension, except_user),
        ) as cursor:
            return await cursor.fetchone() is not None

    @staticmethod
    async def upsert_for_user(
        conn: aiosqlite.Connection, user_id: str, values: Mapping[str, Any]
    ) -> None:
        """Create the user's operator row, or revive and update the one kept from before."""
        async with conn.execute("SELECT id FROM operators WHERE user_id = ?", (user_id,)) as cursor:
            existing = await cursor.fetchone()
        if existing is None:
            await conn.execute(*insert_sql("operators", {"user_id": user_id, **values}))
            return
        changes = {key: val for key, val in values.items() if key not in ("id", "created_at")}
        assignments, params = set_sql({**changes, "deleted_at": None})
        await conn.execute(
            f"UPDATE operators SET {assignments} WHERE user_id = ?", (*params, user_id)
        )

    @staticmethod
    async def update_for_user(
        conn: aiosqlite.Connection, user_id: str, changes: Mapping[str, Any]
    ) -> None:
        assignments, params = set_sql(changes)
        await conn.execute(
            f"UPDATE operators SET {assignments} WHERE user_id = ? AND deleted_at IS NULL",
            (*params, user_id),
        )


class GroupRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, group_id: str) -> Group | None:
        row = await self._db.fetch_one("SELECT * FROM groups WHERE id = ?", (group_id,))
        return _group(row) if row else None

    async def list(self) -> list[Group]:
        rows = await self._db.fetch_all("SELECT * FROM groups ORDER BY name COLLATE NOCASE")
        return [_group(row) for row in rows]

    @staticmethod
    async def exists(conn: aiosqlite.Connection, group_id: str) -> bool:
        async with conn.execute("SELECT 1 FROM groups WHERE id = ?", (group_id,)) as cursor:
            return await cursor.fetchone() is not None

    @staticmethod
    async def name_taken(conn: aiosqlite.Connection, name: str, except_id: str | None) -> bool:
        async with conn.execute(
            "SELECT 1 FROM groups WHERE name = ? COLLATE NOCASE AND id IS NOT ?", (name, except_id)
        ) as cursor:
            return await cursor.fetchone() is not None

    @staticmethod
    async def references(conn: aiosqlite.Connection, group_id: str) -> int:
        async with conn.execute(
            "SELECT (SELECT COUNT(*) FROM users WHERE group_id = ? AND deleted_at IS NULL)"
            " + (SELECT COUNT(*) FROM operators WHERE group_id = ? AND deleted_at IS NULL)",
            (group_id, group_id),
        ) as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    @staticmethod
    async def insert(conn: aiosqlite.Connection, values: Mapping[str, Any]) -> None:
        await conn.execute(*insert_sql("groups", values))

    @staticmethod
    async def update(conn: aiosqlite.Connection, group_id: str, changes: Mapping[str, Any]) -> None:
        assignments, params = set_sql(changes)
        await conn.execute(f"UPDATE groups SET {assignments} WHERE id = ?", (*params, group_id))

    @staticmethod
    async def delete(conn: aiosqlite.Connection, group_id: str) -> None:
        # Deleted users and operators keep history, not their group.
        await conn.execute("UPDATE users SET group_id = NULL WHERE group_id = ?", (group_id,))
        await conn.execute("UPDATE operators SET group_id = NULL WHERE group_id = ?", (group_id,))
        await conn.execute("DELETE FROM groups WHERE id = ?", (group_id,))
