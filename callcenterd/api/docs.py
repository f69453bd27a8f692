"""The OpenAPI 3.1 document, made from the declared endpoints, and Swagger UI served offline."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import BaseModel, TypeAdapter

from callcenterd import __version__
from callcenterd.api.endpoints import ENDPOINTS, Endpoint, json_response
from callcenterd.contract.routing import NUMBER_PATTERN
from callcenterd.contract.schemas import ErrorBody
from callcenterd.contract.validation import RequestInvalid, without_null
from callcenterd.errors import (
    CallcenterError,
    DatabaseUnavailable,
    NotAuthenticated,
    PermissionDenied,
    RateLimited,
    TokenExpired,
    UserInactive,
)

_REF = "#/components/schemas/{model}"
_PATH_PARAM = re.compile(r"{(\w+)}")

# Path parameters: record ids are UUIDs (any other text finds nothing: 404); channel ids are
# Asterisk's own.
_PATH_SCHEMAS: dict[str, dict[str, Any]] = {
    "channel_id": {
        "type": "string",
        "minLength": 1,
        "maxLength": 128,
        "description": "An Asterisk channel id, e.g. 1700000000.42",
    },
    "number": {
        "type": "string",
        "pattern": NUMBER_PATTERN,
        "description": "A phone number: digits, with an optional leading +",
    },
}
_ID_SCHEMA = {"type": "string", "format": "uuid"}

# What the HTTP plumbing answers before a handler runs, for bodies it cannot read.
_BODY_ERRORS = {
    "413": "PAYLOAD_TOO_LARGE: the body is over the configured limit",
    "415": "UNSUPPORTED_MEDIA_TYPE: the body is not sent as application/json",
}


def _declared_errors(endpoint: Endpoint) -> list[type[CallcenterError]]:
    """Every error class the endpoint can answer: its kind's, then its services' own."""
    found: list[type[CallcenterError]] = []
    if endpoint.roles is not None:
        found += [NotAuthenticated, TokenExpired, PermissionDenied, UserInactive]
    if endpoint.body is not None or endpoint.query is not None:
        found.append(RequestInvalid)
    if endpoint.rate is not None:
        found.append(RateLimited)
    found.append(DatabaseUnavailable)  # every endpoint reads the database
    return found + [error for error in endpoint.errors if error not in found]


def _error_responses(endpoint: Endpoint) -> dict[str, Any]:
    """One response per status, its description listing each code with its meaning."""
    lines: dict[str, list[str]] = {}
    for error in _declared_errors(endpoint):
        line = f"{error.code}: {error.default_detail}"
        if line not in lines.setdefault(str(error.status), []):
            lines[str(error.status)].append(line)
    if endpoint.body is not None:
        for status, text in _BODY_ERRORS.items():
            lines.setdefault(status, []).append(text)
    content = {"application/json": {"schema": {"$ref": _REF.format(model="ErrorBody")}}}
    return {
        status: {"description": "; ".join(lines[status]), "content": content}
        for status in sorted(lines)
    }


def _schema(annotation: Any, mode: str, defs: dict[str, Any]) -> dict[str, Any]:
    schema = TypeAdapter(annotation).json_schema(ref_template=_REF, mode=mode)  # type: ignore[arg-type]
    defs.update(schema.pop("$defs", {}))
    return schema


def _model_schema(annotation: Any, mode: str, defs: dict[str, Any]) -> dict[str, Any]:
    """A request or response body: a model is listed under components and referenced."""
    schema = _schema(annotation, mode, defs)
    if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        return schema
    name = annotation.__name__
    if defs.get(name, schema) != schema:  # the same model differs as input and as output
        name += "Input" if mode == "validation" else "Output"
    defs[name] = schema
    return {"$ref": _REF.format(model=name)}


def _parameters(endpoint: Endpoint, defs: dict[str, Any]) -> list[dict[str, Any]]:
    params = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": _PATH_SCHEMAS.get(name, _ID_SCHEMA),
        }
        for name in _PATH_PARAM.findall(endpoint.path)
    ]
    if endpoint.query is not None:
        schema = _schema(endpoint.query, "validation", defs)
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            param = {"name": name, "in": "query", "required": name in required}
            params.append({**param, "schema": without_null(prop)})
    return params


def _success_content(endpoint: Endpoint, defs: dict[str, Any]) -> dict[str, Any]:
    if endpoint.produces is not None:
        # A streamed file (e.g. text/csv): its layout is described in the endpoint's notes.
        return {endpoint.produces: {"schema": {"type": "string"}}}
    if endpoint.response is None:
        return {}
    return {"application/json": {"schema": _model_schema(endpoint.response, "serialization", defs)}}


def _operation(endpoint: Endpoint, defs: dict[str, Any]) -> dict[str, Any]:
    roles = "any (no token)" if endpoint.roles is None else ", ".join(sorted(endpoint.roles))
    description = f"**Roles:** {roles}."
    if endpoint.rate:
        description += f" Rate limit class: `{endpoint.rate}`."
    if endpoint.notes:
        description += f"\n\n{endpoint.notes}"
    if endpoint.shared:
        description += (
            "\n\nIdentical requests (same query, same role and group; an operator's own) within"
            " `http.shared_answer_seconds` (1 s) share one answer; a change made through the API"
            " is read back at once."
        )
    responses: dict[str, Any] = {
        str(endpoint.status): {
            "description": "Success",
            "content": _success_content(endpoint, defs),
        }
    }
    responses.update(_error_responses(endpoint))
    operation: dict[str, Any] = {
        "tags": [endpoint.tag],
        "summary": endpoint.summary,
        "description": description,
        "operationId": f"{endpoint.tag}_{endpoint.handler.__name__}",
        "parameters": _parameters(endpoint, defs),
        "responses": responses,
    }
    if endpoint.roles is not None:
        operation["security"] = [{"bearer": []}]
    if endpoint.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {"schema": _model_schema(endpoint.body, "validation", defs)}
            },
        }
    return operation


def openapi_document(endpoints: list[Endpoint]) -> dict[str, Any]:
    defs: dict[str, Any] = {}
    defs["ErrorBody"] = ErrorBody.model_json_schema(ref_template=_REF)
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        paths.setdefault("/api" + endpoint.path, {})[endpoint.method.lower()] = _operation(
            endpoint, defs
        )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "callcenterd API",
            "version": __version__,
            "description": (
                "Contact-center engine for Asterisk. Every `/api/...` path also answers under "
                "`/api/v1/...`. Errors are JSON: `{detail, type, code, field}`."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": defs,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }


def _swagger_static() -> Path:
    # swagger-ui-py ships Swagger UI 5 (OpenAPI 3.1); only its static files are used.
    return Path(str(resources.files("swagger_ui") / "static"))


_DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>callcenterd API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script></body></html>
"""

# Served as a file, not inline, so the page works under a strict Content-Security-Policy.
_DOCS_INIT = """window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui",
  persistAuthorization: true, deepLinking: true});
"""


def add_docs_routes(app: web.Application) -> None:
    cached: dict[str, Any] = {}

    async def openapi(request: web.Request) -> web.Response:
        if "doc" not in cached:
            cached["doc"] = openapi_document(request.app[ENDPOINTS])
        return json_response(cached["doc"])

    async def docs(request: web.Request) -> web.Response:
        return web.Response(text=_DOCS_PAGE, content_type="text/html")

    async def docs_init(request: web.Request) -> web.Response:
        return web.Response(text=_DOCS_INIT, content_type="application/javascript")

    app.router.add_get("/openapi.json", openapi)
    app.router.add_get("/docs", docs)
    app.router.add_get("/docs/init.js", docs_init)
    app.router.add_static("/docs/static", _swagger_static())
