"""Request and response models of /api/admin/settings/sms."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints

from callcenterd.contract.schemas import _In


class SmsTestRequest(_In):
    to: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)] = (
        Field(description="The number to send to: E.164, or as callers' ids are written locally")
    )
    text: Annotated[str, StringConstraints(min_length=1, max_length=1000)] | None = Field(
        None, description="Left out: a test text in the daemon's [sms] language"
    )


class SmsTestResult(BaseModel):
    success: bool
    message: str
    data: dict[str, Any] = Field(
        description="Success: status_code, answer, to, gateway. Failure: error, code"
        " (SMS_001 not configured, SMS_002 unreachable, SMS_003 timeout, SMS_004 HTTP error,"
        " SMS_005 authentication refused, SMS_006 answer not a success), status_code,"
        " retryable, details (gateway, to, possible_causes), troubleshooting"
    )
