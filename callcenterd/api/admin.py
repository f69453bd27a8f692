"""/api/admin: users, groups, system settings, the Asterisk connection test, system info."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from callcenterd import keys
from callcenterd.api.auth import user_out
from callcenterd.api.endpoints import ApiRoutes
from callcenterd.contract.schemas import (
    AdminUserOut,
    AsteriskTestRequest,
    AsteriskTestResult,
    GroupIn,
    GroupOut,
    GroupUpdate,
    Message,
    OperatorOut,
    SystemInfo,
    SystemSettings,
    SystemSettingsUpdate,
    UserCreate,
    UserListQuery,
    UserUpdate,
)
from callcenterd.domain.users import Group, Operator, Role, User
from callcenterd.errors import (
    Conflict,
    EmailTaken,
    ExtensionTaken,
    LastAdmin,
    NotFound,
    UsernameTaken,
    UserNotFound,
)
from callcenterd.security import Principal

routes = ApiRoutes("admin")
ADMIN = [Role.ADMIN]
GROUP_READERS = [Role.ADMIN, Role.MANAGER, Role.SUPERVISOR]


def _now(request: web.Request) -> datetime:
    return request.app[keys.SERVICES].clock()


def admin_user_out(user: User, now: datetime) -> AdminUserOut:
    """The user with the lock still running at `now` (a past one is shown as null)."""
    return AdminUserOut(
        **user_out(user).model_dump(), locked_until=user.locked_at(now), extension=user.extension
    )


def operator_out(operator: Operator, current_calls: int = 0) -> OperatorOut:
    return OperatorOut(
        id=operator.id,
        user_id=operator.user_id,
        extension=operator.extension,
        group_id=operator.group_id,
        status=operator.status,
        skills=list(operator.skills),
        max_concurrent_calls=operator.max_concurrent_calls,
        current_calls=current_calls,
        last_activity=operator.last_activity,
        created_at=operator.created_at,
    )


def group_out(group: Group) -> GroupOut:
    return GroupOut(
        id=group.id,
        name=group.name,
        description=group.description,
        created_at=group.created_at,
        updated_at=group.updated_at,
    )


# --- users ---------------------------------------------------------------------------------
@routes.route(
    "GET",
    "/admin/users",
    summary="List users",
    roles=ADMIN,
    query=UserListQuery,
    response=list[AdminUserOut],
)
async def list_users(request: web.Request, query: UserListQuery) -> list[AdminUserOut]:
    users = await request.app[keys.SERVICES].users.list(query.skip, query.limit, query.role)
    return [admin_user_out(user, _now(request)) for user in users]


@routes.route(
    "POST",
    "/admin/users",
    summary="Create a user (an operator gets an operator record)",
    roles=ADMIN,
    body=UserCreate,
    response=AdminUserOut,
    status=201,
    errors=(UsernameTaken, EmailTaken, ExtensionTaken),
)
async def create_user(request: web.Request, body: UserCreate, user: Principal) -> AdminUserOut:
    return admin_user_out(await request.app[keys.SERVICES].users.create(body, user), _now(request))


@routes.route(
    "PUT",
    "/admin/users/{user_id}",
    summary="Update a user (partial)",
    roles=ADMIN,
    body=UserUpdate,
    response=AdminUserOut,
    notes="A new password or deactivation revokes the user's tokens.",
    errors=(UserNotFound, UsernameTaken, EmailTaken, ExtensionTaken, LastAdmin),
)
async def update_user(
    request: web.Request, body: UserUpdate, user: Principal, user_id: str
) -> AdminUserOut:
    updated = await request.app[keys.SERVICES].users.update(user_id, body, user)
    return admin_user_out(updated, _now(request))


@routes.route(
    "DELETE",
    "/admin/users/{user_id}",
    summary="Delete a user (never the last admin)",
    roles=ADMIN,
    response=Message,
    errors=(UserNotFound, LastAdmin),
)
async def delete_user(request: web.Request, user: Principal, user_id: str) -> Message:
    await request.app[keys.SERVICES].users.delete(user_id, user)
    return Message(message="User deleted")


@routes.route(
    "POST",
    "/admin/users/{user_id}/unlock",
    summary="Unlock a user locked out by failed logins",
    roles=ADMIN,
    response=AdminUserOut,
    notes="Forgets the failed logins counted against the user's name; the user may log in"
    " at once. Unlocking a user who is not locked changes nothing.",
    errors=(UserNotFound,),
)
async def unlock_user(request: web.Request, user: Principal, user_id: str) -> AdminUserOut:
    unlocked = await request.app[keys.SERVICES].users.unlock(user_id, user)
    return admin_user_out(unlocked, _now(request))


@routes.route(
    "GET",
    "/admin/users/{user_id}/operator",
    summary="The user's operator record, or null",
    roles=ADMIN,
    response=OperatorOut | None,
    errors=(UserNotFound,),
)
async def user_operator(request: web.Request, user_id: str) -> OperatorOut | None:
    operator = await request.app[keys.SERVICES].users.operator_of(user_id)
    return operator_out(operator) if operator else None


# --- groups --------------------------------------------------------------------------------
@routes.route(
    "GET",
    "/admin/groups",
    summary="List groups (a supervisor sees their own)",
    roles=GROUP_READERS,
    response=list[GroupOut],
)
async def list_groups(request: web.Request, user: Principal) -> list[GroupOut]:
    return [group_out(g) for g in await request.app[keys.SERVICES].groups.list(user)]


@routes.route(
    "GET",
    "/admin/groups/{group_id}",
    summary="One group",
    roles=GROUP_READERS,
    response=GroupOut,
    errors=(NotFound,),
)
async def get_group(request: web.Request, user: Principal, group_id: str) -> GroupOut:
    return group_out(await request.app[keys.SERVICES].groups.get(group_id, user))


@routes.route(
    "POST",
    "/admin/groups",
    summary="Create a group",
    roles=ADMIN,
    body=GroupIn,
    response=GroupOut,
    status=201,
    errors=(Conflict,),
)
async def create_group(request: web.Request, body: GroupIn, user: Principal) -> GroupOut:
    return group_out(await request.app[keys.SERVICES].groups.create(body, user))


@routes.route(
    "PUT",
    "/admin/groups/{group_id}",
    summary="Update a group",
    roles=ADMIN,
    body=GroupUpdate,
    response=GroupOut,
    errors=(NotFound, Conflict),
)
async def update_group(
    request: web.Request, body: GroupUpdate, user: Principal, group_id: str
) -> GroupOut:
    return group_out(await request.app[keys.SERVICES].groups.update(group_id, body, user))


@routes.route(
    "DELETE",
    "/admin/groups/{group_id}",
    summary="Delete a group no one belongs to",
    roles=ADMIN,
    response=Message,
    errors=(NotFound, Conflict),
)
async def delete_group(request: web.Request, user: Principal, group_id: str) -> Message:
    await request.app[keys.SERVICES].groups.delete(group_id, user)
    return Message(message="Group deleted")


# --- settings ------------------------------------------------------------------------------
@routes.route(
    "GET",
    "/admin/settings",
    summary="System settings (the Asterisk password masked)",
    roles=ADMIN,
    response=SystemSettings,
)
async def get_settings(request: web.Request) -> SystemSettings:
    return await request.app[keys.SERVICES].system_settings.masked()


@routes.route(
    "PUT",
    "/admin/settings",
    summary="Update system settings (partial or whole)",
    roles=ADMIN,
    body=SystemSettingsUpdate,
    response=SystemSettings,
    notes="Changing asterisk_config reconnects to Asterisk at once; enabled=false disconnects.",
)
async def put_settings(
    request: web.Request, body: SystemSettingsUpdate, user: Principal
) -> SystemSettings:
    return await request.app[keys.SERVICES].system_settings.update(body, user)


@routes.route(
    "POST",
    "/admin/settings/asterisk/test",
    summary="Probe ARI with the given credentials",
    roles=ADMIN,
    body=AsteriskTestRequest,
    response=AsteriskTestResult,
    notes="Always 200: `success` says whether it connected; failures carry AST_001/002/004.",
)
async def test_asterisk(request: web.Request, body: AsteriskTestRequest) -> AsteriskTestResult:
    return await request.app[keys.SERVICES].system_settings.test_connection(body)


@routes.route(
    "GET", "/admin/system/info", summary="System information", roles=ADMIN, response=SystemInfo
)
async def system_info(request: web.Request) -> SystemInfo:
    return await request.app[keys.SERVICES].system.info()
