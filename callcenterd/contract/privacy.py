"""Request and response models of /api/admin/privacy."""

from __future__ import annotations

from pydantic import BaseModel, Field

from callcenterd.contract.schemas import _In

# 6 to 20 digits, with the separators people write (a leading +, spaces, dashes, dots,
# brackets): the rule in one pattern, so the OpenAPI document says exactly what is accepted.
WRITTEN_NUMBER = r"^[ ().\-]*\+?[ ().\-]*([0-9][ ().\-]*){6,20}$"


class ErasureRequest(_In):
    phone_number: str = Field(
        max_length=40,
        pattern=WRITTEN_NUMBER,
        description=(
            "The number to erase, in any written form: it is matched on its digits, as"
            " callers are (`+7 900 123-45-67` and `79001234567` are one number)"
        ),
        examples=["+7 900 123-45-67"],
    )


class ErasureOut(BaseModel):
    """What was erased, per kind: rows anonymised (the number replaced by `erased`) or
    deleted. The number itself is never answered."""

    number_hash: str = Field(description="A keyed hash of the number, as the audit log has it")
    last_digits: str
    calls: int = Field(description="Calls whose caller, called number or notes held it")
    call_events: int = Field(description="Timeline entries that mentioned it")
    callbacks: int
    vip_callers: int = Field(description="VIP entries deleted")
    outbox_deleted: int = Field(description="Messages addressed to the number, deleted")
    outbox_anonymised: int = Field(description="Other messages that mentioned it")
    audit_log: int = Field(description="Earlier audit entries that named it")
    recordings: int = Field(description="Recordings of its calls deleted in Asterisk")
