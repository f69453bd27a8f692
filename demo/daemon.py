"""The real daemon as a child process (`python -m callcenterd run`), and its REST API.

Configured through `CALLCENTERD_*` variables as tests/e2e/daemon_process.py does. It runs in a
session of its own, so a Ctrl-C in the terminal reaches only the demo, which stops it with
SIGTERM (the daemon's graceful stop) after the callers and phones; and it dies with the demo
if the demo itself is killed (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from tests.sandbox.processes import die_with_parent

# A request refused by the rate limiter (429) is sent again after its Retry-After, this often.
RATE_LIMITED_RETRIES = 3


class DaemonError(RuntimeError):
    """The daemon did not start, or answered a request with an error."""


@dataclass(frozen=True)
class DaemonConfig:
    state_dir: Path
    port: int
    admin_password: str
    log_file: Path
    # ARI, AMI and callback settings as CALLCENTERD_* variables; empty: the daemon alone.
    telephony_env: Mapping[str, str]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        return {
            **os.environ,
            "CALLCENTERD_STATE_DIR": str(self.state_dir),
            "CALLCENTERD_HTTP_HOST": "127.0.0.1",
            "CALLCENTERD_HTTP_PORT": str(self.port),
            "CALLCENTERD_ADMIN_PASSWORD": self.admin_password,
            "CALLCENTERD_LOG_LEVEL": "info",
            # Everything here comes from 127.0.0.1 as admin: the demo itself, the wallboard
            # and whoever explores the API. The defaults (100 requests a minute) are for a
            # shared service; the demo keeps the limits on, only higher.
            "CALLCENTERD_RATE_LIMITS_GENERAL_PER_MINUTE": "1000",
            "CALLCENTERD_RATE_LIMITS_DASHBOARD_PER_MINUTE": "600",
            **self.telephony_env,
        }


class DaemonProcess:
    def __init__(self, config: DaemonConfig) -> None:
        self.config = config
        self.process: asyncio.subprocess.Process | None = None
        self._token = ""
        self._session: aiohttp.ClientSession | None = None

    async def start(self, *, want_ari: bool, within: float = 60.0) -> None:
        """Spawn it, wait until it is ready (and, with `want_ari`, linked to Asterisk), log in."""
        self.config.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.config.log_file.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "callcenterd",
                "run",
                env=self.config.environment(),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        self._session = aiohttp.ClientSession(base_url=self.config.base_url)
        await self._wait_ready(want_ari, time.monotonic() + within)
        body = await self.api(
            "POST",
            "/api/auth/login",
            {"username": "admin", "password": self.config.admin_password},
        )
        self._token = str(body["access_token"])

    async def _wait_ready(self, want_ari: bool, deadline: float) -> None:
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self.process is None or self.process.returncode is not None:
                raise DaemonError(f"the daemon exited; see {self.config.log_file}")
            try:
                ready = await self._get_json("/readyz")
            except (aiohttp.ClientError, ValueError) as error:
                last = repr(error)
            else:
                ari_state = ready.get("ari", {}).get("state")
                if not want_ari or ari_state == "connected":
                    return
                last = f"ARI {ari_state}"
            await asyncio.sleep(0.2)
        raise DaemonError(f"the daemon was not ready in time ({last}); see {self.config.log_file}")

    async def _get_json(self, path: str) -> Any:
        assert self._session is not None
        async with self._session.get(path) as response:
            return await response.json()

    async def api(self, method: str, path: str, body: Any = None) -> Any:
        """One request as admin; DaemonError with the daemon's JSON error on a 4xx/5xx."""
        assert self._session is not None, "daemon not started"
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        for attempt in range(RATE_LIMITED_RETRIES + 1):
            async with self._session.request(method, path, json=body, headers=headers) as response:
                answer = await response.json(content_type=None)
                retry_after = response.headers.get("Retry-After", "1")
                if response.status == 429 and attempt < RATE_LIMITED_RETRIES:
                    await asyncio.sleep(float(retry_after) if retry_after.isdigit() else 1.0)
                    continue
                if response.status >= 400:
                    detail = answer.get("detail") if isinstance(answer, dict) else answer
                    raise DaemonError(f"{method} {path}: {response.status} {detail}")
                return answer
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def stop(self, within: float = 30.0) -> int | None:
        """SIGTERM (graceful: calls are closed, the database is flushed), SIGKILL after
        `within` seconds. Returns the exit code (None: it had to be killed)."""
        if self._session is not None:
            await self._session.close()
            self._session = None
        process = self.process
        if process is None or process.returncode is not None:
            return process.returncode if process is not None else None
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(process.wait(), within)
        except TimeoutError:
            process.kill()
            await process.wait()
            return None
