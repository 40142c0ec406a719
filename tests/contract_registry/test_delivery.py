"""The delivery routes of the expiry alerts over HTTP ("Send test", the history, the
dispatcher status) and the alert mail itself, against real PostgreSQL, Redis and SMTP."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import timedelta
from email.message import EmailMessage
from typing import Any
from uuid import uuid4

import httpx
import pytest
import sqlalchemy as sa
from redis.asyncio import Redis

from contract_registry.config import Settings
from contract_registry.expiry_alert.delivery import message_id
from contract_registry.expiry_alert.delivery_endpoints import router
from contract_registry.models import audit_event
from rcm_kit.clock import FixedClock
from rcm_kit.service import create_service_app
from rcm_kit.tenancy import Tenant
from tests.conftest import RunningServer, auth, free_port, service_env, tenant_session
from tests.contract_registry.delivery_support import (
    NOON,
    MailCatcher,
    World,
    add_alert,
    add_contract,
    add_scope,
    alert_state,
    deliveries,
)

BASE = "/api/v1/admin/contracts/expiry-alerts"
ApiFactory = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOON)


@pytest.fixture
async def make_api(
    world: World, smtp: MailCatcher, clock: FixedClock, redis_url: str
) -> AsyncIterator[ApiFactory]:
    """The contract registry's delivery routes on a real socket, over the test's world."""
    async with AsyncExitStack() as stack:

        async def make(**overrides: Any) -> httpx.AsyncClient:
            settings = Settings(
                **service_env(world.master_url, redis_url),
                **{"SMTP_HOST": "127.0.0.1", "SMTP_PORT": smtp.port, **overrides},
            )
            app = create_service_app(
                title="contracts",
                description="delivery routes under test",
                settings=settings,
                routers=[router],
                app_name="contracts-api-test",
                clock=clock,
            )
            server = await RunningServer(app).start()
            stack.push_async_callback(server.stop)
            return await stack.enter_async_context(
                httpx.AsyncClient(base_url=server.url, timeout=30)
            )

        yield make


@pytest.fixture
async def api(make_api: ApiFactory) -> httpx.AsyncClient:
    return await make_api()


def parts(mail: EmailMessage) -> tuple[str, str]:
    plain = mail.get_body(preferencelist=("plain",))
    rich = mail.get_body(preferencelist=("html",))
    assert plain is not None
    assert rich is not None
    return plain.get_content(), rich.get_content()


async def test_send_test_delivers_the_alert_mail_and_leaves_last_fired_at_alone(
    world: World, smtp: MailCatcher, clock: FixedClock, api: httpx.AsyncClient
) -> None:
    tenant = await world.tenant()
    scope = await add_scope(tenant, payer_name="Aetna <East>", entity_name="Main & Co")
    await add_contract(
        tenant, scope, NOON.date() + timedelta(days=10), name="PPO <2026> & more", number="AE-77"
    )
    subject = "Heads-up: contracts <expiring> & more"
    alert_id = await add_alert(tenant, subject=subject, recipients=["ops@clinic.example"])

    response = await api.post(f"{BASE}/{alert_id}/test", headers=auth(tenant, "config.update"))

    assert response.status_code == 200, response.text
    assert response.json() == {"status": "SUCCESS", "matched_contracts": 1, "error": None}
    [mail] = smtp.for_alert(alert_id)
    assert mail["Subject"] == subject
    assert mail["To"] == "ops@clinic.example"
    assert mail.get_content_type() == "multipart/alternative"
    assert mail["X-RCM-Delivery-Kind"] == "TEST"
    text, page = parts(mail)
    assert "This is a test of an expiry alert" in text
    assert "1 active contract expires within 30 days (by 2026-04-09; today is 2026-03-10" in text
    header = "Payer         Billing entity  Contract           Number  Effective to  Days left"
    row = "Aetna <East>  Main & Co       PPO <2026> & more  AE-77   2026-03-20    10"
    assert header in text
    assert row in text
    for cell in ("Aetna &lt;East&gt;", "Main &amp; Co", "PPO &lt;2026&gt; &amp; more", "AE-77"):
        assert f">{cell}</td>" in page
    assert "<2026>" not in page
    assert "<East>" not in page
    assert ">2026-03-20</td>" in page
    assert ">10</td>" in page

    state = await alert_state(tenant, alert_id)
    assert (state.last_status, state.last_error, state.last_fired_at) == ("SUCCESS", None, None)
    [row_] = await deliveries(tenant, alert_id)
    assert (row_.kind, row_.status, row_.matched_contracts) == ("TEST", "SUCCESS", 1)
    async with tenant_session(tenant) as session:
        audited = (
            await session.execute(
                sa.select(audit_event.c.action, audit_event.c.actor).where(
                    audit_event.c.entity_id == str(alert_id)
                )
            )
        ).all()
    assert [tuple(a) for a in audited] == [("EXECUTE", "tester")]

    # The schedule is unaffected: the day's scheduled mail still goes out.
    report = await world.dispatcher(smtp.port, clock).tick()
    assert report.sent == 1
    assert [m["X-RCM-Delivery-Kind"] for m in smtp.for_alert(alert_id)] == ["TEST", "SCHEDULED"]
    assert (await alert_state(tenant, alert_id)).last_fired_at == NOON


async def test_send_test_with_nothing_matching_still_sends_and_says_so(
    world: World, smtp: MailCatcher, api: httpx.AsyncClient
) -> None:
    tenant = await world.tenant()
    scope = await add_scope(tenant)
    await add_contract(tenant, scope, NOON.date() + timedelta(days=80))
    alert_id = await add_alert(tenant, lead_days=30)

    response = await api.post(f"{BASE}/{alert_id}/test", headers=auth(tenant, "config.update"))

    assert response.json() == {"status": "SUCCESS", "matched_contracts": 0, "error": None}
    [mail] = smtp.for_alert(alert_id)
    assert mail["Subject"] == "Contracts expiring within 30 days"
    text, page = parts(mail)
    assert "No active contract in this alert's scope expires within 30 days" in text
    assert "No active contract in this alert&#x27;s scope expires within 30 days" in page
    assert "<table" not in page
    state = await alert_state(tenant, alert_id)
    assert (state.last_status, state.last_fired_at) == ("SUCCESS", None)


async def test_send_test_with_the_relay_down_answers_failed_with_its_error(
    world: World, make_api: ApiFactory
) -> None:
    tenant = await world.tenant()
    alert_id = await add_alert(tenant)
    port = free_port()
    api = await make_api(SMTP_PORT=port, SMTP_TIMEOUT_SECONDS=3)

    response = await api.post(f"{BASE}/{alert_id}/test", headers=auth(tenant, "config.update"))

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["matched_contracts"]) == ("FAILED", 0)
    assert body["error"].startswith(f"Temporary SMTP failure: cannot connect to 127.0.0.1:{port}")
    state = await alert_state(tenant, alert_id)
    assert (state.last_status, state.last_error, state.last_fired_at) == (
        "FAILED",
        body["error"],
        None,
    )
    [row] = await deliveries(tenant, alert_id)
    assert (row.kind, row.status, row.error, row.retry_at) == (
        "TEST",
        "FAILED",
        body["error"],
        None,
    )


async def test_send_test_needs_config_update_and_an_alert_of_the_tenant(
    world: World, smtp: MailCatcher, api: httpx.AsyncClient
) -> None:
    tenant = await world.tenant()
    other = await world.tenant()
    alert_id = await add_alert(tenant)

    reader = await api.post(f"{BASE}/{alert_id}/test", headers=auth(tenant, "config.read"))
    assert reader.status_code == 403
    unknown = await api.post(f"{BASE}/{uuid4()}/test", headers=auth(tenant, "config.update"))
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    elsewhere = await api.post(f"{BASE}/{alert_id}/test", headers=auth(other, "config.update"))
    assert elsewhere.status_code == 404
    assert smtp.messages == []


async def test_deliveries_list_attempts_newest_first_with_their_kind(
    world: World, smtp: MailCatcher, clock: FixedClock, api: httpx.AsyncClient
) -> None:
    tenant = await world.tenant()
    scope = await add_scope(tenant)
    await add_contract(tenant, scope, NOON.date() + timedelta(days=3))
    alert_id = await add_alert(tenant, recipients=["a@clinic.example", "b@clinic.example"])
    await world.dispatcher(smtp.port, clock).tick()
    editor = auth(tenant, "config.update")
    for _ in range(2):
        clock.advance(timedelta(hours=1))
        await api.post(f"{BASE}/{alert_id}/test", headers=editor)

    reader = auth(tenant, "config.read")
    first = await api.get(f"{BASE}/{alert_id}/deliveries", params={"limit": 2}, headers=reader)

    assert first.status_code == 200, first.text
    page = first.json()
    assert [(d["kind"], d["status"]) for d in page["items"]] == [
        ("TEST", "SUCCESS"),
        ("TEST", "SUCCESS"),
    ]
    assert page["items"][0]["attempted_at"] == "2026-03-10T17:00:00Z"
    item = page["items"][0]
    assert set(item) >= {
        "delivery_id",
        "attempted_at",
        "kind",
        "status",
        "matched_contracts",
        "recipients",
        "error",
    }
    assert (item["matched_contracts"], item["recipients"], item["error"]) == (
        1,
        ["a@clinic.example", "b@clinic.example"],
        None,
    )
    rest = await api.get(
        f"{BASE}/{alert_id}/deliveries",
        params={"limit": 2, "cursor": page["next_cursor"]},
        headers=reader,
    )
    assert [(d["kind"], d["attempted_at"]) for d in rest.json()["items"]] == [
        ("SCHEDULED", "2026-03-10T15:00:00Z")
    ]
    assert rest.json()["next_cursor"] is None

    missing = await api.get(f"{BASE}/{uuid4()}/deliveries", headers=reader)
    assert missing.status_code == 404
    no_perm = await api.get(
        f"{BASE}/{alert_id}/deliveries", headers=auth(tenant, "eligibility.read")
    )
    assert no_perm.status_code == 403


async def test_mail_headers_and_a_message_id_stable_per_alert_and_day(
    world: World, smtp: MailCatcher, clock: FixedClock, api: httpx.AsyncClient
) -> None:
    tenant = await world.tenant()
    scope = await add_scope(tenant)
    await add_contract(tenant, scope, NOON.date() + timedelta(days=3))
    alert_id = await add_alert(tenant, recipients=["a@clinic.example", "b@clinic.example"])
    dispatcher = world.dispatcher(smtp.port, clock)

    await dispatcher.tick()
    clock.advance(timedelta(days=1))
    await dispatcher.tick()
    for _ in range(2):
        await api.post(f"{BASE}/{alert_id}/test", headers=auth(tenant, "config.update"))

    day1, day2, test1, test2 = smtp.for_alert(alert_id)
    smtp_settings = world.settings(smtp.port)
    assert day1["Message-ID"] == message_id(smtp_settings, tenant, alert_id, NOON.date())
    assert day2["Message-ID"] == message_id(
        smtp_settings, tenant, alert_id, NOON.date() + timedelta(days=1)
    )
    assert re.fullmatch(
        r"<expiry-alert\.20260310\.[0-9a-f]{24}@rcm\.localhost>", day1["Message-ID"]
    )
    assert day2["Message-ID"].startswith("<expiry-alert.20260311.")
    assert test1["Message-ID"] != test2["Message-ID"]
    assert test1["Message-ID"].startswith("<expiry-alert-test.")
    assert day1["Date"] == "Tue, 10 Mar 2026 15:00:00 +0000"
    assert day1["From"] == "RCM Alerts <alerts@rcm.localhost>"
    assert day1["To"] == "a@clinic.example, b@clinic.example"
    assert day1["Subject"] == "Contracts expiring within 30 days"
    rows = await deliveries(tenant, alert_id)
    assert [r.message_id for r in rows] == [m["Message-ID"] for m in (day1, day2, test1, test2)]
    assert smtp.envelopes[0] == ("alerts@rcm.localhost", ["a@clinic.example", "b@clinic.example"])


async def _status(api: httpx.AsyncClient, tenant: Tenant) -> Any:
    response = await api.get(f"{BASE}/dispatcher", headers=auth(tenant, "config.read"))
    assert response.status_code == 200, response.text
    return response.json()


async def test_dispatcher_status_reads_the_heartbeat_else_the_api_s_own_settings(
    world: World,
    smtp: MailCatcher,
    clock: FixedClock,
    make_api: ApiFactory,
    redis_url: str,
) -> None:
    tenant = await world.tenant()
    api = await make_api(CONTRACT_EXPIRY_INTERVAL_MS=120_000)

    # No dispatcher has reported: the API's own settings, no last tick.
    assert await _status(api, tenant) == {
        "enabled": True,
        "interval_ms": 120_000,
        "last_tick_at": None,
    }
    paused_api = await make_api(CONTRACT_EXPIRY_ALERTS_ENABLED=False)
    assert (await _status(paused_api, tenant))["enabled"] is False

    redis = Redis.from_url(redis_url)
    try:
        await world.dispatcher(smtp.port, clock, redis=redis).tick()
        assert await _status(api, tenant) == {
            "enabled": True,
            "interval_ms": 60_000,
            "last_tick_at": "2026-03-10T15:00:00Z",
        }
        # The break-glass flag on the dispatcher shows even where the API thinks otherwise.
        await world.dispatcher(
            smtp.port, clock, redis=redis, CONTRACT_EXPIRY_ALERTS_ENABLED=False
        ).publish_status()
        assert await _status(api, tenant) == {
            "enabled": False,
            "interval_ms": 60_000,
            "last_tick_at": None,
        }
    finally:
        await redis.aclose()
    assert (
        await api.get(f"{BASE}/dispatcher", headers=auth(tenant, "config.update"))
    ).status_code == 403
