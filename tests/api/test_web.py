"""The wallboard and admin pages (callcenterd/web/): `/` and its static files, as HTTP answers.

The pages are files with no data in them: they answer without a token, with their own
Content-Security-Policy (this origin only, no inline script, the event WebSocket on this host),
the security headers of every answer, and an ETag. Anything that is not one of the shipped
files is the API's JSON 404: no folder listing, no way out of the folder.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from callcenterd.api.headers import WEB_STATIC, web_policy
from callcenterd.web.routes import CONTENT_TYPES, load_static_files

FILES = load_static_files()
NOT_FOUND = {"detail": "No such route", "type": "not_found", "code": "NOT_FOUND", "field": None}


def directives(policy: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for part in policy.split(";"):
        name, *sources = part.split()
        found[name] = sources
    return found


def assert_security_headers(response: Any) -> None:
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"


async def test_the_page_answers_without_a_token_under_its_policy(
    client: TestClient[Any, Any],
) -> None:
    response = await client.get("/")
    assert response.status == 200
    assert response.content_type == "text/html"
    assert response.charset == "utf-8"
    assert_security_headers(response)
    assert response.headers["Cache-Control"] == "no-store"
    policy = directives(response.headers["Content-Security-Policy"])
    host = f"{client.host}:{client.port}"
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["connect-src"] == ["'self'", f"ws://{host}", f"wss://{host}"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert not [s for sources in policy.values() for s in sources if "unsafe" in s]
    assert response.headers["Content-Security-Policy"] == web_policy(host)


async def test_the_page_has_no_inline_script_or_style(client: TestClient[Any, Any]) -> None:
    page = await (await client.get("/")).text()
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", page, flags=re.S)
    assert scripts, "the page loads its module"
    for attributes, body in scripts:
        assert 'src="/static/' in attributes and body.strip() == ""
    assert "<style" not in page and " style=" not in page
    assert re.search(r"\son[a-z]+\s*=", page, flags=re.I) is None  # no inline handler


@pytest.mark.parametrize("name", sorted(FILES))
async def test_every_shipped_file_is_served_with_its_type_and_an_etag(
    client: TestClient[Any, Any], name: str
) -> None:
    response = await client.get(WEB_STATIC + name)
    assert response.status == 200
    suffix = name[name.rfind(".") :]
    assert response.content_type == CONTENT_TYPES[suffix]
    assert await response.read() == FILES[name].body
    assert_security_headers(response)
    assert response.headers["Cache-Control"] == "no-cache"  # kept, revalidated by ETag
    assert "'self'" in response.headers["Content-Security-Policy"]
    again = await client.get(WEB_STATIC + name, headers={"If-None-Match": response.headers["ETag"]})
    assert again.status == 304
    assert await again.read() == b""


def test_the_package_ships_the_pages() -> None:
    assert {"index.html", "css/app.css", "js/main.js", "js/i18n.js", "js/board.js"} <= set(FILES)
    # Nothing fetched from elsewhere: no CDN, no absolute URL in what the pages load.
    for name, file in FILES.items():
        text = file.body.decode()
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), name
        assert not re.search(r"""import[^'"]*['"](https?:)?//""", text), name


def test_every_module_imported_is_shipped() -> None:
    for name, file in FILES.items():
        if not name.endswith(".js"):
            continue
        for target in re.findall(r"""from\s+['"]\./([\w./-]+)['"]""", file.body.decode()):
            assert f"js/{target}" in FILES, f"{name} imports ./{target}, not shipped"


def dictionary_keys(source: str, language: str) -> set[str]:
    block = re.search(rf"const {language} = \{{(.*?)\n\}};", source, flags=re.S)
    assert block is not None, f"no {language} dictionary"
    return set(re.findall(r"^\s*'([\w.]+)':", block.group(1), flags=re.M))


def test_both_languages_have_every_string() -> None:
    source = FILES["js/i18n.js"].body.decode()
    russian, english = dictionary_keys(source, "ru"), dictionary_keys(source, "en")
    assert len(russian) > 100
    assert russian - english == set() and english - russian == set()
    # Every fixed key the pages ask for is in the dictionaries.
    used: set[str] = set()
    for name, file in FILES.items():
        if name.endswith(".js"):
            used |= set(re.findall(r"""\bt\('([a-z_]+\.[a-z_]+)'""", file.body.decode()))
    assert used - russian == set()


@pytest.mark.parametrize(
    "path",
    [
        "/static/nope.js",
        "/static/",
        "/static/js",
        "/static/js/",
        "/static/css/",
        "/static/js/main.js/",
        "/static/JS/main.js",
        "/index.html",
        "/static/js/main.py",
    ],
)
async def test_anything_else_is_the_json_404(client: TestClient[Any, Any], path: str) -> None:
    response = await client.get(path)
    assert response.status == 404
    assert response.content_type == "application/json"
    assert await response.json() == NOT_FOUND
    assert_security_headers(response)


@pytest.mark.parametrize(
    "path",
    [
        "/static/../routes.py",
        "/static/js/../../routes.py",
        "/static/%2e%2e/routes.py",
        "/static/js/..%2f..%2froutes.py",
        "/static/..%2f..%2fapp.py",
        "/static/%2e%2e%2f%2e%2e%2fapp.py",
        "/static/js%2f..%2f..%2f__init__.py",
        "/static/..\\routes.py",
        "/static//etc/passwd",
        "/static/%00",
    ],
)
async def test_no_path_leads_out_of_the_folder(client: TestClient[Any, Any], path: str) -> None:
    response = await client.get(path)
    assert response.status in (400, 404), path
    body = await response.json()
    assert body["code"] in ("NOT_FOUND", "BAD_REQUEST")
    assert "import" not in await response.text()


async def test_head_answers_like_get(client: TestClient[Any, Any]) -> None:
    for path in ("/", "/static/js/main.js"):
        response = await client.head(path)
        assert response.status == 200
        assert "ETag" in response.headers


@pytest.mark.parametrize(
    "host",
    ["evil.example; script-src *", "a b", "x'y", "[::1]:80; report-uri /x", "-" * 300],
)
def test_a_strange_host_header_never_reaches_the_policy(host: str) -> None:
    policy = directives(web_policy(host))
    assert policy["connect-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]
    assert "report-uri" not in policy


@pytest.mark.parametrize(
    ("host", "socket"),
    [
        ("127.0.0.1:8001", "ws://127.0.0.1:8001"),
        ("board.example.com", "ws://board.example.com"),
        ("[::1]:8001", "ws://[::1]:8001"),
    ],
)
def test_a_plain_host_is_named_for_the_socket(host: str, socket: str) -> None:
    assert socket in directives(web_policy(host))["connect-src"]


async def test_the_api_keeps_its_own_policy(client: TestClient[Any, Any]) -> None:
    response = await client.get("/api/auth/me")
    assert directives(response.headers["Content-Security-Policy"])["default-src"] == ["'none'"]
