"""Callers as the daemon knows them apart from a call: their numbers as keys, VIP entries. Pure."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any


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


# A number as written in text: digits with the separators people and trunks put between them.
_WRITTEN_NUMBER = re.compile(r"\+?\d(?:[\d \-().]*\d)?")
# What an erased number becomes wherever it was stored.
ERASED = "erased"


def mentions_number(text: str | None, key: str) -> bool:
    """Whether `text` holds the number whose digits are `key`, however written (`+7 900
    123-45-67`, `79001234567`, inside JSON or a sentence). Pure, cheap enough for SQL."""
    if not text or not key:
        return False
    if key not in "".join(ch for ch in text if ch.isdigit()):
        return False  # the usual case: no run of its digits at all
    return any(key in number_key(found[0]) for found in _WRITTEN_NUMBER.finditer(text))


def erase_number(text: str, key: str) -> str:
    """`text` with every written form of the number (`key`: its digits) replaced by ERASED.

    JSON keeps its shape: strings are rewritten inside it, and a JSON number that is the
    number becomes the string ERASED.
    """
    stripped = text.lstrip()
    if stripped[:1] in ("{", "["):
        try:
            document = json.loads(text)
        except ValueError:
            pass
        else:
            return json.dumps(_erase_in(document, key), ensure_ascii=False)
    return _WRITTEN_NUMBER.sub(lambda m: ERASED if key in number_key(m[0]) else m[0], text)


def _erase_in(value: Any, key: str) -> Any:
    if isinstance(value, str):
        return erase_number(value, key) if mentions_number(value, key) else value
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and key in number_key(str(value)):
        return ERASED
    if isinstance(value, list):
        return [_erase_in(item, key) for item in value]
    if isinstance(value, dict):
        return {name: _erase_in(item, key) for name, item in value.items()}
    return value
