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
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable
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
    UnsupportedMediaType,
)
from callcenterd.security import Principal

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
    # Identical requests by viewers of one scope share one answer for a short window (see
    # SharedAnswers): for reads whose answer depends on the viewer's role and group only.
    shared: bool = False

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
        shared: bool = False,
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
                    shared=shared,
                )
            )
            return handler

        return register


@dataclass(frozen=True, slots=True)
class Answer:
    """A JSON answer as sent: encoded once, given to every request that shares it."""

    body: bytes
    status: int

    def response(self) -> web.Response:
        return encoded_response(self.body, self.status)


class SharedAnswers:
    """Identical reads by viewers of the same scope, within `seconds`, share one answer.

    Two hundred wallboards polling the same figures every few seconds cost one computation
    (and one encoding) per scope and window instead of one each. The key is the endpoint, the
    validated query and the viewer's scope (role and group; an operator's own id), so an
    answer never reaches a viewer who could not have got it themselves; the token, the role
    and the rate limit are still checked on every request before the key is looked at.
    Requests that arrive while the answer is computed wait for it. An answer is at most
    `seconds` older than the request (figures of calls under way move anyway); a write made
    through the API forgets every answer, so whoever changed something reads it back at once.
    0 seconds: nothing is shared.
    """

    MAX_KEYS = 1000

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._answers: dict[Hashable, tuple[float, asyncio.Task[Answer]]] = {}

    async def answer(self, key: Hashable, compute: Callable[[], Awaitable[Answer]]) -> Answer:
        now = self._clock()
        found = self._answers.get(key)
        if found is None or found[0] <= now:
            if len(self._answers) >= self.MAX_KEYS:
                self._prune(now)
            task = asyncio.create_task(self._compute(key, compute))
            # Read the outcome even if every asker has gone (no "never retrieved" warning).
            task.add_done_callback(lambda done: done.cancelled() or done.exception())
            found = self._answers[key] = (now + self.seconds, task)
        # One asker leaving (a client gone) must not cancel the answer for the others.
        return await asyncio.shield(found[1])

    async def _compute(self, key: Hashable, compute: Callable[[], Awaitable[Answer]]) -> Answer:
        try:
            return await compute()
        except BaseException:
            # An error is not kept: the next request tries again.
            if (held := self._answers.get(key)) and held[1] is asyncio.current_task():
                del self._answers[key]
            raise

    def forget(self) -> None:
        self._answers.clear()

    def _prune(self, now: float) -> None:
        self._answers = {k: v for k, v in self._answers.items() if v[0] > now}


def viewer_scope(user: Principal | None) -> Hashable:
    """What a shared answer may depend on: role and group (and an operator's identity)."""
    if user is None:
        return None
    return (user.role, user.group_id, user.id if user.role is Role.OPERATOR else None)


# Responses with more items than this are encoded off the event loop.
LARGE_RESPONSE_ITEMS = 200


def _large(result: Any) -> bool:
    if isinstance(result, BaseModel):
        # A declared field only: getattr on a model without one raises inside pydantic,
        # which cost a small answer more than encoding it.
        result = getattr(result, "items", None) if "items" in type(result).model_fields else None
    return isinstance(result, list) and len(result) > LARGE_RESPONSE_ITEMS


def _encode(adapter: TypeAdapter[Any], result: Any) -> bytes:
    """The answer as compact UTF-8 JSON, encoded once (pydantic-core writes the bytes
    itself: no Python objects built first for json.dumps to walk again)."""
    return adapter.dump_json(result)


def encoded_response(body: bytes, status: int) -> web.Response:
    return web.Response(body=body, status=status, content_type="application/json", charset="utf-8")


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(data, ensure_ascii=False, separators=(",", ":")),
        status=status,
        content_type="application/json",
    )


# Deeper than any request model goes: a deeper body is refused before pydantic sees it, and
# nothing that deep is ever stored (a stored value must serialise again when it is read).
MAX_JSON_DEPTH = 32


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or media_type.endswith("+json")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError("number out of range")
    return value


