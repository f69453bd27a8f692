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
from callcenterd.contract.schemas import ErrorBody

_REF = "#/components/schemas/{model}"
_PATH_PARAM = re.compile(r"{(\w+)}")

_ERRORS = {
    "401": "Not authenticated (AUTH_001), token expired or revoked (AUTH_002)",
    "403": "Role not allowed (AUTH_003) or user inactive (AUTH_004)",
    "422": "Validation failed: `detail` lists {loc, msg, type, ctx}",
    "429": "Rate limit exceeded; see the Retry-After header",
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
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PATH_PARAM.findall(endpoint.path)
    ]
    if endpoint.query is not None:
        schema = _schema(endpoint.query, "validation", defs)
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            params.append(
                {"name": name, "in": "query", "required": name in required, "schema": prop}
            )
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
    responses: dict[str, Any] = {
        str(endpoint.status): {
            "description": "Success",
            "content": _success_content(endpoint, defs),
        }
    }
    error_ref = {"application/json": {"schema": {"$ref": _REF.format(model="ErrorBody")}}}
    for status, text in _ERRORS.items():
        if status in ("401", "403") and endpoint.roles is None:
            continue
        if status == "422" and endpoint.body is None and endpoint.query is None:
            continue
        if status == "429" and endpoint.rate is None:
            continue
        responses[status] = {"description": text, "content": error_ref}
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
