"""Last-operator routing's memory: who served each number, loaded at start and kept current."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from callcenterd import keys
from callcenterd.services.last_operators import LastOperators
from tests.api.conftest import Actor, ClientFactory
from tests.api.routing_helpers import insert_call, make_operator
from tests.conftest import FakeClock


def test_the_newest_answer_wins_and_numbers_match_on_digits() -> None:
    memory = LastOperators()
    memory.load([("+7 900 111-22-33", "a"), ("5550001", "b"), ("79001112233", "c")])
    assert memory.of("+79001112233") == "c"
    memory.served("5550001", "d")
    assert memory.of("5550001") == "d"
    assert memory.of("5550002") is None
    assert memory.of("anonymous") is None  # no digits: never anybody's


async def test_loaded_at_start_from_the_last_30_days(
    client: TestClient[Any, Any], admin: Actor, make_client: ClientFactory, clock: FakeClock
) -> None:
    ann = (await make_operator(client, admin, "ann", "1001"))["id"]
    bob = (await make_operator(client, admin, "bob", "1002"))["id"]
    now = clock()
    insert_call(client, now - timedelta(days=40), operator_id=ann, caller="5550001")  # too old
    insert_call(client, now - timedelta(days=2), operator_id=bob, caller="5550002")
    insert_call(client, now - timedelta(days=3), status="missed", caller="5550003")
    again = await make_client()  # a daemon started on the same database
    memory = again.app[keys.SERVICES].dispatcher.last_operators
    assert memory.of("5550001") is None
    assert memory.of("5550002") == bob
    assert memory.of("5550003") is None
