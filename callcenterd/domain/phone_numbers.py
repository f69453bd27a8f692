"""Phone numbers as SMS recipients: normalised to E.164, or refused. Pure.

A caller id arrives as the trunk wrote it: `+7 916 123-45-67`, `89161234567`,
`0079161234567`, `(916) 123 45 67`, an internal extension `1001`, or `anonymous`. Only a
number that is plausibly a subscriber's, written as E.164 (`+` and 7..15 digits), may get
an SMS: anonymous or withheld ids, extensions and anything else never do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# What trunks and phones put in the caller id when there is no number to show.
WITHHELD = frozenset(
    {"anonymous", "unknown", "restricted", "private", "unavailable", "withheld", "invalid"}
)
_SEPARATORS = re.compile(r"[\s\-().\u00a0/]")
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


@dataclass(frozen=True, slots=True)
class NumberPlan:
    """How national numbers are written where the daemon runs (defaults: Russia)."""

    country_code: str = "7"
    national_prefix: str = "8"  # the trunk prefix before a national number ("0" in most of Europe)
    national_number_length: int = 10  # digits after the prefix; 0: any length
    internal_max_length: int = 6  # extensions are this short or shorter


def to_e164(raw: str | None, plan: NumberPlan = NumberPlan()) -> str | None:
    """The number as E.164 (`+79161234567`), or None when it must never get an SMS."""
    if raw is None:
        return None
    text = _SEPARATORS.sub("", raw.strip())
    if not text or text.lower() in WITHHELD:
        return None
    candidate: str | None
    if text.startswith("+"):
        candidate = text
    elif text.startswith("00"):
        candidate = "+" + text[2:]
    elif not text.isdigit() or len(text) <= plan.internal_max_length:
        return None  # letters (a SIP user name), or an internal extension
    else:
        candidate = _national(text, plan)
    return candidate if candidate is not None and E164.match(candidate) else None


def _national(digits: str, plan: NumberPlan) -> str | None:
    """A number written without an international prefix."""
    length = plan.national_number_length
    prefix, country = plan.national_prefix, plan.country_code
    if prefix and digits.startswith(prefix):
        rest = digits[len(prefix) :]
        if not length or len(rest) == length:
            return "+" + country + rest
    if length and len(digits) == length:
        return "+" + country + digits  # the national number without its prefix
    if digits.startswith(country) and (not length or len(digits) == len(country) + length):
        return "+" + digits  # international, the "+" left out
    return None


def digits_of(number: str) -> str:
    """An E.164 number without its `+` (for gateways that want bare digits)."""
    return number.lstrip("+")
