"""The SMTP transport against a real aiosmtpd server on 127.0.0.1: delivery (plain, STARTTLS,
implicit TLS, with AUTH LOGIN/PLAIN), the message's shape, and every failure mapped."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from callcenterd.contract.schemas import EmailConfig
from callcenterd.domain.messages import DeliveryFailed, MessageKind, QueuedMessage
from callcenterd.notify.email import SmtpFailed, SmtpProblem, SmtpTransport, message_id
from tests.conftest import free_port
from tests.smtp_server import Certificate, Mailbox, SmtpServer, self_signed, smtp_server

SECRET = "s3cret-Pass"
CONTENT = {"subject": "Пропущенный звонок", "text": "Текст письма", "html": "<p>HTML</p>"}


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return self_signed(tmp_path_factory.mktemp("tls"))


def config(server: SmtpServer | None = None, **changes: Any) -> EmailConfig:
    data: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": server.port if server else free_port(),
        "security": "none",
        "from_address": "callcenter@example.com",
        "timeout": 2,
    }
    return EmailConfig.model_validate({**data, **changes})


def queued(
    to: str = "boss@example.com", key: str = "email:test:1", **content: Any
) -> QueuedMessage:
    return QueuedMessage(
        id=1,
        kind=MessageKind.EMAIL,
        recipient=to,
        idempotency_key=key,
        content={**CONTENT, **content},
        topic="test",
        attempts=0,
        created_at=datetime(2026, 12, 7, 10, tzinfo=UTC),
    )


def transport(settings: EmailConfig, certificate: Certificate | None = None) -> SmtpTransport:
    return SmtpTransport(
        lambda: settings, tls_context=certificate.client_context() if certificate else None
    )


@pytest.fixture
def plain() -> Iterator[SmtpServer]:
    with smtp_server(username="mailer", password=SECRET) as server:
        yield server


# --- delivered ---------------------------------------------------------------------------------
async def test_a_plain_session_with_login_delivers_multipart_alternative(
    plain: SmtpServer,
) -> None:
    settings = config(plain, username="mailer", password=SECRET)
    receipt = await transport(settings).send(queued())
    assert receipt.answer.startswith("Message accepted")
    [got] = plain.mailbox.to("boss@example.com")
    assert got.login == "mailer" and got.tls is False
    assert got.mail_from == "callcenter@example.com"
    assert got.message.get_content_type() == "multipart/alternative"
    assert got.subject == "Пропущенный звонок"
    assert got.text.strip() == "Текст письма"
    assert got.html.strip() == "<p>HTML</p>"
    assert got.message["Message-ID"] == message_id("email:test:1", "callcenter@example.com")
    assert got.message["Auto-Submitted"] == "auto-generated"


async def test_a_resend_carries_the_same_message_id(plain: SmtpServer) -> None:
    sender = transport(config(plain, username="mailer", password=SECRET))
    await sender.send(queued(key="k-1"))
    await sender.send(queued(key="k-1"))
    await sender.send(queued(key="k-2"))
    ids = [item.message["Message-ID"] for item in plain.mailbox.received]
    assert ids[0] == ids[1] != ids[2]


async def test_text_only_content_is_a_single_plain_part(plain: SmtpServer) -> None:
    message = queued()
    message.content.pop("html")
    await transport(config(plain, username="mailer", password=SECRET)).send(message)
    [got] = plain.mailbox.received
    assert got.message.get_content_type() == "text/plain"


async def test_starttls_with_login(certificate: Certificate) -> None:
    with smtp_server(
        security="starttls", certificate=certificate, username="mailer", password=SECRET
    ) as server:
        settings = config(server, security="starttls", username="mailer", password=SECRET)
        await transport(settings, certificate).send(queued())
        [got] = server.mailbox.received
        assert got.tls is True and got.login == "mailer"


async def test_implicit_tls(certificate: Certificate) -> None:
    with smtp_server(security="tls", certificate=certificate) as server:
        await transport(config(server, security="tls"), certificate).send(queued())
        [got] = server.mailbox.received
        assert got.tls is True and got.login is None


async def test_an_unverified_private_relay_when_asked(certificate: Certificate) -> None:
    with smtp_server(security="starttls", certificate=certificate) as server:
        settings = config(server, security="starttls", verify_certificate=False)
        await transport(settings).send(queued())  # no trust given: verification is off
        assert len(server.mailbox.received) == 1


# --- failures ----------------------------------------------------------------------------------
async def failed(sender: SmtpTransport, message: QueuedMessage | None = None) -> SmtpFailed:
    with pytest.raises(DeliveryFailed) as caught:
        await sender.send(message or queued())
    assert isinstance(caught.value, SmtpFailed)
    assert SECRET not in caught.value.detail
    return caught.value


async def test_connection_refused_is_retryable() -> None:
    err = await failed(transport(config(port=free_port())))
    assert (err.problem, err.retryable) == (SmtpProblem.REFUSED, True)
    assert "connection refused" in err.detail


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """Accepts connections and never says a word (no SMTP greeting)."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


