"""/api/auth: login, who am I, logout."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from callcenterd import keys
from callcenterd.api.endpoints import ALL_ROLES, ApiRoutes
from callcenterd.api.operators import operator_item
from callcenterd.contract.routing import MeOut
from callcenterd.contract.schemas import LoginRequest, Message, TokenResponse, UserOut
from callcenterd.domain.users import User
from callcenterd.errors import AccountLocked, InvalidCredentials, UserInactive
from callcenterd.security import Principal

routes = ApiRoutes("auth")


def _user_fields(user: User) -> dict[str, Any]:
    return dict(
        id=user.id,
        username=user.username,
        email=user.email,
        name=user.name,
        role=user.role,
        group_id=user.group_id,
        is_active=user.is_active,
        created_at=user.created_at,
        updated_at=user.updated_at,
    )


def user_out(user: User) -> UserOut:
    return UserOut(**_user_fields(user))


@routes.route(
    "POST",
    "/auth/login",
    summary="Log in and get a JWT access token",
    roles=None,
    body=LoginRequest,
    response=TokenResponse,
    rate="auth",
    notes="Limited per client address and per username (429 with Retry-After). After"
    " `auth.lockout_attempts` failed logins in a row the username is locked for"
    " `auth.lockout_minutes` (403 AUTH_005, even with the right password), whether or not a"
    " user has it; an admin unlocks with POST /api/admin/users/{user_id}/unlock.",
    errors=(InvalidCredentials, UserInactive, AccountLocked),
)
async def login(request: web.Request, body: LoginRequest) -> TokenResponse:
    auth = request.app[keys.SERVICES].auth
    issued, user = await auth.login(body.username, body.password)
    return TokenResponse(
        access_token=issued.token, expires_in=auth.token_ttl_minutes, user=user_out(user)
    )


@routes.route(
    "GET",
    "/auth/me",
    summary="The current user",
    roles=ALL_ROLES,
    response=MeOut,
    notes="`operator`: the user's operator as GET /api/operators/ lists it (null when none),"
    " so an operator can read and set their own status.",
)
async def me(request: web.Request, user: Principal) -> MeOut:
    # The principal is the user as of this request (authenticate checked it against the
    # store's auth epoch, which moves when an operator row comes or goes): no second read.
    operator_id = user.user.operator_id
    operators = request.app[keys.SERVICES].operators
    operator = operator_item(await operators.view(operator_id)) if operator_id else None
    return MeOut(**_user_fields(user.user), operator=operator)


@routes.route(
    "POST",
    "/auth/logout",
    summary="Log out: the token is revoked server-side",
    roles=ALL_ROLES,
    response=Message,
)
async def logout(request: web.Request, user: Principal) -> Message:
    await request.app[keys.SERVICES].auth.logout(user)
    return Message(message="Successfully logged out")
