"""``CallControl`` over ARI's REST interface: one request per action, answers read by
translate.py."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import aiohttp

from callcenterd.telephony import translate
from callcenterd.telephony.ari_client import AriClient
from callcenterd.telephony.call_control import (
    DEFAULT_NODE,
    Bridge,
    BridgeKind,
    Channel,
    EndpointState,
    Originate,
    SnoopDirection,
)


class AriCallControl:
    def __init__(self, client: AriClient, node: str = DEFAULT_NODE) -> None:
        self._client = client
        self._node = node

    @property
    def node(self) -> str:
        return self._node

    @property
    def request_timeout(self) -> float:
        return self._client.endpoint.timeout

    async def asterisk_version(self) -> str | None:
        return translate.asterisk_version(await self._get("/asterisk/info"))

    async def _get(self, path: str, **params: str) -> Any:
        return await self._client.request("GET", path, params=params)

    # --- the application ----------------------------------------------------------------------
    async def app_channel_ids(self) -> set[str]:
        return translate.app_channel_ids(await self._get(f"/applications/{self._client.app}"))

    async def allow_event_types(self, types: list[str]) -> None:
        # Server-side event filter: only these types are sent to the app (an empty
        # disallowed list, so a filter set by an older version is cleared).
        await self._client.command(
            "PUT",
            f"/applications/{self._client.app}/eventFilter",
            body={"allowed": [{"type": name} for name in types], "disallowed": []},
        )

    async def subscribe(self, event_source: str) -> None:
        await self._client.command(
            "POST",
            f"/applications/{self._client.app}/subscription",
            params={"eventSource": event_source},
        )

    async def unsubscribe(self, event_source: str) -> None:
        await self._client.command(
            "DELETE",
            f"/applications/{self._client.app}/subscription",
            params={"eventSource": event_source},
        )

    # --- channels -----------------------------------------------------------------------------
    async def channel(self, channel_id: str) -> Channel:
        return translate.channel_of(await self._get(f"/channels/{channel_id}"))

    async def channels(self) -> list[Channel]:
        return [translate.channel_of(c) for c in await self._get("/channels")]

    async def variable(self, channel_id: str, name: str) -> str | None:
        answer = await self._get(f"/channels/{channel_id}/variable", variable=name)
        return translate.variable_value(answer)

    async def answer(self, channel_id: str) -> None:
        await self._client.command("POST", f"/channels/{channel_id}/answer")

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        await self._client.command("DELETE", f"/channels/{channel_id}", params={"reason": reason})

    async def continue_in_dialplan(
        self, channel_id: str, context: str | None = None, extension: str | None = None
    ) -> None:
        where: dict[str, str | int] | None = None
        if context and extension:
            where = {"context": context, "extension": extension, "priority": 1}
        await self._client.command("POST", f"/channels/{channel_id}/continue", params=where)

    async def redirect(self, channel_id: str, endpoint: str) -> None:
        await self._client.command(
            "POST", f"/channels/{channel_id}/redirect", params={"endpoint": endpoint}
        )

    async def start_moh(self, channel_id: str, music_class: str) -> None:
        await self._client.command(
            "POST", f"/channels/{channel_id}/moh", params={"mohClass": music_class}
        )

    async def stop_moh(self, channel_id: str) -> None:
        await self._client.command("DELETE", f"/channels/{channel_id}/moh")

    async def play(self, channel_id: str, playback_id: str, media: list[str]) -> None:
        await self._client.command(
            "POST",
            f"/channels/{channel_id}/play/{playback_id}",
            params={"media": ",".join(media)},
        )

    async def stop_playback(self, playback_id: str) -> None:
        await self._client.command("DELETE", f"/playbacks/{playback_id}")

    async def create_leg(
        self, leg_id: str, endpoint: str, app_args: str, variables: Mapping[str, str]
    ) -> None:
        await self._client.command(
            "POST",
            "/channels/create",
            params={
                "endpoint": endpoint,
                "app": self._client.app,
                "appArgs": app_args,
                "channelId": leg_id,
            },
            body={"variables": dict(variables)},
        )

    async def ring(self, leg_id: str, ring_seconds: int, caller_id_of: str | None) -> None:
        params: dict[str, str | int] = {"timeout": ring_seconds}
        if caller_id_of:
            params["caller"] = caller_id_of
        await self._client.command("POST", f"/channels/{leg_id}/dial", params=params)

    async def snoop(
        self,
        channel_id: str,
        snoop_id: str,
        spy: SnoopDirection,
        whisper: SnoopDirection,
        app_args: str = "",
    ) -> None:
        params = {"app": self._client.app, "spy": spy, "whisper": whisper}
        if app_args:
            params["appArgs"] = app_args
        await self._client.command(
            "POST", f"/channels/{channel_id}/snoop/{snoop_id}", params=params
        )

    async def originate(self, call: Originate) -> str:
        params: dict[str, str | int] = {
            "endpoint": call.endpoint,
            "context": call.context,
            "extension": call.extension,
            "priority": call.priority,
            "timeout": call.ring_seconds,
        }
        if call.caller_id:
            params["callerId"] = call.caller_id
        created = await self._client.request("POST", "/channels", params=params)
        return translate.channel_of(created).id

    # --- bridges ------------------------------------------------------------------------------
    async def bridges(self) -> list[Bridge]:
        return [translate.bridge_of(b) for b in await self._get("/bridges")]

    async def create_bridge(self, bridge_id: str, kind: BridgeKind) -> None:
        await self._client.command("POST", f"/bridges/{bridge_id}", params={"type": kind})

    async def add_to_bridge(self, bridge_id: str, channel_id: str) -> None:
        await self._client.command(
            "POST", f"/bridges/{bridge_id}/addChannel", params={"channel": channel_id}
        )

    async def remove_from_bridge(self, bridge_id: str, channel_id: str) -> None:
        await self._client.command(
            "POST", f"/bridges/{bridge_id}/removeChannel", params={"channel": channel_id}
        )

    async def destroy_bridge(self, bridge_id: str) -> None:
        await self._client.command("DELETE", f"/bridges/{bridge_id}")

    async def record_bridge(self, bridge_id: str, name: str) -> None:
        await self._client.command(
            "POST",
            f"/bridges/{bridge_id}/record",
            params={"name": name, "format": "wav", "ifExists": "overwrite"},
        )

    # --- endpoints, devices, recordings -------------------------------------------------------
    async def endpoints(self, technology: str) -> list[EndpointState]:
        return [translate.endpoint_state(e) for e in await self._get(f"/endpoints/{technology}")]

    async def endpoint(self, technology: str, resource: str) -> EndpointState:
        return translate.endpoint_state(await self._get(f"/endpoints/{technology}/{resource}"))

    async def device_states(self) -> dict[str, str]:
        return translate.device_states(await self._get("/deviceStates"))

    async def recording_file(self, name: str) -> aiohttp.ClientResponse:
        return await self._client.recording_file(name)

    async def delete_recording(self, name: str) -> None:
        # Asterisk removes the file from its recordings folder (astspooldir/recording).
        await self._client.command("DELETE", f"/recordings/stored/{quote(name, safe='')}")
