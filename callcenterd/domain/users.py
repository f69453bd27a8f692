"""Users, roles, groups and operators."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    MANAGER = "manager"
    SUPERVISOR = "supervisor"
    OPERATOR = "operator"


class OperatorStatus(StrEnum):
    ONLINE = "online"
    BUSY = "busy"
    OFFLINE = "offline"


@dataclass(frozen=True, slots=True)
class User:
    id: str
    username: str
    email: str
    name: str
    role: Role
    group_id: str | None
    is_active: bool
    token_generation: int
    password_hash: str
    created_at: datetime
    updated_at: datetime
    # When the lock after too many failed logins ends (as stored: it may be past).
    locked_until: datetime | None = None
    # The user's own phone (an operator's extension, or another role's, rung to supervise).
    extension: str | None = None
    # The user's operator row (not deleted), if they have one.
    operator_id: str | None = None

    def locked_at(self, now: datetime) -> datetime | None:
        """The end of the lock still running at `now`, else None."""
        return self.locked_until if self.locked_until and self.locked_until > now else None


@dataclass(frozen=True, slots=True)
class Group:
    id: str
    name: str
    description: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Operator:
    id: str
    user_id: str
    extension: str
    group_id: str | None
    status: OperatorStatus
    status_reason: str | None
    max_concurrent_calls: int
    last_activity: datetime
    created_at: datetime
    skills: tuple[str, ...] = field(default=())
