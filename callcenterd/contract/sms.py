"""Request and response models of /api/admin/settings/sms."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints

from callcenterd.contract.schemas import _In


class SmsTestRequest(_In):
    to: Annotated[
        str,
        StringConstraints(
            strip_whitespace=True, min_length=1, max_length=32, pattern=r"^[+0-9 ()./-]+$"
        ),
    ] = Field(
        description="The number to send to: E.164 (+79161234567), or as callers' numbers are"
        " written locally (8 916 123-45-67). 422 when it is not a plausible number under"
        " the daemon's [sms] numbering plan (extensions and short numbers never get an SMS)"
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
