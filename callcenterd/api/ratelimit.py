"""Per-client token buckets: 429 with Retry-After when a client goes over its limit."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from callcenterd.errors import RateLimited
from callcenterd.security import Principal
from callcenterd.settings import RateLimitSettings


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """`limit` requests per minute per key, refilled continuously. Pure, clock injected."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000
    ) -> None:
        self._clock = clock
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._max_keys = max_keys

    def take(self, scope: str, key: str, per_minute: int) -> int | None:
        """Spend one token; return None if allowed, else the seconds until one is back."""
        now = self._clock()
        rate = per_minute / 60.0
        bucket = self._buckets.get((scope, key))
        if bucket is None:
            if len(self._buckets) >= self._max_keys:
                self._prune(now)
            bucket = self._buckets[(scope, key)] = _Bucket(float(per_minute), now)
        else:
            bucket.tokens = min(float(per_minute), bucket.tokens + (now - bucket.updated) * rate)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return max(1, math.ceil((1.0 - bucket.tokens) / rate))

    def _prune(self, now: float) -> None:
        # Drop buckets idle for over a minute: they would be full again anyway.
        self._buckets = {k: b for k, b in self._buckets.items() if now - b.updated < 60.0}


def client_address(request: web.Request, trusted_proxies: frozenset[str]) -> str:
    """The client's address; behind a trusted proxy, the last hop it did not add itself."""
    remote = request.remote or "unknown"
    if remote not in trusted_proxies:
        return remote
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
    # Walk back from the proxy: the first address not itself a trusted proxy is the client
    # (anything further left was written by the client and proves nothing).
    for hop in reversed(hops):
        if hop not in trusted_proxies:
            return hop
    return remote


class RateLimits:
    def __init__(
        self,
        settings: RateLimitSettings,
        buckets: TokenBuckets | None = None,
        trusted_proxies: tuple[str, ...] = (),
    ) -> None:
        self._settings = settings
        self._buckets = buckets or TokenBuckets()
        self._trusted = frozenset(trusted_proxies)

    def _limit(self, rate: str) -> int:
        return {
            "auth": self._settings.auth_per_minute,
            "general": self._settings.general_per_minute,
            "dashboard": self._settings.dashboard_per_minute,
        }[rate]

    def check_client(self, rate: str, request: web.Request, user: Principal | None) -> None:
        """Before the body is read: per user when authenticated, else per client address."""
        if not self._settings.enabled:
            return
        key = f"user:{user.id}" if user else f"ip:{client_address(request, self._trusted)}"
        self._spend(rate, key)

    def check_subject(self, rate: str, subject: str) -> None:
        """Login attempts are limited per username too, whatever address they come from."""
        if self._settings.enabled:
            self._spend(rate, f"subject:{subject.casefold()}")

    def _spend(self, rate: str, key: str) -> None:
        retry_after = self._buckets.take(rate, key, self._limit(rate))
        if retry_after is not None:
            raise RateLimited(retry_after)


# The app's limits: built by create_app, read by every endpoint with a rate class.
RATE_LIMITS = web.AppKey("rate_limits", RateLimits)
