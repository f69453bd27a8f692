"""What the audit log records of who acted (the principal itself: security.Principal)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import aiosqlite
import structlog

from callcenterd.security import Principal
from callcenterd.store.system import AuditLog

# What the audit log says instead of a new password.
SECRET_CHANGED = "(changed)"  # noqa: S105 - a placeholder, not a secret  # nosec B105


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
