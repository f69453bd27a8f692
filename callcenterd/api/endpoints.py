"""Declared endpoints: path, roles, input and output models, rate-limit class.

Handlers stay small: they receive parsed, validated inputs as keyword arguments
(``body``, ``query``, ``user`` and path parameters by name) and return a model.
This module is the one place where roles are enforced and inputs validated, and
the OpenAPI document is generated from the same declarations.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import hdrs, web
from pydantic import BaseModel, TypeAdapter, ValidationError

from callcenterd import keys
from callcenterd.api.ratelimit import RATE_LIMITS
from callcenterd.contract.validation import body_error, validation_error
from callcenterd.domain.users import Role
from callcenterd.errors import (
    AsteriskAuthFailed,
    AsteriskTimeout,
    AsteriskUnavailable,
    CallcenterError,
    PermissionDenied,
)

Handler = Callable[..., Awaitable[Any]]
RateClass = Literal["auth", "general", "dashboard"]
# The errors a handler's services may raise, beyond those every endpoint of its kind can
# answer (authentication, roles, validation, rate limits, the database): see api/docs.py.
Errors = tuple[type[CallcenterError], ...]
# What a request to Asterisk (ARI or AMI) may end in (services/asterisk_errors.py).
ASTERISK_ERRORS: Errors = (AsteriskTimeout, AsteriskAuthFailed, AsteriskUnavailable)

ALL_ROLES = frozenset(Role)
API_PREFIXES = ("/api", "/api/v1")


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # below /api, e.g. "/auth/login"
    handler: Handler
    summary: str
    tag: str
    roles: frozenset[Role] | None  # None: no token needed
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: Any
    status: int
    rate: RateClass | None
    # Extra rule text for the docs, e.g. "operator: own record only".
    notes: str = ""
    wants: frozenset[str] = field(default=frozenset())
    # A streamed, non-JSON answer (the handler returns a web.StreamResponse): its media type.
    produces: str | None = None
    errors: Errors = ()

    def adapter(self) -> TypeAdapter[Any] | None:
        return None if self.response is None else TypeAdapter(self.response)


class ApiRoutes:
    """Collects one API area's endpoints (one module = one area)."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.endpoints: list[Endpoint] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        roles: Iterable[Role] | None,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        response: Any = None,
        status: int = 200,
        rate: RateClass | None = "general",
        notes: str = "",
        produces: str | None = None,
        errors: Errors = (),
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            wants = frozenset(inspect.signature(handler).parameters) - {"request"}
            self.endpoints.append(
                Endpoint(
                    method=method,
                    path=path,
                    handler=handler,
                    summary=summary,
                    tag=self.tag,
                    roles=None if roles is None else frozenset(roles),
                    body=body,
                    query=query,
                    response=response,
                    status=status,
                    rate=rate,
                    notes=notes,
                    wants=wants,
                    produces=produces,
                    errors=errors,
                )
            )
            return handler

        return register


# Responses with more items than this are encoded off the event loop.
LARGE_RESPONSE_ITEMS = 200


def _large(result: Any) -> bool:
    items = result if isinstance(result, list) else getattr(result, "items", None)
    return isinstance(items, list) and len(items) > LARGE_RESPONSE_ITEMS


def _encode(adapter: TypeAdapter[Any], result: Any) -> str:
    return json.dumps(
        adapter.dump_python(result, mode="json"), ensure_ascii=False, separators=(",", ":")
    )


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(data, ensure_ascii=False, separators=(",", ":")),
        status=status,
        content_type="application/json",
    )


async def _read_body(request: web.Request, model: type[BaseModel]) -> BaseModel:
    raw = await request.read()
    try:
        payload = json.loads(raw) if raw else None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise body_error("Request body is not valid JSON", "json_invalid") from err
    if payload is None:
        raise body_error("Request body is required (a JSON object)", "missing")
    try:
        return model.model_validate(payload)
    except ValidationError as err:
        raise validation_error(err, "body") from err


