"""/api/vip-callers: numbers whose calls are served first (a priority per number)."""

from __future__ import annotations

from aiohttp import web

from callcenterd import keys
from callcenterd.api.endpoints import ApiRoutes
from callcenterd.contract.routing import VipCallerIn, VipCallerOut
from callcenterd.contract.schemas import Message
from callcenterd.contract.validation import RequestInvalid
from callcenterd.domain.callers import VipCaller
from callcenterd.domain.users import Role
from callcenterd.errors import NotFound
from callcenterd.security import Principal

routes = ApiRoutes("vip-callers")
EDITORS = [Role.ADMIN, Role.MANAGER]
NOTES = (
    "A caller whose number's digits match gets this priority, or the dialplan's if higher"
    " (`Stasis(callcenterd,QUEUE,priority=N)` or CALLCENTERD_PRIORITY)."
)


def vip_out(vip: VipCaller) -> VipCallerOut:
    return VipCallerOut(
        number=vip.number,
        priority=vip.priority,
        note=vip.note,
        created_at=vip.created_at,
        updated_at=vip.updated_at,
    )


@routes.route(
    "GET",
    "/vip-callers",
    summary="List VIP callers",
    roles=[*EDITORS, Role.SUPERVISOR],
    response=list[VipCallerOut],
    notes=NOTES,
)
async def list_vip_callers(request: web.Request, user: Principal) -> list[VipCallerOut]:
    return [vip_out(vip) for vip in await request.app[keys.SERVICES].vip_callers.list()]


@routes.route(
    "PUT",
    "/vip-callers/{number}",
    summary="Add a VIP caller, or change their priority",
    roles=EDITORS,
    body=VipCallerIn,
    response=VipCallerOut,
    notes=NOTES,
    errors=(RequestInvalid,),
)
async def put_vip_caller(
    request: web.Request, body: VipCallerIn, user: Principal, number: str
) -> VipCallerOut:
    return vip_out(await request.app[keys.SERVICES].vip_callers.put(number, body, user))


@routes.route(
    "DELETE",
    "/vip-callers/{number}",
    summary="Take a number off the VIP list",
    roles=EDITORS,
    response=Message,
    errors=(NotFound, RequestInvalid),
)
async def delete_vip_caller(request: web.Request, user: Principal, number: str) -> Message:
    await request.app[keys.SERVICES].vip_callers.delete(number, user)
    return Message(message=f"{number} is no longer a VIP caller")
