"""Security headers on every answer, and CORS for the origins an admin allows (none by default)."""

from __future__ import annotations

import re

from aiohttp import web
from aiohttp.typedefs import Handler

# The API answers JSON only: nothing in it may run, load, or be framed.
API_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# Swagger UI: its bundle and init script from here, inline styles it sets on elements, the
# document it fetches from here; no inline script, no other origin.
DOCS_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
DOCS_PATHS = ("/docs",)
# Swagger UI's files are the same for a given version: the browser may keep them.
CACHEABLE_PATHS = ("/docs/static/",)
# The wallboard and admin pages (callcenterd/web/): the page at `/` and its files. Scripts,
# styles and images from here only, no inline script or style attribute; the API and the
# event WebSocket on this host. `'self'` alone leaves ws:/wss: out in some browsers, so the
# socket's own origin is named too (when the Host header is a plain host[:port]).
WEB_PAGE = "/"
WEB_STATIC = "/static/"
_WEB_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'{sockets}; object-src 'none'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
_PLAIN_HOST = re.compile(
    r"(?:[A-Za-z0-9-]{1,63}\.)*[A-Za-z0-9-]{1,63}(?::\d{1,5})?"  # name or IPv4, port
    r"|\[[0-9A-Fa-f:.]{2,45}\](?::\d{1,5})?"  # [IPv6], port
)
# The pages' files carry no data; they change with the installed version (no hashed names),
# so the browser keeps them but asks each time whether they changed (ETag).
REVALIDATED_PATHS = (WEB_STATIC,)

CORS_METHODS = "GET, POST, PUT, DELETE"
CORS_HEADERS = "Authorization, Content-Type, X-Request-ID"
CORS_EXPOSED = "X-Request-ID, Retry-After"
CORS_MAX_AGE = "600"


def web_policy(host: str | None) -> str:
    """The pages' policy; the WebSocket's origin only for a Host header that is one."""
    if host is None or not _PLAIN_HOST.fullmatch(host):
        return _WEB_POLICY.format(sockets="")
    return _WEB_POLICY.format(sockets=f" ws://{host} wss://{host}")


def is_web_path(path: str) -> bool:
    return path == WEB_PAGE or path.startswith(WEB_STATIC)


def _policy(path: str, host: str | None) -> str:
    if is_web_path(path):
        return web_policy(host)
    return DOCS_POLICY if path.startswith(DOCS_PATHS) else API_POLICY


def apply_security_headers(
    response: web.StreamResponse, *, path: str, host: str | None = None
) -> None:
    """The same protective headers on every answer the daemon sends."""
    headers = response.headers
    headers["X-Content-Type-Options"] = "nosniff"
    headers["X-Frame-Options"] = "DENY"
    headers["Referrer-Policy"] = "no-referrer"
    headers["Content-Security-Policy"] = _policy(path, host)
    if path.startswith(REVALIDATED_PATHS):
        headers["Cache-Control"] = "no-cache"
    elif not path.startswith(CACHEABLE_PATHS):
        # Answers carry users, calls and tokens: no shared or browser cache keeps them.
        headers["Cache-Control"] = "no-store"


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """An on_response_prepare hook: static files and WebSocket handshakes get them too."""
    path = request.path
    # The Host header is parsed only for the pages, whose policy names it.
    apply_security_headers(response, path=path, host=request.host if is_web_path(path) else None)


class Cors:
    """Cross-origin access for the configured origins only; an empty list turns it off.

    Tokens travel in the Authorization header, never in cookies, so credentials are not
    allowed and a listed origin can do nothing a script holding a token could not.
    """

    def __init__(self, origins: tuple[str, ...]) -> None:
        self._origins = frozenset(origins)

    def allowed(self, request: web.Request) -> str | None:
        origin = request.headers.get("Origin", "").lower()
        return origin if origin in self._origins else None

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = self.allowed(request)
        if origin is None:
            return await handler(request)
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            response: web.StreamResponse = web.Response(status=204)
            response.headers["Access-Control-Allow-Methods"] = CORS_METHODS
            response.headers["Access-Control-Allow-Headers"] = CORS_HEADERS
            response.headers["Access-Control-Max-Age"] = CORS_MAX_AGE
        else:
            response = await handler(request)
            if response.prepared:  # a WebSocket, already answered: browsers do not apply CORS
                return response
            response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSED
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
        return response
