"""Outgoing e-mail: SMTP settings shared by every process, and one sender on aiosmtplib.

``SmtpSettings`` is a settings mixin: a process that sends mail adds it to its own
``Settings`` and gets the same ``SMTP_*`` variables as every other process, so one relay
configuration serves the whole product.

``MailSender`` keeps a few connections open while a batch is being sent (opening one per
mail costs about a third of the throughput), bounds how many are open at once, and bounds
each send by ``SMTP_TIMEOUT_SECONDS``, connecting included, so a slow relay can hold a
caller for that long at most. A failed send raises ``SendError``, which says whether
trying again later may help (4xx replies, refused or dropped connections, timeouts) or
not (5xx replies, refused credentials, TLS set up wrongly) and carries the server's own
words, so an operator reading ``last_error`` sees what the relay said.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr, parseaddr
from typing import Literal

import aiosmtplib
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rcm_kit.logging import get_logger

log = get_logger(__name__)

SmtpTls = Literal["none", "starttls", "tls"]


class SmtpSettings(BaseSettings):
    """The SMTP relay every process that sends mail uses (mix into a process's ``Settings``)."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=True, extra="ignore")

    SMTP_HOST: str = Field(default="127.0.0.1", description="SMTP relay host.")
    SMTP_PORT: int = Field(default=1025, ge=1, le=65535, description="SMTP relay port.")
    SMTP_USERNAME: str | None = Field(default=None, description="Login, when the relay wants one.")
    SMTP_PASSWORD: SecretStr | None = Field(default=None, description="Password for the login.")
    SMTP_TLS: SmtpTls = Field(
        default="none",
        description="none (plain, for a local sink), starttls (upgrade, usually port 587) or "
        "tls (TLS from the first byte, usually port 465). Certificates are always verified.",
    )
    SMTP_FROM: str = Field(
        default="RCM Alerts <alerts@rcm.localhost>",
        description="From header and envelope sender: an address, optionally with a name.",
    )
    SMTP_TIMEOUT_SECONDS: float = Field(
        default=10.0, gt=0, le=300, description="Longest one mail may take, connecting included."
    )

    @field_validator("SMTP_TLS", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("SMTP_FROM")
    @classmethod
    def _from_address(cls, value: str) -> str:
        _, address = parseaddr(value)
        if "@" not in address or address.startswith("@") or address.endswith("@"):
            raise ValueError(
                "must be an e-mail address, optionally with a name: Name <a@b.example>"
            )
        return value

    @field_validator("SMTP_USERNAME", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _credentials(self) -> SmtpSettings:
        password = self.SMTP_PASSWORD.get_secret_value() if self.SMTP_PASSWORD else ""
        if bool(self.SMTP_USERNAME) != bool(password):
            raise ValueError("SMTP_USERNAME and SMTP_PASSWORD: set both or neither")
        return self

    @property
    def from_address(self) -> str:
        """The bare address of ``SMTP_FROM`` (the envelope sender)."""
        return parseaddr(self.SMTP_FROM)[1]

    @property
    def from_domain(self) -> str:
        return self.from_address.rsplit("@", 1)[1]


class SendError(Exception):
    """A mail that did not leave. ``temporary``: trying again later may succeed."""

    def __init__(self, detail: str, *, temporary: bool, code: int | None = None) -> None:
        self.detail = detail
        self.temporary = temporary
        self.code = code
        super().__init__(str(self))

    @property
    def kind(self) -> Literal["temporary", "permanent"]:
        return "temporary" if self.temporary else "permanent"

    def __str__(self) -> str:
        return f"{'Temporary' if self.temporary else 'Permanent'} SMTP failure: {self.detail}"


@dataclass(frozen=True)
class SendResult:
    """A mail the relay accepted. ``refused``: recipients it refused while taking the rest."""

    refused: dict[str, str] = field(default_factory=dict)

    def refused_note(self, total: int) -> str | None:
        if not self.refused:
            return None
        replies = "; ".join(f"{reply} ({rcpt})" for rcpt, reply in sorted(self.refused.items()))
        return f"Delivered, but the server refused {len(self.refused)} of {total} recipients: {replies}"


def _reply(code: int, message: str) -> str:
    return f"{code} {' '.join(message.split())}".strip()


def classify(error: BaseException, *, timeout: float, target: str) -> SendError:
    """``error`` from aiosmtplib (or the socket underneath) as a ``SendError``."""
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        replies = [(r.code, _reply(r.code, r.message), r.recipient) for r in error.recipients]
        temporary = all(400 <= code < 500 for code, _, _ in replies)
        text = "; ".join(f"{reply} ({rcpt})" for _, reply, rcpt in replies)
        return SendError(f"every recipient was refused: {text}", temporary=temporary)
    if isinstance(error, aiosmtplib.SMTPAuthenticationError):
        # Whatever the code, wrong credentials do not fix themselves.
        return SendError(
            f"authentication failed: {_reply(error.code, error.message)}",
            temporary=False,
            code=error.code,
        )
    if isinstance(error, aiosmtplib.SMTPResponseException) and error.code > 0:
        return SendError(
            _reply(error.code, error.message), temporary=error.code < 500, code=error.code
        )
    if isinstance(error, TimeoutError):  # aiosmtplib's timeouts subclass it too
        return SendError(f"no answer from {target} within {timeout:g} s", temporary=True)
    if isinstance(error, ssl.SSLError | aiosmtplib.SMTPNotSupported):
        return SendError(f"TLS with {target} failed: {error}", temporary=False)
    if isinstance(error, aiosmtplib.SMTPServerDisconnected):
        return SendError(f"{target} closed the connection: {error}", temporary=True)
    if isinstance(error, aiosmtplib.SMTPConnectError | OSError):
        return SendError(f"cannot connect to {target}: {error}", temporary=True)
    if isinstance(error, aiosmtplib.SMTPException):
        return SendError(f"{target}: {error}", temporary=True)
    return SendError(f"{type(error).__name__}: {error}", temporary=True)


def _header(value: str) -> str:
    """ASCII as is; anything else RFC 2047-encoded (the compat32 policy does not)."""
    return value if value.isascii() else Header(value, "utf-8").encode()


def compose(
    settings: SmtpSettings,
    *,
    to: Sequence[str],
    subject: str,
    text: str,
    html: str,
    message_id: str,
    date: datetime,
    headers: dict[str, str] | None = None,
) -> Message:
    """A multipart/alternative message (plain text first, HTML second) from ``SMTP_FROM``.

    Built with the ``email.mime`` classes (the compat32 policy): a third of the CPU of
    ``EmailMessage`` to build and flatten, which matters when a tick sends a thousand.
    """
    message = MIMEMultipart("alternative")
    name, address = parseaddr(settings.SMTP_FROM)
    message["From"] = formataddr((name, address), charset="utf-8")
    message["To"] = ", ".join(to)
    message["Subject"] = _header(subject)
    message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id
    # RFC 3834: automatic mail, so auto-responders stay quiet.
    message["Auto-Submitted"] = "auto-generated"
    for header, value in (headers or {}).items():
        message[header] = _header(value)
    message.attach(MIMEText(text, "plain", "utf-8"))
    message.attach(MIMEText(html, "html", "utf-8"))
    return message


@dataclass
class _Idle:
    client: aiosmtplib.SMTP
    since: float


class MailSender:
    """Sends messages through the configured relay, reusing connections within a batch.

    At most ``max_connections`` mails are in flight at once (each on its own connection);
    a connection that has sent a mail waits for the next one for ``idle_seconds`` at most
    and is checked with NOOP when it has waited more than a moment. Call ``close()`` at
    the end of a batch so no idle connection outlives it. ``reuse=False`` opens one
    connection per mail (for rare sends, such as an operator's test).
    """

    NOOP_AFTER_SECONDS = 1.0

    def __init__(
        self,
        settings: SmtpSettings,
        *,
        max_connections: int = 10,
        reuse: bool = True,
        idle_seconds: float = 30.0,
    ) -> None:
        self.settings = settings
        self.max_connections = max_connections
        self.reuse = reuse
        self.idle_seconds = idle_seconds
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: list[_Idle] = []
        self._helo_name: str | None = None

    @property
    def target(self) -> str:
        return f"{self.settings.SMTP_HOST}:{self.settings.SMTP_PORT}"

    async def send(self, message: Message) -> SendResult:
        """Send ``message`` to its To/Cc recipients, or raise ``SendError``."""
        timeout = self.settings.SMTP_TIMEOUT_SECONDS
        async with self._slots:
            client: aiosmtplib.SMTP | None = None
            try:
                async with asyncio.timeout(timeout):
                    client = await self._acquire()
                    refused, _ = await client.send_message(
                        message, sender=self.settings.from_address
                    )
            except BaseException as error:
                if client is not None:
                    client.close()  # never reuse a connection in an unknown state
                if isinstance(error, Exception):
                    raise classify(error, timeout=timeout, target=self.target) from error
                raise
            await self._release(client)
            return SendResult({rcpt: _reply(r.code, r.message) for rcpt, r in refused.items()})

    async def close(self) -> None:
        """Say goodbye on every idle connection."""
        idle, self._idle = self._idle, []
        await asyncio.gather(*(self._quit(entry.client) for entry in idle))

    async def _quit(self, client: aiosmtplib.SMTP) -> None:
        try:
            async with asyncio.timeout(min(self.settings.SMTP_TIMEOUT_SECONDS, 5)):
                await client.quit()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            pass
        finally:
            client.close()

    async def _acquire(self) -> aiosmtplib.SMTP:
        while self._idle:
            entry = self._idle.pop()
            waited = time.monotonic() - entry.since
            if not entry.client.is_connected or waited > self.idle_seconds:
                entry.client.close()
                continue
            if waited > self.NOOP_AFTER_SECONDS:
                try:
                    await entry.client.noop()
                except (aiosmtplib.SMTPException, OSError):
                    entry.client.close()
                    continue
            return entry.client
        return await self._connect()

    async def _connect(self) -> aiosmtplib.SMTP:
        if self._helo_name is None:
            # getfqdn may ask DNS: once per sender, off the event loop.
            self._helo_name = await asyncio.to_thread(socket.getfqdn)
        s = self.settings
        client = aiosmtplib.SMTP(
            hostname=s.SMTP_HOST,
            port=s.SMTP_PORT,
            username=s.SMTP_USERNAME,
            password=s.SMTP_PASSWORD.get_secret_value() if s.SMTP_PASSWORD else None,
            use_tls=s.SMTP_TLS == "tls",
            start_tls=s.SMTP_TLS == "starttls",
            timeout=s.SMTP_TIMEOUT_SECONDS,
            local_hostname=self._helo_name,
        )
        await client.connect()
        return client

    async def _release(self, client: aiosmtplib.SMTP) -> None:
        if self.reuse and client.is_connected:
            self._idle.append(_Idle(client, time.monotonic()))
        else:
            await self._quit(client)
