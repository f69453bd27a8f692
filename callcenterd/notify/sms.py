"""The HTTP SMS gateway: one configurable request per message, for any provider's REST API.

What is sent is the `[sms]` section of the settings: a URL and method, one auth header, a
body template whose string values may hold `{to}`, `{to_digits}`, `{text}`, `{sender}`,
`{id}` (the message's idempotency key, also sent as the `Idempotency-Key` header) and
`{auth}` (the auth value, for providers that take their key as a field), encoded
as JSON or as form fields (GET: the query string). Values are filled in, never spliced into
text, so JSON and form escaping is the encoder's.

Which answers mean success is configured too (status codes, a JSON field's value, a body
substring). Failures are `DeliveryFailed`: 5xx, 408, 429, timeouts and connection failures
may succeed later (retryable); any other answer will not. No detail names the auth value.
"""

from __future__ import annotations

import json
import os
import re
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import structlog

from callcenterd.domain.messages import (
    DeliveryFailed,
    DeliveryReceipt,
    MessageKind,
    QueuedMessage,
)
from callcenterd.domain.phone_numbers import digits_of
from callcenterd.settings import SmsSettings

log = structlog.get_logger(__name__)

IDEMPOTENCY_HEADER = "Idempotency-Key"
RETRYABLE_STATUS = frozenset({408, 429})
ANSWER_SNIPPET = 200  # characters of the gateway's answer kept in a receipt or an error
MASK = "***"
_PLACEHOLDER = re.compile(r"\{[a-z_]+\}")
SECRET_PART_MIN = 6  # parts of the auth value this long are masked too ("Bearer <token>")


class GatewayTimeout(DeliveryFailed):
    """The gateway did not answer in time."""


class GatewayUnreachable(DeliveryFailed):
    """No connection: refused, unresolvable host, network down, TLS failure."""


class GatewayRefused(DeliveryFailed):
    """The gateway answered with a status that is not a success."""


class GatewayNotAccepted(DeliveryFailed):
    """The gateway answered 2xx, but the answer did not say the SMS was accepted."""


@dataclass(frozen=True, slots=True)
class GatewayRequest:
    """One request to the gateway, as it will go on the wire."""

    method: str
    url: str
    headers: dict[str, str]
    json_body: dict[str, Any] | None = None
    form: dict[str, str] | None = None
    query: dict[str, str] | None = None


def fill(template: Any, values: dict[str, str]) -> Any:
    """The template with each placeholder in its string values replaced (keys untouched)."""
    if isinstance(template, str):
        # One pass: a text holding "{to}" is sent as written, never filled in again.
        return _PLACEHOLDER.sub(lambda found: values.get(found[0], found[0]), template)
    if isinstance(template, dict):
        return {key: fill(item, values) for key, item in template.items()}
    if isinstance(template, list):
        return [fill(item, values) for item in template]
    return template


def _form_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def build_request(settings: SmsSettings, to: str, text: str, key: str) -> GatewayRequest:
    """The request sending `text` to `to` (E.164) under the idempotency key `key`."""
    secret = settings.auth_value.get_secret_value()
    values = {
        "{to_digits}": digits_of(to),
        "{to}": to,
        "{text}": text,
        "{sender}": settings.sender,
        "{id}": key,
        "{auth}": secret,  # for providers taking the key as a field, not a header
    }
    body = fill(settings.body, values)
    headers = {IDEMPOTENCY_HEADER: key}
    if settings.auth_header and secret:
        headers[settings.auth_header] = secret
    if settings.method == "GET":
        query = {name: _form_value(value) for name, value in body.items()}
        return GatewayRequest("GET", settings.url, headers, query=query)
    if settings.encoding == "form":
        form = {name: _form_value(value) for name, value in body.items()}
        return GatewayRequest("POST", settings.url, headers, form=form)
    return GatewayRequest("POST", settings.url, headers, json_body=body)


def _field(document: Any, path: str) -> Any:
    """A dotted path into a JSON answer (`result.status`, `messages.0.status`)."""
    node = document
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise KeyError(path)
    return node


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def judge(settings: SmsSettings, status: int, body: str) -> str | None:
    """None when the answer means success, else why not (the success rules)."""
    if settings.success_status:
        if status not in settings.success_status:
            expected = ", ".join(str(code) for code in settings.success_status)
            return f"the gateway answered HTTP {status} (success is {expected})"
    elif not 200 <= status < 300:
        return f"the gateway answered HTTP {status}"
    if settings.success_json_field:
        path = settings.success_json_field
        try:
            value = _field(json.loads(body), path)
        except (ValueError, KeyError):
            return f"the gateway's answer has no JSON field {path!r}"
        if settings.success_json_value and _as_text(value) != settings.success_json_value:
            return (
                f"the gateway's answer has {path} = {_as_text(value)!r}"
                f" (success is {settings.success_json_value!r})"
            )
    if settings.success_body_contains and settings.success_body_contains not in body:
        return f"the gateway's answer does not contain {settings.success_body_contains!r}"
    return None


