"""Request and response models of /api/queues, /api/operators and /api/calls."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StringConstraints,
    TypeAdapter,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from callcenterd.contract.schemas import Extension, Name, Skill, Skip, UserOut, _In, reject_null
from callcenterd.domain.queues import OverflowAction, Presence, Strategy
from callcenterd.domain.users import OperatorStatus

# app_queue reads [general] of queues.conf as its own settings, never as a queue.
RESERVED_QUEUE_NAMES = frozenset({"general"})


def _not_reserved(value: str) -> str:
    if value.lower() in RESERVED_QUEUE_NAMES:
        raise ValueError(f"'{value}' is reserved by Asterisk's app_queue")
    return value


def _unique(values: list[Any]) -> list[Any]:
    seen: set[Any] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{value!r} is listed twice")
        seen.add(value)
    return values


AsteriskName = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_-]+$"
    ),
    AfterValidator(_not_reserved),
]
DialedNumber = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9+*#_.-]+$"
    ),
]
MusicClass = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_-]+$"
    ),
]
Description = Annotated[str, StringConstraints(max_length=500)]
Penalty = Annotated[int, Field(ge=0, le=1000)]
MaxWait = Annotated[int, Field(ge=1, le=86400, description="Seconds")]
Priority = Annotated[int, Field(ge=0, le=100, description="Higher is served first")]
RingTimeout = Annotated[int, Field(ge=1, le=600, description="Seconds one ring lasts")]
RetryDelay = Annotated[int, Field(ge=0, le=600, description="Seconds between ring rounds")]
Wrapup = Annotated[int, Field(ge=0, le=3600, description="Seconds after a call, not rung")]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Sound = Annotated[
    str,
    StringConstraints(max_length=200, pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$"),
    Field(description="An Asterisk sound name, without extension: `queue-periodic-announce`"),
]
LastOperatorWait = Annotated[
    int,
    Field(
        ge=0,
        le=600,
        description="Seconds a returning caller waits for the operator who served them last;"
        " 0: off",
    ),
]
AnnounceEvery = Annotated[
    int, Field(ge=0, le=3600, description="Seconds between position announcements; 0: none")
]
OfferAfter = Annotated[
    int, Field(ge=0, le=3600, description="Seconds of waiting before the callback offer; 0: none")
]
CallStatus = Literal["incoming", "answered", "completed", "missed"]
NotificationLanguage = Literal["ru", "en"]
_SMS_SWITCH = "SMS to the caller (with SystemSettings.sms_notifications on): "
SmsMissedCall = Annotated[bool, Field(description=_SMS_SWITCH + "after a missed call")]
SmsCallbackScheduled = Annotated[
    bool, Field(description=_SMS_SWITCH + "when a callback is booked or moved")
]
SmsCallbackReminder = Annotated[
    bool, Field(description=_SMS_SWITCH + "a reminder before a timed callback")
]


# --- queues --------------------------------------------------------------------------------
class MemberIn(_In):
    """A member by extension or by operator id (exactly one), with a penalty."""

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": ["extension"]}, {"required": ["operator_id"]}]}
    )
    NOT_NULL = ("extension", "operator_id")

    extension: Extension | None = None
    operator_id: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    penalty: Penalty = 0

    _not_null = field_validator(*NOT_NULL)(reject_null)

    @model_validator(mode="after")
    def _one_reference(self) -> MemberIn:
        if (self.extension is None) == (self.operator_id is None):
            raise ValueError("give either 'extension' or 'operator_id'")
        return self


# A bare extension is a member with penalty 0.
MemberSpec = Extension | MemberIn
Members = Annotated[
    list[MemberSpec],
    Field(description="In order: extensions, or {extension | operator_id, penalty}"),
]
Skills = Annotated[list[Skill], AfterValidator(_unique)]
Numbers = Annotated[
    list[DialedNumber],
    AfterValidator(_unique),
    Field(description="Dialed numbers that land in this queue; unique across queues"),
]


class QueueCreate(_In):
    name: Name
    description: Description = ""
    asterisk_name: AsteriskName
    max_wait_time: MaxWait = 300
    priority: Priority = 1
    strategy: Strategy = Field(Strategy.RINGALL, strict=False)
    members: Members = Field(default_factory=list)
    required_skills: Skills = Field(default_factory=list)
    numbers: Numbers = Field(default_factory=list)
    is_default: bool = Field(False, description="Where calls matching no queue land (one)")
    is_active: bool = True
    ring_timeout: RingTimeout = 15
    retry_delay: RetryDelay = 5
    wrapup_seconds: Wrapup = 0
    join_empty: bool = Field(True, description="False: refuse callers when nobody is logged in")
    overflow_action: OverflowAction = Field(OverflowAction.HANGUP, strict=False)
    overflow_queue_id: str | None = Field(None, description="With overflow_action 'queue'")
    music_class: MusicClass = "default"
    greeting: Sound | None = Field(None, description="Played once to every caller joining")
    announce_every: AnnounceEvery = 0
    announce_wait: bool = Field(True, description="The estimated wait with the position")
    last_operator_wait: LastOperatorWait = 0
    callback_enabled: bool | None = Field(
        None, description="Offer callbacks; null: the system setting callback_enabled"
    )
    callback_offer_after: OfferAfter = 60
    sms_missed_call: SmsMissedCall = True
    sms_callback_scheduled: SmsCallbackScheduled = True
    sms_callback_reminder: SmsCallbackReminder = True
    notification_language: NotificationLanguage | None = Field(
        None, description="The language of the queue's SMS; null: the daemon's [sms] language"
    )


class QueueUpdate(_In):
    """Partial: fields left out keep their values; `members` replaces the whole list."""

    NOT_NULL = (
        "name",
        "description",
        "asterisk_name",
        "max_wait_time",
        "priority",
        "strategy",
        "members",
        "required_skills",
        "numbers",
        "is_default",
        "is_active",
        "ring_timeout",
        "retry_delay",
        "wrapup_seconds",
        "join_empty",
        "overflow_action",
        "music_class",
        "announce_every",
        "announce_wait",
        "last_operator_wait",
        "callback_offer_after",
        "sms_missed_call",
        "sms_callback_scheduled",
        "sms_callback_reminder",
    )

    name: Name | None = None
    description: Description | None = None
    asterisk_name: AsteriskName | None = None
    max_wait_time: MaxWait | None = None
    priority: Priority | None = None
    strategy: Strategy | None = Field(None, strict=False)
    members: Members | None = None
    required_skills: Skills | None = None
    numbers: Numbers | None = None
    is_default: bool | None = None
    is_active: bool | None = None
    ring_timeout: RingTimeout | None = None
    retry_delay: RetryDelay | None = None
    wrapup_seconds: Wrapup | None = None
    join_empty: bool | None = None
    overflow_action: OverflowAction | None = Field(None, strict=False)
    overflow_queue_id: str | None = None
    music_class: MusicClass | None = None
    greeting: Sound | None = Field(None, description="null: no greeting")
    announce_every: AnnounceEvery | None = None
    announce_wait: bool | None = None
    last_operator_wait: LastOperatorWait | None = None
    callback_enabled: bool | None = Field(None, description="null: the system setting")
    callback_offer_after: OfferAfter | None = None
    sms_missed_call: SmsMissedCall | None = None
    sms_callback_scheduled: SmsCallbackScheduled | None = None
    sms_callback_reminder: SmsCallbackReminder | None = None
    notification_language: NotificationLanguage | None = Field(
        None, description="null: the daemon's [sms] language"
    )

    _not_null = field_validator(*NOT_NULL)(reject_null)


class QueueMemberOut(BaseModel):
    operator_id: str
    extension: str
    name: str
    penalty: int
    position: int
    status: OperatorStatus
    presence: Presence


class QueueOut(BaseModel):
    id: str
    name: str
    description: str
    asterisk_name: str
    max_wait_time: int
    priority: int
    strategy: Strategy
    members: list[str] = Field(description="Members' extensions, in order")
    is_active: bool
    current_calls: int = Field(description="Answered calls of this queue now")
    waiting_calls: int = Field(description="Callers waiting in this queue now")
    required_skills: list[str]
    numbers: list[str]
    is_default: bool
    ring_timeout: int
    retry_delay: int
    wrapup_seconds: int
    join_empty: bool
    overflow_action: OverflowAction
    overflow_queue_id: str | None
    music_class: str
    greeting: str | None
    announce_every: int
    announce_wait: bool
    last_operator_wait: int
    callback_enabled: bool | None
    callback_offer_after: int
    sms_missed_call: bool
    sms_callback_scheduled: bool
    sms_callback_reminder: bool
    notification_language: NotificationLanguage | None
    created_at: datetime
    updated_at: datetime


# --- VIP callers ---------------------------------------------------------------------------
# A number in a path: digits, an optional leading +.
NUMBER_PATTERN = r"^\+?[0-9]{1,32}$"


class VipCallerIn(_In):
    priority: Annotated[int, Field(ge=1, le=100, description="Higher is served first")]
    note: Annotated[str, StringConstraints(max_length=200)] = ""


class VipCallerOut(BaseModel):
    number: str = Field(description="As entered; callers match on its digits")
    priority: int
    note: str
    created_at: datetime
    updated_at: datetime


# --- operators -----------------------------------------------------------------------------
class OperatorListQuery(BaseModel):
    group_id: str | None = Field(None, description="Supervisors always see their own group")
    status: OperatorStatus | None = None


class OperatorStatusIn(_In):
    status: OperatorStatus = Field(
        description="'busy' pauses the operator (not rung)", strict=False
    )
    reason: Reason | None = Field(
        None,
        description="With 'busy': one of the configured pause reasons (GET"
        " /api/operators/pause-reasons), else 422; left out: paused without a reason (shown"
        " and counted as 'paused'). Ignored with 'online' and 'offline'",
    )


class PauseReasonsOut(BaseModel):
    reasons: list[str] = Field(description="What an operator may pause with (admin-configured)")
    system_reasons: list[str] = Field(
        description="Set by the daemon only: 'no_answer' (autopause), 'paused' (no reason)"
    )


class OperatorListItem(BaseModel):
    id: str
    user_id: str
    name: str
    extension: str
    status: OperatorStatus = Field(description="As shown: on a call or in wrap-up is busy")
    status_reason: str | None
    presence: Presence = Field(description="As chosen by the operator or a supervisor")
    presence_reason: str | None
    group_id: str | None
    skills: list[str]
    max_concurrent_calls: int
    current_calls: int
    calls_today: int = Field(description="Calls answered today (configured time zone)")
    last_activity: datetime


# --- calls ---------------------------------------------------------------------------------
_DATETIME = TypeAdapter(datetime)
_DATE = TypeAdapter(date)
# ISO 8601 as written in a query string; pydantic alone would also take numbers (`0.5`,
# `1700000000`) as Unix times, which no client means as a date.
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ISO_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?"
)
# The days a filter may name. A bound becomes a local midnight, a day later for `date_to`,
# then UTC: a year of margin at each end keeps every time zone inside datetime's 1..9999.
EARLIEST_DAY = date(1900, 1, 1)
LATEST_DAY = date(9998, 12, 31)
_YEARS = r"(19\d\d|[2-8]\d{3}|9[0-8]\d\d|99[0-8]\d|999[0-8])"
DATE_OR_TIME_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "format": "date", "pattern": f"^{_YEARS}-"},
        {"type": "string", "format": "date-time", "pattern": f"^{_YEARS}-"},
    ],
    "description": (
        f"ISO 8601: a date (YYYY-MM-DD) or a date-time, naive (local) or with an offset;"
        f" from {EARLIEST_DAY} to {LATEST_DAY}"
    ),
}


def _date_or_datetime(value: Any) -> date | datetime:
    """'2025-01-01' is a whole day; a date-time is an instant. Only ISO 8601 text."""
    if isinstance(value, date):  # a date or a datetime from Python code
        parsed: date | datetime = value
    elif not isinstance(value, str):
        raise ValueError("must be an ISO 8601 date or date-time string")
    elif _ISO_DATE.fullmatch(text := value.strip()):
        parsed = _DATE.validate_python(text)
    elif _ISO_DATETIME.fullmatch(text):
        parsed = _DATETIME.validate_python(text)
    else:
        raise ValueError("must be an ISO 8601 date (YYYY-MM-DD) or date-time")
    day = parsed.date() if isinstance(parsed, datetime) else parsed
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise ValueError(f"must be from {EARLIEST_DAY} to {LATEST_DAY}")
    return parsed


DateOrTime = Annotated[
    date | datetime,
    PlainValidator(_date_or_datetime),
    WithJsonSchema(DATE_OR_TIME_SCHEMA),
]


class MeOut(UserOut):
    """GET /api/auth/me: the user and, when they have one, their operator as GET
    /api/operators/ lists it (an operator reads and sets their own status with it)."""

    operator: OperatorListItem | None = Field(None, description="null: the user has no operator")


class CallFilterQuery(BaseModel):
    """The filters of the call history, shared by the page (/calls/) and the export."""

    operator_id: str | None = Field(None, description="The operator who answered")
    status: CallStatus | None = None
    queue_id: str | None = None
    date_from: DateOrTime | None = Field(
        None, description="Calls started from (a date: its local midnight; naive: local time)"
    )
    date_to: DateOrTime | None = Field(
        None, description="Calls started until (a date: that whole local day), inclusive"
    )


class CallListQuery(CallFilterQuery):
    skip: Skip = 0
    limit: int = Field(50, ge=1, le=1000)


class CallExportQuery(CallFilterQuery):
    format: Literal["csv"] = Field("csv", description="The file format: only csv")


class CallItem(BaseModel):
    id: str
    channel_id: str
    caller_number: str
    called_number: str | None
    operator_id: str | None
    operator_name: str | None
    queue_id: str | None
    queue_name: str | None
    status: CallStatus
    reason: str | None
    start_time: datetime
    answer_time: datetime | None
    end_time: datetime | None
    duration: int | None = Field(description="Talk time, seconds")
    wait_seconds: float | None
    recording_url: str | None
    notes: str | None
    rating: int | None
    routed_by: str = Field(
        description="ari: routed by callcenterd; ami: Asterisk's own queue (fallback); api"
    )
    created_at: datetime


class CallPage(BaseModel):
    items: list[CallItem]
    total: int
    page: int = Field(description="skip // limit + 1")
    pages: int = Field(description="ceil(total / limit)")


class CallEventOut(BaseModel):
    at: datetime
    kind: str
    operator_id: str | None
    data: dict[str, Any]


class CallLegOut(BaseModel):
    """One operator leg of the call: rung, maybe answered, ended (transfers split the talk)."""

    leg_id: str
    operator_id: str | None
    node: str | None = Field(description="The Asterisk node the leg's channel was on")
    rung_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    outcome: str | None = Field(
        description="busy, no_answer, unreachable, cancelled, transferred, target_hung_up,"
        " or the call's end reason; null while the leg lasts"
    )
    talk_seconds: float = Field(description="Answered time less hold, this operator's part")
    hold_seconds: float = Field(description="Time the caller was held during this part")


class CallDetail(CallItem):
    operators_tried: list[str] = Field(description="Operator ids rung for this call, in order")
    updated_at: datetime
    hold_seconds: float = Field(0.0, description="Time on hold, counted apart from the talk")
    legs: list[CallLegOut] = Field(default_factory=list, description="Operator legs, in order")
    events: list[CallEventOut]


class CallCreate(_In):
    channel_id: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)
    ]
    caller_number: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)
    ]
    called_number: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)] | None
    ) = None
    queue_id: str | None = None
    status: Literal["incoming"] = Field("incoming", description="A new record is incoming")


class CallUpdate(_In):
    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    notes: Annotated[str, StringConstraints(max_length=4000)] | None = Field(
        None, description="null clears"
    )
    rating: Annotated[int, Field(ge=1, le=5)] | None = Field(None, description="null clears")
    status: Literal["completed", "missed"] | None = Field(
        None, description="Admin only: close a call left open (completed needs an answer)"
    )

    @model_validator(mode="after")
    def _something(self) -> CallUpdate:
        if not self.model_fields_set:
            raise ValueError("send at least one of notes, rating, status")
        return self
