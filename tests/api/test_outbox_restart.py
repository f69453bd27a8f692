"""At least once across a kill: a real `callcenterd run` process, its state folder, SIGKILL
while webhook deliveries are queued and some are in flight, then a new process on the same
state folder sends every one of them. No Asterisk is needed (ARI points at a closed port)."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from callcenterd.domain.messages import CallFacts
from callcenterd.notify.webhooks import WebhookSource, rule_of
from callcenterd.store.db import Database
from callcenterd.store.outbox import enqueue_in
from tests.conftest import free_port
from tests.eventually import eventually
from tests.webhook_receiver import WebhookReceiver

ADMIN_PASSWORD = "restart-admin-pw"
SECRET = "restart-secret-0123456789"
MESSAGES = 20
CONCURRENCY = 4


class Daemon:
    def __init__(self, state_dir: Path, log_file: Path) -> None:
        self.state_dir = state_dir
        self.log_file = log_file
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: asyncio.subprocess.Process | None = None
        self.headers: dict[str, str] = {}

    def environment(self) -> dict[str, str]:
        return {
            **os.environ,
            "CALLCENTERD_STATE_DIR": str(self.state_dir),
            "CALLCENTERD_HTTP_PORT": str(self.port),
            "CALLCENTERD_ARI_URL": f"http://127.0.0.1:{free_port()}",
            "CALLCENTERD_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "CALLCENTERD_AUTH_BCRYPT_ROUNDS": "4",
            "CALLCENTERD_RATE_LIMITS_ENABLED": "false",
            "CALLCENTERD_LOG_FORMAT": "json",
            "CALLCENTERD_WEBHOOKS_ALLOW_PRIVATE_TARGETS": "true",
            "CALLCENTERD_OUTBOX_POLL_SECONDS": "0.2",
            "CALLCENTERD_OUTBOX_BASE_DELAY": "0.1",
            "CALLCENTERD_OUTBOX_MAX_DELAY": "0.5",
            "CALLCENTERD_OUTBOX_CONCURRENCY": str(CONCURRENCY),
            "CALLCENTERD_OUTBOX_SEND_TIMEOUT": "60",  # tries in flight stay in flight
        }

    async def start(self) -> None:
        with self.log_file.open("ab") as output:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "callcenterd",
                "run",
                env=self.environment(),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=output,
                stderr=output,
            )
        async with aiohttp.ClientSession() as session:

            async def up() -> None:
                assert self.process is not None and self.process.returncode is None, self.log()
                try:
                    async with session.get(f"{self.base}/healthz") as response:
                        assert response.status == 200
                except aiohttp.ClientError as err:
                    raise AssertionError(str(err)) from err

            await eventually(up, within=30)
            credentials = {"username": "admin", "password": ADMIN_PASSWORD}
            async with session.post(f"{self.base}/api/auth/login", json=credentials) as response:
                token = (await response.json())["access_token"]
        self.headers = {"Authorization": f"Bearer {token}"}

    async def api(self, method: str, path: str, body: Any = None) -> Any:
        async with (
            aiohttp.ClientSession(headers=self.headers) as session,
            session.request(method, f"{self.base}{path}", json=body) as response,
        ):
            assert response.status < 300, await response.text()
            return await response.json()

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()  # SIGKILL: no clean-up of any kind
            await self.process.wait()

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")[-4000:] if self.log_file.exists() else ""


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    found = Daemon(tmp_path / "state", tmp_path / "daemon.log")
    yield found
    await found.kill()


async def enqueue_deliveries(database: Path, webhook_id: str) -> set[str]:
    """Webhook deliveries as call facts enqueue them, written from this process."""
    source = WebhookSource([rule_of(webhook_id, "*", True)])
    at = datetime.now(UTC) - timedelta(seconds=1)
    messages = [
        message
        for n in range(MESSAGES)
        for message in source.messages_for(
            "call_ended",
            {
                "type": "call_ended",
                "timestamp": at.isoformat(),
                "data": {"call_id": f"call-{n}", "status": "missed", "reason": "abandoned"},
            },
            CallFacts(f"call-{n}", "+79001234567", None, None),
            at,
        )
    ]
    db = Database(database, readers=1)
    await db.open()
    try:
        async with db.transaction() as conn:
            await enqueue_in(conn, messages, at)
    finally:
        await db.close()
    return {message.idempotency_key for message in messages}


async def outbox_states(database: Path) -> dict[str, int]:
    db = Database(database, readers=1)
    await db.open()
    try:
        rows = await db.fetch_all("SELECT state, COUNT(*) AS n FROM outbox GROUP BY state")
    finally:
        await db.close()
    return {row["state"]: row["n"] for row in rows}


@pytest.mark.timeout(120)
async def test_messages_queued_and_in_flight_at_a_kill_are_all_sent_after_restart(
    daemon: Daemon,
) -> None:
    receiver = WebhookReceiver(secret=SECRET, mode="hang", hang_seconds=300)
    await receiver.start()
    try:
        await daemon.start()
        hook = await daemon.api(
            "POST", "/api/admin/webhooks", {"url": receiver.url, "secret": SECRET}
        )
        database = daemon.state_dir / "callcenterd.sqlite3"
        keys = await enqueue_deliveries(database, hook["id"])
        # The worker takes CONCURRENCY of them; the receiver holds them (never answers).
        await eventually(lambda: len(receiver.received) == CONCURRENCY, within=10)
        in_flight = {r.delivery_id for r in receiver.received}
        await daemon.kill()
        assert await outbox_states(database) == {"queued": MESSAGES}  # none lost, none "sent"
        # The receiver comes back healthy (its held requests dropped with the old process).
        await receiver.stop()
        receiver.mode = "ok"
        await receiver.start()
        await daemon.start()

        async def all_sent() -> None:
            assert await outbox_states(database) == {"sent": MESSAGES}

        await eventually(all_sent, within=30)
    finally:
        await receiver.stop()
    accepted = receiver.accepted_ids()
    assert set(accepted) == keys  # every message, by its delivery id
    assert receiver.duplicates() == 0  # each accepted once
    # The tries in flight at the kill reached the receiver twice (once held, once accepted):
    # at least once, and the same X-Callcenterd-Delivery let a receiver tell.
    twice = [key for key in in_flight if sum(r.delivery_id == key for r in receiver.received) == 2]
    assert sorted(twice) == sorted(in_flight)
    assert all(r.signed for r in receiver.accepted)
