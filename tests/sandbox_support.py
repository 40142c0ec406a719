"""Run the clearinghouse sandbox in-process on a real 127.0.0.1 socket, and drive it.

For any test package that needs a trading partner::

    server = await start_sandbox(latency_ms=0, delivery="inline")
    async with SandboxClient(server.url) as sandbox:
        await sandbox.configure(error_rate=1.0)
        ...
        assert (await sandbox.requests(subscriber_id="SBX-ACTIVE"))[0]["rule"] == "SBX-ACTIVE"
    await server.stop()

Point a trading partner at ``f"{server.url}/x12"`` (transport ``x12-http``) or
``f"{server.url}/core"`` (``core-mime``). The rule ids are in
``clearinghouse_sandbox.rules.Rule`` and the sandbox's README.
"""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import ssl
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from clearinghouse_sandbox.app import create_app
from clearinghouse_sandbox.config import SandboxConfig, Settings
from rcm_kit.clock import Clock
from tests.conftest import RunningServer

SHUTDOWN_GRACE_SECONDS = 2
_TLS = ssl.create_default_context()
"""Shared: httpx loads the CA bundle for every client otherwise (~70 ms each)."""


class _ArgumentsOnly(Settings):
    """Settings from arguments alone: a developer's ``SANDBOX_*`` variables cannot
    change what a test sees."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


async def start_sandbox(
    *,
    record_limit: int = 100_000,
    clock: Clock | None = None,
    credential_file: Path | None = None,
    **config: Any,
) -> RunningServer:
    """A started sandbox with the default runtime config plus ``config`` (any field of
    ``PUT /sandbox/config``: ``latency_ms``, ``error_rate``, ``delivery``,
    ``delay_seconds``, ``inbound_url``, ``inbound_credential``, ``hang_seconds``,
    ``username``, ``password``, ``token``). The environment is not read, so a
    developer's ``SANDBOX_*`` variables cannot change a test. Stop it with ``stop()``."""
    settings = _ArgumentsOnly(
        LOG_FORMAT="console",
        SANDBOX_RECORD_LIMIT=record_limit,
        SANDBOX_INBOUND_CREDENTIAL_FILE=credential_file,
    )
    app = create_app(settings, clock=clock)
    app.state.sandbox.configure(config)
    server = RunningServer(app)
    # A test that leaves an SBX-HANG connected must not hold its teardown for minutes.
    server.server.config.timeout_graceful_shutdown = SHUTDOWN_GRACE_SECONDS
    return await server.start()


class SandboxClient:
    """The sandbox's HTTP API (``/sandbox/*``, ``/x12``, ``/core``) through httpx."""

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self.base_url = base_url
        self.http = httpx.AsyncClient(base_url=base_url, timeout=timeout, verify=_TLS)

    async def __aenter__(self) -> SandboxClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def configure(self, **changes: Any) -> dict[str, Any]:
        """``PUT /sandbox/config`` with only these fields; the resulting config."""
        response = await self.http.put("/sandbox/config", json=changes)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    async def reset(self) -> None:
        """Default config, no records: the state of a fresh sandbox."""
        await self.configure(**SandboxConfig().model_dump())
        await self.clear()

    async def config(self) -> dict[str, Any]:
        response = await self.http.get("/sandbox/config")
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    async def requests(
        self,
        subscriber_id: str | None = None,
        *,
        since: datetime | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Recorded requests, oldest first."""
        params: dict[str, Any] = {}
        if subscriber_id is not None:
            params["subscriber_id"] = subscriber_id
        if since is not None:
            params["since"] = since.astimezone(UTC).isoformat()
        if limit is not None:
            params["limit"] = limit
        response = await self.http.get("/sandbox/requests", params=params)
        response.raise_for_status()
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def clear(self) -> None:
        """Forget recorded requests and deliveries."""
        (await self.http.delete("/sandbox/requests")).raise_for_status()

    async def deliveries(self, trace_number: str | None = None) -> list[dict[str, Any]]:
        """Every delayed-delivery attempt, oldest first."""
        params = {"trace_number": trace_number} if trace_number else {}
        response = await self.http.get("/sandbox/deliveries", params=params)
        response.raise_for_status()
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def wait_for_deliveries(
        self, count: int, *, trace_number: str | None = None, within: float = 5.0
    ) -> list[dict[str, Any]]:
        """Poll until ``count`` attempts are recorded (or fail after ``within`` seconds)."""
        deadline = asyncio.get_running_loop().time() + within
        while True:
            found = await self.deliveries(trace_number)
            if len(found) >= count:
                return found
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{len(found)} delivery attempts after {within}s, not {count}")
            await asyncio.sleep(0.02)

    async def send_x12(self, x12: str, **kwargs: Any) -> httpx.Response:
        """``POST /x12``; ``kwargs`` go to httpx (``auth``, ``headers``, ``timeout``)."""
        headers = {"Content-Type": "application/edi-x12", **kwargs.pop("headers", {})}
        return await self.http.post("/x12", content=x12.encode(), headers=headers, **kwargs)

    async def send_core(
        self,
        x12: str,
        *,
        fields: dict[str, str] | None = None,
        omit: Iterable[str] = (),
        **kwargs: Any,
    ) -> httpx.Response:
        """``POST /core`` with a valid CORE envelope around ``x12``; ``fields`` replace
        envelope fields, ``omit`` leaves some out (to test envelope errors)."""
        envelope = core_request_fields(x12, **(fields or {}))
        for name in omit:
            envelope.pop(name, None)
        return await self.http.post("/core", files=_form(envelope), **kwargs)


def core_request_fields(x12: str, **overrides: str) -> dict[str, str]:
    """A valid CORE vC2.2.0 real-time 270 envelope."""
    return {
        "PayloadType": "X12_270_Request_005010X279A1",
        "ProcessingMode": "RealTime",
        "PayloadID": str(uuid.uuid4()),
        "TimeStamp": datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "UserName": "provider",
        "Password": "secret",
        "SenderID": "PROVIDERSUB",
        "ReceiverID": "SANDBOXCH",
        "CORERuleVersion": "2.2.0",
        "Payload": x12,
        **overrides,
    }


def _form(fields: dict[str, str]) -> list[tuple[str, tuple[None, str]]]:
    """httpx ``files`` entries without file names: plain multipart/form-data fields."""
    return [(name, (None, value)) for name, value in fields.items()]


def parse_core(response: httpx.Response) -> dict[str, str]:
    """The fields of a CORE multipart/form-data answer."""
    return parse_multipart(response.headers["content-type"], response.content)


def parse_multipart(content_type: str, body: bytes) -> dict[str, str]:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        raise AssertionError(f"not a multipart body: {content_type}")
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        fields[str(name)] = payload.decode() if isinstance(payload, bytes) else ""
    return fields
