"""The contract registry end to end through the gateway, on real sockets: contracts and
their expiry banner, optimistic locking with ETag / If-Match, expiry alerts with their
duplicate check, "Send test" to a real SMTP server, the delivery history and the
dispatcher status, with the caller's X-Request-ID coming back on every answer."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest

from contract_registry.app import create_app
from contract_registry.config import Settings
from rcm_kit.clock import SystemClock, today_in
from rcm_kit.tenancy import Tenant
from tests.conftest import RunningServer, TenantFactory, auth, service_env, tenant_session
from tests.contract_registry.delivery_support import MailCatcher
from tests.contract_registry.factories import add_billing_entity, add_payer
from tests.gateway.conftest import client_for, running_gateway

PERMS = "config.read,config.update"
PROBLEM = "application/problem+json"
CONTRACTS = "/api/v1/admin/contracts"
SUMMARY = f"{CONTRACTS}/summary"
ALERTS = f"{CONTRACTS}/expiry-alerts"
SUBJECT = "Heads-up: contracts <expiring> & more (30 days)"
RECIPIENTS = ["contracts@clinic.example", "billing.lead@clinic.example"]


@dataclass
class Stack:
    gateway: httpx.AsyncClient
    smtp: MailCatcher


@pytest.fixture
async def stack(
    master_url: str, redis_url: str, sweeps_server: RunningServer
) -> AsyncIterator[Stack]:
    """An SMTP capture server, a contracts-api mailing to it, and a gateway in front of
    that API and the session's sweeps API."""
    smtp = MailCatcher().start()
    try:
        settings = Settings(
            **service_env(master_url, redis_url),
            SMTP_HOST="127.0.0.1",
            SMTP_PORT=smtp.port,
            SMTP_TIMEOUT_SECONDS=5,
        )
        contracts = await RunningServer(create_app(settings)).start()
        try:
            async with (
                running_gateway(
                    SWEEPS_API_URL=sweeps_server.url, CONTRACTS_API_URL=contracts.url
                ) as gateway,
                client_for(gateway) as client,
            ):
                yield Stack(client, smtp)
        finally:
            await contracts.stop()
    finally:
        smtp.stop()


