"""The HTTP server: aiohttp's runner, with what its parser rejects answered in the API's shape.

aiohttp answers a request its HTTP parser cannot read (an over-long request line or header,
bad bytes in the path, a malformed method, conflicting length headers) before any middleware
runs, as plain text quoting the offending bytes. Here those answers are JSON in the contract's
error shape, with the security headers, and echo nothing of the request.
"""

from __future__ import annotations

from http import HTTPStatus

import structlog
from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from callcenterd.api.endpoints import json_response
from callcenterd.api.headers import apply_security_headers

log = structlog.get_logger("callcenterd.http")


def protocol_error_body(status: int) -> dict[str, str | None]:
    if status >= 500:
        return {
            "detail": "Internal server error",
            "type": "internal_error",
            "code": "INTERNAL",
            "field": None,
        }
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:  # a status the standard library does not name
        phrase = "Error"
    return {
        "detail": f"Malformed HTTP request ({phrase})",
        "type": "bad_request",
        "code": "BAD_REQUEST",
        "field": None,
    }


class _JsonErrorRequestHandler(RequestHandler):
    """One connection's protocol handler; only its error answers differ from aiohttp's."""

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        # The parser's message quotes the request's bytes: only the error's class is logged.
        if status >= 500:
            log.error("http_protocol_error", status=status, error=type(exc).__name__)
        else:
            log.info("http_bad_request", status=status, error=type(exc).__name__)
        if request.writer.output_size > 0:
            raise ConnectionError("The answer was already being sent; cannot send an error")
        response = json_response(protocol_error_body(status), status)
        apply_security_headers(response, path="")
        response.force_close()
        return response


class _JsonErrorServer(web.Server):
    def __init__(self, wrapped: web.Server) -> None:
        # aiohttp builds its Server with the app's handler and settings; the same, here.
        super().__init__(
            wrapped.request_handler,
            request_factory=wrapped.request_factory,
            handler_cancellation=wrapped.handler_cancellation,
            loop=wrapped._loop,
            **wrapped._kwargs,
        )

    def __call__(self) -> RequestHandler:
        return _JsonErrorRequestHandler(self, loop=self._loop, **self._kwargs)


class ApiRunner(web.AppRunner):
    """An AppRunner whose connections answer protocol errors as JSON."""

    async def _make_server(self) -> web.Server:
        return _JsonErrorServer(await super()._make_server())
