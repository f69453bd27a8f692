"""/api/queues: queues, their members and routing settings."""

from __future__ import annotations

from aiohttp import web

from callcenterd import keys
from callcenterd.api.endpoints import ApiRoutes
from callcenterd.contract.analytics import Forecast, ForecastQuery, PeriodQuery, QueueStats
from callcenterd.contract.routing import QueueCreate, QueueMemberOut, QueueOut, QueueUpdate
from callcenterd.contract.schemas import Message
from callcenterd.domain.users import Role
from callcenterd.errors import Conflict, NotFound
from callcenterd.security import Principal
from callcenterd.services.queues import QueueMember, QueueView

routes = ApiRoutes("queues")
ADMIN = [Role.ADMIN]
READERS = [Role.ADMIN, Role.MANAGER, Role.SUPERVISOR]


def queue_out(view: QueueView) -> QueueOut:
    queue, config = view.queue, view.queue.config
    return QueueOut(
        id=config.id,
        name=config.name,
        description=queue.description,
        asterisk_name=config.asterisk_name,
        max_wait_time=round(config.max_wait_time or 0),
        priority=config.priority,
        strategy=config.strategy,
        members=[member.extension for member in queue.members],
        is_active=config.is_active,
        current_calls=view.current_calls,
        waiting_calls=view.waiting_calls,
        required_skills=sorted(config.required_skills),
        numbers=list(config.numbers),
        is_default=config.is_default,
        ring_timeout=round(config.ring_timeout),
        retry_delay=round(config.retry_delay),
        wrapup_seconds=round(config.wrapup_seconds),
        join_empty=config.join_empty,
        overflow_action=config.overflow_action,
        overflow_queue_id=config.overflow_queue_id,
        music_class=config.music_class,
        greeting=config.greeting,
        announce_every=round(config.announce_every),
        announce_wait=config.announce_wait,
        last_operator_wait=round(config.last_operator_wait),
        callback_enabled=config.callback_enabled,
        callback_offer_after=round(config.callback_offer_after),
        sms_missed_call=config.sms_missed_call,
        sms_callback_scheduled=config.sms_callback_scheduled,
        sms_callback_reminder=config.sms_callback_reminder,
        notification_language=config.notification_language,
        created_at=queue.created_at,
        updated_at=queue.updated_at,
    )


def member_out(member: QueueMember) -> QueueMemberOut:
    return QueueMemberOut(
        operator_id=member.operator_id,
        extension=member.extension,
        name=member.name,
        penalty=member.penalty,
        position=member.position,
        status=member.status,
        presence=member.presence,
    )


@routes.route(
    "GET",
    "/queues/",
    summary="List queues, with calls answered and waiting now",
    roles=READERS,
    response=list[QueueOut],
    shared=True,
)
async def list_queues(request: web.Request) -> list[QueueOut]:
    return [queue_out(view) for view in await request.app[keys.SERVICES].queues.list_queues()]


@routes.route(
    "POST",
    "/queues/",
    summary="Create a queue",
    roles=ADMIN,
    body=QueueCreate,
    response=QueueOut,
    status=201,
    notes=(
        "`name`, `asterisk_name` (not `general`) and each of `numbers` are unique among queues"
        " (409 DB_004 naming the field); at most one queue `is_default`. `members` are"
        " extensions or `{extension | operator_id, penalty}`, in order."
    ),
    errors=(Conflict,),
)
async def create_queue(request: web.Request, body: QueueCreate, user: Principal) -> QueueOut:
    return queue_out(await request.app[keys.SERVICES].queues.create(body, user))


@routes.route(
    "GET",
    "/queues/{queue_id}",
    summary="One queue",
    roles=READERS,
    response=QueueOut,
    errors=(NotFound,),
)
async def get_queue(request: web.Request, queue_id: str) -> QueueOut:
    return queue_out(await request.app[keys.SERVICES].queues.get(queue_id))


@routes.route(
    "PUT",
    "/queues/{queue_id}",
    summary="Update a queue (partial)",
    roles=ADMIN,
    body=QueueUpdate,
    response=QueueOut,
    notes="`members`, when sent, replaces the whole list.",
    errors=(NotFound, Conflict),
)
async def update_queue(
    request: web.Request, body: QueueUpdate, user: Principal, queue_id: str
) -> QueueOut:
    return queue_out(await request.app[keys.SERVICES].queues.update(queue_id, body, user))


@routes.route(
    "DELETE",
    "/queues/{queue_id}",
    summary="Delete a queue",
    roles=ADMIN,
    response=Message,
    notes=(
        "409 while callers wait in it or another queue overflows into it. The record is kept"
        " for call history."
    ),
    errors=(NotFound, Conflict),
)
async def delete_queue(request: web.Request, user: Principal, queue_id: str) -> Message:
    await request.app[keys.SERVICES].queues.delete(queue_id, user)
    return Message(message="Queue deleted")


@routes.route(
    "GET",
    "/queues/{queue_id}/members",
    summary="A queue's members in order, with penalties and status",
    roles=READERS,
    response=list[QueueMemberOut],
    errors=(NotFound,),
)
async def queue_members(request: web.Request, queue_id: str) -> list[QueueMemberOut]:
    members = await request.app[keys.SERVICES].queues.members(queue_id)
    return [member_out(member) for member in members]


@routes.route(
    "GET",
    "/queues/{queue_id}/stats",
    summary="A queue's figures over a period, by local hour",
    roles=READERS,
    query=PeriodQuery,
    response=QueueStats,
    rate="dashboard",
    notes="Any queue, for every reader role. Definitions: README, Statistics.",
    errors=(NotFound,),
)
async def queue_stats(request: web.Request, query: PeriodQuery, queue_id: str) -> QueueStats:
    return await request.app[keys.SERVICES].analytics.queue_stats(queue_id, query)


@routes.route(
    "GET",
    "/queues/{queue_id}/forecast",
    summary="Operators needed per hour of day (Erlang C over the recent weeks)",
    roles=READERS,
    query=ForecastQuery,
    response=Forecast,
    rate="dashboard",
    notes=(
        "Per local hour of day: mean arrivals over the last `weeks` whole weeks, handle time ="
        " mean talk + the queue's wrap-up, and the fewest operators answering"
        " target_service_level % within `threshold` s by Erlang C."
    ),
    errors=(NotFound,),
)
async def queue_forecast(request: web.Request, query: ForecastQuery, queue_id: str) -> Forecast:
    return await request.app[keys.SERVICES].analytics.forecast(queue_id, query)
