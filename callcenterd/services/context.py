"""Who is acting: the authenticated principal, and what the audit log records of it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiosqlite
import structlog

from callcenterd.domain.users import Role, User
from callcenterd.security import TokenClaims
from callcenterd.store.system import AuditLog

# What the audit log says instead of a new password.
SECRET_CHANGED = "(changed)"  # noqa: S105 - a placeholder, not a secret


@dataclass(frozen=True, slots=True)
class Principal:
    user: User
    claims: TokenClaims

    @property
    def id(self) -> str:
        return self.user.id

    @property
    def role(self) -> Role:
        return self.user.role

    @property
    def group_id(self) -> str | None:
        return self.user.group_id


def current_request_id() -> str | None:
    value = structlog.contextvars.get_contextvars().get("request_id")
    return str(value) if value else None


async def audit(
    conn: aiosqlite.Connection,
    at: datetime,
    actor: Principal | None,
    entity: str,
    action: str,
    entity_id: str | None,
    changes: dict[str, Any],
) -> None:
    """Record who changed what, in the same transaction as the change."""
    await AuditLog.record(
        conn,
        at=at,
        actor_id=actor.id if actor else None,
        action=action,
        entity=entity,
        entity_id=entity_id,
        changes=changes,
        request_id=current_request_id(),
    )
