"""ARI over HTTP: credentials in a header, typed failures, and a supervised link.

aiohttp 3.14 deprecates ``BasicAuth``/``auth=``, so the Authorization header is
built here, once.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import aiohttp
import structlog

from callcenterd.telephony.errors import AriAuthFailed, AriTimeout, AriUnavailable

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class AriEndpoint:
    base_url: str  # http://host:port, without /ari
    username: str
    password: str
    app: str
    timeout: float

    def __repr__(self) -> str:  # never print the password
        return f"AriEndpoint({self.base_url!r}, user={self.username!r}, app={self.app!r})"


def basic_auth_header(username: str, password: str) -> str:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return f"Basic {token}"


async def fetch_asterisk_info(
    session: aiohttp.ClientSession, endpoint: AriEndpoint
) -> dict[str, Any]:
    """GET /ari/asterisk/info: the connection test and the link's first request."""
    url = f"{endpoint.base_url}/ari/asterisk/info"
    headers = {"Authorization": basic_auth_header(endpoint.username, endpoint.password)}
    try:
        async with session.get(
            url, headers=headers, timeout=aiohttp.ClientTimeout(total=endpoint.timeout)
        ) as response:
            if response.status == 401:
                raise AriAuthFailed("Asterisk answered 401: wrong ARI username or password")
            if response.status != 200:
                raise AriUnavailable(f"ARI answered HTTP {response.status} at {url}")
            try:
                info: Any = await response.json(content_type=None)
            except ValueError as err:
                raise AriUnavailable(f"ARI at {url} did not answer JSON") from err
            # Some other web service answering 200 on that port: say so, do not crash.
            if not isinstance(info, dict) or not all(
                isinstance(info.get(section, {}), dict) for section in ("system", "config")
            ):
                raise AriUnavailable(f"{url} answered JSON that is not Asterisk's info")
            return info
    except TimeoutError as err:
        raise AriTimeout(
            f"No answer from {endpoint.base_url} within {endpoint.timeout:g} s"
        ) from err
    except aiohttp.ClientConnectorError as err:
        raise AriUnavailable(f"Cannot connect to {endpoint.base_url}: {err.os_error}") from err
    except aiohttp.ClientError as err:
        raise AriUnavailable(f"ARI request to {url} failed: {err}") from err
