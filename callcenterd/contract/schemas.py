"""Request and response models of the REST API (the OpenAPI document is made from these)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from callcenterd.contract.validation import without_null
from callcenterd.domain.pauses import DEFAULT_PAUSE_REASONS, SYSTEM_PAUSE_REASONS
from callcenterd.domain.users import OperatorStatus, Role
from callcenterd.security import BCRYPT_MAX_BYTES

# One @, something before it, a dot after it (the OpenAPI pattern says the same).
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]*\.[^@\s]*$"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


def _email(value: str) -> str:
    if not _EMAIL.match(value) or value.endswith("@") or "." not in value.rsplit("@", 1)[1]:
        raise ValueError("value is not a valid email address")
    local, domain = value.rsplit("@", 1)
    return f"{local}@{domain.lower()}"


def _password(value: str) -> str:
    if len(value.encode()) > BCRYPT_MAX_BYTES:
        raise ValueError(f"password must be at most {BCRYPT_MAX_BYTES} bytes")
    return value


Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=254, pattern=EMAIL_PATTERN),
    AfterValidator(_email),
]
Password = Annotated[str, Field(min_length=6), AfterValidator(_password)]
Username = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=3, max_length=50, pattern=r"^[\w.@+-]+$"),
]
Extension = Annotated[str, StringConstraints(pattern=r"^\d{3,5}$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Skill = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]

# Paging: far below SQLite's 64-bit integers, far beyond any history a call center keeps.
MAX_SKIP = 1_000_000_000
Skip = Annotated[int, Field(ge=0, le=MAX_SKIP, description="Records to skip")]

# Fields a client may send back unchanged from a GET; they are read-only and ignored.
_READ_ONLY = ("id", "created_at", "updated_at", "updated_by", "user_id")


def reject_null(cls: type, value: Any) -> Any:
    """A field validator: the field may be left out, but not sent as null."""
    if value is None:
        raise ValueError("may be omitted, but not null")
    return value


def _whole(value: Any) -> Any:
    """JSON's 5.0 is the integer 5 (as JSON Schema says): strict integers take it so."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_whole(item) for item in value]
    return value


class _In(BaseModel):
    """Request bodies refuse unknown fields, so a typo is an error, not a silent no-op.

    They are strict about JSON types: `"5"` is not a number and `1` or `"yes"` not a boolean,
    as the OpenAPI document says (enum fields, which arrive as their text, say strict=False).
    """

    model_config = ConfigDict(extra="forbid", strict=True)
    # Fields that may be omitted but not sent as null (see reject_null); documented so.
    NOT_NULL: ClassVar[tuple[str, ...]] = ()
    # Read-only fields of this body's own answers, dropped like _READ_ONLY when sent back.
    ALSO_READ_ONLY: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        properties = handler.resolve_ref_schema(schema).get("properties", {})
        for name in cls.NOT_NULL:
            properties[name] = without_null(properties[name])
        return schema

    @model_validator(mode="before")
    @classmethod
    def _drop_read_only(cls, data: Any) -> Any:
        if isinstance(data, dict):
            dropped = (*_READ_ONLY, *cls.ALSO_READ_ONLY)
            return {key: _whole(val) for key, val in data.items() if key not in dropped}
        return data


class Message(BaseModel):
    success: bool = True
    message: str


class ErrorBody(BaseModel):
    detail: str | list[dict[str, Any]]
    type: str
    code: str
    field: str | None = None


# --- auth ----------------------------------------------------------------------------------
class LoginRequest(_In):
    username: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
    password: Annotated[str, Field(min_length=1, max_length=256)]

    @property
    def rate_limit_subject(self) -> str:
        return self.username


class UserOut(BaseModel):
    id: str
    username: str
    email: str
    name: str
    role: Role
    group_id: str | None
    is_active: bool
    created_at: datetime
    updated_at: datetime


class AdminUserOut(UserOut):
    """A user as the admin API answers it: with the lock after failed logins."""

    locked_until: datetime | None = Field(
        description="When the lock after too many failed logins ends; null when not locked",
    )
    extension: str | None = Field(
        None,
        description="The user's own phone: an operator's extension, or the phone another"
        " role is rung on to supervise calls; null when none",
    )


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int = Field(description="Token lifetime in minutes")
    user: UserOut