class Caller:
    """Calls the gateway as one tenant, sending a fresh X-Request-ID with each request and
    checking that the same id comes back."""

    def __init__(self, client: httpx.AsyncClient, tenant: Tenant) -> None:
        self.client = client
        self.headers = auth(tenant, PERMS)

    async def __call__(
        self, method: str, path: str, *, if_match: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        request_id = f"e2e-{secrets.token_hex(8)}"
        headers = {**self.headers, "X-Request-ID": request_id}
        if if_match is not None:
            headers["If-Match"] = if_match
        response = await self.client.request(method, path, headers=headers, **kwargs)
        assert response.headers.get("x-request-id") == request_id, (method, path)
        return response


async def banner_and_list(call: Caller) -> tuple[int, list[str]]:
    """The banner's 30-day count and the ids the list returns for the same window."""
    summary = await call("GET", SUMMARY)
    assert summary.status_code == 200, summary.text
    listed = await call("GET", CONTRACTS, params={"expiring_within_days": 30, "limit": 500})
    assert listed.status_code == 200, listed.text
    assert listed.json()["next_cursor"] is None
    return summary.json()["expiring"]["30"], [c["contract_id"] for c in listed.json()["items"]]


async def test_contracts_and_expiry_alerts_work_through_the_gateway(
    stack: Stack, make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant()
    async with tenant_session(tenant) as session:
        payer_id: UUID = await add_payer(session, name="Aetna")
        entity_id: UUID = await add_billing_entity(session, name="Lakeshore Physician Group")
    call = Caller(stack.gateway, tenant)
    today = today_in(SystemClock(), tenant.timezone)

    def day(offset: int) -> str:
        return (today + timedelta(days=offset)).isoformat()

    # A contract ending in 10 days: the banner counts it, and equals the list.
    created = await call(
        "POST",
        f"/api/v1/payers/{payer_id}/contracts",
        json={
            "billing_entity_id": str(entity_id),
            "name": "Aetna Professional Services Agreement",
            "contract_number": "AET-PHYS-0101",
            "effective_from": date(2025, 1, 1).isoformat(),
            "effective_to": day(10),
        },
    )
    assert created.status_code == 201, created.text
    contract = created.json()
    contract_id = contract["contract_id"]
    assert (contract["status"], contract["days_until_expiry"]) == ("ACTIVE", 10)
    assert await banner_and_list(call) == (1, [contract_id])

    # Optimistic locking: the ETag read through the gateway guards the PATCH.
    url = f"/api/v1/payers/{payer_id}/contracts/{contract_id}"
    got = await call("GET", f"{CONTRACTS}/{contract_id}")
    assert got.status_code == 200, got.text
    first_etag = got.headers["etag"]
    renamed = await call("PATCH", url, if_match=first_etag, json={"name": "Aetna PSA 2025"})
    assert renamed.status_code == 200, renamed.text
    second_etag = renamed.headers["etag"]
    assert second_etag != first_etag
    assert renamed.json()["name"] == "Aetna PSA 2025"

    stale = await call("PATCH", url, if_match=first_etag, json={"name": "Lost update"})
    assert stale.status_code == 412, stale.text
    assert stale.headers["content-type"] == PROBLEM
    assert stale.json()["status"] == 412
    assert stale.json()["current_version"] == renamed.json()["version"]

    moved = await call("PATCH", url, if_match=second_etag, json={"effective_to": day(45)})
    assert moved.status_code == 200, moved.text
    assert moved.headers["etag"] not in (first_etag, second_etag)
    assert (moved.json()["name"], moved.json()["effective_to"]) == ("Aetna PSA 2025", day(45))
    assert await banner_and_list(call) == (0, [])
    summary = (await call("GET", SUMMARY)).json()
    assert (summary["active"], summary["expiring"]["60"]) == (1, 1)

    # An alert, and a second one for the same scope naming the first.
    body = {"lead_days": 30, "recipients": RECIPIENTS, "subject": SUBJECT}
    made = await call("POST", ALERTS, json=body)
    assert made.status_code == 201, made.text
    alert = made.json()
    alert_id = alert["alert_id"]
    assert (alert["payer_id"], alert["billing_entity_id"]) == (None, None)
    assert (alert["recipients"], alert["subject"]) == (RECIPIENTS, SUBJECT)
    duplicate = await call("POST", ALERTS, json={**body, "recipients": ["other@clinic.example"]})
    assert duplicate.status_code == 409, duplicate.text
    assert duplicate.headers["content-type"] == PROBLEM
    assert duplicate.json()["existing_alert_id"] == alert_id
    assert alert_id in duplicate.json()["detail"]

    # "Send test" mails both recipients now, with the alert's subject as written.
    tested = await call("POST", f"{ALERTS}/{alert_id}/test")
    assert tested.status_code == 200, tested.text
    assert tested.json() == {"status": "SUCCESS", "matched_contracts": 0, "error": None}
    [mail] = stack.smtp.for_alert(UUID(alert_id))
    assert mail["Subject"] == SUBJECT
    assert mail["X-RCM-Delivery-Kind"] == "TEST"
    [(_, envelope_to)] = [
        envelope
        for envelope, message in zip(stack.smtp.envelopes, stack.smtp.messages, strict=True)
        if message is mail
    ]
    assert sorted(envelope_to) == sorted(RECIPIENTS)
    assert all(address in mail["To"] for address in RECIPIENTS)

    fetched = await call("GET", f"{ALERTS}/{alert_id}")
    assert fetched.status_code == 200, fetched.text
    assert fetched.json()["last_fired_at"] is None
    assert (fetched.json()["last_status"], fetched.json()["last_error"]) == ("SUCCESS", None)

    history = await call("GET", f"{ALERTS}/{alert_id}/deliveries")
    assert history.status_code == 200, history.text
    [delivery] = history.json()["items"]
    assert (delivery["kind"], delivery["status"]) == ("TEST", "SUCCESS")
    assert (delivery["matched_contracts"], delivery["error"]) == (0, None)
    assert sorted(delivery["recipients"]) == sorted(RECIPIENTS)

    status = await call("GET", f"{ALERTS}/dispatcher")
    assert status.status_code == 200, status.text
    assert {"enabled", "interval_ms", "last_tick_at"} <= status.json().keys()
    assert isinstance(status.json()["enabled"], bool)
    assert isinstance(status.json()["interval_ms"], int)
