"""Webhooks: which call events go to which receiver (a message source), the target policy
(no loopback, link-local or private hosts unless the config file allows them), the
signature, and the transport that POSTs a delivery.

A delivery is one outbox message (kind `webhook`, recipient the webhook's id, idempotency
key the delivery id). Its body is the event as the WebSocket carries it, without the bus's
`id`: `{"type", "timestamp", "data"}`. Headers:

    X-Callcenterd-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>
    X-Callcenterd-Delivery: <delivery id>   (the same on every resend of this delivery)
    X-Callcenterd-Event: <event type>

A 2xx answer is delivered; 408, 429, 5xx, a timeout or a refused connection are tried again;
any other answer fails the delivery at once (trying again cannot help).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from callcenterd.contract.notify import ALL_EVENTS
from callcenterd.domain.messages import (
    CallFacts,
    DeliveryFailed,
    DeliveryReceipt,
    MessageKind,
    OutgoingMessage,
    QueuedMessage,
)

SIGNATURE_HEADER = "X-Callcenterd-Signature"
DELIVERY_HEADER = "X-Callcenterd-Delivery"
EVENT_HEADER = "X-Callcenterd-Event"
# Delivery ids are derived from the webhook and the event, so the same fact written twice
# (a retried write, a restart) gives the same id and is enqueued once.
_DELIVERY_NAMESPACE = uuid.UUID("8d5c5f0e-4a51-4f0b-9c57-0b6f3f0c1e15")
RETRYABLE_STATUSES = frozenset({408, 429})
ANSWER_CHARS = 200  # of a receiver's answer kept in the error


# --- which events go where -------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class WebhookRule:
    id: str
    event_types: frozenset[str] | None  # None: every supported type ("*")
    active: bool

    def wants(self, event_type: str) -> bool:
        return self.active and (self.event_types is None or event_type in self.event_types)


def delivery_id(webhook_id: str, event: dict[str, Any]) -> str:
    canonical = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return str(uuid.uuid5(_DELIVERY_NAMESPACE, f"{webhook_id}\n{canonical}"))


def rule_of(webhook_id: str, event_types: str | Sequence[str], active: bool) -> WebhookRule:
    chosen = None if event_types == ALL_EVENTS else frozenset(event_types)
    return WebhookRule(webhook_id, chosen, active)


class WebhookSource:
    """The MessageSource of webhooks: one delivery per matching event per active webhook.

    Pure (no I/O, no clock): the rules are kept here, replaced whenever webhooks change."""

    def __init__(self, rules: Iterable[WebhookRule] = ()) -> None:
        self._rules: dict[str, WebhookRule] = {rule.id: rule for rule in rules}

    def put(self, rule: WebhookRule) -> None:
        self._rules[rule.id] = rule

    def remove(self, webhook_id: str) -> None:
        self._rules.pop(webhook_id, None)

    def replace(self, rules: Iterable[WebhookRule]) -> None:
        self._rules = {rule.id: rule for rule in rules}

    def __len__(self) -> int:
        return len(self._rules)

    def messages_for(
        self, event_type: str, event: dict[str, Any], call: CallFacts, at: datetime
    ) -> Sequence[OutgoingMessage]:
        return [
            OutgoingMessage(
                MessageKind.WEBHOOK,
                rule.id,
                delivery_id(rule.id, event),
                {"event": event},
                topic=event_type,
            )
            for rule in self._rules.values()
            if rule.wants(event_type)
        ]


# --- where a webhook may point ---------------------------------------------------------------
Network = IPv4Network | IPv6Network
Address = IPv4Address | IPv6Address


class TargetRefused(Exception):
    """The URL's host is not a place webhooks may go (or cannot be resolved)."""


