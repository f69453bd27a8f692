"""One typed settings model: defaults < TOML file < ``CALLCENTERD_*`` environment.

Every field's environment name is derived from its path in the model
(``http.port`` -> ``CALLCENTERD_HTTP_PORT``), so the names and the model cannot
drift apart. ``callcenterd check-config`` prints them all.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Iterator, Mapping
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

ENV_PREFIX = "CALLCENTERD_"


class ConfigError(Exception):
    """A configuration problem, phrased for the admin: which key, what is wrong."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _comma_separated(value: object) -> object:
    """A list setting given in the environment as one comma-separated string."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


class HttpSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8001, ge=1, le=65535)
    # Seconds a graceful stop waits for in-flight requests.
    shutdown_timeout: float = Field(10.0, gt=0)
    # Reverse proxies (exact addresses) whose X-Forwarded-For names the real client, so rate
    # limits count clients, not the proxy. In the environment: comma-separated.
    trusted_proxies: tuple[str, ...] = ()
    # Largest request body accepted (bytes); a larger one is answered 413 unread.
    max_body_bytes: int = Field(1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    # Browser origins (scheme://host[:port]) allowed to call the API cross-origin. Empty: CORS
    # off, no Access-Control-* header is ever sent. In the environment: comma-separated.
    cors_origins: tuple[str, ...] = ()
    # Identical dashboard and list reads by viewers of one scope within this many seconds share
    # one answer (api/endpoints.py SharedAnswers); a write through the API forgets them. 0: off.
    shared_answer_seconds: float = Field(1.0, ge=0, le=60)

    _split_lists = field_validator("trusted_proxies", "cors_origins", mode="before")(
        _comma_separated
    )

    @field_validator("cors_origins")
    @classmethod
    def _exact_origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for origin in value:
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.path:
                raise ValueError(
                    f"{origin!r} is not an origin; write scheme://host[:port], "
                    "e.g. https://wallboard.example.com"
                )
        return tuple(origin.lower() for origin in value)


class AriSettings(_Section):
    url: str = "http://127.0.0.1:8088"
    # The limits of the stored asterisk_config these values seed (contract.schemas.AsteriskConfig).
    username: str = Field("callcenterd", max_length=100)
    password: SecretStr = Field(SecretStr(""), max_length=256)
    app: str = Field("callcenterd", pattern=r"^[A-Za-z0-9_.-]+$")
    # Seconds for one REST request to Asterisk.
    timeout: float = Field(5.0, gt=0, le=120)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                "must be an http:// or https:// URL with a host, e.g. http://127.0.0.1:8088"
            )
        return value.rstrip("/")


class AmiSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(5038, ge=1, le=65535)
    username: str = "callcenterd"
    secret: SecretStr = SecretStr("")


class LogSettings(_Section):
    # "auto": readable console lines on a TTY, JSON lines otherwise (systemd's journal).
    format: Literal["auto", "json", "console"] = "auto"
    level: Literal["debug", "info", "warning", "error"] = "info"


class AuthSettings(_Section):
    token_ttl_minutes: int = Field(1440, ge=1, le=60 * 24 * 30)
    bcrypt_rounds: int = Field(12, ge=4, le=16)
    # Both keys are generated into the state folder (mode 0600) when not given here.
    jwt_secret: SecretStr | None = None
    secret_key: SecretStr | None = None
    # This many failed logins in a row for one username lock it for `lockout_minutes` (each
    # failure within that time of the one before); 0 turns the lockout off.
    lockout_attempts: int = Field(10, ge=0, le=1000)
    lockout_minutes: float = Field(15.0, gt=0, le=60 * 24 * 7)


class RateLimitSettings(_Section):
    enabled: bool = True
    auth_per_minute: int = Field(5, ge=1)
    general_per_minute: int = Field(100, ge=1)
    dashboard_per_minute: int = Field(60, ge=1)


class AnalyticsSettings(_Section):
    """Definitions behind the dashboards' figures (see callcenterd/analytics/kpis.py)."""

    # Service level: share of calls answered within this many seconds.
    service_level_threshold: float = Field(20.0, gt=0, le=3600)
    # Callers hanging up sooner than this (seconds) are not counted against the service level.
    short_abandon_threshold: float = Field(5.0, ge=0, le=600)
    # First-call resolution: the caller did not call again within this many hours.
    repeat_call_window_hours: float = Field(24.0, gt=0, le=24 * 31)
    # Longest date_from..date_to range a report may cover.
    max_range_days: int = Field(366, ge=1, le=3660)
    # The staffing forecast averages this many past weeks.
    forecast_weeks: int = Field(4, ge=1, le=52)


