"""ARI's REST transport on the daemon's own aiohttp session: requests in, JSON or typed
failures (telephony/errors.py) out. What the requests mean is ari_control.py's business."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp

from callcenterd.telephony.ari import AriEndpoint, basic_auth_header
from callcenterd.telephony.errors import (
    AriAuthFailed,
    AriNotFound,
    AriRequestFailed,
    AriTimeout,
    AriUnavailable,
)

Params = Mapping[str, str | int | float]


class AriClient:
    def __init__(self, session: aiohttp.ClientSession, endpoint: AriEndpoint) -> None:
        self._session = session
        self.endpoint = endpoint
        self._headers = {"Authorization": basic_auth_header(endpoint.username, endpoint.password)}
        self._timeout = aiohttp.ClientTimeout(total=endpoint.timeout)

    @property
    def app(self) -> str:
        return self.endpoint.app

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        body: Any = None,
    ) -> Any:
        """The answer's JSON (None for an empty one)."""
        return await self._send(method, path, params, body, decode=True)

    async def command(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        body: Any = None,
    ) -> None:
        """An action whose answer is not needed: it is read (the connection is reused) but
        not decoded (a created channel's or bridge's JSON, most of it)."""
        await self._send(method, path, params, body, decode=False)

    async def _send(
        self, method: str, path: str, params: Params | None, body: Any, *, decode: bool
    ) -> Any:
        url = f"{self.endpoint.base_url}/ari{path}"
        query = {k: str(v) for k, v in (params or {}).items()}
        try:
            async with self._session.request(
                method, url, params=query, json=body, headers=self._headers, timeout=self._timeout
            ) as response:
                if response.status == 404:
                    raise AriNotFound(f"{method} {path}: not found")
                if response.status == 401:
                    raise AriAuthFailed("Asterisk refused the ARI credentials")
                if response.status >= 400:
                    text = await response.text()
                    raise AriRequestFailed(
                        f"{method} {path}: Asterisk answered {response.status}: {text[:200]}"
                    )
                if not decode:
                    await response.read()
                    return None
                if response.status == 204 or response.content_length == 0:
                    return None
                return await response.json(content_type=None)
        except TimeoutError as err:
            raise AriTimeout(f"ARI {method} {path} timed out") from err
        except aiohttp.ClientError as err:
            raise AriUnavailable(f"ARI {method} {path} failed: {err}") from err

    async def recording_file(self, name: str) -> aiohttp.ClientResponse:
        url = f"{self.endpoint.base_url}/ari/recordings/stored/{name}/file"
        try:
            response = await self._session.get(url, headers=self._headers)
        except aiohttp.ClientError as err:
            raise AriUnavailable(f"ARI recording {name}: {err}") from err
        if response.status == 404:
            response.release()
            raise AriNotFound(f"recording {name}")
        if response.status >= 400:
            response.release()
            raise AriRequestFailed(f"recording {name}: Asterisk answered {response.status}")
        return response
