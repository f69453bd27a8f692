"""An in-process daemon for e2e tests: the real app on a temporary SQLite file, wired to the
session's sandbox Asterisk through ARI (routing) or AMI only (the native-queue fallback)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from aiohttp.test_utils import TestClient

from callcenterd import keys
from callcenterd.app import create_app
from callcenterd.events.bus import Subscription
from tests.conftest import make_settings
from tests.eventually import eventually
from tests.sandbox import AsteriskSandbox
from tests.sandbox.config import OUTSIDE_CONTEXT


class DaemonApi:
    """REST set-up shared by the in-process daemon and the daemon run as a process."""

    async def api(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        raise NotImplementedError

    async def operator(self, extension: str, **fields: Any) -> str:
        """Create an operator user with this extension (and `fields`, e.g. group_id) and set
        them online."""
        user = await self.api(
            "POST",
            "/api/admin/users",
            {
                "username": f"op{extension}",
                "email": f"op{extension}@example.com",
                "name": f"Operator {extension}",
                "password": "secret-pw",
                "role": "operator",
                "extension": extension,
                **fields,
            },
            status=201,
        )
        operator = await self.api("GET", f"/api/admin/users/{user['id']}/operator")
        await self.api("PUT", f"/api/operators/{operator['id']}/status", {"status": "online"})
        return str(operator["id"])

    async def queue(self, asterisk_name: str, extensions: list[str], **fields: Any) -> str:
        queue = await self.api(
            "POST",
            "/api/queues/",
            {
                "name": asterisk_name.title(),
                "description": "e2e",
                "asterisk_name": asterisk_name,
                "max_wait_time": 60,
                "priority": 1,
                "strategy": "ringall",
                "members": extensions,
                **fields,
            },
            status=201,
        )
        return str(queue["id"])

    async def call_record(self, call_id: str, until_status: str, within: float = 10.0) -> Any:
        async def in_status() -> Any:
            record = await self.api("GET", f"/api/calls/{call_id}")
            assert record["status"] == until_status, f"call {call_id}: {record}"
            return record

        return await eventually(in_status, within)


@dataclass
class Daemon(DaemonApi):
    client: TestClient[Any, Any]
    headers: dict[str, str]
    events: Subscription

    async def api(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        response = await self.client.request(method, path, json=body, headers=self.headers)
        text = await response.text()
        assert response.status == status, f"{method} {path}: {response.status} {text}"
        return await response.json()

    async def wait_for_event(self, kind: str, within: float = 20.0) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + within
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            event = await self.events.next(max(remaining, 0.01))
            if event.type == kind:
                return event.data


async def start_daemon(
    aiohttp_client: Any,
    state_dir: Path,
    asterisk: AsteriskSandbox,
    via: Literal["ari", "ami"],
    **overrides: Any,
) -> Daemon:
    """`ari`: routes calls as the Stasis app. `ami`: ARI left on a closed port, so calls fall
    back to Asterisk's own Queue() and are followed through AMI. `overrides`: more settings
    sections (e.g. sms, outbox)."""
    if via == "ari":
        settings = make_settings(
            state_dir,
            ari={
                "url": asterisk.http_url,
                "username": asterisk.ari_username,
                "password": asterisk.ari_password,
                "app": asterisk.ari_app,
            },
            transfers={"external_context": OUTSIDE_CONTEXT},
            **overrides,
        )
    else:
        settings = make_settings(
            state_dir,
            ami={
                "host": asterisk.ami_host,
                "port": asterisk.ami_port,
                "username": asterisk.ami_username,
                "secret": asterisk.ami_secret,
            },
            **overrides,
        )
    app = create_app(settings)
    client: TestClient[Any, Any] = await aiohttp_client(app)
    services = app[keys.SERVICES]
    link = services.ari if via == "ari" else services.ami

    def connected() -> None:
        assert link.connected, link.last_error

    await eventually(connected)
    if via == "ami":
        assert not services.ari.connected
    response = await client.post(
        "/api/auth/login", json={"username": "admin", "password": "admin-pass"}
    )
    token = (await response.json())["access_token"]
    return Daemon(client, {"Authorization": f"Bearer {token}"}, services.bus.subscribe())
