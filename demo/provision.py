"""The demo's call center, created through the daemon's REST API as an admin would."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .roster import Roster

Api = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class Provisioned:
    group_ids: dict[str, str]  # group key -> id
    operator_ids: dict[str, str]  # extension -> operator id
    queue_ids: dict[str, str]  # asterisk name -> id
    pause_reasons: tuple[str, ...]


async def provision(api: Api, roster: Roster, password: str) -> Provisioned:
    """Groups, operators (online), the supervisor, then the queues that name them. Every user
    gets `password`."""
    group_ids = {}
    for group in roster.groups:
        body = {"name": group.name, "description": group.description}
        group_ids[group.key] = str((await api("POST", "/api/admin/groups", body))["id"])

    operator_ids = {}
    for profile in roster.operators:
        user = await api(
            "POST",
            "/api/admin/users",
            _user_body(profile.username, profile.name, "operator", password)
            | {"extension": profile.extension, "group_id": group_ids[profile.group]},
        )
        operator = await api("GET", f"/api/admin/users/{user['id']}/operator")
        operator_ids[profile.extension] = str(operator["id"])
        await api("PUT", f"/api/operators/{operator['id']}/status", {"status": "online"})

    supervisor = roster.supervisor
    await api(
        "POST",
        "/api/admin/users",
        _user_body(supervisor.username, supervisor.name, "supervisor", password)
        | {"extension": supervisor.extension, "group_id": group_ids[supervisor.group]},
    )

    queue_ids = {}
    for queue in roster.queues:
        created = await api("POST", "/api/queues/", queue.create_body())
        queue_ids[queue.asterisk_name] = str(created["id"])
    reasons = (await api("GET", "/api/operators/pause-reasons"))["reasons"]
    return Provisioned(group_ids, operator_ids, queue_ids, tuple(str(r) for r in reasons))


def _user_body(username: str, name: str, role: str, password: str) -> dict[str, Any]:
    return {
        "username": username,
        "email": f"{username}@demo.example.com",
        "name": name,
        "password": password,
        "role": role,
    }