# --- users ---------------------------------------------------------------------------------
class UserListQuery(BaseModel):
    skip: Skip = 0
    limit: int = Field(100, ge=1, le=1000)
    role: Role | None = None


class UserCreate(_In):
    username: Username
    email: Email
    name: Name
    password: Password
    role: Role = Field(strict=False)
    group_id: str | None = None
    # validate_default: an omitted extension is checked against the role too.
    extension: Extension | None = Field(
        None,
        validate_default=True,
        description=(
            "3-5 digits. Required for operators; for other roles optional: their own phone,"
            " rung when they supervise a call"
        ),
    )
    skills: list[Skill] = Field(default_factory=list, description="Operators only")
    max_concurrent_calls: int = Field(1, ge=1, le=20, description="Operators only")

    @field_validator("extension")
    @classmethod
    def _operator_needs_extension(cls, value: str | None, info: ValidationInfo) -> str | None:
        # A field validator (not a model one) so the 422 names `extension` in loc and field.
        role = info.data.get("role")
        if role is None:  # the role itself is invalid and reported
            return value
        if role is Role.OPERATOR and value is None:
            raise ValueError("extension is required for role 'operator'")
        return value


class UserUpdate(_In):
    NOT_NULL = ("username", "email", "name", "password", "role", "is_active")
    ALSO_READ_ONLY = ("operator",)  # GET /api/auth/me's view of the user's operator
    username: Username | None = None
    email: Email | None = None
    name: Name | None = None
    password: Password | None = None
    role: Role | None = Field(None, strict=False)
    group_id: str | None = None
    is_active: bool | None = None
    extension: Extension | None = None
    skills: list[Skill] | None = None
    max_concurrent_calls: int | None = Field(None, ge=1, le=20)

    _not_null = field_validator(*NOT_NULL)(reject_null)


class OperatorOut(BaseModel):
    id: str
    user_id: str
    extension: str
    group_id: str | None
    status: OperatorStatus
    skills: list[str]
    max_concurrent_calls: int
    current_calls: int
    last_activity: datetime
    created_at: datetime


# --- groups --------------------------------------------------------------------------------
class GroupIn(_In):
    name: Name
    description: Annotated[str, StringConstraints(max_length=500)] = ""


class GroupUpdate(_In):
    name: Name | None = None
    description: Annotated[str, StringConstraints(max_length=500)] | None = None


class GroupOut(BaseModel):
    id: str
    name: str
    description: str
    created_at: datetime
    updated_at: datetime


# --- settings ------------------------------------------------------------------------------
PASSWORD_MASK = "********"  # noqa: S105 - shown instead of a password  # nosec B105
AsteriskProtocol = Literal["ARI", "http", "https"]
Host = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=253, pattern=r"^[\w.:-]+$"),
]


class AsteriskConfig(BaseModel):
    host: Host = "127.0.0.1"
    port: int = Field(8088, ge=1, le=65535)
    username: Annotated[str, StringConstraints(max_length=100)] = ""
    password: Annotated[str, StringConstraints(max_length=256)] = Field(
        "", description=f"Write-only: answers show '{PASSWORD_MASK}' when one is stored"
    )
    protocol: AsteriskProtocol = Field("ARI", description="'ARI' (plain HTTP) or 'https'")
    timeout: int = Field(10, ge=1, le=120, description="Seconds")
    enabled: bool = True

    @property
    def base_url(self) -> str:
        scheme = "https" if self.protocol == "https" else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"


PauseReasonName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=40, pattern=r"^[a-z0-9_]+$"),
    # The schema says what the validator below refuses, so clients (and fuzzers) know.
    Field(json_schema_extra={"not": {"enum": sorted(SYSTEM_PAUSE_REASONS)}}),
]
MAX_PAUSE_REASONS = 50


