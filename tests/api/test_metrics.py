"""GET /metrics: the metric names, figures that follow what happens, and who may read it."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, make_mocked_request
from prometheus_client.parser import text_string_to_metric_families

from callcenterd import keys
from callcenterd.api.metrics import SCRAPE, check_access
from callcenterd.errors import DatabaseUnavailable, NotAuthenticated, PermissionDenied
from callcenterd.metrics.call_counts import CachedCallCounts
from callcenterd.services import call_actions, loop_lag
from callcenterd.services.loop_lag import watch_loop_lag
from callcenterd.settings import MetricsSettings
from callcenterd.tasks import running
from callcenterd.telephony.call_control import DEFAULT_NODE
from tests.api.conftest import Actor, ClientFactory
from tests.api.helpers import expect_error
from tests.api.routing_helpers import insert_call, operator_of
from tests.conftest import FakeClock
from tests.eventually import eventually

NAMES = {
    "callcenterd_calls",
    "callcenterd_queue_waiting_callers",
    "callcenterd_operators",
    "callcenterd_routing_latency_seconds",
    "callcenterd_asterisk_link_up",
    "callcenterd_asterisk_link_state",
    "callcenterd_websocket_clients",
    "callcenterd_event_loop_lag_seconds",
    "callcenterd_event_loop_lag_last_seconds",
    "callcenterd_events_total",
    "process_cpu_seconds_total",
}
TOKEN = "a-long-scrape-token-0123456789"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(client: TestClient[Any, Any], **headers: str) -> Samples:
    response = await client.get("/metrics", headers=headers)
    text = await response.text()
    assert response.status == 200, text
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


async def test_every_metric_is_exposed(client: TestClient[Any, Any]) -> None:
    response = await client.get("/metrics")
    text = await response.text()
    assert response.status == 200
    declared = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")}
    assert declared >= NAMES, NAMES - declared
    samples = await scrape(client)
    assert value(samples, "callcenterd_websocket_clients") == 0
    for status in ("incoming", "answered", "completed", "missed"):
        assert value(samples, "callcenterd_calls", status=status) == 0
    # ARI is on a closed port here; AMI has no secret, so it is disabled.
    assert value(samples, "callcenterd_asterisk_link_up", link="ari") == 0
    assert value(samples, "callcenterd_asterisk_link_state", link="ami", state="disabled") == 1


async def test_openmetrics_when_asked(client: TestClient[Any, Any]) -> None:
    response = await client.get(
        "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert response.headers["Content-Type"].startswith("application/openmetrics-text")
    assert (await response.text()).endswith("# EOF\n")


async def test_calls_by_status_come_from_the_store(
    client: TestClient[Any, Any], clock: FakeClock
) -> None:
    start = clock() - timedelta(days=1)
    for status, count in (("completed", 3), ("missed", 2), ("incoming", 1)):
        for n in range(count):
            insert_call(client, start + timedelta(minutes=n), status=status)
    samples = await scrape(client)
    figures = {s: value(samples, "callcenterd_calls", status=s) for s in ("completed", "missed")}
    assert figures == {"completed": 3, "missed": 2}
    assert value(samples, "callcenterd_calls", status="incoming") == 1
    assert value(samples, "callcenterd_calls", status="answered") == 0


async def test_call_counts_are_cached_and_survive_a_database_error() -> None:
    now = [100.0]
    answers: list[dict[str, int] | Exception] = [{"missed": 1}, {"missed": 2}, {"missed": 3}]
    fetched: list[int] = []

    async def fetch() -> dict[str, int]:
        fetched.append(1)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    cache = CachedCallCounts(fetch, ttl=5.0, now=lambda: now[0])
    await asyncio.gather(cache.refresh(), cache.refresh())  # concurrent scrapes: one query
    assert (cache.current(), len(fetched)) == ({"missed": 1}, 1)
    now[0] += 4.9
    await cache.refresh()
    assert (cache.current(), len(fetched)) == ({"missed": 1}, 1)
    now[0] += 0.2
    await cache.refresh()
    assert cache.current() == {"missed": 2}
    answers.insert(0, DatabaseUnavailable("disk I/O error"))
    now[0] += 10
    await cache.refresh()
    assert cache.current() == {"missed": 2}  # the last good figures, not an error
    await cache.refresh()  # the failure was not cached: the next scrape asks again
    assert cache.current() == {"missed": 3}


async def test_bus_events_are_counted(client: TestClient[Any, Any]) -> None:
    bus = client.app[keys.SERVICES].bus
    before = await scrape(client)
    assert ("callcenterd_events_total", (("type", "queue_updated"),)) not in before
    for _ in range(3):
        bus.publish("queue_updated", {"queue_id": "q"})
    bus.publish("call_started", {"call_id": "c"})

    async def counted() -> None:  # once the counter's task has taken its turn
        after = await scrape(client)
        assert value(after, "callcenterd_events_total", type="queue_updated") == 3
        assert value(after, "callcenterd_events_total", type="call_started") == 1

    await eventually(counted)


async def test_websocket_clients_are_counted(
    client: TestClient[Any, Any], actors: dict[str, Actor]
) -> None:
    async with client.ws_connect(f"/ws/events?token={actors['manager'].token}") as ws:
        hello = await ws.receive_json(timeout=5)
        assert hello["type"] == "auth_ok", hello
        assert value(await scrape(client), "callcenterd_websocket_clients") == 1

    async def gone() -> None:  # the server's handler notices the close and detaches
        assert value(await scrape(client), "callcenterd_websocket_clients") == 0

    await eventually(gone)


# --- a call through the real dispatcher, over a fake ARI -----------------------------------
LEG_DELAY = 0.25  # seconds from creating an operator's leg to its StasisStart


class Monotonic:
    """The dispatcher's `time` module with a monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


