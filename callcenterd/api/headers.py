"""Security headers on every answer, and CORS for the origins an admin allows (none by default)."""

from __future__ import annotations

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

CORS_METHODS = "GET, POST, PUT, DELETE"
CORS_HEADERS = "Authorization, Content-Type, X-Request-ID"
CORS_EXPOSED = "X-Request-ID, Retry-After"
CORS_MAX_AGE = "600"


def apply_security_headers(response: web.StreamResponse, *, path: str) -> None:
    """The same protective headers on every answer the daemon sends."""
    headers = response.headers
    headers["X-Content-Type-Options"] = "nosniff"
    headers["X-Frame-Options"] = "DENY"
    headers["Referrer-Policy"] = "no-referrer"
    headers["Content-Security-Policy"] = DOCS_POLICY if path.startswith(DOCS_PATHS) else API_POLICY
    if not path.startswith(CACHEABLE_PATHS):
        # Answers carry users, calls and tokens: no shared or browser cache keeps them.
        headers["Cache-Control"] = "no-store"


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """An on_response_prepare hook: static files and WebSocket handshakes get them too."""
    apply_security_headers(response, path=request.path)


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
