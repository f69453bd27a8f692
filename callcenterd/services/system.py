"""The daemon's own state: is the database writable, how are the Asterisk links, since when.

Read by /healthz and /readyz, /api/admin/system/info, the metrics and the systemd watchdog.
"""

from __future__ import annotations

from typing import Any

import structlog

from callcenterd import __version__
from callcenterd.contract.schemas import Health, LinkState, SystemInfo
from callcenterd.errors import CallcenterError
from callcenterd.security import Clock
from callcenterd.settings import Settings
from callcenterd.store.db import Database
from callcenterd.store.system import calls_since
from callcenterd.store.users import OperatorRepository, UserRepository
from callcenterd.telephony.ami import AmiLink
from callcenterd.telephony.ari_link import AriLink
from callcenterd.telephony.link import LinkStateName, SupervisedLink

log = structlog.get_logger(__name__)


def link_state(link: SupervisedLink[Any]) -> LinkState:
    """A link's full state: its address, Asterisk's version and the last socket error (admins)."""
    return LinkState(
        state=link.state,
        url=link.url,
        asterisk_version=link.asterisk_version,
        last_error=link.last_error,
        since=link.since,
    )


def public_link_state(link: SupervisedLink[Any]) -> LinkState:
    """What anyone may read from /readyz: the state, not where Asterisk is or why it failed."""
    return LinkState(state=link.state, since=link.since)


def format_uptime(seconds: float) -> str:
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    if days == 0:
        return clock
    return f"{days} day{'s' if days != 1 else ''}, {clock}"


class SystemService:
    def __init__(
        self, db: Database, ari: AriLink, ami: AmiLink, clock: Clock, settings: Settings
    ) -> None:
        self._db = db
        self._users = UserRepository(db)
        self._operators = OperatorRepository(db)
        self._ari = ari
        self._ami = ami
        self._clock = clock
        self._settings = settings
        self.started_at = clock()

    async def database_ok(self) -> bool:
        try:
            await self._db.check_writable()
        except CallcenterError as err:
            log.warning("database_not_writable", error=err.detail)
            return False
        return True

    def link_states(self) -> dict[str, LinkStateName]:
        return {"ari": self._ari.state, "ami": self._ami.state}

    async def readiness(self) -> Health:
        """Ready when the database takes writes; the links are reported, never required."""
        ok = await self.database_ok()
        return Health(
            status="ready" if ok else "not_ready",
            database="writable" if ok else "not writable",
            ari=public_link_state(self._ari),
            ami=public_link_state(self._ami),
        )

    async def info(self) -> SystemInfo:
        now = self._clock()
        midnight = now.astimezone(self._settings.tz).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        db_ok = await self.database_ok()
        return SystemInfo(
            users=await self._users.count(),
            operators=await self._operators.count(),
            calls_today=await calls_since(self._db, midnight),
            asterisk_connected=self._ari.connected,
            database_status="connected" if db_ok else "error",
            uptime=format_uptime((now - self.started_at).total_seconds()),
            version=__version__,
            ari=link_state(self._ari),
            ami=link_state(self._ami),
        )
