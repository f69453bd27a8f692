"""Request and response models of supervision (/api/calls/{call_id}/supervise...)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from callcenterd.contract.schemas import _In
from callcenterd.domain.supervision import SessionState, SupervisionMode


class SuperviseRequest(_In):
    mode: SupervisionMode = Field(
        strict=False,
        description=(
            "listen: the supervisor hears both sides, nobody hears them; whisper: the operator"
            " alone hears the supervisor; barge: the operator and the caller hear them"
        ),
    )


class SupervisionModeOut(BaseModel):
    mode: SupervisionMode
    started_at: datetime
    ended_at: datetime | None


class SupervisionOut(BaseModel):
    id: str
    call_id: str
    supervisor_id: str = Field(description="The supervising user")
    operator_id: str | None = Field(description="The operator supervised")
    extension: str = Field(description="The supervisor's phone that is (or was) rung")
    mode: SupervisionMode
    state: SessionState = Field(
        description="ringing: the supervisor's phone rings; active: joined; ended"
    )
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    end_reason: str | None = Field(
        description=(
            "ended_by_user, call_ended, supervisor_hung_up, not_answered, failed (Asterisk"
            " refused to join), lost (the daemon restarted meanwhile)"
        )
    )
    modes: list[SupervisionModeOut] = Field(
        description="Each mode the joined session was in, with its times"
    )
