"""Call pages under a crowd: identical requests share a query, never a stale one."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from callcenterd.contract.routing import CallListQuery
from callcenterd.domain.users import Role, User
from callcenterd.security import Principal, TokenClaims
from callcenterd.services.calls import CallService, SharedReads
from callcenterd.settings import Settings
from callcenterd.store.call_queries import CallFilter, CallScope


class GatedFetch:
    """A query that answers its call number, each call held until the test opens the gate."""

    def __init__(self) -> None:
        self.calls = 0
        self.started = asyncio.Event()
        self.gate = asyncio.Event()

    async def __call__(self) -> int:
        self.calls += 1
        number = self.calls
        self.started.set()
        await self.gate.wait()
        return number


async def until_blocked() -> None:
    """Every task started so far runs until it waits on something."""
    for _ in range(5):
        await asyncio.sleep(0)


async def test_identical_reads_waiting_their_turn_share_one_query() -> None:
    slot = asyncio.Semaphore(1)
    reads: SharedReads[int] = SharedReads(slot)
    first, other = GatedFetch(), GatedFetch()
    await slot.acquire()  # another page holds the turn
    crowd = [asyncio.create_task(reads.read("a", first)) for _ in range(5)]
    aside = asyncio.create_task(reads.read("b", other))
    await until_blocked()
    slot.release()
    first.gate.set()
    other.gate.set()
    assert await asyncio.gather(*crowd) == [1] * 5
    assert await aside == 1
    assert (first.calls, other.calls) == (1, 1)


async def test_a_read_asked_while_the_query_runs_gets_a_newer_one() -> None:
    reads: SharedReads[int] = SharedReads(asyncio.Semaphore(1))
    fetch = GatedFetch()
    early = asyncio.create_task(reads.read("a", fetch))
    await fetch.started.wait()  # query 1 reads the database as it was before...
    late = [asyncio.create_task(reads.read("a", fetch)) for _ in range(3)]  # ...these came
    await until_blocked()
    assert fetch.calls == 1  # the later ones wait for their own query, which has not begun
    fetch.gate.set()
    assert await early == 1
    assert await asyncio.gather(*late) == [2, 2, 2]
    assert fetch.calls == 2


async def test_an_asker_leaving_does_not_cancel_the_query_for_the_others() -> None:
    slot = asyncio.Semaphore(1)
    reads: SharedReads[int] = SharedReads(slot)
    fetch = GatedFetch()
    await slot.acquire()
    leaver = asyncio.create_task(reads.read("a", fetch))
    stayer = asyncio.create_task(reads.read("a", fetch))
    await until_blocked()
    leaver.cancel()
    slot.release()
    fetch.gate.set()
    assert await stayer == 1
    assert leaver.cancelled()


async def test_a_failed_query_fails_its_askers_and_the_next_read_runs_again() -> None:
    reads: SharedReads[int] = SharedReads(asyncio.Semaphore(1))

    async def broken() -> int:
        raise RuntimeError("database gone")

    async def working() -> int:
        return 7

    results = await asyncio.gather(
        reads.read("a", broken), reads.read("a", broken), return_exceptions=True
    )
    assert [type(r) for r in results] == [RuntimeError, RuntimeError]
    assert await reads.read("a", working) == 7


# --- through the service: who shares what ---------------------------------------------------------
def clock() -> datetime:
    return datetime(2025, 1, 1, tzinfo=UTC)


def principal(user_id: str, role: Role, group_id: str | None = None) -> Principal:
    email = f"{user_id}@example.com"
    user = User(user_id, user_id, email, user_id, role, group_id, True, 0, "", clock(), clock())
    return Principal(user, TokenClaims(user_id, "jti", clock(), clock(), 0))


class PageQueries:
    """CallQueries' page_json, answering which scope and page it was asked for."""

    def __init__(self) -> None:
        self.asked: list[tuple[CallScope, int]] = []
        self.gate = asyncio.Event()

    async def page_json(
        self, scope: CallScope, where: CallFilter, skip: int, limit: int
    ) -> tuple[str, int]:
        self.asked.append((scope, skip))
        await self.gate.wait()
        return f'["{scope.group_id}",{skip}]', 100


@pytest.fixture
def settings() -> Settings:
    return Settings()


async def test_pages_are_shared_only_by_the_same_scope_and_page(settings: Settings) -> None:
    queries = PageQueries()
    any_ = cast(Any, None)
    service = CallService(any_, cast(Any, queries), any_, any_, clock, settings, any_)
    manager, other_manager = principal("m1", Role.MANAGER), principal("m2", Role.MANAGER)
    supervisor = principal("s1", Role.SUPERVISOR, "g1")
    first, second = CallListQuery(limit=20), CallListQuery(skip=20, limit=20)
    held = asyncio.create_task(service.page(first, manager))  # takes the turn, held
    await until_blocked()
    waiting = [
        asyncio.create_task(service.page(query, viewer))
        for query, viewer in [
            (first, manager),
            (first, other_manager),
            (first, supervisor),
            (second, manager),
            (second, other_manager),
        ]
    ]
    await until_blocked()
    queries.gate.set()
    pages = [page.items_json for page in await asyncio.gather(held, *waiting)]
    assert pages == [
        '["None",0]',
        '["None",0]',
        '["None",0]',
        '["g1",0]',
        '["None",20]',
        '["None",20]',
    ]
    # The held query, then one per (scope, page) that waited: both managers shared theirs.
    assert sorted(queries.asked, key=repr) == sorted(
        [(CallScope(), 0), (CallScope(), 0), (CallScope(group_id="g1"), 0), (CallScope(), 20)],
        key=repr,
    )