class FakeCallControl:
    """The call control a queued call uses: legs enter the app right after creation."""

    node = DEFAULT_NODE
    request_timeout = 5.0

    def __init__(self, deliver: Any, clock: Monotonic) -> None:
        self.deliver = deliver
        self.clock = clock
        self.dialed: list[str] = []

    async def create_leg(self, leg_id: str, endpoint: str, args: str, *_: Any) -> None:
        frame = {"type": "StasisStart", "args": args.split(","), "channel": {"id": leg_id}}
        asyncio.get_running_loop().call_soon(self.enter, frame)

    def enter(self, frame: dict[str, Any]) -> None:
        """The leg enters the app LEG_DELAY seconds after its creation (on the fake clock)."""
        self.clock.now += LEG_DELAY
        self.deliver(self.node, frame)

    async def ring(self, leg_id: str, *_: Any) -> None:
        self.dialed.append(leg_id)

    def __getattr__(self, name: str) -> Any:
        async def nothing(*_: Any, **__: Any) -> None:
            return None

        return nothing


async def test_a_routed_call_moves_the_live_figures(
    client: TestClient[Any, Any],
    actors: dict[str, Actor],
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    admin = actors["admin"]
    services = client.app[keys.SERVICES]
    operator = operator_of(client, actors["operator"].user["id"])
    monotonic = Monotonic()
    monkeypatch.setattr(call_actions, "time", monotonic)  # routing latency is measured on it
    created = await client.post(
        "/api/queues/",
        json={
            "name": "Support",
            "asterisk_name": "support",
            "members": [{"extension": "1001"}],
            "retry_delay": 1,
        },
        headers=admin.headers,
    )
    assert created.status == 201, await created.text()
    queue_id = (await created.json())["id"]
    online = await client.put(
        f"/api/operators/{operator['id']}/status", json={"status": "online"}, headers=admin.headers
    )
    assert online.status == 200, await online.text()
    before = await scrape(client)
    assert value(before, "callcenterd_operators", status="online") == 1
    assert value(before, "callcenterd_routing_latency_seconds_count") == 0
    labels = {"queue_id": queue_id, "queue": "Support"}
    assert value(before, "callcenterd_queue_waiting_callers", **labels) == 0

    await services.ari.stop()  # no reconnect attempts to the closed port meanwhile
    fake = FakeCallControl(services.dispatcher.on_ari_event, monotonic)
    services.ari.control, services.ari.state = fake, "connected"  # type: ignore[assignment]
    services.dispatcher.on_ari_event(
        DEFAULT_NODE,
        {
            "type": "StasisStart",
            "args": ["support"],
            "channel": {"id": "caller-1", "caller": {"number": "+79001112233"}, "state": "Ring"},
        },
    )
    await eventually(lambda: fake.dialed, message="the operator's leg was never dialed")

    async def ringing() -> Samples:  # the records lane publishes call_ringing
        after = await scrape(client)
        # Absent until the first call_ringing: an assertion (retried), not a KeyError.
        key = ("callcenterd_events_total", (("type", "call_ringing"),))
        assert after.get(key) == 1
        return after

    after = await eventually(ringing)
    assert value(after, "callcenterd_routing_latency_seconds_count") == 1
    # Queued to dialed: only the leg's wait to enter the app passed on the dispatcher's clock.
    latency = value(after, "callcenterd_routing_latency_seconds_sum")
    assert latency == pytest.approx(LEG_DELAY)
    assert value(after, "callcenterd_queue_waiting_callers", **labels) == 1  # being rung
    assert value(after, "callcenterd_asterisk_link_up", link="ari") == 1
    for event in ("call_started", "call_queued", "call_ringing"):
        assert value(after, "callcenterd_events_total", type=event) == 1, event
    # Only the first ring since queueing counts: the next dial is not a new routing.
    services.dispatcher.on_ari_event(
        DEFAULT_NODE, {"type": "StasisEnd", "channel": {"id": fake.dialed[0]}}
    )
    clock.advance(seconds=1)  # the queue's retry_delay, due when the dispatcher's timer fires
    # The retry dials again; what follows a dial runs in the same step as it.
    await eventually(lambda: len(fake.dialed) == 2, within=10, message="never dialed again")
    assert value(await scrape(client), "callcenterd_routing_latency_seconds_count") == 1


# --- the event loop -------------------------------------------------------------------------
class ScriptedLag:
    """Stands in for `asyncio` in services.loop_lag: a loop whose clock is moved by its sleeps,
    each waking as late as the script says; once the script is done, sleeps never end."""

    def __init__(self, *lags: float) -> None:
        self.lags = list(lags)
        self.now = 500.0

    def get_running_loop(self) -> ScriptedLag:
        return self

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        if not self.lags:
            await asyncio.Event().wait()
        await asyncio.sleep(0)  # a real turn of the loop for everyone else
        self.now += seconds + self.lags.pop(0)


async def test_loop_lag_shows_a_blocked_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    # On time, late by a hair, held 60 ms by a slow handler, on time; a clock that woke early.
    monkeypatch.setattr(loop_lag, "asyncio", ScriptedLag(0.0, 0.001, 0.06, 0.0, -0.005))
    seen: list[float] = []
    async with running(watch_loop_lag(seen.append, interval=0.02), "test-loop-lag") as task:
        await eventually(lambda: len(seen) == 5)
    assert seen == pytest.approx([0.0, 0.001, 0.06, 0.0, 0.0])
    assert task.cancelled()  # stopped with the block


async def test_loop_lag_reaches_the_exposition(
    make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loop_lag, "asyncio", ScriptedLag(0.003, 0.25))
    client = await make_client()

    async def sampled() -> Samples:
        samples = await scrape(client)
        assert value(samples, "callcenterd_event_loop_lag_seconds_count") == 2
        return samples

    samples = await eventually(sampled)
    assert value(samples, "callcenterd_event_loop_lag_seconds_sum") == pytest.approx(0.253)
    assert value(samples, "callcenterd_event_loop_lag_last_seconds") == pytest.approx(0.25)


# --- access -----------------------------------------------------------------------------------
async def test_only_allowed_addresses_may_scrape(make_client: ClientFactory) -> None:
    client = await make_client(metrics={"allow": ["10.0.0.0/8"]})
    body = await expect_error(await client.get("/metrics"), 403, "AUTH_003")
    assert "metrics.allow" in body["detail"]


async def test_a_token_is_required_when_set(make_client: ClientFactory) -> None:
    client = await make_client(metrics={"token": TOKEN})
    response = await client.get("/metrics")
    await expect_error(response, 401, "AUTH_001")
    assert response.headers["WWW-Authenticate"] == "Bearer"
    for wrong in (f"Bearer {TOKEN}x", TOKEN, f"Basic {TOKEN}", "Bearer "):
        await expect_error(
            await client.get("/metrics", headers={"Authorization": wrong}), 401, "AUTH_001"
        )
    await scrape(client, Authorization=f"Bearer {TOKEN}")


async def test_disabled_metrics_have_no_route(make_client: ClientFactory) -> None:
    client = await make_client(metrics={"enabled": False})
    await expect_error(await client.get("/metrics"), 404, "NOT_FOUND")
    assert SCRAPE in client.app  # still fed: nothing else depends on the route


def _request_from(peer: str, **headers: str) -> Any:
    class Transport:
        def get_extra_info(self, name: str, default: Any = None) -> Any:
            return (peer, 40000) if name == "peername" else default

        def is_closing(self) -> bool:
            return False

    return make_mocked_request("GET", "/metrics", headers=headers, transport=Transport())


@pytest.mark.parametrize(
    ("peer", "allowed"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),  # an IPv4 client of a dual-stack listener
        ("10.1.2.3", False),
        ("::ffff:10.1.2.3", False),
        ("2001:db8::1", False),
    ],
)
def test_default_allow_list_is_loopback(peer: str, allowed: bool) -> None:
    request = _request_from(peer)
    if allowed:
        check_access(request, MetricsSettings())
    else:
        with pytest.raises(PermissionDenied):
            check_access(request, MetricsSettings())


def test_token_and_address_are_both_checked() -> None:
    settings = MetricsSettings.model_validate({"allow": "10.0.0.0/8, ::1", "token": TOKEN})
    check_access(_request_from("10.9.9.9", Authorization=f"Bearer {TOKEN}"), settings)
    with pytest.raises(PermissionDenied):  # a right token from a wrong address
        check_access(_request_from("192.0.2.1", Authorization=f"Bearer {TOKEN}"), settings)
    with pytest.raises(NotAuthenticated):
        check_access(_request_from("10.9.9.9"), settings)


def test_metrics_settings_are_checked() -> None:
    for bad in ({"allow": ["not-a-network"]}, {"allow": ["10.0.0.1/8"]}, {"token": "short"}):
        with pytest.raises(ValueError):
            MetricsSettings.model_validate(bad)
    assert MetricsSettings.model_validate({"token": ""}).token is None
