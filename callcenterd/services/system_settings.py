"""SystemSettings: stored in SQLite, the Asterisk and SMTP passwords encrypted, never served
in clear.

The Asterisk values from the config file and environment seed the stored settings
only while the database has none; after an admin saves settings through the API,
the stored ones win.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import structlog
from pydantic import ValidationError

from callcenterd.contract.schemas import (
    PASSWORD_MASK,
    AsteriskConfig,
    AsteriskTestRequest,
    AsteriskTestResult,
    SystemSettings,
    SystemSettingsUpdate,
)
from callcenterd.contract.validation import validation_error
from callcenterd.errors import (
    AsteriskAuthFailed,
    AsteriskTimeout,
    AsteriskUnavailable,
    CallcenterError,
)
from callcenterd.security import Clock, Principal, SecretBox
from callcenterd.services.asterisk_errors import api_error
from callcenterd.services.context import SECRET_CHANGED, audit
from callcenterd.settings import Settings, asterisk_host_port
from callcenterd.store.db import Database
from callcenterd.store.system import SettingsRepository
from callcenterd.telephony.ari import AriEndpoint, fetch_asterisk_info
from callcenterd.telephony.errors import TelephonyError
from callcenterd.telephony.translate import asterisk_system_name, asterisk_version

log = structlog.get_logger(__name__)

# The settings sections holding a password: stored encrypted, answered masked.
SECRET_SECTIONS = ("asterisk_config", "email_config")

SettingsChanged = Callable[[SystemSettings, SystemSettings], Awaitable[None]]


def seed_from(settings: Settings) -> SystemSettings:
    host, port, scheme = asterisk_host_port(settings.ari.url)
    return SystemSettings(
        queue_timeout=300,
        asterisk_config=AsteriskConfig(
            host=host,
            port=port,
            username=settings.ari.username,
            password=settings.ari.password.get_secret_value(),
            protocol="https" if scheme == "https" else "ARI",
            timeout=max(1, round(settings.ari.timeout)),
            enabled=True,
        ),
    )


class SystemSettingsService:
    def __init__(
        self,
        db: Database,
        repo: SettingsRepository,
        box: SecretBox,
        clock: Clock,
        session: aiohttp.ClientSession,
        app_name: str,
    ) -> None:
        self._db = db
        self._repo = repo
        self._box = box
        self._clock = clock
        self._session = session
        self._app_name = app_name
        self._listeners: list[SettingsChanged] = []

    def on_change(self, listener: SettingsChanged) -> None:
        """Called with (new, old) settings, passwords in clear, after each save."""
        self._listeners.append(listener)

    async def seed(self, defaults: SystemSettings) -> None:
        if await self._repo.load() is None:
            async with self._db.transaction() as conn:
                await self._repo.save(conn, self._to_stored(defaults), None, self._clock())
            log.info("settings_seeded", asterisk_host=defaults.asterisk_config.host)

    async def current(self) -> SystemSettings:
        """The settings with the passwords in clear: for the daemon, never the API."""
        stored = await self._repo.load()
        if stored is None:
            return SystemSettings()
        sections = {name: self._decrypted(stored.get(name, {}), name) for name in SECRET_SECTIONS}
        return SystemSettings.model_validate({**stored, **sections})

    def _decrypted(self, stored: dict[str, Any], section: str) -> dict[str, Any]:
        section_data = dict(stored)
        encrypted = section_data.pop("password_encrypted", "")
        try:
            section_data["password"] = self._box.decrypt(encrypted) if encrypted else ""
        except ValueError:
            log.error("settings_secret_undecryptable", section=section)
            section_data.pop("password", None)  # none (the model's default) rather than garbage
        return section_data

    async def pause_reasons(self) -> list[str]:
        """The pause reasons operators may choose now (as configured by admins)."""
        return (await self.current()).pause_reasons

    async def masked(self) -> SystemSettings:
        return self.mask(await self.current())

    @staticmethod
    def mask(settings: SystemSettings) -> SystemSettings:
        masked: dict[str, Any] = {}
        for name in SECRET_SECTIONS:
            section = getattr(settings, name)
            shown = PASSWORD_MASK if section.password else ""
            masked[name] = section.model_copy(update={"password": shown})
        return settings.model_copy(update=masked)

    def _to_stored(self, settings: SystemSettings) -> dict[str, Any]:
        data = settings.model_dump(mode="json", exclude={"updated_by", "updated_at"})
        for name in SECRET_SECTIONS:
            password = data[name].pop("password")
            data[name]["password_encrypted"] = self._box.encrypt(password) if password else ""
        return data

    async def update(self, body: SystemSettingsUpdate, actor: Principal) -> SystemSettings:
        current = await self.current()
        changes = body.model_dump(exclude_unset=True, exclude=set(SECRET_SECTIONS))
        section_changes: dict[str, dict[str, Any]] = {}
        for name in SECRET_SECTIONS:
            sent = getattr(body, name)
            section_changes[name] = sent.model_dump(exclude_unset=True) if sent else {}
            if section_changes[name].get("password") in (None, PASSWORD_MASK):
                section_changes[name].pop("password", None)
        try:
            # Validated as a whole: a field sent as null must be a 422, not a 500.
            merged = SystemSettings.model_validate(
                {
                    **current.model_dump(),
                    **changes,
                    **{
                        name: {**getattr(current, name).model_dump(), **section_changes[name]}
                        for name in SECRET_SECTIONS
                    },
                }
            )
        except ValidationError as err:
            raise validation_error(err, "body") from err
        async with self._db.transaction() as conn:
            await self._repo.save(conn, self._to_stored(merged), actor.id, self._clock())
            shown: dict[str, Any] = dict(changes)
            for name in SECRET_SECTIONS:
                if name == "asterisk_config" or section_changes[name]:
                    shown[name] = dict(section_changes[name])
                    if "password" in shown[name]:
                        shown[name]["password"] = SECRET_CHANGED
            await audit(conn, self._clock(), actor, "settings", "update", None, shown)
        log.info(
            "settings_updated",
            fields=sorted(changes),
            asterisk=sorted(section_changes["asterisk_config"]),
            email=sorted(section_changes["email_config"]),
        )
        for listener in self._listeners:
            await listener(merged, current)
        return await self.masked()

    def endpoint(self, config: AsteriskConfig) -> AriEndpoint:
        return AriEndpoint(
            base_url=config.base_url,
            username=config.username,
            password=config.password,
            app=self._app_name,
            timeout=float(config.timeout),
        )

    async def test_connection(self, body: AsteriskTestRequest) -> AsteriskTestResult:
        """A real probe of ARI with the given credentials (stored password if omitted)."""
        password = body.password
        if password in (None, PASSWORD_MASK):
            password = (await self.current()).asterisk_config.password
        config = AsteriskConfig(
            host=body.host,
            port=body.port,
            username=body.username,
            password=password or "",
            protocol=body.protocol,
            timeout=body.timeout,
        )
        details = {"host": body.host, "port": body.port, "protocol": body.protocol}
        try:
            info = await fetch_asterisk_info(self._session, self.endpoint(config))
        except TelephonyError as err:
            return _failure(api_error(err, show_cause=True), details)  # admins only
        version = asterisk_version(info) or "unknown"
        return AsteriskTestResult(
            success=True,
            message=f"Connected to Asterisk {version}",
            data={
                "asterisk_version": version,
                "system": asterisk_system_name(info),
                "connection_details": {**details, "status": "Connected"},
            },
        )


_CAUSES: dict[type[CallcenterError], tuple[str, list[str], list[str]]] = {
    AsteriskTimeout: (
        "Connection timeout",
        [
            "The Asterisk server is not running or is overloaded",
            "Wrong host or port",
            "A firewall drops the connection",
        ],
        [
            "Check that Asterisk is running: asterisk -rx 'core show uptime'",
            "Check the host and port (http.conf bindaddr/bindport)",
            "Check the firewall between this server and Asterisk",
        ],
    ),
    AsteriskAuthFailed: (
        "Authentication failed",
        ["Wrong ARI username or password", "The ARI user is missing in ari.conf"],
        [
            "Check the user section and password in ari.conf",
            "Reload ARI after editing: asterisk -rx 'module reload res_ari.so'",
        ],
    ),
    AsteriskUnavailable: (
        "ARI unavailable",
        [
            "Asterisk is not running or not listening on this port",
            "The HTTP server is disabled (http.conf enabled=no)",
            "ARI is disabled (ari.conf enabled=no) or res_ari is not loaded",
        ],
        [
            "Check http.conf: enabled=yes, bindaddr and bindport",
            "Check ari.conf: [general] enabled=yes",
            "Check loaded modules: asterisk -rx 'module show like res_ari'",
        ],
    ),
}


def _failure(err: CallcenterError, details: dict[str, Any]) -> AsteriskTestResult:
    title, causes, troubleshooting = _CAUSES.get(
        type(err), ("Connection failed", ["Unexpected answer from Asterisk"], [])
    )
    return AsteriskTestResult(
        success=False,
        message=f"{title}: {err.detail}",
        data={
            "error": title,
            "code": err.code,
            "details": {**details, "possible_causes": causes},
            "troubleshooting": troubleshooting,
        },
    )
