"""The expiry-alert dispatcher against real PostgreSQL tenants, a real SMTP server and an
injected clock: once a tenant calendar day, whatever the ticks, replicas and failures."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa
from redis.asyncio import Redis

from contract_registry.config import DispatcherSettings
from contract_registry.expiry_alert import dispatcher_status
from contract_registry.expiry_alert.delivery import OUTCOME_UNKNOWN
from contract_registry.models import contract_expiry_alert_delivery
from rcm_kit import provision
from rcm_kit.clock import FixedClock
from tests.conftest import free_port, tenant_session
from tests.contract_registry.delivery_support import (
    NOON,
    MailCatcher,
    World,
    add_alert,
    add_contract,
    add_scope,
    alert_state,
    deliveries,
    one_due_alert,
    set_contract_end,
)


async def test_many_ticks_in_one_day_send_one_mail(world: World, smtp: MailCatcher) -> None:
    tenant = await world.tenant()
    scope = await add_scope(tenant)
    await add_contract(tenant, scope, NOON.date() + timedelta(days=10))
    alert_id = await add_alert(tenant)
    clock = FixedClock(NOON)
    dispatcher = world.dispatcher(smtp.port, clock)

    reports = []
    for _ in range(8):
        reports.append(await dispatcher.tick())
        clock.advance(timedelta(minutes=37))

    assert len(smtp.for_alert(alert_id)) == 1
    assert [r.sent for r in reports] == [1, 0, 0, 0, 0, 0, 0, 0]
    assert [r.due for r in reports] == [1, 0, 0, 0, 0, 0, 0, 0]
    rows = await deliveries(tenant, alert_id)
    assert [(r.kind, r.status) for r in rows] == [("SCHEDULED", "SUCCESS")]
    state = await alert_state(tenant, alert_id)
    assert state.last_status == "SUCCESS"
    assert state.last_fired_at == NOON
    assert state.last_error is None


async def test_crossing_midnight_sends_again_the_next_day(world: World, smtp: MailCatcher) -> None:
    tenant = await world.tenant()
    scope = await add_scope(tenant)
    await add_contract(tenant, scope, NOON.date() + timedelta(days=20))
    alert_id = await add_alert(tenant)
    clock = FixedClock(datetime(2026, 3, 10, 23, 50, tzinfo=UTC))
    dispatcher = world.dispatcher(smtp.port, clock)

    await dispatcher.tick()  # 23:50
    clock.advance(timedelta(minutes=9))
    await dispatcher.tick()  # 23:59, same day
    assert len(smtp.for_alert(alert_id)) == 1
    clock.advance(timedelta(minutes=2))
    await dispatcher.tick()  # 00:01 the next day
    clock.advance(timedelta(minutes=30))
    await dispatcher.tick()

    assert len(smtp.for_alert(alert_id)) == 2
    rows = await deliveries(tenant, alert_id)
    assert [(str(r.local_day), r.status) for r in rows] == [
        ("2026-03-10", "SUCCESS"),
        ("2026-03-11", "SUCCESS"),
    ]


async def test_the_day_is_the_tenant_s_calendar_day_not_utc(
    world: World, smtp: MailCatcher
) -> None:
    # 03:30 and 04:30 UTC on 10 March 2026 are one UTC day, but 23:30 on the 9th and
    # 00:30 on the 10th in New York (EDT, UTC-4, since 8 March).
    new_york = await world.tenant(timezone="America/New_York")
    utc = await world.tenant(timezone="UTC")
    alerts = {}
    for tenant in (new_york, utc):
        scope = await add_scope(tenant)
        await add_contract(tenant, scope, NOON.date() + timedelta(days=15))
        alerts[tenant.slug] = await add_alert(tenant)
    clock = FixedClock(datetime(2026, 3, 10, 3, 30, tzinfo=UTC))
    dispatcher = world.dispatcher(smtp.port, clock)

    await dispatcher.tick()
    clock.advance(timedelta(minutes=45))
    await dispatcher.tick()  # 04:15 UTC: 00:15 in New York, a new day there
    clock.advance(timedelta(minutes=15))
    await dispatcher.tick()

    assert len(smtp.for_alert(alerts[new_york.slug])) == 2
    assert len(smtp.for_alert(alerts[utc.slug])) == 1
    days = [str(r.local_day) for r in await deliveries(new_york, alerts[new_york.slug])]
    assert days == ["2026-03-09", "2026-03-10"]


async def test_no_contracts_sends_nothing_then_a_contract_entering_the_window_is_mailed_that_day(
    world: World, smtp: MailCatcher
) -> None:
    tenant = await world.tenant()
    scope = await add_scope(tenant)
    contract_id = await add_contract(tenant, scope, NOON.date() + timedelta(days=45))
    await add_contract(tenant, scope, NOON.date() + timedelta(days=5), status="DRAFT")
    await add_contract(tenant, scope, NOON.date() - timedelta(days=1))  # already expired
    alert_id = await add_alert(tenant, lead_days=30)
    clock = FixedClock(NOON)
    dispatcher = world.dispatcher(smtp.port, clock)

    for _ in range(4):
        report = await dispatcher.tick()
        assert report.no_contracts == 1
        clock.advance(timedelta(minutes=10))

    assert smtp.messages == []
    rows = await deliveries(tenant, alert_id)
    assert [(r.kind, r.status, r.matched_contracts) for r in rows] == [
        ("SCHEDULED", "NO_CONTRACTS", 0)
    ]
    state = await alert_state(tenant, alert_id)
    assert (state.last_status, state.last_fired_at) == ("NO_CONTRACTS", None)

    # Later that day the contract's end moves into the window: mailed the same day.
    await set_contract_end(tenant, contract_id, NOON.date() + timedelta(days=29))
    report = await dispatcher.tick()
    assert report.sent == 1
    mails = smtp.for_alert(alert_id)
    assert len(mails) == 1
    state = await alert_state(tenant, alert_id)
    assert (state.last_status, state.last_fired_at) == ("SUCCESS", clock.now())
    await dispatcher.tick()
    assert len(smtp.for_alert(alert_id)) == 1
    rows = await deliveries(tenant, alert_id)
    assert [(r.status, r.matched_contracts) for r in rows] == [
        ("NO_CONTRACTS", 0),
        ("SUCCESS", 1),
    ]


async def test_each_alert_mails_the_contracts_of_its_own_scope_and_lead_time(
    world: World, smtp: MailCatcher
) -> None:
    tenant = await world.tenant()
    a = await add_scope(tenant, payer_name="Aetna", entity_name="North Clinic")
    b = await add_scope(tenant, payer_name="Cigna", entity_name="South Clinic")
    today = NOON.date()
    await add_contract(tenant, a, today + timedelta(days=20), number="A-20")
    await add_contract(tenant, a, today + timedelta(days=50), number="A-50")
    await add_contract(tenant, a, today, number="A-0")  # ends today: still in every window
    await add_contract(tenant, a, today - timedelta(days=1), number="A-PAST")
    await add_contract(tenant, b, today + timedelta(days=80), number="B-80")
    await add_contract(tenant, b, today + timedelta(days=10), number="B-DRAFT", status="DRAFT")
    await add_contract(tenant, b, today + timedelta(days=5), number="B-END", status="TERMINATED")
    alerts = {
        "aetna 30": await add_alert(tenant, lead_days=30, payer_id=a.payer_id),
        "aetna 60": await add_alert(tenant, lead_days=60, payer_id=a.payer_id),
        "all 90": await add_alert(tenant, lead_days=90),
        "cigna 30": await add_alert(tenant, lead_days=30, payer_id=b.payer_id),
        "south 90": await add_alert(tenant, lead_days=90, billing_entity_id=b.billing_entity_id),
    }

    report = await world.dispatcher(smtp.port, FixedClock(NOON)).tick()

    assert (report.sent, report.no_contracts) == (4, 1)
    numbers = {}
    for name, alert_id in alerts.items():
        mails = smtp.for_alert(alert_id)
        body = mails[0].get_body(preferencelist=("plain",)).get_content() if mails else ""
        numbers[name] = sorted(n for n in ("A-0", "A-20", "A-50", "B-80") if n in body)
        assert not any(n in body for n in ("A-PAST", "B-DRAFT", "B-END"))
    assert numbers == {
        "aetna 30": ["A-0", "A-20"],
        "aetna 60": ["A-0", "A-20", "A-50"],
        "all 90": ["A-0", "A-20", "A-50", "B-80"],
        "cigna 30": [],
        "south 90": ["B-80"],
    }
    for name, alert_id in alerts.items():
        [row] = await deliveries(tenant, alert_id)
        assert row.matched_contracts == len(numbers[name])
        assert len(row.matched_contract_ids) == len(numbers[name])


async def test_smtp_failure_is_recorded_retried_with_backoff_then_sent_once(
    world: World, smtp: MailCatcher
) -> None:
    tenant, alert_id = await one_due_alert(world)
    clock = FixedClock(NOON)
    dispatcher = world.dispatcher(smtp.port, clock)
    smtp.data_reply = "451 4.3.0 Mail server temporarily rejected message"

    assert (await dispatcher.tick()).failed == 1
    state = await alert_state(tenant, alert_id)
    assert state.last_status == "FAILED"
    assert state.last_error == (
        "Temporary SMTP failure: 451 4.3.0 Mail server temporarily rejected message"
    )
    assert state.last_fired_at is None
    [first] = await deliveries(tenant, alert_id)
    assert (first.status, first.error, first.retry_at) == (
        "FAILED",
        state.last_error,
        NOON + timedelta(minutes=1),
    )

    # Not every tick: nothing until the retry time (1 min), then 2 min after the next failure.
    clock.advance(timedelta(seconds=30))
    assert (await dispatcher.tick()).due == 0
    clock.advance(timedelta(seconds=31))
    assert (await dispatcher.tick()).failed == 1
    second = (await deliveries(tenant, alert_id))[-1]
    assert second.retry_at == clock.now() + timedelta(minutes=2)
    smtp.data_reply = None  # the relay recovers
    clock.advance(timedelta(minutes=1))
    assert (await dispatcher.tick()).due == 0
    clock.advance(timedelta(minutes=1, seconds=1))
    assert (await dispatcher.tick()).sent == 1
    for _ in range(3):
        clock.advance(timedelta(minutes=15))
        await dispatcher.tick()

    assert len(smtp.for_alert(alert_id)) == 1
    rows = await deliveries(tenant, alert_id)
    assert [r.status for r in rows] == ["FAILED", "FAILED", "SUCCESS"]
    assert len({r.message_id for r in rows}) == 1, "a resend carries the same Message-ID"
    state = await alert_state(tenant, alert_id)
    assert (state.last_status, state.last_error) == ("SUCCESS", None)
    assert state.last_fired_at == clock.now() - timedelta(minutes=45)


async def test_unreachable_relay_and_permanent_refusal_read_differently(
    world: World, smtp: MailCatcher
) -> None:
    tenant = await world.tenant()
    scope = await add_scope(tenant)
    await add_contract(tenant, scope, NOON.date() + timedelta(days=3))
    down = await add_alert(tenant, lead_days=30)
    refused = await add_alert(tenant, lead_days=60, recipients=["nobody@clinic.example"])
    smtp.refuse.add("nobody@clinic.example")
    clock = FixedClock(NOON)
    closed_port = free_port()

    await world.dispatcher(closed_port, clock).tick()
    state = await alert_state(tenant, down)
    assert state.last_status == "FAILED"
    assert state.last_error.startswith(
        f"Temporary SMTP failure: cannot connect to 127.0.0.1:{closed_port}:"
    )
    assert "Connect call failed" in state.last_error

    clock.advance(timedelta(minutes=5))
    await world.dispatcher(smtp.port, clock).tick()
    state = await alert_state(tenant, refused)
    assert state.last_status == "FAILED"
    assert state.last_error == (
        "Permanent SMTP failure: every recipient was refused: 550 5.1.1 "
        "<nobody@clinic.example>: Recipient address rejected: User unknown "
        "(nobody@clinic.example)"
    )
    assert (await alert_state(tenant, down)).last_status == "SUCCESS"


async def test_two_dispatchers_ticking_at_once_send_one_mail_per_alert(
    world: World, smtp: MailCatcher
) -> None:
    tenant = await world.tenant()
    alert_ids = []
    for n in range(12):
        scope = await add_scope(tenant, payer_name=f"Payer {n}")
        await add_contract(tenant, scope, NOON.date() + timedelta(days=40))
        alert_ids.append(await add_alert(tenant, lead_days=60, payer_id=scope.payer_id))
    clock = FixedClock(NOON)
    replicas = [world.dispatcher(smtp.port, clock) for _ in range(2)]

    for day in range(3):
        reports = await asyncio.gather(*(replica.tick() for replica in replicas))
        assert sum(report.sent for report in reports) == len(alert_ids)
        # Whatever both replicas saw as due and one of them did not send, it skipped.
        assert sum(r.due for r in reports) == len(alert_ids) + sum(r.skipped for r in reports)
        assert all(report.tenants_failed == 0 for report in reports)
        reports = await asyncio.gather(*(replica.tick() for replica in replicas))
        assert sum(report.sent for report in reports) == 0
        for alert_id in alert_ids:
            assert len(smtp.for_alert(alert_id)) == day + 1
        clock.advance(timedelta(days=1))

    for alert_id in alert_ids:
        rows = await deliveries(tenant, alert_id)
        assert [r.status for r in rows] == ["SUCCESS"] * 3


async def test_a_claim_left_by_a_crashed_dispatcher_becomes_outcome_unknown_and_is_not_resent(
    world: World, smtp: MailCatcher
) -> None:
    tenant, alert_id = await one_due_alert(world)
    clock = FixedClock(NOON)
    dispatcher = world.dispatcher(smtp.port, clock, CONTRACT_EXPIRY_CLAIM_TIMEOUT_SECONDS=600)
    crashed_at = NOON - timedelta(minutes=4)
    async with tenant_session(tenant) as session:
        await session.execute(
            sa.insert(contract_expiry_alert_delivery).values(
                alert_id=alert_id,
                kind="SCHEDULED",
                status="SENDING",
                local_day=NOON.date(),
                attempted_at=crashed_at,
                matched_contracts=1,
                recipients=["contracts@clinic.example"],
                subject="Contracts expiring within 30 days",
            )
        )

    # Younger than the claim timeout: the sender may still be at work, so hands off.
    report = await dispatcher.tick()
    assert (report.due, report.abandoned_claims) == (0, 0)
    clock.advance(timedelta(minutes=7))  # 11 minutes after the claim
    report = await dispatcher.tick()
    assert (report.abandoned_claims, report.due) == (1, 0)
    [row] = await deliveries(tenant, alert_id)
    assert (row.status, row.error, row.retry_at) == ("FAILED", OUTCOME_UNKNOWN, None)
    assert row.error.startswith(
        "Outcome unknown: the dispatcher stopped while sending; the mail may or may not have left"
    )
    state = await alert_state(tenant, alert_id)
    assert (state.last_status, state.last_error) == ("FAILED", OUTCOME_UNKNOWN)

    for _ in range(4):  # the rest of the day: not resent automatically
        clock.advance(timedelta(hours=2))
        await dispatcher.tick()
    assert smtp.messages == []
    clock.instant = datetime(2026, 3, 11, 9, 0, tzinfo=UTC)
    assert (await dispatcher.tick()).sent == 1
    assert len(smtp.for_alert(alert_id)) == 1


async def test_a_tenant_with_a_broken_database_does_not_stop_another_tenants_mail(
    world: World, smtp: MailCatcher
) -> None:
    broken = await world.tenant()
    healthy = await world.tenant()
    alerts = {}
    for tenant in (broken, healthy):
        scope = await add_scope(tenant)
        await add_contract(tenant, scope, NOON.date() + timedelta(days=3))
        alerts[tenant.slug] = await add_alert(tenant)
    await provision.drop_databases(world.server_url, broken.database_name)
    dispatcher = world.dispatcher(smtp.port, FixedClock(NOON))

    report = await dispatcher.tick()

    assert (report.tenants, report.tenants_failed, report.sent) == (2, 1, 1)
    assert len(smtp.for_alert(alerts[healthy.slug])) == 1


async def test_stopping_mid_tick_finishes_the_mail_in_flight_and_claims_nothing_new(
    world: World, smtp: MailCatcher
) -> None:
    tenants = [await world.tenant(f"s{n}-{secrets.token_hex(2)}") for n in range(2)]
    alerts = []
    for tenant in tenants:
        scope = await add_scope(tenant)
        await add_contract(tenant, scope, NOON.date() + timedelta(days=3))
        alerts.append(await add_alert(tenant))
    smtp.data_delay = 0.5
    dispatcher = world.dispatcher(smtp.port, FixedClock(NOON), CONTRACT_EXPIRY_TENANT_CONCURRENCY=1)

    tick = asyncio.create_task(dispatcher.tick())
    await asyncio.to_thread(smtp.data_started.wait, 10)  # the first mail is in flight
    dispatcher.stop()
    report = await asyncio.wait_for(tick, timeout=10)

    assert (report.tenants, report.sent) == (2, 1)
    done = [await deliveries(t, a) for t, a in zip(tenants, alerts, strict=True)]
    assert sorted(len(rows) for rows in done) == [0, 1], "the second tenant was not started"
    [row] = [rows[0] for rows in done if rows]
    assert row.status == "SUCCESS", "the mail in flight was recorded, not left SENDING"
    assert len(smtp.messages) == 1


async def test_paused_alerts_are_not_due(world: World, smtp: MailCatcher) -> None:
    tenant = await world.tenant()
    scope = await add_scope(tenant)
    await add_contract(tenant, scope, NOON.date() + timedelta(days=3))
    alert_id = await add_alert(tenant, active=False)

    report = await world.dispatcher(smtp.port, FixedClock(NOON)).tick()

    assert (report.due, smtp.messages) == (0, [])
    assert (await alert_state(tenant, alert_id)).last_status is None


async def test_disabled_dispatcher_sends_nothing_and_says_so_in_its_heartbeat(
    world: World, smtp: MailCatcher, redis_url: str
) -> None:
    tenant = await world.tenant()
    scope = await add_scope(tenant)
    await add_contract(tenant, scope, NOON.date() + timedelta(days=3))
    await add_alert(tenant)
    redis = Redis.from_url(redis_url)
    try:
        dispatcher = world.dispatcher(
            smtp.port, FixedClock(NOON), redis=redis, CONTRACT_EXPIRY_ALERTS_ENABLED=False
        )
        key = dispatcher_status.status_key(world.master_url)
        running = asyncio.create_task(dispatcher.run())
        status = None
        for _ in range(100):
            status = await dispatcher_status.read(redis, key)
            if status is not None:
                break
            await asyncio.sleep(0.05)
        dispatcher.stop()
        await asyncio.wait_for(running, timeout=5)
        assert status == dispatcher_status.DispatcherStatus(
            enabled=False, interval_ms=60_000, last_tick_at=None
        )
        assert smtp.messages == []
        ttl = await redis.pttl(key)
        assert 60_000 * 3 < ttl <= 60_000 * 3 + 60_000
    finally:
        await redis.aclose()


async def test_enabled_dispatcher_ticks_at_once_and_publishes_its_last_tick(
    world: World, smtp: MailCatcher, redis_url: str
) -> None:
    await world.tenant()
    redis = Redis.from_url(redis_url)
    try:
        dispatcher = world.dispatcher(
            smtp.port, FixedClock(NOON), redis=redis, CONTRACT_EXPIRY_INTERVAL_MS=15_000
        )
        running = asyncio.create_task(dispatcher.run())
        key = dispatcher_status.status_key(world.master_url)
        status = None
        for _ in range(100):
            status = await dispatcher_status.read(redis, key)
            if status is not None:
                break
            await asyncio.sleep(0.05)
        dispatcher.stop()
        await asyncio.wait_for(running, timeout=5)
        assert status == dispatcher_status.DispatcherStatus(True, 15_000, NOON)
        assert dispatcher.health()[0] is True
    finally:
        await redis.aclose()


@pytest.mark.parametrize("interval", ["14999", "1800001", "0"])
async def test_an_interval_outside_the_range_refuses_to_start(interval: str) -> None:
    env = {**os.environ, "CONTRACT_EXPIRY_INTERVAL_MS": interval, "JWT_SECRET": ""}
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "contract_registry.dispatcher"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "contracts-dispatcher: refusing to start" in result.stderr
    assert (
        "CONTRACT_EXPIRY_INTERVAL_MS: must be between 15000 and 1800000 milliseconds "
        f"(15 s to 30 min) (got '{interval}')"
    ) in result.stderr


def test_the_interval_bounds_themselves_are_accepted() -> None:
    for interval in (15_000, 1_800_000):
        accepted = DispatcherSettings(CONTRACT_EXPIRY_INTERVAL_MS=interval)
        assert interval == accepted.CONTRACT_EXPIRY_INTERVAL_MS


async def test_the_process_serves_health_and_metrics_mails_and_exits_0_on_sigterm(
    world: World, smtp: MailCatcher, redis_url: str
) -> None:
    tenant = await world.tenant()
    scope = await add_scope(tenant)
    await add_contract(tenant, scope, datetime.now(UTC).date() + timedelta(days=3))
    alert_id = await add_alert(tenant)
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": world.master_url,
        "REDIS_URL": redis_url,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp.port),
        "DISPATCHER_HEALTH_PORT": str(port),
        "LOG_FORMAT": "json",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "contract_registry.dispatcher",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    health = await client.get("/healthz")
                    if health.json().get("last_tick_at"):
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "no tick reported on /healthz"
                await asyncio.sleep(0.1)
            assert health.status_code == 200
            assert health.json()["status"] == "ok"
            metrics = (await client.get("/metrics")).text
        assert 'contract_expiry_ticks_total{result="completed"} 1.0' in metrics
        assert 'contract_expiry_deliveries_total{kind="SCHEDULED",status="SUCCESS"} 1.0' in metrics
        assert "contract_expiry_tick_duration_seconds_count 1.0" in metrics
        assert "contract_expiry_last_tick_timestamp_seconds" in metrics
        assert len(smtp.for_alert(alert_id)) == 1

        process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert await asyncio.wait_for(process.wait(), timeout=15) == 0
        assert time.monotonic() - started < 5
        assert process.stderr is not None
        logs = (await process.stderr.read()).decode()
        assert "dispatcher.stopped" in logs
        assert "contracts@clinic.example" not in logs, "no address in a log line"
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
