"""Helpers for the queue, operator and call API tests: a recording routing port, operators
made through the API, and call rows written straight into the app's database."""

from __future__ import annotations

import json
import sqlite3
import uuid
from datetime import datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from callcenterd import keys
from callcenterd.domain.clock import to_iso
from callcenterd.domain.events import Event
from callcenterd.services.routing_port import RoutingPort
from tests.api.conftest import Actor
from tests.api.helpers import database_file, query_db, user_body


class RecordingPort:
    """Records what services submit, then passes it on to the real dispatcher."""

    def __init__(self, inner: RoutingPort) -> None:
        self.inner = inner
        self.events: list[Event] = []

    async def submit(self, event: Event) -> None:
        self.events.append(event)
        await self.inner.submit(event)

    def take(self) -> list[Event]:
        taken, self.events = self.events, []
        return taken


def record_submissions(client: TestClient[Any, Any]) -> RecordingPort:
    services = client.app[keys.SERVICES]
    port = RecordingPort(services.dispatcher)
    services.queues.routing = port
    services.operators.routing = port
    return port


async def make_operator(
    client: TestClient[Any, Any],
    admin: Actor,
    username: str,
    extension: str,
    group_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Create an operator user; answer their operator record (id = operator id)."""
    body = user_body(username, "operator", extension=extension, group_id=group_id, **extra)
    response = await client.post("/api/admin/users", json=body, headers=admin.headers)
    assert response.status == 201, await response.text()
    user = await response.json()
    return operator_of(client, user["id"])


async def three_operators(
    client: TestClient[Any, Any],
    actors: dict[str, Actor],
    group: dict[str, Any],
    other_group: dict[str, Any],
) -> dict[str, dict[str, Any]]:
    """Operator records: A = the operator actor (1001, `group`), B = 1002 (`group`),
    C = 1003 (`other_group`)."""
    admin = actors["admin"]
    return {
        "A": operator_of(client, actors["operator"].user["id"]),
        "B": await make_operator(client, admin, "op_b", "1002", group["id"]),
        "C": await make_operator(client, admin, "op_c", "1003", other_group["id"]),
    }


def operator_of(client: TestClient[Any, Any], user_id: str) -> dict[str, Any]:
    rows = query_db(client, "SELECT * FROM operators WHERE user_id = ?", (user_id,))
    assert rows, f"user {user_id} has no operator row"
    return dict(rows[0])


def execute(client: TestClient[Any, Any], sql: str, params: tuple[Any, ...] = ()) -> None:
    conn = sqlite3.connect(database_file(client))
    try:
        conn.execute(sql, params)
        conn.commit()
    finally:
        conn.close()


def insert_call(
    client: TestClient[Any, Any],
    start: datetime,
    *,
    status: str = "completed",
    operator_id: str | None = None,
    queue_id: str | None = None,
    caller: str = "+79001234567",
    wait: float = 5.0,
    talk: int = 60,
    tried: tuple[str, ...] = (),
    rating: int | None = None,
    recording: str | None = None,
    notes: str | None = None,
    call_id: str | None = None,
    reason: str | None = None,
) -> str:
    """A call row as the dispatcher would leave it; times follow from start/wait/talk."""
    call_id = call_id or str(uuid.uuid4())
    answered = status in ("answered", "completed")
    answer = start + timedelta(seconds=wait) if answered else None
    end = None
    if status == "completed" and answer is not None:
        end = answer + timedelta(seconds=talk)
    elif status == "missed":
        end = start + timedelta(seconds=wait)
    if answered and operator_id and operator_id not in tried:
        tried = (*tried, operator_id)
    values = {
        "id": call_id,
        "channel_id": f"ch-{call_id[:8]}",
        "caller_number": caller,
        "called_number": "100",
        "operator_id": operator_id if answered else None,
        "queue_id": queue_id,
        "status": status,
        "reason": reason,
        "start_time": to_iso(start),
        "answer_time": to_iso(answer) if answer else None,
        "end_time": to_iso(end) if end else None,
        "duration": talk if status == "completed" else (0 if status == "missed" else None),
        "wait_seconds": wait if status != "incoming" else None,
        "recording": recording,
        "notes": notes,
        "rating": rating,
        "operators_tried": json.dumps(list(tried)),
        "created_at": to_iso(start),
        "updated_at": to_iso(start),
    }
    columns = ", ".join(values)
    marks = ", ".join("?" for _ in values)
    execute(client, f"INSERT INTO calls ({columns}) VALUES ({marks})", tuple(values.values()))
    if answer is not None and operator_id:  # its operator's part, as the call writer keeps it
        execute(
            client,
            "INSERT INTO call_legs (call_id, leg_id, operator_id, rung_at, answered_at, ended_at,"
            " outcome, talk_seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                call_id,
                f"{call_id}-1",
                operator_id,
                to_iso(start),
                to_iso(answer),
                to_iso(end) if end else None,
                (reason or "caller_hangup") if end else None,
                talk if end else 0,
            ),
        )
    return call_id


def insert_event(
    client: TestClient[Any, Any],
    call_id: str,
    at: datetime,
    kind: str,
    operator_id: str | None = None,
    **data: Any,
) -> None:
    execute(
        client,
        "INSERT INTO call_events (call_id, at, kind, operator_id, data) VALUES (?, ?, ?, ?, ?)",
        (call_id, to_iso(at), kind, operator_id, json.dumps(data)),
    )
