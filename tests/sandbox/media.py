"""Audio for the sandbox's sipp phones and callers: what each party says and what it hears.

sipp handles the SIP side; the media is the test's. A phone's scenario is rewritten to offer,
in its SDP, the port of a `MediaEndpoint` the test binds: the endpoint sends that party's
audio (G.711 µ-law, 20 ms packets, silence or a 1 kHz tone, looped) to the Asterisk RTP port
named in the SDP Asterisk sent, from the port it offered, so Asterisk's symmetric RTP keeps
sending there too, and it keeps every payload Asterisk sends: what that party hears.

Media matters beyond hearing: Asterisk services a channel's audiohooks (a snoop's spy and
whisper) only as frames pass through the channel, and a snoop detaching waits for that, so
phones that send no RTP at all leave a snoop hanging. Real phones send RTP the whole call
(silence too); these do the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import struct
from pathlib import Path

from tests.sandbox.phones import PhoneBehaviour
from tests.sandbox.sipp import SCENARIO_DIR

RATE = 8000
FRAME = 160  # samples per 20 ms packet
_BIAS, _CLIP = 0x84, 32635
_AUDIO_PORT = re.compile(r"^m=audio (\d+) ", re.MULTILINE)


def ulaw(sample: int) -> int:
    """One 16-bit linear sample as G.711 µ-law."""
    sign = 0x80 if sample < 0 else 0
    magnitude = min(abs(sample), _CLIP) + _BIAS
    exponent = max(0, magnitude.bit_length() - 8)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def linear(code: int) -> int:
    """One G.711 µ-law byte as a 16-bit linear sample."""
    code = ~code & 0xFF
    magnitude = (((code & 0x0F) << 3) + _BIAS) << ((code >> 4) & 0x07)
    return -(magnitude - _BIAS) if code & 0x80 else magnitude - _BIAS


def silence() -> bytes:
    return bytes([ulaw(0)]) * RATE


def tone(hertz: float = 1000.0, level: int = 8000) -> bytes:
    """One second of a sine: a whole number of periods, so it loops without a click."""
    return bytes(ulaw(round(level * math.sin(2 * math.pi * hertz * n / RATE))) for n in range(RATE))


def rms(payloads: list[bytes]) -> float:
    samples = [linear(code) for payload in payloads for code in payload]
    return math.sqrt(sum(s * s for s in samples) / len(samples)) if samples else 0.0


class MediaEndpoint(asyncio.DatagramProtocol):
    """One party's RTP: sends `audio` once Asterisk's port is known, keeps what arrives."""

    def __init__(self, audio: bytes) -> None:
        self.audio = audio + audio[:FRAME]  # a packet may wrap round the loop
        self.heard: list[bytes] = []
        self._arrived = asyncio.Event()
        self._transport: asyncio.DatagramTransport | None = None
        self._sender: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, audio: bytes) -> MediaEndpoint:
        endpoint = cls(audio)
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: endpoint, local_addr=("127.0.0.1", 0)
        )
        endpoint._transport = transport  # connection_made comes a loop turn later
        return endpoint

    @property
    def port(self) -> int:
        assert self._transport is not None
        return int(self._transport.get_extra_info("sockname")[1])

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # a datagram endpoint's

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        if len(data) > 12:
            self.heard.append(data[12:])  # past the fixed RTP header (no CSRC, no extension)
            self._arrived.set()

    def send_to(self, asterisk_port: int) -> None:
        """Start talking to Asterisk's RTP port (from the SDP it sent)."""
        if self._sender is None:
            self._sender = asyncio.create_task(self._send(asterisk_port))

    async def _send(self, port: int) -> None:
        assert self._transport is not None
        loop = asyncio.get_running_loop()
        started, number = loop.time(), 0
        while True:
            offset = (number * FRAME) % (len(self.audio) - FRAME)
            payload = self.audio[offset : offset + FRAME]
            header = struct.pack("!BBHII", 0x80, 0, number & 0xFFFF, number * FRAME, 0x5EC0)
            self._transport.sendto(header + payload, ("127.0.0.1", port))
            number += 1
            # Paced by the clock (not by sleeps adding up): 50 packets a second.
            await asyncio.sleep(max(0.0, started + number * 0.02 - loop.time()))

    async def next_heard(self, packets: int, within: float = 10.0) -> list[bytes]:
        """The next `packets` payloads Asterisk sends to this party."""
        start = len(self.heard)

        async def enough() -> list[bytes]:
            while len(self.heard) < start + packets:
                self._arrived.clear()
                await self._arrived.wait()
            return self.heard[start : start + packets]

        return await asyncio.wait_for(enough(), within)

    async def close(self) -> None:
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
        if self._transport is not None:
            self._transport.close()


def asterisk_audio_port(messages_log: Path) -> int | None:
    """The RTP port of the first SDP Asterisk sent in a sipp message log."""
    text = messages_log.read_text("utf-8", errors="replace") if messages_log.exists() else ""
    for block in text.split("-----------------------------------------------"):
        if "message received" in block:
            found = _AUDIO_PORT.search(block)
            if found:
                return int(found[1])
    return None


def _offering(scenario: str, port: int, folder: Path, name: str) -> str:
    """A copy of a scenario of tests/sipp whose SDP offers `port` for its audio."""
    text = (SCENARIO_DIR / scenario).read_text("utf-8")
    assert text.count("m=audio [media_port] ") == 1, scenario
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / f"{name}.xml"
    copy.write_text(text.replace("m=audio [media_port] ", f"m=audio {port} "), "utf-8")
    return str(copy)


def phone_with_media(
    folder: Path,
    name: str,
    media: MediaEndpoint,
    after_ms: int = 0,
    hang_up_after_ms: int | None = None,
) -> PhoneBehaviour:
    """`PhoneBehaviour.answer` whose audio is `media`'s."""
    answer = PhoneBehaviour.answer(after_ms, hang_up_after_ms)
    assert answer.scenario is not None
    return PhoneBehaviour(
        _offering(answer.scenario, media.port, folder, name), answer.sipp_variables
    )


def caller_with_media(folder: Path, name: str, media: MediaEndpoint) -> str:
    """The caller scenario (for `Callers.dial(scenario=...)`) whose audio is `media`'s."""
    return _offering("caller.xml", media.port, folder, name)
