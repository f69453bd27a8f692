"""What a waiting caller hears, as ARI media URIs (Asterisk's stock queue prompts). Pure.

The order of app_queue's own announcement, so the prompts read as they were recorded to:
"your call is now first in line" for the head of the line, else "you are currently caller
number N"; then "the estimated hold time is currently M minutes" (under a minute: "less
than 1 minute"); then "thank you for your patience". The prompts are in the channel's
language where Asterisk has them.
"""

from __future__ import annotations

import math


def wait_announcement(position: int, wait_seconds: float | None) -> list[str]:
    media = (
        ["sound:queue-youarenext"]
        if position == 1
        else ["sound:queue-thereare", f"number:{position}", "sound:queue-callswaiting"]
    )
    if wait_seconds is not None:
        minutes = math.ceil(wait_seconds / 60)
        if minutes <= 1:
            spoken = ["sound:queue-less-than", "number:1", "sound:queue-minute"]
            if wait_seconds >= 60:  # exactly a minute: "1 minute", not "less than"
                spoken = spoken[1:]
        else:
            spoken = [f"number:{minutes}", "sound:queue-minutes"]
        media += ["sound:queue-holdtime", *spoken]
    return [*media, "sound:queue-thankyou"]


def greeting(sound: str) -> list[str]:
    return [f"sound:{sound}"]


# The callback offer and its confirmation, from Asterisk's stock prompts: "to call back...
# press 1", then "thank you... goodbye" before the caller's channel is hung up.
CALLBACK_OFFER = ("sound:vm-tocallback", "sound:vm-press", "digits:1")
CALLBACK_CONFIRMED = ("sound:auth-thankyou", "sound:goodbye")


def callback_offer() -> list[str]:
    return list(CALLBACK_OFFER)


def callback_confirmed() -> list[str]:
    return list(CALLBACK_CONFIRMED)
