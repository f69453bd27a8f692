"""Hold and transfer requests (issue 11): POST /api/calls/{id}/transfer's body."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from callcenterd.contract.schemas import _In

TargetId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
# An external number: digits with an optional leading +, as the trunk's dialplan takes them.
ExternalNumber = Annotated[str, StringConstraints(pattern=r"^\+?[0-9]{2,20}$")]


class _Target(BaseModel):
    # As strict as _In, but `id` is the target's, not a read-only field to drop.
    model_config = ConfigDict(extra="forbid", strict=True)


class OperatorTarget(_Target):
    type: Literal["operator"]
    id: TargetId = Field(description="The target operator's id")


class QueueTarget(_Target):
    type: Literal["queue"]
    id: TargetId = Field(description="The target queue's id")


class ExternalTarget(_Target):
    type: Literal["external"]
    number: ExternalNumber = Field(
        description="Dialed in the configured transfers.external_context (blind only)"
    )


TransferTarget = Annotated[
    OperatorTarget | QueueTarget | ExternalTarget, Field(discriminator="type")
]


class TransferRequest(_In):
    target: TransferTarget
    mode: Literal["blind", "attended"] = Field(
        "blind",
        description="blind: the operator leaves at once and the caller rings the target;"
        " attended: the caller is held while the operator talks with the target operator,"
        " then /transfer/complete or /transfer/cancel",
    )
