"""The metrics the daemon keeps itself (histograms, counters), built on a given registry.

Figures that already live elsewhere (waiting callers, operator states, link states, call
counts) are not copied into gauges: `live.LiveCollector` reads them when Prometheus scrapes.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

# From an operator free at once (milliseconds: the ARI round trips) to callers who waited
# minutes for one.
ROUTING_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
# A healthy loop oversleeps by well under a millisecond; 10 ms and up delays routing.
LOOP_LAG_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


class Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.routing_latency = Histogram(
            "callcenterd_routing_latency_seconds",
            "From a call entering a queue to its first operator leg being dialed"
            " (ARI accepted the dial)",
            buckets=ROUTING_BUCKETS,
            registry=registry,
        )
        self.loop_lag = Histogram(
            "callcenterd_event_loop_lag_seconds",
            "How much later than asked the event loop woke a 0.1 s sleep",
            buckets=LOOP_LAG_BUCKETS,
            registry=registry,
        )
        self.loop_lag_last = Gauge(
            "callcenterd_event_loop_lag_last_seconds",
            "The event loop's latest oversleep of a 0.1 s sleep",
            registry=registry,
        )
        self.events = Counter(
            "callcenterd_events",
            "Events published on the event bus (what WebSocket clients receive), by type",
            ["type"],
            registry=registry,
        )
        self.outbox_sent = Counter(
            "callcenterd_outbox_sent",
            "Outbox messages the far end accepted, by kind",
            ["kind"],
            registry=registry,
        )
        self.outbox_failed = Counter(
            "callcenterd_outbox_failed",
            "Outbox messages that finally failed (tries used up, or refused for good), by kind",
            ["kind"],
            registry=registry,
        )
        self.outbox_retries = Counter(
            "callcenterd_outbox_retries",
            "Failed tries of outbox messages that will be tried again, by kind",
            ["kind"],
            registry=registry,
        )
        ProcessCollector(registry=registry)  # CPU, memory, open files of this process

    def observe_routing(self, seconds: float) -> None:
        self.routing_latency.observe(seconds)

    def observe_loop_lag(self, seconds: float) -> None:
        self.loop_lag.observe(seconds)
        self.loop_lag_last.set(seconds)

    def count_event(self, type_: str) -> None:
        self.events.labels(type=type_).inc()

    def count_outbox(self, kind: str, outcome: str) -> None:
        """One try's outcome: sent, retry or failed (services/outbox.py)."""
        counter = {"sent": self.outbox_sent, "failed": self.outbox_failed}.get(
            outcome, self.outbox_retries
        )
        counter.labels(kind=kind).inc()

    def watch(self, collector: Collector) -> None:
        self.registry.register(collector)

    def unwatch(self, collector: Collector) -> None:
        self.registry.unregister(collector)

    def render(self, accept: str | None) -> tuple[bytes, str]:
        """The exposition (Prometheus text, or OpenMetrics when asked) and its media type."""
        encode, media_type = choose_encoder(accept or "")
        return encode(self.registry), media_type
