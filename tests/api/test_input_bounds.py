"""No value in a query string or a path is a 500: every one is bounded, parsed strictly, or 404.

The cases are generated from the declared endpoints (`callcenterd.app.API_AREAS`, what
`app[ENDPOINTS]` holds), so a new endpoint with a date filter, an integer parameter or a path
id is covered without a line here.
"""

from __future__ import annotations

import re
import types
import typing
from datetime import date, datetime
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient
from pydantic import BaseModel

from callcenterd.api.endpoints import ENDPOINTS, Endpoint
from callcenterd.app import API_AREAS
from callcenterd.domain.users import Role
from tests.api.conftest import Actor
from tests.api.helpers import expect_error

DECLARED = [endpoint for area in API_AREAS for endpoint in area.endpoints]
_PATH_PARAM = re.compile(r"{(\w+)}")


def _label(endpoint: Endpoint) -> str:
    return f"{endpoint.method} {endpoint.path}"


def _kinds(annotation: Any) -> set[type]:
    """The plain types an annotation allows (Optional, unions and Annotated unwrapped)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _kinds(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return {kind for arg in typing.get_args(annotation) for kind in _kinds(arg)}
    return {annotation} if isinstance(annotation, type) else set()


def _query_fields(kind: type) -> list[tuple[Endpoint, str]]:
    found = []
    for endpoint in DECLARED:
        model: type[BaseModel] | None = endpoint.query
        for name, info in (model.model_fields if model else {}).items():
            kinds = _kinds(info.annotation)
            if kind in kinds and (kind is not int or bool not in kinds):
                found.append((endpoint, name))
    return found


def _ids(cases: list[tuple[Endpoint, str]]) -> list[str]:
    return [f"{_label(endpoint)} {name}" for endpoint, name in cases]


INT_PARAMS = _query_fields(int)
DATE_PARAMS = _query_fields(date)
PATH_ENDPOINTS = [endpoint for endpoint in DECLARED if _PATH_PARAM.search(endpoint.path)]


def _caller(endpoint: Endpoint, actors: dict[str, Actor]) -> dict[str, str]:
    """Headers of a role allowed to call the endpoint (admin when it may)."""
    if endpoint.roles is None:
        return {}
    role = Role.ADMIN if Role.ADMIN in endpoint.roles else sorted(endpoint.roles)[0]
    return actors[role.value].headers


def _url(endpoint: Endpoint, path_value: str = "00000000-0000-4000-8000-000000000000") -> str:
    return "/api" + _PATH_PARAM.sub(path_value, endpoint.path)


def test_the_cases_follow_the_mounted_endpoints(client: TestClient[Any, Any]) -> None:
    """The generated cases cover what the app really mounts (and there is something to cover)."""
    mounted = {_label(endpoint) for endpoint in client.app[ENDPOINTS]}
    assert mounted == {_label(endpoint) for endpoint in DECLARED}
    assert {"skip", "limit", "weeks"} <= {name for _, name in INT_PARAMS}
    assert len(DATE_PARAMS) >= 12  # date_from and date_to of six endpoints at least
    assert len(PATH_ENDPOINTS) >= 15


# --- integers ------------------------------------------------------------------------------
HUGE_INTEGERS = [str(2**63), str(10**30), str(-(2**63) - 1), str(2**64), "-1" + "0" * 40]


@pytest.mark.parametrize(("endpoint", "name"), INT_PARAMS, ids=_ids(INT_PARAMS))
def test_every_integer_parameter_has_both_bounds(endpoint: Endpoint, name: str) -> None:
    assert endpoint.query is not None
    schema = endpoint.query.model_json_schema()["properties"][name]
    branches = schema.get("anyOf", [schema])
    integer = next(branch for branch in branches if branch.get("type") == "integer")
    assert "minimum" in integer or "exclusiveMinimum" in integer, schema
    assert "maximum" in integer or "exclusiveMaximum" in integer, schema


async def test_the_largest_skip_is_an_empty_page(
    client: TestClient[Any, Any], actors: dict[str, Actor]
) -> None:
    from callcenterd.contract.schemas import MAX_SKIP

    for path in ("/api/calls/", "/api/admin/users"):
        response = await client.get(
            path, params={"skip": str(MAX_SKIP)}, headers=actors["admin"].headers
        )
        assert response.status == 200, await response.text()
        body = await response.json()
        assert (body["items"] if isinstance(body, dict) else body) == []


# --- dates ---------------------------------------------------------------------------------
EDGE_DATES = [
    "9999-12-31",
    "0001-01-01",
    "9999-12-31T23:59:59",
    "9999-12-31T23:59:59-12:00",
    "9999-12-31T23:59:59.999999+14:00",
    "0001-01-01T00:00:00+14:00",
    "0001-01-01T00:00:00-12:00",
    "1899-12-31",
    "10000-01-01",
]
NOT_DATES = [
    "0.5",
    "1700000000",
    "-1",
    "1e10",
    "inf",
    "nan",
    "true",
    "",
    "2025-13-01",
    "2025-02-30",
]


NOT_DATES += ["2025-1-1", "20250101", "2025-01-01T25:00", "2025-01-01T10:00+24:00"]
BAD_VALUES = [
    (endpoint, name, value)
    for cases, values in [(INT_PARAMS, HUGE_INTEGERS), (DATE_PARAMS, EDGE_DATES + NOT_DATES)]
    for endpoint, name in cases
    for value in values
]


@pytest.mark.parametrize(
    ("endpoint", "name", "value"),
    BAD_VALUES,
    ids=[f"{_label(endpoint)} {name}={value}" for endpoint, name, value in BAD_VALUES],
)
async def test_bad_values_are_a_422_naming_the_parameter(
    client: TestClient[Any, Any],
    actors: dict[str, Actor],
    endpoint: Endpoint,
    name: str,
    value: str,
) -> None:
    """Integers beyond the bounds; dates off the calendar; numbers and other text as dates."""
    response = await client.get(
        _url(endpoint), params={name: value}, headers=_caller(endpoint, actors)
    )
    body = await expect_error(response, 422, "DB_003")
    assert body["field"] == name
    assert body["detail"][0]["loc"] == ["query", name]


# The last and first days a filter takes, with the extreme offsets: a valid answer or a 422
# (a range too long for a report), never an overflow.
EDGE_RANGES = [
    ("9998-12-31", "9998-12-31"),
    ("9998-12-31T00:00:00+14:00", "9998-12-31T23:59:59-12:00"),
    ("1900-01-01", "1900-01-01"),
    ("1900-01-01T00:00:00+14:00", "1900-01-01T23:59:59.999999-12:00"),
    ("9998-12-30T23:00:00Z", "9998-12-31"),
]


@pytest.fixture
async def real_ids(client: TestClient[Any, Any], actors: dict[str, Actor]) -> dict[str, str]:
    """Ids of records that exist, so the per-queue and per-operator reports do the date work."""
    headers = actors["admin"].headers
    queue = {"name": "Support", "asterisk_name": "support"}
    response = await client.post("/api/queues/", json=queue, headers=headers)
    assert response.status == 201, await response.text()
    user_id = actors["operator"].user["id"]
    operator = await client.get(f"/api/admin/users/{user_id}/operator", headers=headers)
    return {"queue_id": (await response.json())["id"], "operator_id": (await operator.json())["id"]}


@pytest.mark.parametrize(("first", "last"), EDGE_RANGES)
@pytest.mark.parametrize(
    "endpoint",
    sorted({endpoint for endpoint, _ in DATE_PARAMS}, key=_label),
    ids=_label,
)
async def test_the_first_and_last_days_answer(
    client: TestClient[Any, Any],
    actors: dict[str, Actor],
    real_ids: dict[str, str],
    endpoint: Endpoint,
    first: str,
    last: str,
) -> None:
    path = "/api" + _PATH_PARAM.sub(lambda match: real_ids[match[1]], endpoint.path)
    response = await client.get(
        path,
        params={"date_from": first, "date_to": last},
        headers=_caller(endpoint, actors),
    )
    assert response.status == 200, await response.text()
    if response.status == 200 and endpoint.produces is None:
        assert isinstance(await response.json(), dict | list)
    else:
        await response.read()


@pytest.mark.parametrize(
    "endpoint",
    sorted({endpoint for endpoint, _ in DATE_PARAMS if "{" not in endpoint.path}, key=_label),
    ids=_label,
)
async def test_a_range_ending_before_it_starts_is_a_422_on_date_to(
    client: TestClient[Any, Any], actors: dict[str, Actor], endpoint: Endpoint
) -> None:
    for first, last in [
        ("2025-03-02", "2025-03-01"),
        ("2025-03-01T10:00:00Z", "2025-03-01T09:59Z"),
    ]:
        response = await client.get(
            _url(endpoint),
            params={"date_from": first, "date_to": last},
            headers=_caller(endpoint, actors),
        )
        body = await expect_error(response, 422, "DB_003")
        assert body["field"] == "date_to"


def test_a_python_date_is_taken_as_it_is() -> None:
    from callcenterd.contract.routing import CallListQuery

    query = CallListQuery.model_validate(
        {"date_from": date(2025, 1, 1), "date_to": datetime(2025, 1, 2, 10)}
    )
    assert query.date_from == date(2025, 1, 1)
    assert query.date_to == datetime(2025, 1, 2, 10)


# --- path ids ------------------------------------------------------------------------------
ODD_IDS = [
    "not-a-uuid",
    "9" * 400,
    str(2**64),
    quote("идентификатор-📞"),
    "%00",
    "a%00b",
    "%FF%FE",
    quote("' OR 1=1 --"),
    "..%2F..%2Fetc",
]


@pytest.mark.parametrize("odd", ODD_IDS)
@pytest.mark.parametrize("endpoint", PATH_ENDPOINTS, ids=_label)
async def test_odd_path_ids_never_fail_the_server(
    client: TestClient[Any, Any], actors: dict[str, Actor], endpoint: Endpoint, odd: str
) -> None:
    kwargs: dict[str, Any] = {"headers": _caller(endpoint, actors)}
    if endpoint.body is not None:
        kwargs["json"] = {}
    response = await client.request(endpoint.method, _url(endpoint, odd), **kwargs)
    text = await response.text()
    # 503: the channel actions ask Asterisk, which these tests do not run.
    assert 400 <= response.status < 500 or response.status == 503, text
    assert response.content_type == "application/json", text
    assert odd not in text and "OR 1=1" not in text  # nothing of the request echoed back
