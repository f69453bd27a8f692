"""`GET /` and `GET /static/...`: the pages' files, read once from the package at start-up.

Only the files found in the package's `static/` folder are served, looked up by name in a
table: a path that is not one of them (a folder, `..`, an encoded separator) is a 404 in the
API's JSON shape, raised like any unknown route, and nothing is read from disk per request.
Each file carries an ETag, so a browser that revalidates gets a 304 when it has not changed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

from aiohttp import web

INDEX = "index.html"
# What the pages are made of; a file of any other kind in the folder is not served.
CONTENT_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
}


@dataclass(frozen=True, slots=True)
class StaticFile:
    body: bytes
    content_type: str
    etag: str


def _content_type(name: str) -> str | None:
    dot = name.rfind(".")
    return CONTENT_TYPES.get(name[dot:]) if dot > 0 else None


def _walk(folder: Traversable, prefix: str = "") -> dict[str, StaticFile]:
    found: dict[str, StaticFile] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        name = prefix + entry.name
        if entry.is_dir():
            found.update(_walk(entry, name + "/"))
            continue
        kind = _content_type(entry.name)
        if kind is None:
            continue
        body = entry.read_bytes()
        found[name] = StaticFile(body, kind, '"' + hashlib.sha256(body).hexdigest()[:20] + '"')
    return found


def load_static_files() -> dict[str, StaticFile]:
    """Every file of the pages, by its path under `static/` (e.g. `js/main.js`)."""
    files = _walk(resources.files(__package__) / "static")
    if INDEX not in files:
        raise RuntimeError(f"the web package has no static/{INDEX}")
    return files


def _answer(request: web.Request, file: StaticFile) -> web.Response:
    if file.etag in request.headers.get("If-None-Match", ""):
        response = web.Response(status=304)
    else:
        response = web.Response(body=file.body, content_type=file.content_type, charset="utf-8")
    response.headers["ETag"] = file.etag
    return response


def add_web_routes(app: web.Application, static_prefix: str) -> None:
    """The page at `/` and its files under `static_prefix` (e.g. `/static/`)."""
    files = load_static_files()

    async def page(request: web.Request) -> web.Response:
        return _answer(request, files[INDEX])

    async def static_file(request: web.Request) -> web.Response:
        found = files.get(request.match_info["name"])
        if found is None:
            raise web.HTTPNotFound()
        return _answer(request, found)

    app.router.add_get("/", page)
    app.router.add_get(static_prefix + "{name:.+}", static_file)
