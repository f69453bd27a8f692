"""SMS: the notices kept up to date with the settings and queues, and the gateway test.

The gateway (notify/sms.py) is built from the daemon's `[sms]` settings; the notices
(notify/sms_notices.py) follow the stored SystemSettings (sms_notifications,
callback_enabled) and the live queues: `apply_settings` and `reload_queues` are called
at start and after every change. The test sends one SMS now, not through the outbox, and
says what happened the way the Asterisk connection test does.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence

import structlog

from callcenterd.contract.schemas import SystemSettings
from callcenterd.contract.sms import SmsTestRequest, SmsTestResult
from callcenterd.contract.validation import field_error
from callcenterd.domain.messages import DeliveryFailed, Transport
from callcenterd.domain.phone_numbers import to_e164
from callcenterd.domain.queues import QueueConfig
from callcenterd.notify import sms_templates as texts
from callcenterd.notify.sms import (
    GatewayNotAccepted,
    GatewayRefused,
    GatewayTimeout,
    GatewayUnreachable,
    SmsGateway,
)
from callcenterd.notify.sms_notices import SmsNotices, SmsRules

log = structlog.get_logger(__name__)

QueueConfigs = Callable[[], Awaitable[Sequence[QueueConfig]]]
CurrentSettings = Callable[[], Awaitable[SystemSettings]]
AUTH_STATUSES = frozenset({401, 403})

# code, title, possible causes, what to check
_NOT_CONFIGURED = (
    "SMS_001",
    "SMS gateway not configured",
    ["[sms] url is empty in the daemon's configuration"],
    [
        "Set [sms] url, method, encoding, body and the auth header in callcenterd.toml"
        " (the file has examples), or CALLCENTERD_SMS_URL in the environment",
        "Restart the daemon after changing the file",
    ],
)
_CAUSES: dict[str, tuple[str, str, list[str], list[str]]] = {
    "unreachable": (
        "SMS_002",
        "Gateway unreachable",
        [
            "Wrong host or port in [sms] url",
            "The gateway is down",
            "A firewall or proxy blocks the connection",
        ],
        [
            "Check [sms] url",
            "Try the URL from this server, e.g. with curl",
            "Check the firewall between this server and the gateway",
        ],
    ),
    "timeout": (
        "SMS_003",
        "Gateway timeout",
        ["The gateway is overloaded or slow", "A firewall drops the connection"],
        ["Raise [sms] timeout if the gateway is known to be slow", "Check the network path"],
    ),
    "http": (
        "SMS_004",
        "Gateway error",
        [
            "The request does not match what the provider expects (fields, encoding, URL)",
            "The provider rejects the number or the sender",
            "The provider has a problem (5xx) or limits the rate (429)",
        ],
        [
            "Compare [sms] body, encoding and method with the provider's API documentation",
            "Read the gateway's answer in this message",
        ],
    ),
    "auth": (
        "SMS_005",
        "Authentication refused",
        ["Wrong [sms] auth_value", "Wrong [sms] auth_header for this provider"],
        [
            'Check the token or credentials (e.g. "Bearer <token>" or "Basic <base64>")',
            "Check which header the provider reads",
        ],
    ),
    "not_accepted": (
        "SMS_006",
        "Answer not a success",
        [
            "The provider answered, but not with what [sms] says a success looks like",
            "The provider refused the message in its answer (balance, number, sender)",
        ],
        [
            "Compare success_status, success_json_field/value and success_body_contains"
            " with the provider's answer shown here",
        ],
    ),
}


def _kind_of(err: DeliveryFailed) -> str:
    if isinstance(err, GatewayTimeout):
        return "timeout"
    if isinstance(err, GatewayNotAccepted):
        return "not_accepted"
    if isinstance(err, GatewayRefused):
        return "auth" if err.status_code in AUTH_STATUSES else "http"
    if isinstance(err, GatewayUnreachable):
        return "unreachable"
    return "http"


class SmsService:
    def __init__(
        self,
        rules: SmsRules,
        notices: SmsNotices,
        gateway: SmsGateway | None,
        current_settings: CurrentSettings,
        queue_configs: QueueConfigs,
    ) -> None:
        self._rules = rules
        self.notices = notices  # the MessageSource for call events (wired to the recorder)
        self._gateway = gateway
        self._current_settings = current_settings
        self._queue_configs = queue_configs

    @property
    def transport(self) -> Transport | None:
        """The Transport for MessageKind.SMS, for the outbox worker (None: no [sms] url)."""
        return self._gateway

    # --- keeping the notices current --------------------------------------------------------
    async def load(self) -> None:
        await self.apply_settings(await self._current_settings())
        await self.reload_queues()

    async def apply_settings(self, settings: SystemSettings) -> None:
        self.notices.update(
            enabled=settings.sms_notifications, callbacks_enabled=settings.callback_enabled
        )

    async def reload_queues(self) -> None:
        self.notices.update(queues=await self._queue_configs())

    # --- the test -------------------------------------------------------------------------------
    async def test(self, body: SmsTestRequest) -> SmsTestResult:
        number = to_e164(body.to, self._rules.plan)
        if number is None:
            raise field_error(
                "body",
                "to",
                "not a number an SMS can go to: give a full number, e.g. +79161234567"
                " (extensions and anonymous ids never get one)",
            )
        text = body.text or texts.text("test", self._rules.language, self._rules.company)
        if self._gateway is None:
            return _failure(_NOT_CONFIGURED, "[sms] url is not set", {"to": number})
        details = {"gateway": self._gateway.host, "to": number}
        try:
            receipt = await self._gateway.deliver(number, text, f"sms:test:{uuid.uuid4()}")
        except DeliveryFailed as err:
            code, title, causes, troubleshooting = _CAUSES[_kind_of(err)]
            result = _failure((code, title, causes, troubleshooting), err.detail, details)
            result.data.update(status_code=err.status_code, retryable=err.retryable)
            return result
        log.info("sms_test_sent", status_code=receipt.status_code)
        return SmsTestResult(
            success=True,
            message=f"SMS accepted by the gateway ({receipt.answer})",
            data={"status_code": receipt.status_code, "answer": receipt.answer, **details},
        )


def _failure(
    cause: tuple[str, str, list[str], list[str]], detail: str, details: dict[str, str]
) -> SmsTestResult:
    code, title, causes, troubleshooting = cause
    return SmsTestResult(
        success=False,
        message=f"{title}: {detail}",
        data={
            "error": title,
            "code": code,
            "status_code": None,
            "retryable": False,
            "details": {**details, "possible_causes": causes},
            "troubleshooting": troubleshooting,
        },
    )
