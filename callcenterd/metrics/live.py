"""Gauges read at scrape time from where the figures already live.

Nothing here is copied or kept up to date by hand, so nothing can drift: the routing
engine's queues and operators, the Asterisk links' states, the WebSocket client count, and
the store's call counts (cached, see `call_counts.py`). Each source is a callable passed in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily, Metric

from callcenterd.domain.users import OperatorStatus
from callcenterd.routing import RoutingEngine
from callcenterd.telephony.link import LinkStateName

LINK_STATES: tuple[LinkStateName, ...] = ("disabled", "connecting", "connected", "disconnected")


@dataclass(frozen=True, slots=True)
class QueueWaiting:
    queue_id: str
    name: str
    callers: int


@dataclass(frozen=True, slots=True)
class LiveSources:
    waiting: Callable[[], Iterable[QueueWaiting]]
    operators_by_status: Callable[[], Mapping[str, int]]
    links: Callable[[], Mapping[str, LinkStateName]]  # "ari"/"ami" -> state
    ws_clients: Callable[[], int]
    calls_by_status: Callable[[], Mapping[str, int]]


def waiting_callers(engine: RoutingEngine) -> Callable[[], list[QueueWaiting]]:
    def read() -> list[QueueWaiting]:
        return [
            QueueWaiting(queue_id, queue.config.name, engine.waiting_calls(queue_id))
            for queue_id, queue in engine.queues.items()
        ]

    return read


def operators_by_status(engine: RoutingEngine) -> Callable[[], dict[str, int]]:
    """Operators the engine routes to (active ones), by the status it last published."""

    def read() -> dict[str, int]:
        counts = dict.fromkeys((status.value for status in OperatorStatus), 0)
        for operator in engine.operators.values():
            counts[operator.shown[0].value] += 1
        return counts

    return read


class LiveCollector:
    """A prometheus_client collector over `LiveSources`."""

    def __init__(self, sources: LiveSources) -> None:
        self._sources = sources

    def collect(self) -> Iterator[Metric]:
        yield self._calls()
        yield self._waiting()
        yield self._operators()
        yield from self._links()
        yield GaugeMetricFamily(
            "callcenterd_websocket_clients",
            "Clients connected to /ws/events",
            value=self._sources.ws_clients(),
        )

    def _calls(self) -> Metric:
        family = GaugeMetricFamily(
            "callcenterd_calls",
            "Call records by status (the store's count, at most a few seconds old)",
            labels=["status"],
        )
        for status, count in sorted(self._sources.calls_by_status().items()):
            family.add_metric([status], count)
        return family

    def _waiting(self) -> Metric:
        family = GaugeMetricFamily(
            "callcenterd_queue_waiting_callers",
            "Callers waiting in a queue (ringing an operator included, talking not)",
            labels=["queue_id", "queue"],
        )
        for queue in self._sources.waiting():
            family.add_metric([queue.queue_id, queue.name], queue.callers)
        return family

    def _operators(self) -> Metric:
        family = GaugeMetricFamily(
            "callcenterd_operators",
            "Active operators by status (online, busy, offline)",
            labels=["status"],
        )
        for status, count in sorted(self._sources.operators_by_status().items()):
            family.add_metric([status], count)
        return family

    def _links(self) -> Iterator[Metric]:
        links = self._sources.links()
        up = GaugeMetricFamily(
            "callcenterd_asterisk_link_up",
            "1 while the link to Asterisk (ari, ami) is connected",
            labels=["link"],
        )
        state = GaugeMetricFamily(
            "callcenterd_asterisk_link_state",
            "The link's state: 1 for the current one",
            labels=["link", "state"],
        )
        for link, current in sorted(links.items()):
            up.add_metric([link], 1 if current == "connected" else 0)
            for name in LINK_STATES:
                state.add_metric([link, name], 1 if name == current else 0)
        yield up
        yield state