def _choosable_pause_reasons(reasons: list[str]) -> list[str]:
    """Each reason once, none of the daemon's own (they are set by it, not chosen)."""
    if SYSTEM_PAUSE_REASONS.intersection(reasons):
        system = ", ".join(sorted(SYSTEM_PAUSE_REASONS))
        raise ValueError(f"the system pause reasons ({system}) cannot be configured")
    if len(set(reasons)) != len(reasons):
        raise ValueError("each pause reason may be listed once")
    return reasons


PauseReasons = Annotated[
    list[PauseReasonName],
    Field(max_length=MAX_PAUSE_REASONS, json_schema_extra={"uniqueItems": True}),
    AfterValidator(_choosable_pause_reasons),
]


EmailSecurity = Literal["starttls", "tls", "none"]
SupervisorAlerts = Literal["immediate", "digest", "off"]
EmailLanguage = Literal["ru", "en"]
MailHost = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=253, pattern=r"^[\w.:-]*$")
]
ReportTime = Annotated[
    str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$"), Field(examples=["08:00"])
]
MAX_EMAIL_RECIPIENTS = 50
EmailRecipients = Annotated[
    list[Email], Field(max_length=MAX_EMAIL_RECIPIENTS, json_schema_extra={"uniqueItems": True})
]


def _each_once(recipients: list[str]) -> list[str]:
    if len({item.casefold() for item in recipients}) != len(recipients):
        raise ValueError("each address may be listed once")
    return recipients


UniqueRecipients = Annotated[EmailRecipients, AfterValidator(_each_once)]


class EmailConfig(BaseModel):
    """SMTP and what is emailed. Mail goes out only with `email_notifications` on and a
    host and from address set."""

    host: MailHost = Field("", description="SMTP server; empty: email not configured")
    port: int = Field(587, ge=1, le=65535)
    security: EmailSecurity = Field(
        "starttls", description="starttls (port 587), tls (implicit TLS, port 465) or none"
    )
    verify_certificate: bool = Field(
        True, description="Check the server's TLS certificate (off only for a private relay)"
    )
    username: Annotated[str, StringConstraints(max_length=254)] = Field(
        "", description="Empty: no login"
    )
    password: Annotated[str, StringConstraints(max_length=256)] = Field(
        "", description=f"Write-only: answers show '{PASSWORD_MASK}' when one is stored"
    )
    from_address: Email | None = Field(None, description="The From of every email")
    timeout: int = Field(15, ge=1, le=120, description="Seconds per SMTP exchange")
    language: EmailLanguage = "ru"
    supervisor_alerts: SupervisorAlerts = Field(
        "immediate",
        description="Missed-call alerts to the queue's supervisors: one email per call,"
        " a digest every digest_interval_minutes, or none",
    )
    digest_interval_minutes: int = Field(30, ge=5, le=1440)
    daily_report: bool = Field(True, description="Yesterday's figures per queue, once a day")
    daily_report_time: ReportTime = Field("08:00", description="HH:MM, the configured timezone")
    daily_report_recipients: UniqueRecipients = Field(
        default_factory=list, description="Empty: every active manager"
    )
    admin_recipients: UniqueRecipients = Field(
        default_factory=list,
        description="Who hears of messages the outbox gave up on; empty: every active admin",
    )

    @property
    def configured(self) -> bool:
        return bool(self.host and self.from_address)


class EmailConfigUpdate(_In):
    NOT_NULL = (
        "host",
        "port",
        "security",
        "verify_certificate",
        "username",
        "timeout",
        "language",
        "supervisor_alerts",
        "digest_interval_minutes",
        "daily_report",
        "daily_report_time",
        "daily_report_recipients",
        "admin_recipients",
    )
    host: MailHost | None = None
    port: int | None = Field(None, ge=1, le=65535)
    security: EmailSecurity | None = None
    verify_certificate: bool | None = None
    username: Annotated[str, StringConstraints(max_length=254)] | None = None
    password: Annotated[str, StringConstraints(max_length=256)] | None = Field(
        None, description=f"Omit, or send '{PASSWORD_MASK}', to keep the stored password"
    )
    from_address: Email | None = Field(None, description="null: no From (email off)")
    timeout: int | None = Field(None, ge=1, le=120)
    language: EmailLanguage | None = None
    supervisor_alerts: SupervisorAlerts | None = None
    digest_interval_minutes: int | None = Field(None, ge=5, le=1440)
    daily_report: bool | None = None
    daily_report_time: ReportTime | None = None
    daily_report_recipients: UniqueRecipients | None = None
    admin_recipients: UniqueRecipients | None = None

    _not_null = field_validator(*NOT_NULL)(reject_null)


