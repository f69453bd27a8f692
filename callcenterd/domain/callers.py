"""Callers as the daemon knows them apart from a call: their numbers as keys, VIP entries. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


def number_key(number: str) -> str:
    """The digits of a number: `+7 (900) 123-45-67` and `79001234567` are the same caller.
    National and international forms of one number (`8 900...` vs `+7 900...`) are not
    told apart: list the form the trunk delivers."""
    return "".join(ch for ch in number if ch.isdigit())


@dataclass(frozen=True, slots=True)
class VipCaller:
    """A number whose calls get a priority (higher first)."""

    number_key: str
    number: str  # as entered
    priority: int
    note: str
    created_at: datetime
    updated_at: datetime
