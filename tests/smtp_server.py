"""A real SMTP server on 127.0.0.1 (aiosmtpd, in its own thread) that keeps what it receives.

It speaks AUTH LOGIN/PLAIN (checked against one account), STARTTLS or implicit TLS with a
self-signed certificate made here with `cryptography`, and refuses chosen recipients with a
chosen reply (450 to defer, 550 to refuse).
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import free_port


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client context trusting this certificate (and nothing else)."""
        context = ssl.create_default_context(cafile=str(self.cert))
        return context


def self_signed(folder: Path) -> Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Certificate(cert_path, key_path)


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    tls: bool
    login: str | None

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def part(self, subtype: str) -> str:
        found = self.message.get_body(preferencelist=(subtype,))
        assert found is not None and found.get_content_subtype() == subtype, subtype
        return str(found.get_content())  # type: ignore[attr-defined]

    @property
    def text(self) -> str:
        return self.part("plain")

    @property
    def html(self) -> str:
        return self.part("html")


@dataclass
class Mailbox:
    """The handler: keeps accepted messages, refuses the addresses in `refuse`."""

    refuse: dict[str, str] = field(default_factory=dict)  # address -> reply ("550 ...")
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        login = session.auth_data.login.decode() if session.auth_data else None
        tls = server.transport.get_extra_info("ssl_object") is not None
        with self.lock:
            self.received.append(
                Received(
                    str(envelope.mail_from),
                    list(envelope.rcpt_tos),
                    message,
                    tls,
                    login,
                )
            )
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[Received]:
        with self.lock:
            return [item for item in self.received if address in item.rcpt_tos]


@dataclass
class SmtpServer:
    host: str
    port: int
    mailbox: Mailbox


class _Accounts:
    def __init__(self, username: str, password: str) -> None:
        self.username, self.password = username, password

    def __call__(
        self, server: Any, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if mechanism not in ("LOGIN", "PLAIN") or not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        ok = data.login.decode() == self.username and data.password.decode() == self.password
        # handled=False: the server answers 535 itself.
        return AuthResult(success=ok, handled=False, auth_data=data if ok else None)


@contextmanager
def smtp_server(
    *,
    security: str = "none",
    certificate: Certificate | None = None,
    username: str | None = None,
    password: str | None = None,
    mailbox: Mailbox | None = None,
) -> Iterator[SmtpServer]:
    """security: none (plain), starttls (offered and required), tls (implicit)."""
    box = mailbox or Mailbox()
    port = free_port()
    options: dict[str, Any] = {"hostname": "127.0.0.1", "port": port}
    if username is not None:
        assert password is not None
        options["authenticator"] = _Accounts(username, password)
        options["auth_require_tls"] = security != "none"
    if security == "starttls":
        assert certificate is not None
        options["tls_context"] = certificate.server_context()
        options["require_starttls"] = True
    elif security == "tls":
        assert certificate is not None
        options["ssl_context"] = certificate.server_context()
    controller = Controller(box, **options)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, box)
    finally:
        controller.stop()
