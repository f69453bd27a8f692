"""Managing users, their operator rows and groups; every change is audited."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aiosqlite
import structlog

from callcenterd.contract.schemas import GroupIn, GroupUpdate, UserCreate, UserUpdate
from callcenterd.contract.validation import field_error
from callcenterd.domain.clock import to_iso
from callcenterd.domain.users import Group, Operator, Role, User
from callcenterd.errors import (
    Conflict,
    EmailTaken,
    ExtensionTaken,
    LastAdmin,
    NotFound,
    UsernameTaken,
    UserNotFound,
)
from callcenterd.security import Clock, PasswordHasher, Principal, random_password
from callcenterd.services.context import SECRET_CHANGED, audit
from callcenterd.store.db import Database
from callcenterd.store.users import (
    GroupRepository,
    LoginFailureRepository,
    OperatorRepository,
    UserRepository,
)

log = structlog.get_logger(__name__)

INITIAL_ADMIN = "admin"
UserChanged = Callable[[str], Awaitable[None]]


class UserService:
    def __init__(
        self,
        db: Database,
        users: UserRepository,
        operators: OperatorRepository,
        hasher: PasswordHasher,
        clock: Clock,
        login_failures: LoginFailureRepository,
    ) -> None:
        self._db = db
        self._users = users
        self._operators = operators
        self._login_failures = login_failures
        self._hasher = hasher
        self._clock = clock
        self._listeners: list[UserChanged] = []

    def on_change(self, listener: UserChanged) -> None:
        """Called with the user id after each create, update or delete (routing follows)."""
        self._listeners.append(listener)

    async def _changed(self, user_id: str) -> None:
        for listener in self._listeners:
            await listener(user_id)

    async def list(self, skip: int, limit: int, role: Role | None) -> list[User]:
        return await self._users.list(skip, limit, role)

    async def count(self) -> int:
        return await self._users.count()

    async def count_operators(self) -> int:
        return await self._operators.count()

    async def get(self, user_id: str) -> User:
        user = await self._users.get(user_id)
        if user is None:
            raise UserNotFound()
        return user

    async def operator_of(self, user_id: str) -> Operator | None:
        await self.get(user_id)
        return await self._operators.for_user(user_id)

    async def _check_unique(
        self,
        conn: aiosqlite.Connection,
        *,
        user_id: str | None,
        username: str | None,
        email: str | None,
        extension: str | None,
    ) -> None:
        if username is not None and await self._users.taken(conn, "username", username, user_id):
            raise UsernameTaken(field="username")
        if email is not None and await self._users.taken(conn, "email", email, user_id):
            raise EmailTaken(field="email")
        if extension is not None and await self._operators.extension_taken(
            conn, extension, user_id
        ):
            raise ExtensionTaken(f"Extension {extension} is already assigned", field="extension")

    @staticmethod
    async def _check_group(conn: aiosqlite.Connection, group_id: str | None) -> None:
        if group_id is None:
            return
        async with conn.execute("SELECT 1 FROM groups WHERE id = ?", (group_id,)) as cursor:
            if await cursor.fetchone() is None:
                raise field_error("body", "group_id", f"group {group_id} does not exist")

    async def create(self, body: UserCreate, actor: Principal | None) -> User:
        password_hash = await self._hasher.hash(body.password)
        now = to_iso(self._clock())
        user_id = str(uuid.uuid4())
        async with self._db.transaction() as conn:
            await self._check_unique(
                conn,
                user_id=None,
                username=body.username,
                email=body.email,
                extension=body.extension,
            )
            await self._check_group(conn, body.group_id)
            await self._users.insert(
                conn,
                {
                    "id": user_id,
                    "username": body.username,
                    "email": body.email,
                    "name": body.name,
                    "password_hash": password_hash,
                    "role": body.role.value,
                    "group_id": body.group_id,
                    # An operator's phone is on their operator row; anyone else's here.
                    "extension": None if body.role is Role.OPERATOR else body.extension,
                    "password_changed_at": now,
                    "created_at": now,
                    "updated_at": now,
                },
            )
            if body.role is Role.OPERATOR and body.extension is not None:
                await self._write_operator(conn, user_id, body.extension, body.group_id, body, now)
            created = body.model_dump(exclude={"password"}, mode="json")
            await audit(conn, self._clock(), actor, "user", "create", user_id, created)
        log.info("user_created", user_id=user_id, role=body.role.value)
        await self._changed(user_id)
        return await self.get(user_id)

    async def _write_operator(
        self,
        conn: aiosqlite.Connection,
        user_id: str,
        extension: str,
        group_id: str | None,
        body: UserCreate | UserUpdate,
        now: str,
    ) -> None:
        await self._operators.upsert_for_user(
            conn,
            user_id,
            {
                "id": str(uuid.uuid4()),
                "extension": extension,
                "group_id": group_id,
                "skills": json.dumps(sorted(set(body.skills or []))),
                "max_concurrent_calls": body.max_concurrent_calls or 1,
                "last_activity": now,
                "created_at": now,
                "updated_at": now,
            },
        )

    async def update(self, user_id: str, body: UserUpdate, actor: Principal) -> User:
        current = await self.get(user_id)
        sent = body.model_fields_set
        changes: dict[str, Any] = {
            name: getattr(body, name)
            for name in ("username", "email", "name", "group_id", "is_active")
            if name in sent
        }
        role = body.role if "role" in sent and body.role is not None else current.role
        if "role" in sent:
            changes["role"] = role.value
        revoke_tokens = False
        if body.password is not None:
            changes["password_hash"] = await self._hasher.hash(body.password)
            revoke_tokens = True
        if changes.get("is_active") is False and current.is_active:
            revoke_tokens = True
        now = to_iso(self._clock())
        async with self._db.transaction() as conn:
            operator = await self._operator_row(conn, user_id)
            extension = body.extension if "extension" in sent else None
            if role is Role.OPERATOR and operator is None:
                # Becoming an operator: their own phone, unless another is given, takes calls.
                extension = extension or current.extension
                if extension is None:
                    raise field_error(
                        "body", "extension", "extension is required for role 'operator'"
                    )
            self._place_extension(changes, role, sent, extension)
            await self._check_unique(
                conn,
                user_id=user_id,
                username=changes.get("username"),
                email=changes.get("email"),
                extension=extension,
            )
            if "group_id" in changes:
                await self._check_group(conn, changes["group_id"])
            # Only an active admin counts: demoting or deactivating an inactive one loses none.
            losing_admin = (
                current.role is Role.ADMIN
                and current.is_active
                and (role is not Role.ADMIN or changes.get("is_active") is False)
            )
            if losing_admin and await self._users.active_admins(conn) <= 1:
                raise LastAdmin("Cannot demote or deactivate the last active administrator")
            if revoke_tokens:
                changes["token_generation"] = current.token_generation + 1
            if "password_hash" in changes:
                changes["password_changed_at"] = now
            changes["updated_at"] = now
            await self._users.update(conn, user_id, changes)
            # A new or revived operator row joins the user's group (as it is after this update).
            group_id = changes.get("group_id", current.group_id)
            await self._sync_operator(conn, user_id, role, operator, body, extension, group_id, now)
            changes_for_audit = body.model_dump(
                exclude={"password"}, exclude_unset=True, mode="json"
            )
            if body.password is not None:
                changes_for_audit["password"] = SECRET_CHANGED
            await audit(conn, self._clock(), actor, "user", "update", user_id, changes_for_audit)
        log.info("user_updated", user_id=user_id, fields=sorted(sent - {"password"}))
        await self._changed(user_id)
        return await self.get(user_id)

    @staticmethod
    def _place_extension(
        changes: dict[str, Any],
        role: Role,
        sent: set[str],
        extension: str | None,
    ) -> None:
        """Where the user's phone is kept: an operator's on the operator row (the user row's
        is cleared), anyone else's on the user row. A demoted operator's extension is freed
        with their operator row, as before."""
        if role is Role.OPERATOR:
            changes["extension"] = None
        elif "extension" in sent:
            changes["extension"] = extension

    async def unlock(self, user_id: str, actor: Principal | None) -> User:
        """Lift the lock after failed logins (and forget the failures) of the user's name."""
        user = await self.get(user_id)
        async with self._db.transaction() as conn:
            await self._login_failures.unlock(conn, user.username)
            await audit(conn, self._clock(), actor, "user", "unlock", user_id, {})
        log.info("user_unlocked", user_id=user_id)
        return await self.get(user_id)

    @staticmethod
    async def _operator_row(conn: aiosqlite.Connection, user_id: str) -> str | None:
        async with conn.execute(
            "SELECT extension FROM operators WHERE user_id = ? AND deleted_at IS NULL", (user_id,)
        ) as cursor:
            row = await cursor.fetchone()
        return str(row[0]) if row else None

    async def _sync_operator(
        self,
        conn: aiosqlite.Connection,
        user_id: str,
        role: Role,
        existing_extension: str | None,
        body: UserUpdate,
        extension: str | None,
        group_id: str | None,
        now: str,
    ) -> None:
        """Keep the operator row in step with the user's role, group and operator fields."""
        if role is not Role.OPERATOR:
            if existing_extension is not None:
                # Kept, not deleted: the operator's call history keeps its name.
                await self._operators.update_for_user(
                    conn, user_id, {"deleted_at": now, "status": "offline", "updated_at": now}
                )
            return
        if existing_extension is None:
            assert extension is not None
            await self._write_operator(conn, user_id, extension, group_id, body, now)
            return
        sent = body.model_fields_set
        changes: dict[str, Any] = {}
        if extension is not None:
            changes["extension"] = extension
        if "group_id" in sent:
            changes["group_id"] = body.group_id
        if body.skills is not None:
            changes["skills"] = json.dumps(sorted(set(body.skills)))
        if body.max_concurrent_calls is not None:
            changes["max_concurrent_calls"] = body.max_concurrent_calls
        if changes:
            await self._operators.update_for_user(conn, user_id, {**changes, "updated_at": now})

    async def delete(self, user_id: str, actor: Principal) -> None:
        current = await self.get(user_id)
        now = to_iso(self._clock())
        async with self._db.transaction() as conn:
            if (
                current.role is Role.ADMIN
                and current.is_active
                and await self._users.active_admins(conn) <= 1
            ):
                raise LastAdmin()
            await self._users.update(
                conn,
                user_id,
                {
                    "deleted_at": now,
                    "is_active": False,
                    "token_generation": current.token_generation + 1,
                    "updated_at": now,
                },
            )
            await self._operators.update_for_user(
                conn, user_id, {"deleted_at": now, "status": "offline", "updated_at": now}
            )
            await audit(
                conn,
                self._clock(),
                actor,
                "user",
                "delete",
                user_id,
                {"username": current.username},
            )
        log.info("user_deleted", user_id=user_id)
        await self._changed(user_id)

    async def ensure_initial_admin(self, password: str | None) -> str | None:
        """On first start (no user at all), create `admin`.

        Returns the generated password when none was configured, so the caller can
        show it once; never a fixed default.
        """
        if await self._users.count() > 0:
            return None
        generated = None if password else random_password()
        body = UserCreate(
            username=INITIAL_ADMIN,
            email="admin@example.com",
            name="Administrator",
            password=password or generated or "",
            role=Role.ADMIN,
        )
        await self.create(body, actor=None)
        return generated

    async def by_username(self, username: str) -> User:
        """For the CLI, which names users by their login."""
        user = await self._users.get_by_username(username)
        if user is None:
            raise UserNotFound(f"No user named {username!r}")
        return user

    async def set_password(self, username: str, password: str) -> None:
        """For the CLI: reset a password (and so revoke the user's tokens)."""
        user = await self.by_username(username)
        password_hash = await self._hasher.hash(password)
        now = to_iso(self._clock())
        async with self._db.transaction() as conn:
            await self._users.update(
                conn,
                user.id,
                {
                    "password_hash": password_hash,
                    "password_changed_at": now,
                    "token_generation": user.token_generation + 1,
                    "updated_at": now,
                },
            )
            await audit(
                conn,
                self._clock(),
                None,
                "user",
                "set_password",
                user.id,
                {"password": SECRET_CHANGED},
            )


