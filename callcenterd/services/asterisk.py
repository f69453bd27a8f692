"""What the API asks of Asterisk directly: extensions, live channels, channel actions."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import structlog

from callcenterd.domain.clock import from_iso
from callcenterd.domain.users import Role
from callcenterd.errors import AsteriskUnavailable, ChannelNotFound, PermissionDenied
from callcenterd.security import Principal
from callcenterd.services.asterisk_errors import as_api_errors, misconfigured
from callcenterd.services.dispatcher import Dispatcher
from callcenterd.telephony.ami import AmiLink, channel_name, queue_status
from callcenterd.telephony.ari_link import AriLink
from callcenterd.telephony.call_control import CallControl, Originate
from callcenterd.telephony.errors import AmiActionFailed

log = structlog.get_logger(__name__)

_CONTACT_STATUS: dict[bool | None, str] = {True: "Reachable", False: "Unreachable", None: "Unknown"}


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

    def _control(self) -> CallControl:
        control = self._link.connected_control
        if control is None:
            # The link's state, not its last error: that names the address and the socket's
            # error, which only admins see (system info).
            raise AsteriskUnavailable(f"ARI is not connected ({self._link.state})")
        return control

    def _ami_instead(self) -> AmiLink | None:
        """AMI, when ARI is down and AMI is up: channel actions then go through it."""
        if self._link.connected or self._ami is None or not self._ami.connected:
            return None
        return self._ami

    def _ami_link(self) -> AmiLink:
        if self._ami is None or not self._ami.connected:
            state = self._ami.state if self._ami else "not configured"
            raise AsteriskUnavailable(f"AMI is not connected ({state})")
        return self._ami

    async def queues(self) -> list[dict[str, Any]]:
        """app_queue's queues (the dialplan fallback's), from AMI QueueStatus."""
        with as_api_errors():
            events = await self._ami_link().action_list({"Action": "QueueStatus"})
        return queue_status(events)

    async def extensions(self) -> list[dict[str, Any]]:
        control = self._control()
        with as_api_errors():
            endpoints = await control.endpoints("PJSIP")
            devices = await control.device_states()
        now = self._clock()
        return [
            {
                "extension": endpoint.resource,
                "technology": endpoint.technology or "PJSIP",
                "state": devices.get(f"PJSIP/{endpoint.resource}", "UNKNOWN"),
                "contact_status": _CONTACT_STATUS[endpoint.online],
                # ARI does not expose contact URIs; the AMI adapter will fill this.
                "contact_uri": None,
                "last_seen": now if endpoint.online else None,
            }
            for endpoint in endpoints
        ]

    async def realtime(self) -> dict[str, Any]:
        now = self._clock()
        control = self._link.connected_control
        if control is None:
            return {
                "connected": False,
                "asterisk_version": self._link.asterisk_version,
                "active_channels": 0,
                "active_calls": 0,
                "extensions": [],
                "channels": [],
                "timestamp": now,
            }
        with as_api_errors():
            channels = await control.channels()
            devices = await control.device_states()
            bridges = await control.bridges()
        return {
            "connected": True,
            "asterisk_version": self._link.asterisk_version,
            "active_channels": len(channels),
            # A call is two parties talking: a mixing bridge with at least two channels.
            "active_calls": sum(
                1 for b in bridges if b.kind == "mixing" and len(b.channel_ids) >= 2
            ),
            "extensions": [
                {"name": name, "state": state, "class": "SIP"}
                for name, state in sorted(devices.items())
                if name.startswith("PJSIP/")
            ],
            "channels": [
                {
                    "id": c.id,
                    "name": c.name,
                    "state": c.state,
                    "caller_number": c.caller_number,
                    "duration": _hms((now - from_iso(c.created_at)).total_seconds())
                    if c.created_at
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
        # Whose channel it is first: an operator learns nothing of the link from a refusal.
        await self._check_channel(channel_id, actor)
        control = self._control()
        with as_api_errors(not_found=lambda _: ChannelNotFound(f"Channel {channel_id} not found")):
            await control.answer(channel_id)
        log.info("channel_answered", channel_id=channel_id, by=actor.id)

    async def hangup(self, channel_id: str, actor: Principal) -> None:
        ami = self._ami_instead()
        if ami is not None:
            await self._check_channel(channel_id, actor)
            with as_api_errors():
                await self._ami_hangup(ami, channel_id)
            log.info("channel_hung_up", channel_id=channel_id, by=actor.id, via="ami")
            return
        await self._check_channel(channel_id, actor)
        control = self._control()
        with as_api_errors(not_found=lambda _: ChannelNotFound(f"Channel {channel_id} not found")):
            await control.hangup(channel_id)
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
        call = Originate(endpoint, context, extension, priority, ring_seconds, caller_id)
        ami = self._ami_instead()
        with as_api_errors(refused=misconfigured):
            if ami is not None:
                channel_id = await self._ami_originate(ami, call)
            else:
                channel_id = await self._control().originate(call)
        log.info(
            "originated",
            endpoint=endpoint,
            extension=extension,
            by=actor.id,
            via="ari" if ami is None else "ami",
        )
        return channel_id

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

    async def _ami_originate(self, ami: AmiLink, call: Originate) -> str:
        channel_id = str(uuid.uuid4())
        fields: dict[str, str | int] = {
            "Action": "Originate",
            "Channel": call.endpoint,
            "Context": call.context,
            "Exten": call.extension,
            "Priority": call.priority,
            "Timeout": call.ring_seconds * 1000,
            # Answer at once ("queued"); the outcome comes later as an OriginateResponse event.
            "Async": "true",
            "ChannelId": channel_id,
        }
        if call.caller_id:
            fields["CallerID"] = call.caller_id
        await ami.action(fields, as_list=False)
        return channel_id
