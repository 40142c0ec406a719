"""The kit's mail sender against real SMTP servers: settings, multipart messages,
connection reuse, and failures told apart as temporary or permanent in the server's words."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from pydantic import ValidationError

from rcm_kit.mail import MailSender, SendError, SmtpSettings, compose
from tests.conftest import free_port
from tests.contract_registry.delivery_support import MailCatcher


@pytest.fixture
def smtp() -> Iterator[MailCatcher]:
    catcher = MailCatcher().start()
    yield catcher
    catcher.stop()


def settings(port: int, **values: Any) -> SmtpSettings:
    return SmtpSettings(SMTP_HOST="127.0.0.1", SMTP_PORT=port, **values)


def message(smtp: SmtpSettings, n: int = 0, to: list[str] | None = None) -> Any:
    return compose(
        smtp,
        to=to or ["a@clinic.example", "b@clinic.example"],
        subject=f"Contracts expiring within 30 days #{n}",
        text="plain body",
        html="<p>html body</p>",
        message_id=f"<m{n}@rcm.localhost>",
        date=datetime(2026, 3, 10, 15, 0, tzinfo=UTC),
    )


def test_smtp_settings_defaults_and_validation() -> None:
    defaults = SmtpSettings()
    assert (defaults.SMTP_HOST, defaults.SMTP_PORT, defaults.SMTP_TLS) == (
        "127.0.0.1",
        1025,
        "none",
    )
    assert defaults.from_address == "alerts@rcm.localhost"
    assert defaults.SMTP_TIMEOUT_SECONDS == 10
    assert SmtpSettings(SMTP_TLS="STARTTLS").SMTP_TLS == "starttls"
    with pytest.raises(ValidationError, match="SMTP_TLS"):
        SmtpSettings(SMTP_TLS="ssl")
    with pytest.raises(ValidationError, match="must be an e-mail address"):
        SmtpSettings(SMTP_FROM="RCM Alerts")
    with pytest.raises(ValidationError, match="set both or neither"):
        SmtpSettings(SMTP_USERNAME="relay-user")
    with_login = SmtpSettings(SMTP_USERNAME="relay-user", SMTP_PASSWORD="s3cret")
    assert "s3cret" not in repr(with_login)


async def test_a_message_is_multipart_alternative_with_its_headers(smtp: MailCatcher) -> None:
    config = settings(smtp.port, SMTP_FROM="Billing Ops <ops@clinic.example>")
    sender = MailSender(config)
    await sender.send(message(config))
    await sender.close()

    [mail] = smtp.messages
    assert mail.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in mail.iter_parts()] == ["text/plain", "text/html"]
    assert mail["From"] == "Billing Ops <ops@clinic.example>"
    assert mail["To"] == "a@clinic.example, b@clinic.example"
    assert mail["Message-ID"] == "<m0@rcm.localhost>"
    assert mail["Date"] == "Tue, 10 Mar 2026 15:00:00 +0000"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert smtp.envelopes == [("ops@clinic.example", ["a@clinic.example", "b@clinic.example"])]


async def test_a_batch_reuses_connections_and_close_ends_them(smtp: MailCatcher) -> None:
    config = settings(smtp.port)
    sender = MailSender(config, max_connections=3)

    await asyncio.gather(*(sender.send(message(config, n)) for n in range(30)))
    await sender.close()

    assert len(smtp.messages) == 30
    assert len(set(smtp.peers)) <= 3


async def test_without_reuse_each_mail_has_its_own_connection(smtp: MailCatcher) -> None:
    config = settings(smtp.port)
    sender = MailSender(config, reuse=False)
    for n in range(3):
        await sender.send(message(config, n))
    assert len(set(smtp.peers)) == 3


async def test_a_4xx_reply_is_temporary_with_the_server_s_words(smtp: MailCatcher) -> None:
    smtp.data_reply = "451 4.3.0 Try again later"
    config = settings(smtp.port)
    with pytest.raises(SendError) as caught:
        await MailSender(config).send(message(config))
    assert caught.value.temporary
    assert caught.value.code == 451
    assert str(caught.value) == "Temporary SMTP failure: 451 4.3.0 Try again later"


async def test_a_5xx_reply_is_permanent(smtp: MailCatcher) -> None:
    smtp.data_reply = "554 5.7.1 Message rejected as spam"
    config = settings(smtp.port)
    with pytest.raises(SendError) as caught:
        await MailSender(config).send(message(config))
    assert (caught.value.kind, caught.value.code) == ("permanent", 554)
    assert str(caught.value) == "Permanent SMTP failure: 554 5.7.1 Message rejected as spam"


async def test_a_refused_connection_is_temporary() -> None:
    port = free_port()
    config = settings(port)
    with pytest.raises(SendError) as caught:
        await MailSender(config).send(message(config))
    assert caught.value.temporary
    assert str(caught.value).startswith(
        f"Temporary SMTP failure: cannot connect to 127.0.0.1:{port}: "
    )


async def test_a_silent_server_times_out_as_temporary() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # never greets
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    config = settings(port, SMTP_TIMEOUT_SECONDS=0.3)
    try:
        with pytest.raises(SendError) as caught:
            await MailSender(config).send(message(config))
    finally:
        server.close()
        await server.wait_closed()
    assert caught.value.temporary
    assert (
        str(caught.value) == f"Temporary SMTP failure: no answer from 127.0.0.1:{port} within 0.3 s"
    )


async def test_every_recipient_refused_is_permanent_and_some_refused_is_a_note(
    smtp: MailCatcher,
) -> None:
    smtp.refuse = {"a@clinic.example", "b@clinic.example"}
    config = settings(smtp.port)
    with pytest.raises(SendError) as caught:
        await MailSender(config).send(message(config))
    assert not caught.value.temporary
    assert str(caught.value).startswith("Permanent SMTP failure: every recipient was refused: 550")

    smtp.refuse = {"b@clinic.example"}
    result = await MailSender(config).send(message(config))
    assert list(result.refused) == ["b@clinic.example"]
    assert result.refused_note(2) == (
        "Delivered, but the server refused 1 of 2 recipients: 550 5.1.1 <b@clinic.example>: "
        "Recipient address rejected: User unknown (b@clinic.example)"
    )


@pytest.fixture
def auth_server() -> Iterator[int]:
    def refuse(*_: Any) -> AuthResult:
        return AuthResult(success=False, handled=False)

    class Handler:
        async def handle_DATA(self, *_: Any) -> str:
            return "250 OK"

    port = free_port()
    controller = Controller(
        Handler(),
        hostname="127.0.0.1",
        port=port,
        authenticator=refuse,
        auth_require_tls=False,
    )
    controller.start()
    yield port
    controller.stop()


async def test_refused_credentials_are_permanent(auth_server: int) -> None:
    config = settings(auth_server, SMTP_USERNAME="relay-user", SMTP_PASSWORD="wrong")
    with pytest.raises(SendError) as caught:
        await MailSender(config).send(message(config))
    assert not caught.value.temporary
    assert str(caught.value).startswith("Permanent SMTP failure: authentication failed: 535")


async def test_a_connection_dropped_while_idle_is_replaced(smtp: MailCatcher) -> None:
    config = settings(smtp.port)
    sender = MailSender(config)
    await sender.send(message(config, 1))
    # The relay drops the idle connection (as relays do after their idle timeout).
    [idle] = sender._idle
    assert idle.client.transport is not None
    idle.client.transport.get_extra_info("socket").shutdown(socket.SHUT_RDWR)
    idle.since -= 5  # idle long enough to be checked before reuse
    await asyncio.sleep(0.05)
    await sender.send(message(config, 2))
    await sender.close()
    assert len(smtp.messages) == 2
