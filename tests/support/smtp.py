"""A real SMTP server for tests: aiosmtpd with STARTTLS (self-signed cert) and AUTH.

``SmtpServer`` runs aiosmtpd's ``Controller`` (its own thread) on a fixed
port so it can be stopped and started again (an outage). It requires
STARTTLS before AUTH and AUTH before mail, records every accepted message as
an ``email.message.EmailMessage`` and refuses recipients listed in
``refused`` with ``550``. ``self_signed_cert`` makes the certificate with
``openssl`` (the ``cryptography`` package is not installed); clients trust it
through ``ca_file``.
"""

from __future__ import annotations

import email
import email.policy
import ssl
import subprocess
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from guardian.ports import free_port


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A certificate and key for 127.0.0.1/localhost, valid for a day."""
    cert, key = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
            "-keyout", str(key), "-out", str(cert), "-days", "1",
            "-subj", "/CN=localhost",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self._server = server

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self._server.refused:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self._server.messages.append(message)
        return "250 Message accepted"


class SmtpServer:
    """aiosmtpd with STARTTLS required and AUTH LOGIN/PLAIN checked against one user."""

    def __init__(
        self,
        cert_dir: Path,
        username: str = "guardian",
        password: str = "s3cret",  # noqa: S107 - a test password
    ) -> None:
        self.username = username
        self.password = password
        self.port = free_port()
        self.messages: list[EmailMessage] = []
        self.refused: set[str] = set()
        self.ca_file, key = self_signed_cert(cert_dir)
        self._tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._tls.load_cert_chain(self.ca_file, key)
        self._controller: Controller | None = None

    def to(self, address: str) -> list[EmailMessage]:
        """Messages addressed to one recipient."""
        return [m for m in self.messages if m["To"] == address]

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == self.username
            and auth_data.password.decode() == self.password
        )
        return AuthResult(success=ok, handled=False)

    def start(self) -> None:
        """Listen (again) on this server's port."""
        controller = Controller(
            _Handler(self),
            hostname="127.0.0.1",
            port=self.port,
            tls_context=self._tls,
            require_starttls=True,
            authenticator=self._authenticate,
            auth_required=True,
        )
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        """Stop listening (an outage); safe to call twice."""
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()
