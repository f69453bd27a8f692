"""/api/asterisk: extensions and live data from Asterisk, and channel actions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, Field, StringConstraints

from callcenterd import keys
from callcenterd.api.endpoints import ASTERISK_ERRORS, ApiRoutes
from callcenterd.contract.schemas import Message, _In
from callcenterd.domain.users import Role
from callcenterd.errors import AsteriskMisconfigured, ChannelNotFound
from callcenterd.security import Principal

routes = ApiRoutes("asterisk")
EXTENSION_READERS = [Role.ADMIN, Role.MANAGER]
REALTIME_READERS = [Role.ADMIN, Role.MANAGER, Role.SUPERVISOR]
CHANNEL_ACTORS = [Role.ADMIN, Role.OPERATOR]
_OWN = "Operators: only channels of calls they take part in."


class ExtensionOut(BaseModel):
    extension: str
    technology: str
    state: str = Field(description="Asterisk device state, e.g. NOT_INUSE, INUSE, UNAVAILABLE")
    contact_status: str
    contact_uri: str | None
    last_seen: datetime | None


class RealtimeExtension(BaseModel):
    name: str
    state: str
    class_: str = Field(alias="class", serialization_alias="class")


class RealtimeChannel(BaseModel):
    id: str
    name: str
    state: str
    caller_number: str
    duration: str


class RealtimeData(BaseModel):
    connected: bool
    asterisk_version: str | None
    active_channels: int
    active_calls: int
    extensions: list[RealtimeExtension]
    channels: list[RealtimeChannel]
    timestamp: datetime


class AsteriskQueueMember(BaseModel):
    interface: str = Field(description="e.g. PJSIP/1001")
    status: int = Field(description="app_queue device status: 1 free, 2 in use, 5 unavailable")
    paused: bool
    calls_taken: int
    last_call: int = Field(description="Unix time of the member's last call; 0: none")


class AsteriskQueue(BaseModel):
    name: str
    strategy: str
    members_count: int
    completed_calls: int
    abandoned_calls: int
    service_level: int = Field(description="% of calls answered within the service level")
    hold_time: int = Field(description="Average wait, seconds")
    talk_time: int = Field(description="Average talk time, seconds")
    active_calls: int = Field(description="Callers waiting in the queue now")
    members: list[AsteriskQueueMember]


class OriginateIn(_In):
    endpoint: Annotated[str, StringConstraints(pattern=r"^[A-Za-z]+/[\w.@:+-]+$", max_length=100)]
    context: Annotated[str, StringConstraints(pattern=r"^[\w-]+$", max_length=80)] = "default"
    extension: Annotated[str, StringConstraints(pattern=r"^[\w*#+]+$", max_length=40)]
    priority: int = Field(1, ge=1, le=1000)
    timeout: int = Field(30, ge=1, le=300, description="Seconds to ring the endpoint")
    caller_id: Annotated[str, StringConstraints(max_length=80)] | None = None


class OriginateOut(BaseModel):
    success: bool = True
    channel_id: str


@routes.route(
    "GET",
    "/asterisk/extensions",
    summary="PJSIP extensions and their state",
    roles=EXTENSION_READERS,
    response=list[ExtensionOut],
    errors=(*ASTERISK_ERRORS,),
)
async def extensions(request: web.Request) -> list[ExtensionOut]:
    found = await request.app[keys.SERVICES].asterisk.extensions()
    return [ExtensionOut.model_validate(extension) for extension in found]


@routes.route(
    "GET",
    "/asterisk/queues",
    summary="Asterisk's own queues (app_queue, the dialplan fallback)",
    roles=EXTENSION_READERS,
    response=list[AsteriskQueue],
    notes="From AMI QueueStatus; 503 AST_004 while AMI is not connected.",
    errors=(*ASTERISK_ERRORS,),
)
async def asterisk_queues(request: web.Request) -> list[AsteriskQueue]:
    queues = await request.app[keys.SERVICES].asterisk.queues()
    return [AsteriskQueue.model_validate(queue) for queue in queues]


@routes.route(
    "GET",
    "/asterisk/realtime-data",
    summary="Live channels and extensions from Asterisk",
    roles=REALTIME_READERS,
    response=RealtimeData,
    notes="Answers `connected: false` with empty lists while ARI is down.",
    errors=(*ASTERISK_ERRORS,),
)
async def realtime_data(request: web.Request) -> RealtimeData:
    return RealtimeData.model_validate(await request.app[keys.SERVICES].asterisk.realtime())


@routes.route(
    "POST",
    "/asterisk/channels/{channel_id}/answer",
    summary="Answer a channel",
    roles=CHANNEL_ACTORS,
    response=Message,
    notes=_OWN,
    errors=(ChannelNotFound, *ASTERISK_ERRORS),
)
async def answer_channel(request: web.Request, user: Principal, channel_id: str) -> Message:
    await request.app[keys.SERVICES].asterisk.answer(channel_id, user)
    return Message(message=f"Channel {channel_id} answered")


@routes.route(
    "POST",
    "/asterisk/channels/{channel_id}/hangup",
    summary="Hang up a channel",
    roles=CHANNEL_ACTORS,
    response=Message,
    notes=_OWN,
    errors=(ChannelNotFound, *ASTERISK_ERRORS),
)
async def hangup_channel(request: web.Request, user: Principal, channel_id: str) -> Message:
    await request.app[keys.SERVICES].asterisk.hangup(channel_id, user)
    return Message(message=f"Channel {channel_id} hung up")


@routes.route(
    "POST",
    "/asterisk/originate",
    summary="Place an outgoing call from an endpoint",
    roles=CHANNEL_ACTORS,
    body=OriginateIn,
    response=OriginateOut,
    notes="Operators: only from their own phone (PJSIP/<their extension>).",
    errors=(AsteriskMisconfigured, *ASTERISK_ERRORS),
)
async def originate(request: web.Request, body: OriginateIn, user: Principal) -> OriginateOut:
    channel_id = await request.app[keys.SERVICES].asterisk.originate(
        endpoint=body.endpoint,
        context=body.context,
        extension=body.extension,
        priority=body.priority,
        ring_seconds=body.timeout,
        caller_id=body.caller_id,
        actor=user,
    )
    return OriginateOut(channel_id=channel_id)
