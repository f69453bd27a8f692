"""Email over SMTP (aiosmtplib): the outbox's transport for MessageKind.EMAIL.

A message's content is {"subject", "text", "html" (optional)}; it is sent as
multipart/alternative (text first, HTML preferred by readers that show it) with a Message-ID
derived from the idempotency key, so a resend after a crash is the same message to the far
end. Every failure is a `SmtpFailed` (a `DeliveryFailed`) with a category the connection test
shows and a detail that never carries the password:

- retryable: connection refused or reset, timeouts, TLS failures (a certificate an admin is
  about to fix), 4xx replies (greylisting, a full mailbox, a busy server);
- final: 5xx replies (recipient or sender refused, message rejected), authentication failed,
  the server lacking STARTTLS or AUTH when the settings ask for them, email not configured.
"""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate
from enum import StrEnum
from typing import Any

import aiosmtplib

from callcenterd.contract.schemas import EmailConfig
from callcenterd.domain.messages import DeliveryFailed, DeliveryReceipt, MessageKind, QueuedMessage


class SmtpProblem(StrEnum):
    NOT_CONFIGURED = "not_configured"
    REFUSED = "connection_refused"
    TIMEOUT = "timeout"
    TLS = "tls_failed"
    AUTH = "auth_failed"
    RECIPIENT_REFUSED = "recipient_refused"
    SENDER_REFUSED = "sender_refused"
    REJECTED = "rejected"  # the message itself (DATA), or a reply we did not expect
    NOT_SUPPORTED = "not_supported"  # STARTTLS or AUTH asked for, not offered
    DISCONNECTED = "disconnected"


class SmtpFailed(DeliveryFailed):
    def __init__(
        self,
        problem: SmtpProblem,
        detail: str,
        *,
        retryable: bool,
        status_code: int | None = None,
    ) -> None:
        super().__init__(detail, retryable=retryable, status_code=status_code)
        self.problem = problem


@dataclass(frozen=True, slots=True)
class EmailContent:
    subject: str
    text: str
    html: str | None = None

    def as_content(self) -> dict[str, Any]:
        content: dict[str, Any] = {"subject": self.subject, "text": self.text}
        if self.html is not None:
            content["html"] = self.html
        return content


def message_id(idempotency_key: str, from_address: str) -> str:
    """The same key, the same Message-ID (its domain is the sender's)."""
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
    domain = from_address.rsplit("@", 1)[-1] or "callcenterd.invalid"
    return f"<{digest}.callcenterd@{domain}>"


def build_message(
    config: EmailConfig, to: str, content: EmailContent, idempotency_key: str
) -> EmailMessage:
    assert config.from_address is not None
    message = EmailMessage()
    message["From"] = config.from_address
    message["To"] = _address(to)
    message["Subject"] = content.subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = message_id(idempotency_key, config.from_address)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to us
    message.set_content(content.text)
    if content.html is not None:
        message.add_alternative(content.html, subtype="html")
    return message


def _address(to: str) -> Address:
    """One address, as it is: never a list or a display name parsed out of it."""
    try:
        return Address(addr_spec=to)
    except (ValueError, IndexError, HeaderParseError):
        raise SmtpFailed(
            SmtpProblem.RECIPIENT_REFUSED, f"{to!r} is not one email address", retryable=False
        ) from None


def content_of(message: QueuedMessage) -> EmailContent:
    content = message.content
    subject, text, html = content.get("subject"), content.get("text"), content.get("html")
    if not isinstance(subject, str) or not isinstance(text, str):
        raise SmtpFailed(
            SmtpProblem.REJECTED, "email content needs a subject and a text", retryable=False
        )
    return EmailContent(subject, text, html if isinstance(html, str) else None)


ConfigSource = Callable[[], EmailConfig]


