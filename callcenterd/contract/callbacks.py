"""Request and response models of /api/callbacks."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from callcenterd.contract.routing import DateOrTime, DialedNumber
from callcenterd.contract.schemas import _In, reject_null

CallbackStatus = Literal["pending", "dialing", "completed", "failed", "cancelled"]


class CallbackListQuery(BaseModel):
    status: CallbackStatus | None = None
    queue_id: str | None = None
    date_from: DateOrTime | None = Field(
        None, description="Booked from (a date: its local midnight; naive: local time)"
    )
    date_to: DateOrTime | None = Field(
        None, description="Booked until (a date: that whole local day), inclusive"
    )
    limit: int = Field(100, ge=1, le=1000)


class CallbackCreate(_In):
    """Either `call_id` (a missed call: its number and queue) or `queue_id` and `number`."""

    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {
                    "required": ["call_id"],
                    "not": {"anyOf": [{"required": ["queue_id"]}, {"required": ["number"]}]},
                },
                {"required": ["queue_id", "number"], "not": {"required": ["call_id"]}},
            ]
        }
    )
    NOT_NULL = ("call_id", "queue_id", "number")

    call_id: str | None = Field(None, max_length=64, description="A missed call to call back")
    queue_id: str | None = Field(None, max_length=64)
    number: DialedNumber | None = None
    scheduled_at: AwareDatetime | None = Field(
        None, strict=False, description="Not dialed before this time (ISO 8601, with offset)"
    )

    _not_null = field_validator(*NOT_NULL)(reject_null)

    @model_validator(mode="after")
    def _one_way(self) -> CallbackCreate:
        if self.call_id is None and (self.queue_id is None or self.number is None):
            raise ValueError("give call_id, or queue_id and number")
        if self.call_id is not None and (self.queue_id is not None or self.number is not None):
            raise ValueError("give call_id, or queue_id and number, not both")
        return self


class CallbackReschedule(_In):
    scheduled_at: AwareDatetime = Field(
        strict=False, description="Not dialed before this time; the place in line is kept"
    )


class CallbackOut(BaseModel):
    id: str
    queue_id: str
    number: str
    status: CallbackStatus
    call_id: str | None = Field(description="The callback's own call (its timeline)")
    origin_call_id: str | None = Field(description="The call it came from")
    priority: int
    place_at: datetime = Field(description="The arrival that keeps the caller's place in line")
    scheduled_at: datetime | None
    attempts: int = Field(description="Dials of the caller so far")
    operator_id: str | None
    reason: str | None
    requested_by: str | None = Field(description="caller (pressed 1), or the booking user's id")
    created_at: datetime
    updated_at: datetime


class CallbackList(BaseModel):
    items: list[CallbackOut]
