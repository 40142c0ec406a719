"""POST /eligibility/checks end to end: a real 270 to the clearinghouse sandbox over
HTTP on loopback, the real 271/999/TA1 it answers, and what the check stores."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import TenantFactory, auth, tenant_session
from tests.eligibility_sweeps.checks_support import (
    CHECKS,
    PASSWORD,
    READ,
    World,
    assert_valid_270,
    make_world,
)
from tests.eligibility_sweeps.factories import add_policy
from tests.eligibility_sweeps.test_members_api import audit_rows
from tests.sandbox_support import SandboxClient

# subscriber id -> (status, retryable, coverage_status, anomalies, error prefix)
RULES: dict[str, tuple[str, bool, str | None, list[str], str | None]] = {
    "SBX-ACTIVE": ("RECEIVED", False, "ACTIVE", [], None),
    "SBX-INACTIVE": ("RECEIVED", False, "INACTIVE", ["COVERAGE_INACTIVE"], None),
    "SBX-NOTFOUND": ("RECEIVED", False, "NOT_FOUND", ["MEMBER_NOT_FOUND"], None),
    "SBX-BADID": ("RECEIVED", False, "NOT_FOUND", ["MEMBER_NOT_FOUND"], None),
    "SBX-OTHERPAYER": ("RECEIVED", False, "ACTIVE", ["OTHER_PAYER_PRIMARY"], None),
    "SBX-PLANENDS": ("RECEIVED", False, "ACTIVE", ["PLAN_ENDS_SOON"], None),
    "SBX-DEMOG": ("RECEIVED", False, "ACTIVE", ["DEMOGRAPHIC_MISMATCH"], None),
    "SBX-NEWID": ("RECEIVED", False, "ACTIVE", ["MEMBER_ID_CHANGED"], None),
    "SBX-AAA42": ("FAILED", True, None, [], "AAA 42: "),
    "SBX-AAA79": ("FAILED", False, None, [], "AAA 79: "),
    "SBX-999": ("FAILED", False, None, [], "999 rejected: "),
    "SBX-TA1": ("FAILED", False, None, [], "TA1 rejected: 006 "),
    "SBX-401": ("FAILED", False, None, [], "HTTP 401 from {partner}: Unauthorized"),
    "SBX-503": ("FAILED", True, None, [], "HTTP 503 from {partner}: Service temporarily"),
}


@pytest.mark.parametrize("transport", ["x12-http", "core-mime"])
@pytest.mark.parametrize("subscriber_id", sorted(RULES))
async def test_every_sandbox_rule_through_post_checks(
    make_tenant: TenantFactory,
    api: Any,
    sandbox: SandboxClient,
    transport: str,
    subscriber_id: str,
) -> None:
    world = await make_world(make_tenant, api, sandbox)
    await world.add_partner(transport)
    status, retryable, coverage, anomalies, error = RULES[subscriber_id]
    check = await world.checked(subscriber_id, status=201)
    assert check["status"] == status, check
    assert check["retryable"] is retryable
    assert check["coverage_status"] == coverage
    assert check["anomalies"] == anomalies
    if error is None:
        assert check["error"] is None
        assert check["received_at"] is not None
        assert check["plan"]["name"] == "SANDBOX GOLD PPO" or coverage != "ACTIVE"
    else:
        assert check["error"].startswith(error.format(partner=world.partner_name)), check
    sent = await sandbox.requests(subscriber_id)
    assert len(sent) == 1
    assert sent[0]["trace_number"] == check["trace_number"]
    assert sent[0]["transport"] == transport
    assert int(sent[0]["interchange_control_number"]) == check["control_number"]


async def test_an_active_271_is_parsed_into_plan_benefits_and_dates(world: World) -> None:
    check = await world.checked("SBX-ACTIVE", status=201)
    assert check["payer_code"] == world.payer_code
    assert check["trading_partner_id"] == world.partner_id
    plan = check["plan"]
    assert plan["name"] == "SANDBOX GOLD PPO"
    assert plan["begin"] == f"{date.fromisoformat(check['service_date']).year}-01-01"
    assert plan["plan_number"]
    assert plan["group_number"]
    codes = {line["info_code"] for line in check["benefits"]}
    assert {"1", "B", "C"} <= codes
    assert any(line["amount"] is not None for line in check["benefits"])
    assert check["elapsed_ms"] > 0
    assert check["submitted_at"] <= check["received_at"]


async def test_other_payer_and_plan_end_details(world: World) -> None:
    other = await world.checked("SBX-OTHERPAYER", status=201)
    assert other["other_payers"][0]["name"] == "OTHER HEALTH PLAN"
    assert other["other_payers"][0]["entity_code"] == "PRP"
    ending = await world.checked("SBX-PLANENDS", status=201)
    service_date = date.fromisoformat(ending["service_date"])
    assert ending["plan"]["end"] == (service_date + timedelta(days=10)).isoformat()


async def test_not_found_keeps_the_rejection_in_words(world: World) -> None:
    check = await world.checked("SBX-NOTFOUND", status=201)
    assert check["rejects"][0]["reason_code"] == "75"
    assert check["rejects"][0]["loop"] == "2100C"


async def test_timeout_fails_retryable_with_the_partner_timeout(world: World) -> None:
    await world.patch_partner(timeout_seconds=1)
    check = await world.checked("SBX-HANG", status=201)
    assert check["status"] == "FAILED"
    assert check["error"] == "Timeout after 1 s"
    assert check["retryable"] is True


async def test_core_error_names_the_code(
    make_tenant: TenantFactory, api: Any, sandbox: SandboxClient
) -> None:
    world = await make_world(make_tenant, api, sandbox)
    await world.add_partner("core-mime")
    check = await world.checked("SBX-COREERR", status=201)
    assert check["status"] == "FAILED"
    assert check["error"].startswith("CORE error "), check


async def test_generated_270s_are_valid_for_subscribers_dependents_and_odd_names(
    world: World, tmp_path: Path
) -> None:
    subscriber = await world.member("SBX-ACTIVE", first_name="José", last_name="O'Brien-Müller")
    async with tenant_session(world.tenant) as session:
        dependent = await world.member("SBX-NOTUSED")
        child_policy = await add_policy(
            session,
            dependent,
            world.payer_id,
            subscriber_id="SBX-ACTIVE",
            priority=1,
            relationship="child",
            subscriber_first_name="Maria",
            subscriber_last_name="Lee",
            subscriber_date_of_birth=date(1975, 3, 4),
            effective_from=date(2020, 1, 1),
        )
    asked = ((subscriber, {}), (dependent, {"coverage_policy_id": str(child_policy)}))
    for member_id, extra in asked:
        response = await world.check(member_id, **extra)
        assert response.status_code == 201, response.text
        stored = await world.get(response.json()["check_id"], x12=True)
        assert stored["status"] == "RECEIVED", stored
        assert_valid_270(stored["request_x12"], tmp_path)
        assert stored["response_kind"] == "271"
    sent = await world.sandbox.requests()
    assert [r["dependent"] for r in sent] == [False, True]
    assert "OBRIENMULLER" in sent[0]["x12"] or "O'BRIEN" in sent[0]["x12"].upper()


async def test_a_name_x12_cannot_carry_fails_the_check_before_sending(world: World) -> None:
    member_id = await world.member("SBX-ACTIVE", last_name="Lee~*:^")
    response = await world.check(member_id)
    assert response.status_code == 201, response.text
    check = response.json()
    assert check["status"] == "FAILED"
    assert check["error"].startswith("270 not built: ")
    assert check["submitted_at"] is None
    assert await world.sandbox.requests() == []


async def test_a_payer_without_an_active_partner_fails_in_words(world: World) -> None:
    await world.patch_partner(active=False)
    check = await world.checked("SBX-ACTIVE", status=201)
    assert check["status"] == "FAILED"
    assert check["error"] == f"No active trading partner for payer {world.payer_code}"
    assert check["trading_partner_id"] is None
    assert check["retryable"] is False
    assert await world.sandbox.requests() == []


async def test_coverage_is_chosen_as_the_contract_says(world: World) -> None:
    member_id = await world.member("SBX-ACTIVE", effective_from=date(2020, 1, 1))
    old = date(2019, 6, 1)
    none_then = await world.check(member_id, service_date=old)
    assert none_then.status_code == 422
    assert none_then.json()["errors"][0]["loc"] == ["body", "service_date"]
    assert "No active coverage on the service date" in none_then.json()["errors"][0]["msg"]
    other = await world.member("SBX-INACTIVE")
    foreign_policy = (await world.check(other)).json()["coverage_policy_id"]
    wrong = await world.check(member_id, coverage_policy_id=foreign_policy)
    assert wrong.status_code == 422
    assert wrong.json()["errors"][0]["loc"] == ["body", "coverage_policy_id"]
    by_payer = await world.check(member_id, payer_id=str(world.payer_id))
    assert by_payer.status_code == 201
    unknown = await world.check(member_id, payer_id="00000000-0000-0000-0000-000000000000")
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["loc"] == ["body", "payer_id"]


async def test_history_is_kept_newest_first_and_change_anomalies_compare_with_it(
    world: World,
) -> None:
    member_id = await world.member("SBX-ACTIVE")
    first = (await world.check(member_id)).json()
    async with tenant_session(world.tenant) as session:
        await session.execute(
            sa.text(
                "UPDATE eligibility.eligibility_check SET identity = identity || "
                '\'{"plan_description": "BRONZE HMO"}\'::jsonb WHERE check_id = :id'
            ),
            {"id": first["check_id"]},
        )
    second = (await world.check(member_id)).json()
    assert second["anomalies"] == ["PLAN_CHANGED"]
    listed = await world.api.get(
        CHECKS, params={"member_id": str(member_id)}, headers=auth(world.tenant, READ)
    )
    assert [c["check_id"] for c in listed.json()["items"]] == [
        second["check_id"],
        first["check_id"],
    ]


async def test_idempotency_key_returns_the_first_answer_and_sends_once(world: World) -> None:
    member_id = await world.member("SBX-ACTIVE")
    key = {"Idempotency-Key": "retry-me-1"}
    first = await world.check(member_id, service_date=date(2026, 12, 1), headers=key)
    again = await world.check(member_id, service_date=date(2026, 12, 1), headers=key)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert len(await world.sandbox.requests()) == 1
    other_body = await world.check(member_id, service_date=date(2026, 12, 2), headers=key)
    assert other_body.status_code == 422
    assert other_body.json()["errors"][0]["loc"] == ["header", "Idempotency-Key"]


async def test_control_numbers_are_unique_across_concurrent_checks(world: World) -> None:
    members = [await world.member(f"SBX-C{i}") for i in range(12)]
    answers = await asyncio.gather(*(world.check(m) for m in members))
    assert all(a.status_code == 201 for a in answers)
    numbers = [a.json()["control_number"] for a in answers]
    assert len(set(numbers)) == len(numbers)
    sent = await world.sandbox.requests()
    assert sorted(int(r["interchange_control_number"]) for r in sent) == sorted(numbers)
    assert len({r["trace_number"] for r in sent}) == len(sent)


async def test_checks_are_audited_and_x12_reads_say_so(world: World) -> None:
    check = await world.checked("SBX-ACTIVE", status=201)
    await world.get(check["check_id"], x12=True)
    rows = await audit_rows(world.tenant, "eligibility_check")
    assert [(r.action, r.detail) for r in rows] == [
        ("CREATE", {}),
        ("READ", {"include": "x12"}),
    ]


async def test_secrets_never_appear_in_checks_or_x12(world: World) -> None:
    check = await world.checked("SBX-401", status=201)
    stored = await world.get(check["check_id"], x12=True)
    assert PASSWORD not in str(stored)


async def test_no_log_line_carries_a_secret_and_failures_are_counted(
    world: World, checks_server: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    for rule in ("SBX-401", "SBX-503", "SBX-ACTIVE"):
        await world.checked(rule, status=201)
    metrics = await world.api.get(f"{checks_server.url}/metrics")
    name = world.partner_name
    assert (
        f'eligibility_checks_total{{retryable="true",status="FAILED",trading_partner="{name}"}}'
        in (metrics.text)
    )
    assert f'eligibility_270_round_trip_seconds_count{{trading_partner="{name}"}}' in metrics.text
    out, err = capfd.readouterr()
    assert "check.failed" in out + err
    assert PASSWORD not in out + err
    assert world.partner["inbound_credential"] not in out + err


async def test_a_partner_that_carried_checks_cannot_be_deleted(world: World) -> None:
    await world.checked("SBX-ACTIVE", status=201)
    deleted = await world.api.delete(
        f"/api/v1/admin/trading-partners/{world.partner_id}",
        headers=auth(world.tenant, "config.update"),
    )
    assert deleted.status_code == 409
    assert "set active to false" in deleted.json()["detail"]
    assert (await world.patch_partner(active=False))["active"] is False
