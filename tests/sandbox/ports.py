"""Port leases on 127.0.0.1, so sandboxes running side by side on one machine never collide."""

from __future__ import annotations

import contextlib
import fcntl
import random
import socket
from pathlib import Path
from typing import TextIO

# Below Linux's ephemeral range (32768+, where the kernel puts random client ports) and above
# Asterisk's RTP range in the sandbox (10000-19999, see rtp.conf there).
LEASE_RANGE = range(20000, 32000)


def _is_free(port: int) -> bool:
    """True if both a TCP and a UDP socket can bind 127.0.0.1:port right now."""
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


class PortLeases:
    """Ports held for one sandbox through a lock file per port, released on `release()` or death.

    The lock stops another sandbox from taking a port between our probe and the moment Asterisk
    or sipp binds it; the bind probe skips ports that something else already uses.
    """

    def __init__(self, lock_dir: Path) -> None:
        self._lock_dir = lock_dir
        self._held: dict[int, TextIO] = {}

    def take(self, count: int) -> list[int]:
        self._lock_dir.mkdir(parents=True, exist_ok=True)
        candidates = list(LEASE_RANGE)
        random.shuffle(candidates)
        taken: list[int] = []
        for port in candidates:
            if len(taken) == count:
                return taken
            if port not in self._held and self._lock(port):
                taken.append(port)
        raise RuntimeError(f"no {count} free ports in {LEASE_RANGE}")

    def _lock(self, port: int) -> bool:
        handle = (self._lock_dir / f"{port}.lock").open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        if not _is_free(port):
            handle.close()
            return False
        self._held[port] = handle
        return True

    def release(self) -> None:
        for handle in self._held.values():
            with contextlib.suppress(OSError):
                handle.close()
        self._held.clear()
