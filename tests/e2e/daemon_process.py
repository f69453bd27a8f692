"""callcenterd as a real process against the sandbox: kill it, stop it, start it again.

Configured through `CALLCENTERD_*` environment variables like `bench/routing_sandbox.py`; the
state folder (SQLite, keys) and the HTTP port stay the same across restarts, so a restarted
daemon finds the records the previous one left. Also the faults that need no daemon internals:
cutting every TCP connection to Asterisk's HTTP port (`ss -K`, the kernel's socket destroy: the
daemon's side gets ECONNABORTED, Asterisk's an RST) and asking Asterisk which Stasis apps it has.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from tests.conftest import free_port
from tests.e2e.daemon import DaemonApi
from tests.eventually import eventually
from tests.sandbox import AsteriskSandbox

ADMIN_PASSWORD = "faults-admin-pw"
OPEN_STATUSES = frozenset({"incoming", "answered"})
FINAL_STATUSES = frozenset({"completed", "missed"})


class DaemonProcess(DaemonApi):
    """One daemon, started and stopped as often as a test likes, always on the same state."""

    def __init__(
        self,
        asterisk: AsteriskSandbox,
        state_dir: Path,
        log_file: Path,
        *,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.asterisk = asterisk
        self.state_dir = state_dir
        self.log_file = log_file
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: asyncio.subprocess.Process | None = None
        self.headers: dict[str, str] = {}
        self.starts = 0
        self._extra_env = dict(env or {})

    # ---- lifecycle ------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    @property
    def pid(self) -> int:
        assert self.process is not None, "daemon not started"
        return self.process.pid

    def environment(self) -> dict[str, str]:
        asterisk = self.asterisk
        return {
            **os.environ,
            "CALLCENTERD_STATE_DIR": str(self.state_dir),
            "CALLCENTERD_HTTP_PORT": str(self.port),
            "CALLCENTERD_ARI_URL": asterisk.http_url,
            "CALLCENTERD_ARI_USERNAME": asterisk.ari_username,
            "CALLCENTERD_ARI_PASSWORD": asterisk.ari_password,
            "CALLCENTERD_ARI_APP": asterisk.ari_app,
            "CALLCENTERD_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "CALLCENTERD_AUTH_BCRYPT_ROUNDS": "4",
            "CALLCENTERD_RATE_LIMITS_ENABLED": "false",
            "CALLCENTERD_LOG_LEVEL": "info",
            **self._extra_env,
        }

    async def start(self, within: float = 30.0) -> float:
        """Start the process, wait until /readyz reports ARI connected, log in as admin.
        Returns the seconds from spawn to ready."""
        if self.running:
            raise RuntimeError("daemon already running")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        began = time.monotonic()
        self.starts += 1
        with self.log_file.open("ab") as output:
            output.write(f"\n===== start #{self.starts} =====\n".encode())
            output.flush()
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
        await self.wait_ready(began + within)
        await self.login()
        return time.monotonic() - began

    async def wait_ready(self, deadline: float) -> None:
        async with aiohttp.ClientSession() as session:

            async def ready() -> None:
                if self.process is None or self.process.returncode is not None:
                    raise RuntimeError(f"daemon exited before ready; log:\n{self.log_tail()}")
                try:
                    async with session.get(f"{self.base}/readyz") as response:
                        body = await response.json()
                except (aiohttp.ClientError, ValueError) as err:
                    raise AssertionError(f"no /readyz answer: {err!r}") from err
                assert body.get("ari", {}).get("state") == "connected", body

            try:
                await eventually(ready, max(0.0, deadline - time.monotonic()))
            except AssertionError as err:
                log = self.log_tail()
                raise RuntimeError(f"daemon not ready in time ({err}); log:\n{log}") from err

    async def login(self) -> None:
        credentials = {"username": "admin", "password": ADMIN_PASSWORD}
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{self.base}/api/auth/login", json=credentials) as response,
        ):
            body = await response.json()
            if response.status != 200:
                raise RuntimeError(f"login failed: {response.status} {body}")
        self.headers = {"Authorization": f"Bearer {body['access_token']}"}

    async def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as a crash or the OOM killer."""
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()

    async def terminate(self, within: float = 30.0) -> tuple[float, int | None]:
        """SIGTERM; (seconds until the process exited, exit code). If it has not exited after
        `within` seconds it is killed and the exit code is None."""
        assert self.process is not None
        began = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            code: int | None = await asyncio.wait_for(self.process.wait(), within)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
            code = None
        return time.monotonic() - began, code

    def pause(self) -> None:
        """SIGSTOP: the process stalls; its sockets stay open."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    async def close(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGCONT)  # a paused process ignores SIGTERM
            self.process.kill()
            await self.process.wait()

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_file.exists():
            return "(no log)"
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])

    # ---- REST ---------------------------------------------------------------------------

    async def api(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        async with (
            aiohttp.ClientSession(headers=self.headers) as session,
            session.request(method, f"{self.base}{path}", json=body) as response,
        ):
            text = await response.text()
            assert response.status == status, f"{method} {path}: {response.status} {text}"
            return await response.json()

    async def calls(self, limit: int = 1000) -> list[dict[str, Any]]:
        """Every record (the count and the page are two queries: a call may start between)."""

        async def consistent() -> list[dict[str, Any]]:
            page = await self.api("GET", f"/api/calls/?limit={limit}")
            items: list[dict[str, Any]] = page["items"]
            if page["total"] > limit:
                raise RuntimeError(f"more than {limit} records: {page['total']}")
            assert page["total"] == len(items), f"{page['total']} records, {len(items)} listed"
            return items

        return await eventually(consistent, within=2.0)

    async def call(self, call_id: str) -> dict[str, Any]:
        detail: dict[str, Any] = await self.api("GET", f"/api/calls/{call_id}")
        return detail

    async def call_of(self, caller_number: str, within: float = 10.0) -> dict[str, Any]:
        """The one record of `caller_number`, with its timeline, once it exists."""

        async def recorded() -> list[dict[str, Any]]:
            found = [c for c in await self.calls() if c["caller_number"] == caller_number]
            if len(found) > 1:
                raise RuntimeError(f"records of {caller_number}: {found}")
            assert found, f"no record of {caller_number}"
            return found

        (found,) = await eventually(recorded, within)
        return await self.call(found["id"])

    async def settled_calls(self, expected: int, within: float = 20.0) -> list[dict[str, Any]]:
        """Every record, once there are `expected` of them and none is open; else fail with
        what is stuck."""
        return await settled_calls(self.calls, expected, within)


async def settled_calls(fetch: Any, expected: int, within: float = 20.0) -> list[dict[str, Any]]:
    """Poll `await fetch()` (a list of call items) until `expected` records, none open."""

    async def settled() -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = await fetch()
        stuck = [c for c in items if c["status"] in OPEN_STATUSES]
        summary = [(c["caller_number"], c["status"], c["reason"]) for c in items]
        assert len(items) == expected and not stuck, (
            f"{len(items)} records (expected {expected}), {len(stuck)} still open: {summary}"
        )
        return items

    return await eventually(settled, within)


def timeline_kinds(record: Mapping[str, Any]) -> list[str]:
    return [event["kind"] for event in record["events"]]


# ---- Asterisk-side probes and faults -----------------------------------------------------


async def registered_apps(asterisk: AsteriskSandbox) -> set[str]:
    async with (
        aiohttp.ClientSession(headers=asterisk.ari_headers) as session,
        session.get(f"{asterisk.ari_url}/applications") as response,
    ):
        response.raise_for_status()
        return {app["name"] for app in await response.json()}


async def wait_app(asterisk: AsteriskSandbox, registered: bool, within: float = 10.0) -> float:
    """Seconds until the daemon's Stasis app is (or is no longer) registered in Asterisk."""
    began = time.monotonic()

    async def there() -> None:
        try:
            present = asterisk.ari_app in await registered_apps(asterisk)
        except aiohttp.ClientError:
            present = False
        state = "registered" if registered else "gone"
        assert present == registered, f"Stasis app {asterisk.ari_app} not {state}"

    await eventually(there, within)
    return time.monotonic() - began


def ari_port(asterisk: AsteriskSandbox) -> int:
    port = urlsplit(asterisk.http_url).port
    assert port is not None
    return port


async def cut_ari_connections(asterisk: AsteriskSandbox) -> int:
    """Destroy every established TCP connection to Asterisk's HTTP port (`ss -K`): the ARI
    events WebSocket and any REST keep-alive connection, as a network fault would. Nothing is
    restarted. Returns how many sockets were destroyed."""
    process = await asyncio.create_subprocess_exec(
        "ss",
        "-K",
        "-t",
        "-n",
        "-H",
        "state",
        "established",
        "dst",
        "127.0.0.1",
        "dport",
        "=",
        f":{ari_port(asterisk)}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    if process.returncode != 0:
        raise subprocess.CalledProcessError(process.returncode or 1, "ss -K", stdout, stderr)
    return len([line for line in stdout.decode().splitlines() if line.strip()])