def _read_query(request: web.Request, model: type[BaseModel]) -> BaseModel:
    try:
        return model.model_validate(dict(request.query))
    except ValidationError as err:
        raise validation_error(err, "query") from err


def bind(endpoint: Endpoint) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Turn a declared endpoint into an aiohttp handler enforcing its rules."""
    adapter = endpoint.adapter()

    async def handle(request: web.Request) -> web.StreamResponse:
        services = request.app[keys.SERVICES]
        kwargs: dict[str, Any] = {}
        user = None
        if endpoint.roles is not None:
            user = await services.auth.authenticate(request.headers.get("Authorization"))
            if user.role not in endpoint.roles:
                raise PermissionDenied(
                    f"Role '{user.role}' may not {endpoint.method} {request.path}"
                )
        if endpoint.rate is not None:
            request.app[RATE_LIMITS].check_client(endpoint.rate, request, user)
        if endpoint.body is not None:
            body = kwargs["body"] = await _read_body(request, endpoint.body)
            subject = getattr(body, "rate_limit_subject", None)
            if endpoint.rate is not None and isinstance(subject, str):
                request.app[RATE_LIMITS].check_subject(endpoint.rate, subject)
        if endpoint.query is not None:
            kwargs["query"] = _read_query(request, endpoint.query)
        if "user" in endpoint.wants:
            kwargs["user"] = user
        for name in endpoint.wants - {"body", "query", "user"}:
            kwargs[name] = request.match_info[name]
        result = await endpoint.handler(request, **kwargs)
        if isinstance(result, web.StreamResponse):
            return result
        if adapter is None:
            return json_response(result, endpoint.status)
        if isinstance(result, list | BaseModel) and _large(result):
            # Serialising a big page holds the loop for tens of ms; in a thread the loop keeps
            # getting turns (the GIL switches every few ms), so routing is not held up.
            text = await asyncio.to_thread(_encode, adapter, result)
            return web.Response(text=text, status=endpoint.status, content_type="application/json")
        return json_response(adapter.dump_python(result, mode="json"), endpoint.status)

    handle.__name__ = endpoint.handler.__name__
    return handle


def mount(app: web.Application, areas: Iterable[ApiRoutes]) -> list[Endpoint]:
    """Register every endpoint under /api and its /api/v1 alias."""
    endpoints = [endpoint for area in areas for endpoint in area.endpoints]
    methods: dict[str, set[str]] = {}
    for endpoint in endpoints:
        handler = bind(endpoint)
        for path in _paths(endpoint):
            app.router.add_route(endpoint.method, path, handler)
            methods.setdefault(path, set()).add(endpoint.method)
    for path, allowed in methods.items():
        app.router.add_route(hdrs.METH_ANY, path, _refuse_method(allowed))
    return endpoints


def _paths(endpoint: Endpoint) -> list[str]:
    """Its path under each prefix; the contract writes some collections with a trailing slash
    (/api/calls/), both work."""
    paths = sorted({endpoint.path, endpoint.path.rstrip("/") or "/"})
    return [prefix + path for prefix in API_PREFIXES for path in paths]


def _refuse_method(allowed: set[str]) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """405 listing exactly this path's methods. Without it a fixed path such as /calls/stats
    would fall through to /calls/{call_id} and advertise (and take) that route's PUT."""

    async def refuse(request: web.Request) -> web.StreamResponse:
        raise web.HTTPMethodNotAllowed(request.method, allowed)

    return refuse


# What mount() declared, for the OpenAPI document.
ENDPOINTS = web.AppKey("endpoints", list[Endpoint])

__all__ = [
    "ALL_ROLES",
    "ASTERISK_ERRORS",
    "ENDPOINTS",
    "ApiRoutes",
    "Endpoint",
    "Errors",
    "json_response",
    "mount",
]
