"""ARI over HTTP: credentials in a header, typed failures, and a supervised link.

aiohttp 3.14 deprecates ``BasicAuth``/``auth=``, so the Authorization header is
built here, once.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import aiohttp
import structlog

from callcenterd.errors import AriUnavailable, AsteriskAuthFailed, AsteriskTimeout, CallcenterError

log = structlog.get_logger(__name__)

LinkStateName = Literal["disabled", "connecting", "connected", "disconnected"]


@dataclass(frozen=True, slots=True)
class AriEndpoint:
    base_url: str  # http://host:port, without /ari
    username: str
    password: str
    app: str
    timeout: float

    def __repr__(self) -> str:  # never print the password
        return f"AriEndpoint({self.base_url!r}, user={self.username!r}, app={self.app!r})"


def basic_auth_header(username: str, password: str) -> str:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return f"Basic {token}"


async def fetch_asterisk_info(
    session: aiohttp.ClientSession, endpoint: AriEndpoint
) -> dict[str, Any]:
    """GET /ari/asterisk/info; raise AST_001 (timeout), AST_002 (auth) or AST_004."""
    url = f"{endpoint.base_url}/ari/asterisk/info"
    headers = {"Authorization": basic_auth_header(endpoint.username, endpoint.password)}
    try:
        async with session.get(
            url, headers=headers, timeout=aiohttp.ClientTimeout(total=endpoint.timeout)
        ) as response:
            if response.status == 401:
                raise AsteriskAuthFailed("Asterisk answered 401: wrong ARI username or password")
            if response.status != 200:
                raise AriUnavailable(f"ARI answered HTTP {response.status} at {url}")
            try:
                info: Any = await response.json(content_type=None)
            except ValueError as err:
                raise AriUnavailable(f"ARI at {url} did not answer JSON") from err
            # Some other web service answering 200 on that port: say so, do not crash.
            if not isinstance(info, dict) or not all(
                isinstance(info.get(section, {}), dict) for section in ("system", "config")
            ):
                raise AriUnavailable(f"{url} answered JSON that is not Asterisk's info")
            return info
    except TimeoutError as err:
        raise AsteriskTimeout(
            f"No answer from {endpoint.base_url} within {endpoint.timeout:g} s"
        ) from err
    except aiohttp.ClientConnectorError as err:
        raise AriUnavailable(f"Cannot connect to {endpoint.base_url}: {err.os_error}") from err
    except aiohttp.ClientError as err:
        raise AriUnavailable(f"ARI request to {url} failed: {err}") from err


def asterisk_version(info: Any) -> str | None:
    system = info.get("system") if isinstance(info, dict) else None
    version = system.get("version") if isinstance(system, dict) else None
    return str(version) if version else None


class AriLink:
    """Keeps probing ARI with bounded exponential backoff and reports the link's state.

    The daemon serves its whole API whatever this says; /readyz and system info show it.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        clock: Callable[[], datetime],
        *,
        backoff_max: float = 30.0,
        healthy_interval: float = 10.0,
    ) -> None:
        self._session = session
        self._clock = clock
        self._backoff_max = backoff_max
        self._healthy_interval = healthy_interval
        self._endpoint: AriEndpoint | None = None
        self._task: asyncio.Task[None] | None = None
        self.state: LinkStateName = "disabled"
        self.asterisk_version: str | None = None
        self.last_error: str | None = None
        self.since: datetime = clock()

    @property
    def url(self) -> str | None:
        return self._endpoint.base_url if self._endpoint else None

    @property
    def connected(self) -> bool:
        return self.state == "connected"

    def _set(self, state: LinkStateName, error: str | None = None) -> None:
        if state != self.state:
            log.info("ari_link_state", state=state, previous=self.state, error=error, url=self.url)
            self.since = self._clock()
        self.state = state
        self.last_error = error

    async def configure(self, endpoint: AriEndpoint | None) -> None:
        """(Re)start the link with new settings at once; None disconnects."""
        await self.stop()
        self._endpoint = endpoint
        if endpoint is None:
            self._set("disabled")
            return
        self._set("connecting")
        self._task = asyncio.create_task(self._run(endpoint), name="ari-link")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self, endpoint: AriEndpoint) -> None:
        delay = 1.0
        while True:
            try:
                info = await fetch_asterisk_info(self._session, endpoint)
            except CallcenterError as err:
                self._set("disconnected", err.detail)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._backoff_max)
                continue
            self.asterisk_version = asterisk_version(info)
            self._set("connected")
            delay = 1.0
            await asyncio.sleep(self._healthy_interval)