class EmailTestRequest(_In):
    to: Email


class EmailTestResult(BaseModel):
    success: bool
    message: str
    data: dict[str, Any]


class SystemSettings(BaseModel):
    call_recording: bool = False
    auto_answer_delay: float = Field(0, ge=0, le=30, description="Seconds")
    max_call_duration: int = Field(3600, ge=0, le=86400, description="Seconds; 0 = unlimited")
    queue_timeout: int = Field(300, ge=1, le=86400, description="Default max wait, seconds")
    callback_enabled: bool = False
    sms_notifications: bool = False
    email_notifications: bool = False
    asterisk_config: AsteriskConfig = AsteriskConfig()
    pause_reasons: PauseReasons = Field(
        default_factory=lambda: list(DEFAULT_PAUSE_REASONS),
        description="extra: the reasons an operator may pause with (status busy); the"
        " system's own ('no_answer': autopause, 'paused': no reason) are always known",
    )
    email_config: EmailConfig = Field(
        default_factory=EmailConfig, description="extra: SMTP and what is emailed"
    )
    updated_by: str | None = None
    updated_at: datetime | None = None


class AsteriskConfigUpdate(_In):
    NOT_NULL = ("host", "port", "username", "protocol", "timeout", "enabled")
    host: Host | None = None
    port: int | None = Field(None, ge=1, le=65535)
    username: Annotated[str, StringConstraints(max_length=100)] | None = None
    password: Annotated[str, StringConstraints(max_length=256)] | None = Field(
        None, description=f"Omit, or send '{PASSWORD_MASK}', to keep the stored password"
    )
    protocol: AsteriskProtocol | None = None
    timeout: int | None = Field(None, ge=1, le=120)
    enabled: bool | None = None

    _not_null = field_validator(*NOT_NULL)(reject_null)


class SystemSettingsUpdate(_In):
    NOT_NULL = (
        "call_recording",
        "auto_answer_delay",
        "max_call_duration",
        "queue_timeout",
        "callback_enabled",
        "sms_notifications",
        "email_notifications",
        "asterisk_config",
        "pause_reasons",
        "email_config",
    )
    call_recording: bool | None = None
    auto_answer_delay: float | None = Field(None, ge=0, le=30)
    max_call_duration: int | None = Field(None, ge=0, le=86400)
    queue_timeout: int | None = Field(None, ge=1, le=86400)
    callback_enabled: bool | None = None
    sms_notifications: bool | None = None
    email_notifications: bool | None = None
    asterisk_config: AsteriskConfigUpdate | None = None
    pause_reasons: PauseReasons | None = Field(None, description="Replaces the whole list")
    email_config: EmailConfigUpdate | None = None

    _not_null = field_validator(*NOT_NULL)(reject_null)


class AsteriskTestRequest(_In):
    host: Host
    port: int = Field(8088, ge=1, le=65535)
    username: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    password: Annotated[str, StringConstraints(max_length=256)] | None = Field(
        None, description="Omit (or send the mask) to test with the stored password"
    )
    protocol: AsteriskProtocol = "ARI"
    timeout: int = Field(10, ge=1, le=120, description="Seconds")


class AsteriskTestResult(BaseModel):
    success: bool
    message: str
    data: dict[str, Any]


class LinkState(BaseModel):
    state: Literal["disabled", "connecting", "connected", "disconnected"]
    url: str | None = None
    asterisk_version: str | None = None
    last_error: str | None = None
    since: datetime | None = None


class SystemInfo(BaseModel):
    users: int
    operators: int
    calls_today: int
    asterisk_connected: bool
    database_status: Literal["connected", "error"]
    uptime: str
    version: str
    ari: LinkState
    ami: LinkState


class Health(BaseModel):
    status: Literal["ok", "ready", "not_ready"]
    database: str | None = None
    ari: LinkState | None = None
    ami: LinkState | None = None