class EventsSettings(_Section):
    """The live event WebSocket, /ws/events."""

    queue_stats_seconds: float = Field(5.0, ge=0)  # period of queue_stats events; 0: none
    replay_buffer_size: int = Field(10_000, ge=1, le=1_000_000)  # events kept for resuming
    # Events published within this many seconds go to each client in one write (0: each at
    # once). Dashboards see them up to this much later; the loop writes far less often.
    flush_seconds: float = Field(0.1, ge=0, le=1)
    client_queue_size: int = Field(1_000, ge=1, le=100_000)  # unsent events before 4008
    auth_timeout_seconds: float = Field(10.0, gt=0, le=300)
    heartbeat_seconds: float = Field(30.0, gt=0, le=3600)  # server pings
    revalidate_seconds: float = Field(60.0, gt=0, le=3600)  # token recheck (revocation)
    # A client's message over this closes its socket 1009 (clients send only small commands).
    max_message_bytes: int = Field(64 * 1024, ge=1024, le=16 * 1024 * 1024)


class CallbackSettings(_Section):
    """How a callback's caller is dialed back (callcenterd/routing/callbacks.py)."""

    # The channel dialing the caller: `{number}` is the caller's number. Through a trunk,
    # e.g. "PJSIP/{number}@provider"; an internal phone, "PJSIP/{number}".
    endpoint: str = Field("PJSIP/{number}@provider", min_length=1, max_length=200)
    # The caller id shown to the caller when the queue has no number of its own.
    caller_id: str = Field("", max_length=80)
    ring_seconds: float = Field(30.0, gt=0, le=300)  # one dial of the caller
    retry_delay: float = Field(300.0, ge=0, le=24 * 3600)  # after an unanswered dial
    max_attempts: int = Field(3, ge=1, le=20)  # dials before the callback has failed

    @field_validator("endpoint")
    @classmethod
    def _has_number(cls, value: str) -> str:
        if "{number}" not in value or "/" not in value:
            raise ValueError('must be a channel with {number}, e.g. "PJSIP/{number}@provider"')
        return value

    def dial_endpoint(self, number: str) -> str:
        return self.endpoint.replace("{number}", number)


METRICS_TOKEN_MIN = 16