def _too_deep(payload: Any) -> bool:
    level: list[Any] = [payload]
    for _ in range(MAX_JSON_DEPTH):
        level = [
            child
            for value in level
            if isinstance(value, dict | list)
            for child in (value.values() if isinstance(value, dict) else value)
        ]
        if not level:
            return False
    return any(isinstance(value, dict | list) for value in level)


def parse_json_body(raw: bytes) -> Any:
    """Strict JSON: no NaN/Infinity, no overflowing numbers, at most MAX_JSON_DEPTH deep."""
    try:
        payload = json.loads(raw, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError as err:
        raise body_error("Request body is nested too deeply", "json_invalid") from err
    except (UnicodeDecodeError, ValueError) as err:
        # ValueError covers malformed JSON and integer literals over Python's digit limit.
        raise body_error("Request body is not valid JSON", "json_invalid") from err
    if _too_deep(payload):
        raise body_error(
            f"Request body is nested deeper than {MAX_JSON_DEPTH} levels", "json_invalid"
        )
    return payload


async def _read_body(request: web.Request, model: type[BaseModel]) -> BaseModel:
    if request.content_length is not None and request.content_length > request.client_max_size:
        # Refused from the header alone: the body is never read.
        raise web.HTTPRequestEntityTooLarge(
            max_size=request.client_max_size, actual_size=request.content_length
        )
    raw = await request.read()
    if raw and not _is_json(request.content_type):
        raise UnsupportedMediaType()
    payload = parse_json_body(raw) if raw else None
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
    # A change made by someone signed in: shared answers may no longer hold.
    writes = endpoint.method not in ("GET", "HEAD") and endpoint.roles is not None

    async def run(request: web.Request, kwargs: dict[str, Any]) -> web.StreamResponse:
        result = await endpoint.handler(request, **kwargs)
        if isinstance(result, web.StreamResponse):
            return result
        if adapter is None:
            return json_response(result, endpoint.status)
        if isinstance(result, list | BaseModel) and _large(result):
            # Serialising a big page holds the loop for tens of ms; in a thread the loop keeps
            # getting turns (the GIL switches every few ms), so routing is not held up.
            encoded = await asyncio.to_thread(_encode, adapter, result)
            return encoded_response(encoded, endpoint.status)
        return encoded_response(_encode(adapter, result), endpoint.status)

    async def share(
        request: web.Request, kwargs: dict[str, Any], user: Principal | None
    ) -> web.StreamResponse:
        async def compute() -> Answer:
            response = await run(request, kwargs)
            if not isinstance(response, web.Response) or not isinstance(response.body, bytes):
                raise TypeError(f"{endpoint.path}: a shared endpoint must answer JSON bytes")
            return Answer(response.body, response.status)

        # The query as sent (validated above): the same text is the same question.
        key = (
            endpoint.method,
            endpoint.path,
            viewer_scope(user),
            tuple(sorted(request.query.items())),
            tuple(sorted(request.match_info.items())),
        )
        answer = await request.app[SHARED_ANSWERS].answer(key, compute)
        return answer.response()

    async def handle(request: web.Request) -> web.StreamResponse:
        services = request.app[keys.SERVICES]
        kwargs: dict[str, Any] = {}
        user = None
        if endpoint.roles is not None:
            user = await services.auth.authenticate(request.headers.get("Authorization"))
            if user.role not in endpoint.roles:
                raise PermissionDenied(f"Role '{user.role}' may not use this endpoint")
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
        if endpoint.shared and request.app[SHARED_ANSWERS].seconds > 0:
            return await share(request, kwargs, user)
        response = await run(request, kwargs)
        if writes:
            request.app[SHARED_ANSWERS].forget()  # whoever wrote reads it back at once
        return response

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
# The app's shared answers: built by create_app, used by every endpoint declared `shared`.
SHARED_ANSWERS = web.AppKey("shared_answers", SharedAnswers)

__all__ = [
    "ALL_ROLES",
    "ASTERISK_ERRORS",
    "ENDPOINTS",
    "SHARED_ANSWERS",
    "ApiRoutes",
    "Endpoint",
    "Errors",
    "SharedAnswers",
    "json_response",
    "mount",
]