@dataclass(frozen=True, slots=True)
class TargetPolicy:
    """Public addresses only, unless the config file says otherwise ([webhooks])."""

    allow_private: bool = False
    allow_networks: tuple[Network, ...] = ()

    def check_address(self, address: Address) -> None:
        if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if self.allow_private or any(address in network for network in self.allow_networks):
            return
        for what, flag in (
            ("loopback", address.is_loopback),
            ("link-local", address.is_link_local),
            ("unspecified", address.is_unspecified),
            ("multicast", address.is_multicast),
            ("private", address.is_private),
            ("reserved", address.is_reserved),
        ):
            if flag:
                raise TargetRefused(
                    f"resolves to a {what} address ({address}); allowed only with"
                    " [webhooks] allow_private_targets or allow_networks in the config file"
                )

    async def check_url(
        self, url: str, resolve: Callable[[str], Any] | None = None
    ) -> list[Address]:
        """Every address the URL's host resolves to, each allowed; else TargetRefused."""
        host = urlsplit(url).hostname or ""
        addresses = await (resolve or resolve_host)(host)
        if not addresses:
            raise TargetRefused(f"host {host!r} cannot be resolved")
        for address in addresses:
            self.check_address(address)
        return list(addresses)


async def resolve_host(host: str) -> list[Address]:
    try:
        return [ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        found = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as err:
        raise TargetRefused(f"host {host!r} cannot be resolved ({err})") from err
    return list(dict.fromkeys(ip_address(str(info[4][0]).split("%")[0]) for info in found))


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver behind the policy: the addresses checked are the ones connected to,
    so a name that changes its answer between the check and the connection gains nothing."""

    def __init__(self, policy: TargetPolicy) -> None:
        self._policy = policy
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        try:
            for entry in found:
                self._policy.check_address(ip_address(entry["host"]))
        except TargetRefused as err:
            raise OSError(str(err)) from err
        return found

    async def close(self) -> None:
        await self._inner.close()


# --- signing and sending ---------------------------------------------------------------------
def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes) -> bool:
    """What a receiver does (used by the tests): recompute and compare in constant time."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        expected = signature(secret, int(parts["t"]), body)
    except (KeyError, ValueError):
        return False
    return hmac.compare_digest(expected, header)


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    url: str
    secret: str
    active: bool


def body_of(message: QueuedMessage) -> bytes:
    event = message.content["event"]
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()


class WebhookTransport:
    kind = MessageKind.WEBHOOK

    def __init__(
        self,
        target_of: Callable[[str], WebhookTarget | None],
        policy: TargetPolicy,
        *,
        unix_time: Callable[[], float] = time.time,
    ) -> None:
        self._target_of = target_of
        self._policy = policy
        self._unix_time = unix_time
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Made on the first send, inside the running loop; its own connector and resolver.
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                resolver=GuardedResolver(self._policy), use_dns_cache=False
            )
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def send(self, message: QueuedMessage) -> DeliveryReceipt:
        target = self._target_of(message.recipient)
        if target is None or not target.active:
            raise DeliveryFailed("the webhook was deleted or switched off", retryable=False)
        try:
            await self._policy.check_url(target.url)
        except TargetRefused as err:
            raise DeliveryFailed(f"target refused: {err}", retryable=False) from err
        body = body_of(message)
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature(target.secret, int(self._unix_time()), body),
            DELIVERY_HEADER: message.idempotency_key,
            EVENT_HEADER: str(message.content["event"].get("type", "")),
        }
        try:
            async with self._client().post(
                target.url, data=body, headers=headers, allow_redirects=False
            ) as response:
                answer = (await response.text(errors="replace"))[:ANSWER_CHARS]
                status = response.status
        except (aiohttp.ClientError, OSError) as err:
            raise DeliveryFailed(f"{type(err).__name__}: {err}") from err
        if 200 <= status < 300:
            return DeliveryReceipt(answer or str(status), status)
        retryable = status in RETRYABLE_STATUSES or status >= 500
        raise DeliveryFailed(f"HTTP {status}: {answer}", retryable=retryable, status_code=status)
