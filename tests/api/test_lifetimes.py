"""Each running part of the daemon has its own lifetime: a failing start stops what had
started, and a failing stop never skips flushing the call records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from callcenterd import keys
from callcenterd.app import create_app
from callcenterd.services.dispatcher import Dispatcher
from callcenterd.telephony.ami import AmiLink
from callcenterd.telephony.ari_link import AriLink
from tests.conftest import FakeClock, make_settings


def app_for(tmp_path: Path, clock: FakeClock) -> web.Application:
    return create_app(make_settings(tmp_path / "state"), clock=clock)


async def test_a_failing_start_step_stops_the_link_already_started(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refuse(self: AmiLink, endpoint: Any) -> None:
        raise RuntimeError("AMI settings refused")

    monkeypatch.setattr(AmiLink, "configure", refuse)
    app = app_for(tmp_path, clock)
    runner = web.AppRunner(app)  # as `callcenterd run` does: setup, and cleanup whatever happens
    try:
        with pytest.raises(RuntimeError, match="AMI settings refused"):
            await runner.setup()
        ari = app[keys.SERVICES].ari
        assert ari.url is not None  # configured (and started) before AMI's step
        assert ari.running
    finally:
        await runner.cleanup()
    assert not ari.running


async def test_records_are_flushed_even_when_stopping_a_link_fails(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    stopped: list[str] = []
    stop_dispatcher = Dispatcher.stop

    async def broken_stop(self: AriLink) -> None:
        stopped.append("ari")
        raise RuntimeError("ARI stop failed")

    async def dispatcher_stop(self: Dispatcher, within: float = 10.0) -> None:
        stopped.append("dispatcher")
        await stop_dispatcher(self, within)

    client = TestClient(TestServer(app_for(tmp_path, clock)))
    await client.start_server()
    monkeypatch.setattr(AriLink, "stop", broken_stop)
    monkeypatch.setattr(Dispatcher, "stop", dispatcher_stop)
    with pytest.raises(RuntimeError, match="ARI stop failed"):
        await client.close()
    assert stopped[-2:] == ["ari", "dispatcher"]  # the flush ran after the failed stop
