"""Phones that send audio, as real phones do: sipp streams a raw G.711 µ-law file in a loop
(`rtp_stream`) from its answer on.

Asterisk services a channel's audiohooks (a snoop's spy and whisper, ChanSpy's) only as
frames pass through the channel, and a snoop detaching waits for that: with phones that send
no RTP at all, a snooped channel never passes a frame. Real phones send RTP the whole call
(silence too); these phones do the same. The tone (1 kHz) is what a test listens for.
"""

from __future__ import annotations

import math
from pathlib import Path

from tests.sandbox.phones import PhoneBehaviour
from tests.sandbox.sipp import SCENARIO_DIR

RATE = 8000
_BIAS, _CLIP = 0x84, 32635


def ulaw(sample: int) -> int:
    """One 16-bit linear sample as G.711 µ-law (ITU-T G.711)."""
    sign = 0x80 if sample < 0 else 0
    magnitude = min(abs(sample), _CLIP) + _BIAS
    exponent = max(0, magnitude.bit_length() - 8)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def silence(seconds: float = 1.0) -> bytes:
    return bytes([ulaw(0)]) * int(RATE * seconds)


def tone(hertz: float = 1000.0, seconds: float = 1.0, level: int = 8000) -> bytes:
    count = int(RATE * seconds)
    return bytes(
        ulaw(round(level * math.sin(2 * math.pi * hertz * n / RATE))) for n in range(count)
    )


def streaming_phone(
    folder: Path, name: str, audio: bytes, after_ms: int = 0, hang_up_after_ms: int | None = None
) -> PhoneBehaviour:
    """`PhoneBehaviour.answer`, streaming `audio` (looped) from the answer until the call ends."""
    folder.mkdir(parents=True, exist_ok=True)
    media = folder / f"{name}.ulaw"
    media.write_bytes(audio)
    answer = PhoneBehaviour.answer(after_ms, hang_up_after_ms)
    assert answer.scenario is not None
    text = (SCENARIO_DIR / answer.scenario).read_text("utf-8")
    ack = '<recv request="ACK"/>'
    assert text.count(ack) == 1
    streaming = text.replace(
        ack, f'{ack}\n  <nop><action><exec rtp_stream="{media},-1,0"/></action></nop>'
    )
    scenario = folder / f"{name}.xml"
    scenario.write_text(streaming, "utf-8")
    return PhoneBehaviour(str(scenario), answer.sipp_variables)