class GroupService:
    def __init__(self, db: Database, groups: GroupRepository, clock: Clock) -> None:
        self._db = db
        self._groups = groups
        self._clock = clock

    async def list(self, viewer: Principal) -> list[Group]:
        groups = await self._groups.list()
        if viewer.role is Role.SUPERVISOR:
            return [group for group in groups if group.id == viewer.group_id]
        return groups

    async def get(self, group_id: str, viewer: Principal | None = None) -> Group:
        group = await self._groups.get(group_id)
        hidden = (
            viewer is not None and viewer.role is Role.SUPERVISOR and viewer.group_id != group_id
        )
        if group is None or hidden:
            raise NotFound("Group not found")
        return group

    async def create(self, body: GroupIn, actor: Principal) -> Group:
        group_id = str(uuid.uuid4())
        now = to_iso(self._clock())
        async with self._db.transaction() as conn:
            if await self._groups.name_taken(conn, body.name, None):
                raise Conflict(f"A group named {body.name!r} exists", field="name")
            await self._groups.insert(
                conn,
                {
                    "id": group_id,
                    "name": body.name,
                    "description": body.description,
                    "created_at": now,
                    "updated_at": now,
                },
            )
            await audit(conn, self._clock(), actor, "group", "create", group_id, body.model_dump())
        return await self.get(group_id)

    async def update(self, group_id: str, body: GroupUpdate, actor: Principal) -> Group:
        await self.get(group_id)
        changes = body.model_dump(exclude_unset=True, exclude_none=True)
        async with self._db.transaction() as conn:
            if "name" in changes and await self._groups.name_taken(conn, changes["name"], group_id):
                raise Conflict(f"A group named {changes['name']!r} exists", field="name")
            await self._groups.update(
                conn, group_id, {**changes, "updated_at": to_iso(self._clock())}
            )
            await audit(conn, self._clock(), actor, "group", "update", group_id, changes)
        return await self.get(group_id)

    async def delete(self, group_id: str, actor: Principal) -> None:
        await self.get(group_id)
        async with self._db.transaction() as conn:
            in_use = await self._groups.references(conn, group_id)
            if in_use:
                raise Conflict(
                    f"Group is still referenced by {in_use} user(s)/operator(s); move them first"
                )
            await self._groups.delete(conn, group_id)
            await audit(conn, self._clock(), actor, "group", "delete", group_id, {})
