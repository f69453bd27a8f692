"""/healthz (the process answers) and /readyz (the database takes writes; links reported)."""

from __future__ import annotations

import structlog
from aiohttp import web

from callcenterd import keys
from callcenterd.api.endpoints import json_response
from callcenterd.contract.schemas import Health, LinkState
from callcenterd.errors import CallcenterError
from callcenterd.keys import Services

log = structlog.get_logger(__name__)


def ari_state(services: Services) -> LinkState:
    link = services.ari
    return LinkState(
        state=link.state,
        url=link.url,
        asterisk_version=link.asterisk_version,
        last_error=link.last_error,
        since=link.since,
    )


def ami_state(services: Services) -> LinkState:
    link = services.ami
    return LinkState(
        state=link.state,
        url=link.url,
        asterisk_version=link.asterisk_version,
        last_error=link.last_error,
        since=link.since,
    )


async def database_ok(services: Services) -> bool:
    try:
        await services.db.check_writable()
    except CallcenterError as err:
        log.warning("database_not_writable", error=err.detail)
        return False
    return True


async def healthz(request: web.Request) -> web.Response:
    return json_response(Health(status="ok").model_dump(mode="json", exclude_none=True))


async def readyz(request: web.Request) -> web.Response:
    services = request.app[keys.SERVICES]
    ok = await database_ok(services)
    health = Health(
        status="ready" if ok else "not_ready",
        database="writable" if ok else "not writable",
        ari=ari_state(services),
        ami=ami_state(services),
    )
    return json_response(health.model_dump(mode="json"), 200 if ok else 503)


def add_health_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