class SmtpTransport:
    """Sends with the SMTP settings of the moment (`config()` is read at each send, so a
    saved change applies to the next message). `tls_context`: trust other than the system's
    (tests use their self-signed certificate)."""

    kind = MessageKind.EMAIL

    def __init__(self, config: ConfigSource, *, tls_context: ssl.SSLContext | None = None) -> None:
        self._config = config
        self._tls_context = tls_context

    async def send(self, message: QueuedMessage) -> DeliveryReceipt:
        return await self.deliver(
            self._config(), message.recipient, content_of(message), message.idempotency_key
        )

    async def deliver(
        self, config: EmailConfig, to: str, content: EmailContent, idempotency_key: str
    ) -> DeliveryReceipt:
        """One message, now, over one SMTP session."""
        if not config.configured:
            raise SmtpFailed(
                SmtpProblem.NOT_CONFIGURED,
                "email is not configured (SMTP host and from address)",
                retryable=False,
            )
        email = build_message(config, to, content, idempotency_key)
        where = f"{config.host}:{config.port}"
        try:
            # The envelope is exactly this one recipient, whatever the headers hold.
            _refused_some, answer = await aiosmtplib.send(
                email,
                sender=config.from_address,
                recipients=[to],
                **self._session_options(config),
            )
        except aiosmtplib.SMTPException as err:
            raise failure(err, where, config) from None
        except ssl.SSLError as err:
            raise SmtpFailed(
                SmtpProblem.TLS, f"TLS with {where} failed: {_tls_reason(err)}", retryable=True
            ) from None
        except OSError as err:
            raise SmtpFailed(
                SmtpProblem.DISCONNECTED, f"connection to {where} failed: {err}", retryable=True
            ) from None
        return DeliveryReceipt(answer=answer.strip() or "accepted")

    def _session_options(self, config: EmailConfig) -> dict[str, Any]:
        options: dict[str, Any] = {
            "hostname": config.host,
            "port": config.port,
            "timeout": float(config.timeout),
            "use_tls": config.security == "tls",
            "start_tls": config.security == "starttls",
            "validate_certs": config.verify_certificate,
        }
        if config.security != "none":
            options["tls_context"] = self._context_for(config)
        if config.username:
            options["username"] = config.username
            options["password"] = config.password
        return options

    def _context_for(self, config: EmailConfig) -> ssl.SSLContext:
        if not config.verify_certificate:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return context
        return self._tls_context or ssl.create_default_context()


def _tls_reason(err: BaseException) -> str:
    reason = getattr(err, "verify_message", None) or getattr(err, "reason", None) or str(err)
    return str(reason)


def _ssl_cause(err: BaseException) -> ssl.SSLError | None:
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _reply(code: int, message: str) -> str:
    return f"{code} {' '.join(message.split())}"


def failure(err: aiosmtplib.SMTPException, where: str, config: EmailConfig) -> SmtpFailed:
    """aiosmtplib's exception as a delivery failure: what happened, retryable or not."""
    tls = _ssl_cause(err)
    if tls is not None:
        return SmtpFailed(
            SmtpProblem.TLS, f"TLS with {where} failed: {_tls_reason(tls)}", retryable=True
        )
    if isinstance(err, aiosmtplib.SMTPConnectTimeoutError):
        return SmtpFailed(SmtpProblem.TIMEOUT, f"timed out connecting to {where}", retryable=True)
    if isinstance(err, aiosmtplib.SMTPTimeoutError):
        return SmtpFailed(
            SmtpProblem.TIMEOUT, f"{where} did not answer in {config.timeout} s", retryable=True
        )
    if isinstance(err, aiosmtplib.SMTPRecipientsRefused):
        refused = err.recipients[0] if err.recipients else None
        if refused is None:
            return SmtpFailed(SmtpProblem.RECIPIENT_REFUSED, "recipient refused", retryable=False)
        return _refused(refused, SmtpProblem.RECIPIENT_REFUSED, f"recipient {refused.recipient}")
    if isinstance(err, aiosmtplib.SMTPRecipientRefused):
        return _refused(err, SmtpProblem.RECIPIENT_REFUSED, f"recipient {err.recipient}")
    if isinstance(err, aiosmtplib.SMTPSenderRefused):
        return _refused(err, SmtpProblem.SENDER_REFUSED, f"sender {err.sender}")
    if isinstance(err, aiosmtplib.SMTPAuthenticationError):
        return SmtpFailed(
            SmtpProblem.AUTH,
            f"authentication as {config.username!r} failed: {_reply(err.code, err.message)}",
            retryable=err.code < 500,  # 454: temporary authentication failure
            status_code=err.code,
        )
    if isinstance(err, aiosmtplib.SMTPResponseException):
        return _refused(err, SmtpProblem.REJECTED, "the message")
    if isinstance(err, aiosmtplib.SMTPConnectError):
        return SmtpFailed(
            SmtpProblem.REFUSED, f"cannot connect to {where}: {_cause_text(err)}", retryable=True
        )
    if isinstance(err, aiosmtplib.SMTPServerDisconnected):
        return SmtpFailed(
            SmtpProblem.DISCONNECTED, f"{where} closed the connection: {err}", retryable=True
        )
    if isinstance(err, aiosmtplib.SMTPNotSupported) or "not supported" in str(err):
        return SmtpFailed(SmtpProblem.NOT_SUPPORTED, f"{where}: {err}", retryable=False)
    return SmtpFailed(SmtpProblem.REJECTED, f"{where}: {err}", retryable=False)


def _cause_text(err: BaseException) -> str:
    cause = err.__cause__
    if isinstance(cause, ConnectionRefusedError):
        return "connection refused"
    return str(cause) if cause is not None else str(err)


def _refused(err: aiosmtplib.SMTPResponseException, problem: SmtpProblem, what: str) -> SmtpFailed:
    temporary = 400 <= err.code < 500
    return SmtpFailed(
        problem,
        f"{what} {'deferred' if temporary else 'refused'}: {_reply(err.code, err.message)}",
        retryable=temporary,
        status_code=err.code,
    )
