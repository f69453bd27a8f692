"""Asterisk unreachable: non-admins get 503 AST_004 with no address and no socket error."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from callcenterd import keys
from callcenterd.errors import AsteriskAuthFailed, AsteriskTimeout, AsteriskUnavailable
from callcenterd.services.asterisk_errors import api_error, as_api_errors
from callcenterd.telephony.errors import (
    AmiUnavailable,
    AriAuthFailed,
    AriTimeout,
    AriUnavailable,
    TelephonyError,
)
from tests.api.conftest import PASSWORD, ClientFactory, bearer, login
from tests.api.helpers import expect_error, user_body
from tests.conftest import free_port
from tests.eventually import eventually

# What a socket error or an address looks like in a detail.
LEAKS = re.compile(
    r"127\.0\.0\.1|localhost|:\d{2,5}\b|errno|connection refused|connect call|ssl:|os error"
    r"|\[|Error\(",
    re.IGNORECASE,
)
ENDPOINTS: list[tuple[str, str, str, dict[str, Any] | None]] = [
    ("manager", "GET", "/api/asterisk/extensions", None),
    ("manager", "GET", "/api/asterisk/queues", None),
    ("operator", "POST", "/api/asterisk/originate", {"endpoint": "PJSIP/1001", "extension": "1"}),
]


async def _unreachable(make_client: ClientFactory) -> TestClient[Any, Any]:
    """ARI and AMI both configured on closed local ports, each link having failed once."""
    client = await make_client(ami={"port": free_port(), "secret": "ami-secret"})
    services = client.app[keys.SERVICES]
    await eventually(lambda: services.ari.last_error is not None)
    await eventually(lambda: services.ami.last_error is not None)
    # The links' own errors do name the address: that is what must not reach a non-admin.
    assert LEAKS.search(services.ari.last_error or "")
    assert LEAKS.search(services.ami.last_error or "")
    return client


async def _user(client: TestClient[Any, Any], role: str) -> dict[str, str]:
    admin = bearer(await login(client, "admin", "admin-pass"))
    body = user_body(f"{role}x", role, extension="1001") if role == "operator" else None
    response = await client.post(
        "/api/admin/users", json=body or user_body(f"{role}x", role), headers=admin
    )
    assert response.status == 201, await response.text()
    return bearer(await login(client, f"{role}x", PASSWORD))


@pytest.mark.parametrize(("role", "method", "path", "body"), ENDPOINTS)
async def test_a_non_admin_gets_no_address_or_socket_error(
    make_client: ClientFactory, role: str, method: str, path: str, body: dict[str, Any] | None
) -> None:
    client = await _unreachable(make_client)
    headers = await _user(client, role)
    response = await client.request(method, path, json=body, headers=headers)
    error = await expect_error(response, 503, "AST_004")
    assert not LEAKS.search(error["detail"]), error
    assert error["type"] == "asterisk_error"


@pytest.mark.parametrize("action", ["answer", "hangup"])
async def test_an_operator_is_refused_another_channel_before_the_link_is_looked_at(
    make_client: ClientFactory, action: str
) -> None:
    # 403 whether or not Asterisk is up: the refusal says nothing of the link.
    client = await _unreachable(make_client)
    headers = await _user(client, "operator")
    response = await client.post(f"/api/asterisk/channels/some-channel/{action}", headers=headers)
    await expect_error(response, 403, "AUTH_003")


async def test_the_admin_connection_test_still_names_the_cause(
    make_client: ClientFactory,
) -> None:
    client = await make_client()
    admin = bearer(await login(client, "admin", "admin-pass"))
    port = free_port()
    response = await client.post(
        "/api/admin/settings/asterisk/test",
        json={"host": "127.0.0.1", "port": port, "username": "probe", "timeout": 1},
        headers=admin,
    )
    result = await response.json()
    assert result["success"] is False and result["data"]["code"] == "AST_004"
    assert f"127.0.0.1:{port}" in result["message"] + str(result["data"])


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (
            AriUnavailable("Cannot connect to http://127.0.0.1:8088: [Errno 111] refused"),
            AsteriskUnavailable,
        ),
        (
            AmiUnavailable("Cannot connect to AMI at tcp://127.0.0.1:5038: [Errno 111]"),
            AsteriskUnavailable,
        ),
        (AriTimeout("No answer from http://10.0.0.5:8088 within 5 s"), AsteriskTimeout),
        (AriAuthFailed("Asterisk at http://10.0.0.5:8088 refused"), AsteriskAuthFailed),
    ],
)
def test_the_link_detail_is_kept_for_admins_only(
    failure: TelephonyError, expected: type[Exception]
) -> None:
    hidden = api_error(failure)
    assert isinstance(hidden, expected)
    assert hidden.detail == expected.default_detail  # type: ignore[attr-defined]
    assert not LEAKS.search(hidden.detail)
    shown = api_error(failure, show_cause=True)
    assert shown.detail == failure.detail
    with pytest.raises(expected) as raised, as_api_errors():
        raise failure
    assert raised.value.detail == expected.default_detail  # type: ignore[attr-defined]