async def test_a_silent_server_is_a_retryable_timeout(silent_port: int) -> None:
    err = await failed(transport(config(port=silent_port, timeout=1)))
    assert (err.problem, err.retryable) == (SmtpProblem.TIMEOUT, True)


async def test_a_wrong_password_fails_finally(plain: SmtpServer) -> None:
    err = await failed(transport(config(plain, username="mailer", password=SECRET + "x")))
    assert (err.problem, err.retryable, err.status_code) == (SmtpProblem.AUTH, False, 535)
    assert "mailer" in err.detail


async def test_a_refused_recipient_fails_finally(plain: SmtpServer) -> None:
    plain.mailbox.refuse["nobody@example.com"] = "550 5.1.1 No such user"
    err = await failed(
        transport(config(plain, username="mailer", password=SECRET)), queued("nobody@example.com")
    )
    assert (err.problem, err.retryable, err.status_code) == (
        SmtpProblem.RECIPIENT_REFUSED,
        False,
        550,
    )
    assert "nobody@example.com" in err.detail and "No such user" in err.detail


async def test_a_deferred_recipient_is_retryable(plain: SmtpServer) -> None:
    plain.mailbox.refuse["busy@example.com"] = "450 4.2.1 Mailbox busy, try later"
    err = await failed(
        transport(config(plain, username="mailer", password=SECRET)), queued("busy@example.com")
    )
    assert (err.problem, err.retryable, err.status_code) == (
        SmtpProblem.RECIPIENT_REFUSED,
        True,
        450,
    )


async def test_an_untrusted_certificate_is_a_tls_failure(certificate: Certificate) -> None:
    with smtp_server(security="starttls", certificate=certificate) as server:
        err = await failed(transport(config(server, security="starttls")))  # system trust only
    assert err.problem is SmtpProblem.TLS and err.retryable
    assert "certificate" in err.detail


async def test_tls_against_a_plain_server_is_a_tls_failure(plain: SmtpServer) -> None:
    err = await failed(transport(config(plain, security="tls")))
    assert err.problem in (SmtpProblem.TLS, SmtpProblem.TIMEOUT, SmtpProblem.DISCONNECTED)
    assert err.retryable


async def test_starttls_asked_of_a_server_without_it(plain: SmtpServer) -> None:
    err = await failed(transport(config(plain, security="starttls")))
    assert (err.problem, err.retryable) == (SmtpProblem.NOT_SUPPORTED, False)


async def test_not_configured_fails_finally_without_connecting() -> None:
    err = await failed(transport(config(host="")))
    assert (err.problem, err.retryable) == (SmtpProblem.NOT_CONFIGURED, False)


async def test_content_without_a_subject_fails_finally(plain: SmtpServer) -> None:
    message = queued()
    message.content.pop("subject")
    err = await failed(transport(config(plain, username="mailer", password=SECRET)), message)
    assert (err.problem, err.retryable) == (SmtpProblem.REJECTED, False)
    assert plain.mailbox.received == []


def test_the_mailbox_helper_is_per_test() -> None:
    assert Mailbox().received == []


def test_certificates_are_written(tmp_path: Path) -> None:
    made = self_signed(tmp_path)
    assert made.cert.read_text().startswith("-----BEGIN CERTIFICATE-----")


async def test_an_address_list_is_not_one_recipient(plain: SmtpServer) -> None:
    sender = transport(config(plain, username="mailer", password=SECRET))
    for to in ("a,boss@example.com", "x<boss@example.com>@example.com"):
        err = await failed(sender, queued(to))
        assert (err.problem, err.retryable) == (SmtpProblem.RECIPIENT_REFUSED, False)
    assert plain.mailbox.received == []