def retryable_status(status: int) -> bool:
    return status >= 500 or status in RETRYABLE_STATUS


class SmsGateway:
    """The Transport for MessageKind.SMS. `session` is the daemon's shared client session."""

    kind = MessageKind.SMS

    def __init__(self, session: aiohttp.ClientSession, settings: SmsSettings) -> None:
        self._session = session
        self._settings = settings
        self._host = urlsplit(settings.url).hostname or ""

    @property
    def host(self) -> str:
        return self._host

    async def send(self, message: QueuedMessage) -> DeliveryReceipt:
        text = message.content.get("text")
        if not isinstance(text, str) or not text:
            raise DeliveryFailed("the message has no text", retryable=False)
        return await self.deliver(message.recipient, text, message.idempotency_key)

    async def deliver(self, to: str, text: str, key: str) -> DeliveryReceipt:
        """Send one SMS now; DeliveryFailed on any failure (no secret in its detail)."""
        request = build_request(self._settings, to, text, key)
        try:
            status, reason, body = await self._exchange(request)
        except TimeoutError as err:
            detail = f"no answer from {self._host} within {self._settings.timeout:g} s"
            raise self._failed(GatewayTimeout, detail, True) from err
        except aiohttp.ClientConnectorError as err:
            detail = f"cannot connect to {self._host}: {_connect_cause(err.os_error)}"
            raise self._failed(GatewayUnreachable, detail, True) from err
        except aiohttp.ClientError as err:
            detail = f"the request to {self._host} failed: {err}"
            raise self._failed(GatewayUnreachable, detail, True) from err
        problem = judge(self._settings, status, body)
        snippet = _snippet(body)
        if problem is not None:
            detail = f"{problem}: {snippet}" if snippet else problem
            if 200 <= status < 300:
                raise self._failed(GatewayNotAccepted, detail, False, status)
            raise self._failed(GatewayRefused, detail, retryable_status(status), status)
        log.info("sms_sent", key=key, status_code=status)
        answer = f"HTTP {status} {reason}".strip()
        return DeliveryReceipt(f"{answer}: {snippet}" if snippet else answer, status)

    async def _exchange(self, request: GatewayRequest) -> tuple[int, str, str]:
        timeout = aiohttp.ClientTimeout(total=self._settings.timeout)
        headers = request.headers
        data: dict[str, str] | bytes | None = request.form
        if request.json_body is not None:
            # UTF-8 as it is, not \u escapes: what providers' own examples send.
            headers = {**headers, "Content-Type": "application/json; charset=utf-8"}
            data = json.dumps(request.json_body, ensure_ascii=False).encode()
        async with self._session.request(
            request.method,
            request.url,
            headers=headers,
            data=data,
            params=request.query,
            timeout=timeout,
            allow_redirects=False,  # a redirect would turn the POST into a GET elsewhere
        ) as response:
            body = await response.text(errors="replace")
            return response.status, response.reason or "", body

    def _failed(
        self,
        kind: type[DeliveryFailed],
        detail: str,
        retryable: bool,
        status: int | None = None,
    ) -> DeliveryFailed:
        detail = self._scrub(detail)
        log.warning("sms_failed", detail=detail, retryable=retryable, status_code=status)
        return kind(detail, retryable=retryable, status_code=status)

    def _scrub(self, text: str) -> str:
        """Whatever the gateway echoed, the auth value never leaves in a detail."""
        secret = self._settings.auth_value.get_secret_value()
        if not secret:
            return text
        for part in sorted({secret, *secret.split()}, key=len, reverse=True):
            if part == secret or len(part) >= SECRET_PART_MIN:
                text = text.replace(part, MASK)
        return text


def _connect_cause(error: OSError) -> str:
    if isinstance(error, ConnectionRefusedError):
        return "connection refused (nothing listens on that port)"
    if isinstance(error, socket.gaierror):
        return "the host name does not resolve"
    if error.errno and error.errno > 0:
        return os.strerror(error.errno).lower()
    return str(error) or type(error).__name__


def _snippet(body: str) -> str:
    text = " ".join(body.split())
    return text if len(text) <= ANSWER_SNIPPET else text[: ANSWER_SNIPPET - 1] + "…"