class MetricsSettings(_Section):
    """GET /metrics (Prometheus): outside /api, no JWT; guarded by address and token."""

    enabled: bool = True
    # Networks whose scrapers may read it, matched against the TCP peer address (never
    # X-Forwarded-For). In the environment: comma-separated, e.g. "127.0.0.0/8,10.1.2.0/24".
    allow: tuple[IPvAnyNetwork, ...] = (
        IPv4Network("127.0.0.0/8"),
        IPv6Network("::1/128"),
    )
    # When set, scrapers must also send "Authorization: Bearer <token>". Never logged.
    token: SecretStr | None = None

    _split_allow = field_validator("allow", mode="before")(_comma_separated)

    @field_validator("token", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < METRICS_TOKEN_MIN:
            raise ValueError(f"must have at least {METRICS_TOKEN_MIN} characters")
        return value


class TransferSettings(_Section):
    # Blind transfers to an external number send the caller to `<number>@external_context` in
    # the dialplan (the context that dials out through the trunk). Empty: external transfers
    # are refused (422).
    external_context: str = Field("", max_length=80, pattern=r"^[A-Za-z0-9_.-]*$")


class OutboxSettings(_Section):
    """The outbox worker (callcenterd/services/outbox.py): how often and how hard it sends."""

    # Seconds between looks for due messages when nothing wakes the worker sooner.
    poll_seconds: float = Field(5.0, gt=0, le=3600)
    # Retry n waits a random time up to min(max_delay, base_delay * 2**(n-1)) (full jitter).
    base_delay: float = Field(2.0, gt=0, le=3600)
    max_delay: float = Field(600.0, gt=0, le=24 * 3600)
    max_attempts: int = Field(8, ge=1, le=100)  # tries before a message is `failed`
    concurrency: int = Field(8, ge=1, le=256)  # messages sent at the same time
    send_timeout: float = Field(15.0, gt=0, le=600)  # one try of one message


class WebhookSettings(_Section):
    """Webhook targets (/api/admin/webhooks). A URL whose host resolves to a loopback,
    link-local, private, unspecified, multicast or reserved address is refused, at creation
    and again at each send, unless allowed here."""

    allow_private_targets: bool = False
    # Networks allowed although private, e.g. ["10.1.2.0/24"]. In the environment:
    # comma-separated.
    allow_networks: tuple[IPvAnyNetwork, ...] = ()

    _split_allow = field_validator("allow_networks", mode="before")(_comma_separated)


def _json_object(value: object) -> object:
    """A body template given in the environment as one JSON object."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as err:
            raise ValueError(f"is not a JSON object: {err}") from err
    return value


class SmsSettings(_Section):
    """The HTTP SMS gateway (callcenterd/notify/sms.py) and what the SMS notices say.

    Generic: a URL, a method, one auth header, a body template whose string values may hold
    {to}, {to_digits}, {text}, {sender}, {id}, {auth}, sent as JSON or form fields (GET: the
    query string). Which answers mean success is configured too, so no provider needs code.
    """

    url: str = ""  # empty: no gateway, no SMS (the test endpoint says "not configured")
    method: Literal["POST", "GET"] = "POST"
    encoding: Literal["json", "form"] = "json"
    auth_header: str = Field("Authorization", max_length=100, pattern=r"^[A-Za-z0-9-]*$")
    # E.g. "Bearer <token>" or "Basic <base64 of user:password>". Never logged or answered.
    # Sent in `auth_header` (empty: no header); the body template may also hold it as {auth}.
    auth_value: SecretStr = SecretStr("")
    body: dict[str, Any] = Field(
        default_factory=lambda: {"to": "{to}", "text": "{text}", "sender": "{sender}"}
    )
    # Success: one of these status codes (empty: any 2xx), and when set, the JSON answer's
    # field (dotted path, e.g. "result.status") equal to the value, and/or the body holding
    # the substring.
    success_status: tuple[int, ...] = ()
    success_json_field: str = Field("", max_length=200)
    success_json_value: str = Field("", max_length=200)
    success_body_contains: str = Field("", max_length=200)
    timeout: float = Field(10.0, gt=0, le=120)  # seconds for one request to the gateway
    sender: str = Field("", max_length=50)
    # A number gets at most one missed-call SMS (and one callback confirmation) per window.
    window_seconds: int = Field(3600, ge=0, le=30 * 24 * 3600)
    # Normalisation to E.164: numbers without an international prefix are national ones.
    country_code: str = Field("7", pattern=r"^[1-9][0-9]{0,2}$")
    national_prefix: str = Field("8", pattern=r"^[0-9]{0,2}$")
    national_number_length: int = Field(10, ge=0, le=14)  # 0: any length
    # Numbers this short (or shorter) are internal extensions: never an SMS.
    internal_max_length: int = Field(6, ge=0, le=10)
    language: Literal["ru", "en"] = "ru"  # queues without a language of their own
    company: str = Field("", max_length=60)  # named in every text before the queue's name
    reminder_minutes: int = Field(15, ge=0, le=24 * 60)  # before a timed callback; 0: none

    _split_status = field_validator("success_status", mode="before")(_comma_separated)
    _body_from_json = field_validator("body", mode="before")(_json_object)

    @field_validator("url")
    @classmethod
    def _http_url_or_empty(cls, value: str) -> str:
        parts = urlsplit(value)
        if value and (parts.scheme not in ("http", "https") or not parts.hostname):
            raise ValueError("must be empty or an http:// or https:// URL with a host")
        return value

    @field_validator("success_status")
    @classmethod
    def _status_codes(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        for code in value:
            if not 100 <= code <= 599:
                raise ValueError(f"{code} is not an HTTP status code")
        return value

    @model_validator(mode="after")
    def _body_fits_encoding(self) -> SmsSettings:
        if self.method == "GET" and self.encoding == "json":
            raise ValueError('GET sends the fields as a query string: use encoding = "form"')
        if self.encoding == "form":
            for key, value in self.body.items():
                if not isinstance(value, str | int | float | bool):
                    raise ValueError(f"body.{key}: form encoding takes flat key/value pairs")
        if self.success_json_value and not self.success_json_field:
            raise ValueError("success_json_value needs success_json_field")
        return self

    @property
    def configured(self) -> bool:
        return bool(self.url)


class RetentionSettings(_Section):
    """How long each kind of record is kept, in days (0: forever), and when the nightly purge
    runs. Statistics survive a purge: the dashboards read rollups (migrations 0005/0006)
    that deleting calls does not change; see services/retention.py for the figures that
    still read raw call rows."""

    # Calls with their timeline (call_events), legs and who-was-rung index; their recordings
    # too. Counted from the UTC midnight before (the rollups' day), so a purge removes whole
    # days.
    calls_days: int = Field(0, ge=0, le=36_600)
    # Recordings alone (the call rows stay, the recording name cleared, a timeline entry
    # added); only meaningful when shorter than calls_days.
    recordings_days: int = Field(0, ge=0, le=36_600)
    audit_log_days: int = Field(0, ge=0, le=36_600)
    # Outbox messages in a final state (sent, failed, cancelled) not changed for this long.
    outbox_days: int = Field(0, ge=0, le=36_600)
    # The nightly run, HH:MM in the configured time zone.
    run_at: str = Field("03:30", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    # Rows per transaction: each batch holds the writer for a few milliseconds only.
    batch_size: int = Field(500, ge=1, le=100_000)


class Settings(_Section):
    http: HttpSettings = HttpSettings()
    state_dir: Path = Path("state")
    # SQLite file; empty means <state_dir>/callcenterd.sqlite3.
    database: Path | None = None
    ari: AriSettings = AriSettings()
    ami: AmiSettings = AmiSettings()
    log: LogSettings = LogSettings()
    auth: AuthSettings = AuthSettings()
    rate_limits: RateLimitSettings = RateLimitSettings()
    metrics: MetricsSettings = MetricsSettings()
    analytics: AnalyticsSettings = AnalyticsSettings()
    callbacks: CallbackSettings = CallbackSettings()
    events: EventsSettings = EventsSettings()
    transfers: TransferSettings = TransferSettings()
    outbox: OutboxSettings = OutboxSettings()
    webhooks: WebhookSettings = WebhookSettings()
    sms: SmsSettings = SmsSettings()

    retention: RetentionSettings = RetentionSettings()
    # Password of the `admin` user created on first start; random (and logged once) when unset.
    admin_password: SecretStr | None = None
    timezone: str = "UTC"

    @field_validator("database", "admin_password", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # `CALLCENTERD_DATABASE=` in an env file means "not set", not the current folder.
        return None if value == "" else value

    @field_validator("database", mode="before")
    @classmethod
    def _sqlite_only(cls, value: Any) -> Any:
        # A URL the store cannot open must stop the start, not become a folder named after
        # its scheme. Only the scheme is quoted: the rest may hold a password.
        if not isinstance(value, str) or "://" not in value:
            return value
        scheme, _, rest = value.partition("://")
        if scheme.lower() == "sqlite" and rest.startswith("/"):
            return rest
        raise ValueError(
            f"a {scheme}:// database cannot be used: the store is SQLite,"
            " given as a file path or sqlite:///absolute/path"
        )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name like Europe/Moscow)"
            ) from err
        return value

    @field_validator("admin_password")
    @classmethod
    def _strong_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 6:
            raise ValueError("must have at least 6 characters (the API's password rule)")
        return value

    @property
    def database_path(self) -> Path:
        return self.database if self.database else self.state_dir / "callcenterd.sqlite3"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def env_names(
    model: type[BaseModel] = Settings, prefix: str = ENV_PREFIX
) -> Iterator[tuple[str, tuple[str, ...]]]:
    """Yield (environment name, field path) for every leaf setting."""
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, _Section):
            for env, path in env_names(annotation, f"{prefix}{name.upper()}_"):
                yield env, (name, *path)
        else:
            yield f"{prefix}{name.upper()}", (name,)


def _overlay_env(data: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    for env, path in env_names():
        if env not in environ:
            continue
        node = data
        for key in path[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{'.'.join(path[:-1])}: must be a table to take {env}")
        node[path[-1]] = environ[env]
    return data


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as err:
        raise ConfigError(f"config file {path} does not exist") from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"config file {path} is not valid TOML: {err}") from err
    except OSError as err:
        raise ConfigError(f"config file {path} cannot be read: {err.strerror}") from err


def _describe(err: ValidationError, source: str) -> str:
    lines = [f"invalid configuration ({source}):"]
    for item in err.errors():
        key = ".".join(str(part) for part in item["loc"])
        env = ENV_PREFIX + "_".join(str(part) for part in item["loc"]).upper()
        message = "unknown key" if item["type"] == "extra_forbidden" else item["msg"]
        lines.append(f"  {key} (env {env}): {message}")
    return "\n".join(lines)


def load_settings(
    config_file: Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Build the settings; raise ConfigError naming the bad key on any problem."""
    environ = os.environ if environ is None else environ
    data = _read_toml(config_file) if config_file else {}
    if "state_dir" not in data and "STATE_DIRECTORY" in environ:
        # systemd's StateDirectory= exports this; the unit needs no extra setting.
        data["state_dir"] = environ["STATE_DIRECTORY"].split(":")[0]
    data = _overlay_env(data, environ)
    source = f"{config_file} + environment" if config_file else "defaults + environment"
    try:
        return Settings.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_describe(err, source)) from err


def asterisk_host_port(ari_url: str) -> tuple[str, int, str]:
    """Split an ARI base URL into (host, port, scheme)."""
    parts = urlsplit(ari_url)
    default_port = 443 if parts.scheme == "https" else 8088
    return parts.hostname or "127.0.0.1", parts.port or default_port, parts.scheme
