"""/healthz (the process answers) and /readyz (the database takes writes; links reported)."""

from __future__ import annotations

from aiohttp import web

from callcenterd import keys
from callcenterd.api.endpoints import json_response
from callcenterd.contract.schemas import Health


async def healthz(request: web.Request) -> web.Response:
    return json_response(Health(status="ok").model_dump(mode="json", exclude_none=True))


async def readyz(request: web.Request) -> web.Response:
    health = await request.app[keys.SERVICES].system.readiness()
    return json_response(health.model_dump(mode="json"), 200 if health.status == "ready" else 503)


def add_health_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
