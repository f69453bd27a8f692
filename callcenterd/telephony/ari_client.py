"""A thin typed ARI REST client on the daemon's own aiohttp session.

404 on a channel or bridge is the expected race with a far end that already hung up:
those calls raise ``AriNotFound``, which callers that do not care simply ignore.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp

from callcenterd.errors import AriUnavailable, AsteriskAuthFailed, AsteriskTimeout
from callcenterd.telephony.ari import AriEndpoint, basic_auth_header


class AriNotFound(Exception):
    """The channel, bridge or recording is gone (404)."""


class AriRequestFailed(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"ARI answered {status}: {message}")
        self.status = status


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
        url = f"{self.endpoint.base_url}/ari{path}"
        query = {k: str(v) for k, v in (params or {}).items()}
        try:
            async with self._session.request(
                method, url, params=query, json=body, headers=self._headers, timeout=self._timeout
            ) as response:
                if response.status == 404:
                    raise AriNotFound(f"{method} {path}: not found")
                if response.status == 401:
                    raise AsteriskAuthFailed()
                if response.status >= 400:
                    text = await response.text()
                    raise AriRequestFailed(response.status, f"{method} {path}: {text[:200]}")
                if response.status == 204 or response.content_length == 0:
                    return None
                return await response.json(content_type=None)
        except TimeoutError as err:
            raise AsteriskTimeout(f"ARI {method} {path} timed out") from err
        except aiohttp.ClientError as err:
            raise AriUnavailable(f"ARI {method} {path} failed: {err}") from err

    # --- channels -----------------------------------------------------------------------------
    async def answer(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{channel_id}/answer")

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        await self.request("DELETE", f"/channels/{channel_id}", params={"reason": reason})

    async def create_channel(
        self,
        channel_id: str,
        endpoint: str,
        app_args: str,
        variables: Mapping[str, str],
    ) -> None:
        await self.request(
            "POST",
            "/channels/create",
            params={
                "endpoint": endpoint,
                "app": self.app,
                "appArgs": app_args,
                "channelId": channel_id,
            },
            body={"variables": dict(variables)},
        )

    async def dial(self, channel_id: str, ring_seconds: int, caller: str | None = None) -> None:
        """Ring a created channel; `caller` (a channel id) lends it that channel's caller id."""
        params: dict[str, str | int] = {"timeout": ring_seconds}
        if caller:
            params["caller"] = caller
        await self.request("POST", f"/channels/{channel_id}/dial", params=params)

    async def continue_in_dialplan(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{channel_id}/continue")

    async def channels(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = await self.request("GET", "/channels")
        return found

    # --- bridges ------------------------------------------------------------------------------
    async def create_bridge(self, bridge_id: str, kind: str) -> None:
        await self.request("POST", f"/bridges/{bridge_id}", params={"type": kind})

    async def add_to_bridge(self, bridge_id: str, channel_id: str) -> None:
        await self.request(
            "POST", f"/bridges/{bridge_id}/addChannel", params={"channel": channel_id}
        )

    async def remove_from_bridge(self, bridge_id: str, channel_id: str) -> None:
        await self.request(
            "POST", f"/bridges/{bridge_id}/removeChannel", params={"channel": channel_id}
        )

    async def start_moh(self, channel_id: str, music_class: str) -> None:
        await self.request("POST", f"/channels/{channel_id}/moh", params={"mohClass": music_class})

    async def stop_moh(self, channel_id: str) -> None:
        await self.request("DELETE", f"/channels/{channel_id}/moh")

    async def destroy_bridge(self, bridge_id: str) -> None:
        await self.request("DELETE", f"/bridges/{bridge_id}")

    async def record_bridge(self, bridge_id: str, name: str) -> None:
        await self.request(
            "POST",
            f"/bridges/{bridge_id}/record",
            params={"name": name, "format": "wav", "ifExists": "overwrite"},
        )

    # --- application, endpoints, recordings -----------------------------------------------------
    async def application(self) -> dict[str, Any]:
        found: dict[str, Any] = await self.request("GET", f"/applications/{self.app}")
        return found

    async def drop_event_types(self, types: list[str]) -> None:
        """Server-side event filter: ChannelVarset alone is ~40 events per call."""
        await self.request(
            "PUT",
            f"/applications/{self.app}/eventFilter",
            body={"disallowed": [{"type": name} for name in types]},
        )

    async def subscribe(self, event_source: str) -> None:
        await self.request(
            "POST", f"/applications/{self.app}/subscription", params={"eventSource": event_source}
        )

    async def unsubscribe(self, event_source: str) -> None:
        await self.request(
            "DELETE", f"/applications/{self.app}/subscription", params={"eventSource": event_source}
        )

    async def endpoints(self, technology: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = await self.request("GET", f"/endpoints/{technology}")
        return found

    async def recording_file(self, name: str) -> aiohttp.ClientResponse:
        """The stored recording as a streaming response (the caller must release it)."""
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
            raise AriRequestFailed(response.status, f"recording {name}")
        return response
