"""What the API asks of Asterisk directly: extensions, live channels, channel actions."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import structlog

from callcenterd.domain.clock import from_iso
from callcenterd.domain.users import Role
from callcenterd.errors import (
    AriUnavailable,
    AsteriskMisconfigured,
    ChannelNotFound,
    PermissionDenied,
)
from callcenterd.security import Principal
from callcenterd.services.dispatcher import Dispatcher
from callcenterd.telephony.ami import (
    AmiActionFailed,
    AmiLink,
    AmiUnavailable,
    channel_name,
    queue_status,
)
from callcenterd.telephony.ari_client import AriClient, AriNotFound, AriRequestFailed
from callcenterd.telephony.ari_link import AriLink

log = structlog.get_logger(__name__)

_CONTACT_STATUS = {"online": "Reachable", "offline": "Unreachable"}


def _hms(seconds: float) -> str:
    whole = max(0, int(seconds))
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


class AsteriskService:
    def __init__(
        self,
        link: AriLink,
        dispatcher: Dispatcher,
        extension_of: Callable[[str], Awaitable[str | None]],
        clock: Callable[[], datetime],
        *,
        ami: AmiLink | None = None,
    ) -> None:
        self._link = link
        # The fallback for channel actions while ARI is down, and app_queue's own view.
        self._ami = ami
        self._dispatcher = dispatcher
        # The acting operator's own extension (originate is limited to their phone).
        self._extension_of = extension_of
        self._clock = clock

    def _client(self) -> AriClient:
        client = self._link.client
        if client is None or not self._link.connected:
            raise AriUnavailable(
                f"ARI is not connected ({self._link.last_error or self._link.state})"
            )
        return client

    def _ami_instead(self) -> AmiLink | None:
        """AMI, when ARI is down and AMI is up: channel actions then go through it."""
        if self._link.connected or self._ami is None or not self._ami.connected:
            return None
        return self._ami

    def _ami_link(self) -> AmiLink:
        if self._ami is None or not self._ami.connected:
            state = (self._ami.last_error or self._ami.state) if self._ami else "not configured"
            raise AmiUnavailable(f"AMI is not connected ({state})")
        return self._ami

    async def queues(self) -> list[dict[str, Any]]:
        """app_queue's queues (the dialplan fallback's), from AMI QueueStatus."""
        events = await self._ami_link().action_list({"Action": "QueueStatus"})
        return queue_status(events)

    async def _device_states(self, client: AriClient) -> dict[str, str]:
        states: list[dict[str, Any]] = await client.request("GET", "/deviceStates")
        return {str(s.get("name")): str(s.get("state")) for s in states}

    async def extensions(self) -> list[dict[str, Any]]:
        client = self._client()
        endpoints = await client.endpoints("PJSIP")
        devices = await self._device_states(client)
        now = self._clock()
        found = []
        for endpoint in endpoints:
            resource = str(endpoint.get("resource", ""))
            state = str(endpoint.get("state", "unknown"))
            found.append(
                {
                    "extension": resource,
                    "technology": str(endpoint.get("technology", "PJSIP")),
                    "state": devices.get(f"PJSIP/{resource}", "UNKNOWN"),
                    "contact_status": _CONTACT_STATUS.get(state, "Unknown"),
                    # ARI does not expose contact URIs; the AMI adapter will fill this.
                    "contact_uri": None,
                    "last_seen": now if state == "online" else None,
                }
            )
        return found

    async def realtime(self) -> dict[str, Any]:
        now = self._clock()
        if not self._link.connected or self._link.client is None:
            return {
                "connected": False,
                "asterisk_version": self._link.asterisk_version,
                "active_channels": 0,
                "active_calls": 0,
                "extensions": [],
                "channels": [],
                "timestamp": now,
            }
        client = self._link.client
        channels = await client.channels()
        devices = await self._device_states(client)
        bridges: list[dict[str, Any]] = await client.request("GET", "/bridges")
        return {
            "connected": True,
            "asterisk_version": self._link.asterisk_version,
            "active_channels": len(channels),
            # A call is two parties talking: a mixing bridge with at least two channels.
            "active_calls": sum(
                1
                for b in bridges
                if b.get("bridge_type") == "mixing" and len(b.get("channels", [])) >= 2
            ),
            "extensions": [
                {"name": name, "state": state, "class": "SIP"}
                for name, state in sorted(devices.items())
                if name.startswith("PJSIP/")
            ],
            "channels": [
                {
                    "id": str(c.get("id")),
                    "name": str(c.get("name")),
                    "state": str(c.get("state")),
                    "caller_number": str((c.get("caller") or {}).get("number") or ""),
                    "duration": _hms((now - from_iso(str(c["creationtime"]))).total_seconds())
                    if c.get("creationtime")
                    else "00:00:00",
                }
                for c in channels
            ],
            "timestamp": now,
        }

    async def _check_channel(self, channel_id: str, actor: Principal) -> None:
        """Operators act only on channels of calls they are part of."""
        if actor.role is Role.OPERATOR:
            extension = await self._extension_of(actor.id)
            operator_id = self._dispatcher.operator_of_extension(extension or "")
            if operator_id is None or operator_id not in self._dispatcher.operators_on(channel_id):
                raise PermissionDenied("Operators may act only on channels of their own calls")

    async def answer(self, channel_id: str, actor: Principal) -> None:
        client = self._client()
        await self._check_channel(channel_id, actor)
        try:
            await client.answer(channel_id)
        except AriNotFound as err:
            raise ChannelNotFound(f"Channel {channel_id} not found") from err
        log.info("channel_answered", channel_id=channel_id, by=actor.id)

    async def hangup(self, channel_id: str, actor: Principal) -> None:
        ami = self._ami_instead()
        if ami is not None:
            await self._check_channel(channel_id, actor)
            await self._ami_hangup(ami, channel_id)
            log.info("channel_hung_up", channel_id=channel_id, by=actor.id, via="ami")
            return
        client = self._client()
        await self._check_channel(channel_id, actor)
        try:
            await client.hangup(channel_id)
        except AriNotFound as err:
            raise ChannelNotFound(f"Channel {channel_id} not found") from err
        log.info("channel_hung_up", channel_id=channel_id, by=actor.id)

    async def originate(
        self,
        *,
        endpoint: str,
        context: str,
        extension: str,
        priority: int,
        ring_seconds: int,
        caller_id: str | None,
        actor: Principal,
    ) -> str:
        if actor.role is Role.OPERATOR:
            own = await self._extension_of(actor.id)
            if own is None or endpoint.upper() not in (f"PJSIP/{own}", f"SIP/{own}"):
                raise PermissionDenied("Operators may originate only from their own phone")
        params: dict[str, str | int] = {
            "endpoint": endpoint,
            "context": context,
            "extension": extension,
            "priority": priority,
            "timeout": ring_seconds,
        }
        ami = self._ami_instead()
        if ami is not None:
            channel_id = await self._ami_originate(ami, params, caller_id)
            log.info("originated", endpoint=endpoint, extension=extension, by=actor.id, via="ami")
            return channel_id
        if caller_id:
            params["callerId"] = caller_id
        try:
            channel: dict[str, Any] = await self._client().request(
                "POST", "/channels", params=params
            )
        except AriRequestFailed as err:
            raise AsteriskMisconfigured(f"Asterisk refused to originate: {err}") from err
        log.info("originated", endpoint=endpoint, extension=extension, by=actor.id)
        return str(channel.get("id"))

    async def _ami_hangup(self, ami: AmiLink, channel_id: str) -> None:
        channels = await ami.action_list({"Action": "CoreShowChannels"})
        name = channel_name(channels, channel_id)
        if name is None:
            raise ChannelNotFound(f"Channel {channel_id} not found")
        try:
            await ami.action({"Action": "Hangup", "Channel": name})
        except AmiActionFailed as err:
            # Gone between the listing and the hang-up: the expected race.
            raise ChannelNotFound(f"Channel {channel_id} not found") from err

    async def _ami_originate(
        self, ami: AmiLink, params: dict[str, str | int], caller_id: str | None
    ) -> str:
        channel_id = str(uuid.uuid4())
        fields: dict[str, str | int] = {
            "Action": "Originate",
            "Channel": params["endpoint"],
            "Context": params["context"],
            "Exten": params["extension"],
            "Priority": params["priority"],
            "Timeout": int(params["timeout"]) * 1000,
            # Answer at once ("queued"); the outcome comes later as an OriginateResponse event.
            "Async": "true",
            "ChannelId": channel_id,
        }
        if caller_id:
            fields["CallerID"] = caller_id
        try:
            await ami.action(fields, as_list=False)
        except AmiActionFailed as err:
            raise AsteriskMisconfigured(f"Asterisk refused to originate: {err.message}") from err
        return channel_id
