"""What the ARI and AMI links share: a supervised connection task and its reported state."""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime
from typing import Generic, Literal, TypeVar

import structlog

log = structlog.get_logger(__name__)

LinkStateName = Literal["disabled", "connecting", "connected", "disconnected"]
EndpointT = TypeVar("EndpointT")


class SupervisedLink(ABC, Generic[EndpointT]):
    """`configure(endpoint)` (re)starts `_run(endpoint)`; `None` disables the link.

    The daemon serves its whole API whatever the state; /readyz and system info show it.
    """

    name = "link"

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self._endpoint: EndpointT | None = None
        self._task: asyncio.Task[None] | None = None
        self.state: LinkStateName = "disabled"
        self.asterisk_version: str | None = None
        self.last_error: str | None = None
        self.since: datetime = clock()

    @property
    def url(self) -> str | None:
        return self._url_of(self._endpoint) if self._endpoint is not None else None

    @property
    def connected(self) -> bool:
        return self.state == "connected"

    @property
    def running(self) -> bool:
        """Its connection task is alive (connected or trying to be)."""
        return self._task is not None and not self._task.done()

    def _set(self, state: LinkStateName, error: str | None = None) -> None:
        if state != self.state:
            log.info(
                f"{self.name}_link_state",
                state=state,
                previous=self.state,
                error=error,
                url=self.url,
            )
            self.since = self._clock()
        self.state = state
        self.last_error = error

    async def configure(self, endpoint: EndpointT | None) -> None:
        """(Re)connect with new settings at once; None disconnects cleanly."""
        await self.stop()
        self._endpoint = endpoint
        self._configured(endpoint)
        if endpoint is None:
            self._set("disabled")
            return
        self._set("connecting")
        self._task = asyncio.create_task(self._run(endpoint), name=f"{self.name}-link")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _configured(self, endpoint: EndpointT | None) -> None:
        """Hook: called with the new endpoint before the connection task starts."""

    @abstractmethod
    def _url_of(self, endpoint: EndpointT) -> str: ...

    @abstractmethod
    async def _run(self, endpoint: EndpointT) -> None: ...
