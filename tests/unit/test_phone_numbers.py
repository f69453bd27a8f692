"""Caller ids to E.164 SMS recipients: what is normalised, and what never gets an SMS."""

from __future__ import annotations

import pytest

from callcenterd.domain.phone_numbers import NumberPlan, digits_of, to_e164

RUSSIA = NumberPlan()
GERMANY = NumberPlan(country_code="49", national_prefix="0", national_number_length=0)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # already international
        ("+79161234567", "+79161234567"),
        ("+7 916 123-45-67", "+79161234567"),
        ("+7 (916) 123-45-67", "+79161234567"),
        ("+44 20 7946 0958", "+442079460958"),
        ("  +1.415.555.2671 ", "+14155552671"),
        # the 00 international prefix
        ("0079161234567", "+79161234567"),
        ("00 44 20 7946 0958", "+442079460958"),
        # the national prefix 8, and national numbers written without it
        ("89161234567", "+79161234567"),
        ("8 (916) 123-45-67", "+79161234567"),
        ("8-800-555-35-35", "+78005553535"),
        ("9161234567", "+79161234567"),
        ("(916) 123 45 67", "+79161234567"),
        ("79161234567", "+79161234567"),
        # anonymous, withheld, unknown
        ("anonymous", None),
        ("Anonymous", None),
        ("unknown", None),
        ("RESTRICTED", None),
        ("private", None),
        ("", None),
        ("   ", None),
        (None, None),
        # internal extensions (6 digits or fewer)
        ("1001", None),
        ("101", None),
        ("123456", None),
        ("*97", None),
        # not a plausible number
        ("+7916", None),  # too short
        ("+7916123456789012", None),  # longer than E.164's 15 digits
        ("+0123456789", None),  # no country code starts with 0
        ("+7916abc4567", None),
        ("sip:alice@example.com", None),
        ("alice", None),
        ("1234567", None),  # 7 digits: neither a national nor an international number
        ("791612345678", None),  # a digit too many for a Russian number
        ("891612345", None),  # a digit too few after the prefix
        ("00", None),
        ("+", None),
    ],
)
def test_russian_numbering(raw: str | None, expected: str | None) -> None:
    assert to_e164(raw, RUSSIA) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("030 123456", "+4930123456"),
        ("0151 2345 6789", "+4915123456789"),
        ("0049 30 123456", "+4930123456"),
        ("+49 30 123456", "+4930123456"),
        ("4930123456", "+4930123456"),
        ("1001", None),
        ("anonymous", None),
    ],
)
def test_another_numbering_plan(raw: str, expected: str | None) -> None:
    assert to_e164(raw, GERMANY) == expected


@pytest.mark.parametrize(("limit", "expected"), [(4, "+15551234"), (8, None)])
def test_the_extension_length_is_configurable(limit: int, expected: str | None) -> None:
    plan = NumberPlan(
        country_code="1", national_prefix="", national_number_length=0, internal_max_length=limit
    )
    assert to_e164("15551234", plan) == expected


def test_a_longer_extension_plan_keeps_real_numbers() -> None:
    plan = NumberPlan(internal_max_length=8)
    assert to_e164("12345678", plan) is None
    assert to_e164("89161234567", plan) == "+79161234567"


def test_digits_of() -> None:
    assert digits_of("+79161234567") == "79161234567"
