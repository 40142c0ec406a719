"""The local SMTP sink of ``make run``: accepts every mail, delivers none.

``python -m rcm_kit.smtp_sink`` listens for SMTP on ``SMTP_SINK_HOST:SMTP_PORT`` (the
port the other processes send to) and writes each mail it receives, unchanged, to
``SMTP_SINK_DIR`` (``.data/mail/`` by default) as ``<UTC time>-<id>.eml``, which any mail
client opens. A small web inbox on ``SMTP_SINK_WEB_PORT`` lists them newest first and
shows each one (``0`` turns it off). Each mail logs one line with its recipient count
and subject, never an address.

aiosmtpd is a development dependency: the sink exists for ``make run`` and tests; a
deployment points ``SMTP_HOST`` at a real relay.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import re
import signal
import sys
import uuid
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from rcm_kit.devinfra import data_dir
from rcm_kit.logging import configure_logging, get_logger
from rcm_kit.settings import LogFormat, LogLevel, load_settings
from rcm_kit.web import embedded_server

PROCESS = "smtp-sink"
log = get_logger(__name__)
_NAME = re.compile(r"^[0-9TZ.\-]+-[0-9a-f]{12}\.eml$")


class SinkSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=True, extra="ignore")

    SMTP_SINK_HOST: str = "127.0.0.1"
    SMTP_PORT: int = Field(default=1025, ge=1, le=65535)
    SMTP_SINK_WEB_PORT: int = Field(default=8025, ge=0, le=65535)
    SMTP_SINK_DIR: Path | None = None
    LOG_LEVEL: LogLevel = "INFO"
    LOG_FORMAT: LogFormat = "json"

    @property
    def directory(self) -> Path:
        return self.SMTP_SINK_DIR or data_dir() / "mail"


class MailboxHandler:
    """aiosmtpd handler: every accepted mail becomes one ``.eml`` file."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content: bytes = envelope.original_content or envelope.content
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        name = f"{stamp}-{uuid.uuid4().hex[:12]}.eml"
        # A few kilobytes to a local disk: quicker inline than through a thread.
        (self.directory / name).write_bytes(content)
        headers = BytesHeaderParser(policy=policy.default).parsebytes(content)
        log.info(
            "smtp_sink.received",
            recipients=len(envelope.rcpt_tos),
            subject=str(headers.get("Subject", "")),
            file=name,
        )
        return "250 Message accepted for delivery"


def _mails(directory: Path, limit: int = 200) -> list[Path]:
    return sorted(directory.glob("*.eml"), reverse=True)[:limit]


def _read(directory: Path, name: str) -> EmailMessage | None:
    if not _NAME.match(name) or not (directory / name).is_file():
        return None
    message = message_from_bytes((directory / name).read_bytes(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title>"
        "<style>body{font:14px system-ui,sans-serif;margin:2em}td,th{padding:4px 10px;"
        "text-align:left;border-bottom:1px solid #ddd}pre{white-space:pre-wrap}</style>"
        f"{body}"
    )


def inbox_app(directory: Path) -> Starlette:
    """The web inbox: a list of received mails and a page per mail."""

    async def index(_: Request) -> Response:
        rows = []
        for path in _mails(directory):
            message = _read(directory, path.name)
            if message is None:
                continue
            rows.append(
                f"<tr><td>{html.escape(str(message.get('Date', '')))}</td>"
                f"<td>{html.escape(str(message.get('To', '')))}</td>"
                f'<td><a href="/mail/{path.name}">'
                f"{html.escape(str(message.get('Subject', '')) or '(no subject)')}</a></td></tr>"
            )
        table = "".join(rows) or '<tr><td colspan="3">No mail yet.</td></tr>'
        return _page(
            "Local inbox",
            f"<h1>Local inbox</h1><p>Mail sent by this machine's processes, from "
            f"<code>{html.escape(str(directory))}</code>. Nothing leaves this machine.</p>"
            f"<table><tr><th>Date</th><th>To</th><th>Subject</th></tr>{table}</table>",
        )

    async def show(request: Request) -> Response:
        name = request.path_params["name"]
        message = _read(directory, name)
        if message is None:
            return PlainTextResponse("no such mail", status_code=404)
        fields = "".join(
            f"<tr><th>{field}</th><td>{html.escape(str(message.get(field, '')))}</td></tr>"
            for field in ("From", "To", "Subject", "Date", "Message-ID")
        )
        plain = message.get_body(preferencelist=("plain",))
        text = plain.get_content() if plain is not None else ""
        return _page(
            str(message.get("Subject", "")),
            f'<p><a href="/">← inbox</a> · <a href="/mail/{name}/raw">raw</a></p>'
            f"<table>{fields}</table>"
            f'<h2>HTML</h2><iframe sandbox src="/mail/{name}/html" '
            'style="width:100%;height:50vh;border:1px solid #ddd"></iframe>'
            f"<h2>Plain text</h2><pre>{html.escape(text)}</pre>",
        )

    async def show_html(request: Request) -> Response:
        message = _read(directory, request.path_params["name"])
        part = message.get_body(preferencelist=("html",)) if message is not None else None
        if part is None:
            return PlainTextResponse("no HTML part", status_code=404)
        # The mail's own HTML, shown sandboxed: no scripts, no requests back to this origin.
        return HTMLResponse(
            part.get_content(), headers={"Content-Security-Policy": "sandbox; default-src 'none'"}
        )

    async def raw(request: Request) -> Response:
        name = request.path_params["name"]
        if _read(directory, name) is None:
            return PlainTextResponse("no such mail", status_code=404)
        return Response((directory / name).read_bytes(), media_type="message/rfc822")

    return Starlette(
        routes=[
            Route("/", index),
            Route("/mail/{name}", show),
            Route("/mail/{name}/html", show_html),
            Route("/mail/{name}/raw", raw),
        ]
    )


async def serve_sink(settings: SinkSettings, stop: asyncio.Event) -> None:
    from aiosmtpd.smtp import SMTP

    handler = MailboxHandler(settings.directory)
    loop = asyncio.get_running_loop()
    smtp = await loop.create_server(
        lambda: SMTP(handler, hostname="rcm-smtp-sink", ident="rcm smtp sink"),
        host=settings.SMTP_SINK_HOST,
        port=settings.SMTP_PORT,
    )
    web = None
    web_task = None
    if settings.SMTP_SINK_WEB_PORT:
        web = embedded_server(
            inbox_app(settings.directory),
            host=settings.SMTP_SINK_HOST,
            port=settings.SMTP_SINK_WEB_PORT,
        )
        web_task = asyncio.create_task(web.serve())
    log.info(
        "smtp_sink.started",
        smtp=f"{settings.SMTP_SINK_HOST}:{settings.SMTP_PORT}",
        inbox=(
            f"http://{settings.SMTP_SINK_HOST}:{settings.SMTP_SINK_WEB_PORT}/"
            if settings.SMTP_SINK_WEB_PORT
            else None
        ),
        directory=str(settings.directory),
    )
    try:
        await stop.wait()
    finally:
        smtp.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(smtp.wait_closed(), 2)
        if web is not None and web_task is not None:
            web.should_exit = True
            await web_task


def main() -> None:
    settings = load_settings(SinkSettings, PROCESS)
    configure_logging(settings.LOG_LEVEL, settings.LOG_FORMAT, PROCESS)
    # aiosmtpd logs every envelope address at INFO: keep addresses out of the logs.
    logging.getLogger("mail.log").setLevel(logging.WARNING)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve_sink(settings, stop)

    asyncio.run(run())
    sys.exit(0)


if __name__ == "__main__":
    main()
