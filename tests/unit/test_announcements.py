"""The media of what a waiting caller hears (telephony/announcements.py)."""

from __future__ import annotations

import pytest

from callcenterd.telephony.announcements import greeting, wait_announcement

THANKS = "sound:queue-thankyou"


def test_the_head_of_the_line_is_next() -> None:
    assert wait_announcement(1, None) == ["sound:queue-youarenext", THANKS]


def test_a_place_further_back_is_said_as_a_number() -> None:
    assert wait_announcement(4, None) == [
        "sound:queue-thereare",
        "number:4",
        "sound:queue-callswaiting",
        THANKS,
    ]


@pytest.mark.parametrize(
    ("seconds", "spoken"),
    [
        (0, ["sound:queue-less-than", "number:1", "sound:queue-minute"]),
        (59.9, ["sound:queue-less-than", "number:1", "sound:queue-minute"]),
        (60, ["number:1", "sound:queue-minute"]),
        (61, ["number:2", "sound:queue-minutes"]),  # rounded up: never promise too little
        (600, ["number:10", "sound:queue-minutes"]),
    ],
)
def test_the_wait_in_whole_minutes(seconds: float, spoken: list[str]) -> None:
    assert wait_announcement(1, seconds) == [
        "sound:queue-youarenext",
        "sound:queue-holdtime",
        *spoken,
        THANKS,
    ]


def test_greeting() -> None:
    assert greeting("custom/welcome") == ["sound:custom/welcome"]
