"""Shared test helpers: a settable clock and settings pointing at a temporary state folder."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from callcenterd.settings import Settings


class FakeClock:
    """A clock tests move by hand; starts at the real time so JWT expiry checks agree."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_settings(state_dir: Path, **overrides: Any) -> Settings:
    """Fast, isolated settings: cheap bcrypt, generous rate limits, ARI on a closed port, no
    periodic queue_stats events."""
    data: dict[str, Any] = {
        "state_dir": str(state_dir),
        "admin_password": "admin-pass",
        "auth": {"bcrypt_rounds": 4},
        "rate_limits": {
            "auth_per_minute": 1000,
            "general_per_minute": 10000,
            "dashboard_per_minute": 10000,
        },
        "ari": {"url": f"http://127.0.0.1:{free_port()}", "password": "ari-secret"},
        # No periodic queue_stats: a test's event stream holds what the test caused, and a
        # reader waiting for a close or for silence is not kept busy every 5 s.
        "events": {"queue_stats_seconds": 0},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return Settings.model_validate(data)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
