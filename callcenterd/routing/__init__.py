"""The pure routing engine: events in, commands out. Imports no I/O package (checked by tests)."""

from callcenterd.routing.engine import EngineSettings, RoutingEngine

__all__ = ["EngineSettings", "RoutingEngine"]
