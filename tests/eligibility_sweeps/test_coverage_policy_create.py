"""The intake desk adds a coverage policy: 201 with the policy, 422s naming each field,
an unknown payer, a duplicate (409), another tenant's member (404), the permission, the
audit row, and nothing stored after a refusal."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest

from eligibility_sweeps.x12.charset import x12_name
from rcm_kit.tenancy import Tenant
from tests.conftest import TenantFactory, auth, scalar, tenant_session
from tests.eligibility_sweeps.factories import add_member, add_payer
from tests.eligibility_sweeps.test_members_api import audit_rows

WRITE, READ = "eligibility.update", "eligibility.read"
AddPolicy = Callable[..., Awaitable[httpx.Response]]


@pytest.fixture
async def tenant(make_tenant: TenantFactory) -> Tenant:
    return await make_tenant()


@pytest.fixture
async def ids(tenant: Tenant) -> dict[str, UUID]:
    async with tenant_session(tenant) as session:
        return {
            "member_id": await add_member(session, "MRN-1"),
            "payer_id": await add_payer(session, "60054", "Aetna"),
        }


def policy(payer_id: UUID, **values: Any) -> dict[str, Any]:
    return {
        "payer_id": str(payer_id),
        "subscriber_id": "W123456789",
        "effective_from": "2025-01-01",
        **values,
    }


async def post(
    client: httpx.AsyncClient,
    tenant: Tenant,
    member_id: UUID,
    body: dict[str, Any],
    perms: str = WRITE,
    **claims: Any,
) -> httpx.Response:
    return await client.post(
        f"/api/v1/members/{member_id}/coverage-policies",
        json=body,
        headers=auth(tenant, perms, **claims),
    )


def dependent(relationship: str = "child", **subscriber: str) -> dict[str, str]:
    """A dependent's policy values: the subscriber's names and date of birth."""
    return {
        "relationship": relationship,
        "subscriber_first_name": "Ana",
        "subscriber_last_name": "Lee",
        "subscriber_date_of_birth": "1960-01-02",
        **subscriber,
    }


@pytest.fixture
def add_policy(sweeps: httpx.AsyncClient, tenant: Tenant, ids: dict[str, UUID]) -> AddPolicy:
    """``add_policy(**values)`` posts ``policy(payer, **values)`` for the member;
    ``perms`` and ``claims`` go into its token."""

    async def add(
        perms: str = WRITE, claims: dict[str, Any] | None = None, **values: Any
    ) -> httpx.Response:
        body = policy(ids["payer_id"], **values)
        return await post(sweeps, tenant, ids["member_id"], body, perms, **(claims or {}))

    return add


async def stored_policies(tenant: Tenant) -> int:
    async with tenant_session(tenant) as session:
        count: int = await scalar(session, "SELECT count(*) FROM member.coverage_policy")
        return count


def locs(response: httpx.Response) -> list[list[Any]]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return [error["loc"] for error in response.json()["errors"]]


async def test_a_new_policy_is_answered_and_listed_on_the_member(
    sweeps: httpx.AsyncClient, tenant: Tenant, ids: dict[str, UUID], add_policy: AddPolicy
) -> None:
    response = await add_policy(subscriber_id="  W123 456/7.8-9 ", effective_to="2025-12-31")

    assert response.status_code == 201, response.text
    created = response.json()
    assert created == {
        "coverage_policy_id": created["coverage_policy_id"],
        "payer_id": str(ids["payer_id"]),
        "payer_code": "60054",
        "payer_name": "Aetna",
        "subscriber_id": "W123 456/7.8-9",
        "effective_from": "2025-01-01",
        "effective_to": "2025-12-31",
        "priority": 1,
        "relationship": "self",
        "subscriber_first_name": None,
        "subscriber_last_name": None,
        "subscriber_date_of_birth": None,
    }
    detail = await sweeps.get(f"/api/v1/members/{ids['member_id']}", headers=auth(tenant, READ))
    assert detail.json()["coverage_policies"] == [created]


async def test_a_dependents_policy_carries_the_subscriber(add_policy: AddPolicy) -> None:
    response = await add_policy(
        priority=2,
        **dependent(
            subscriber_first_name=" José ",
            subscriber_last_name="Müller-O'Brien",
            subscriber_date_of_birth="1960-01-02",
        ),
    )

    assert response.status_code == 201, response.text
    created = response.json()
    assert (created["relationship"], created["priority"]) == ("child", 2)
    # Stored as typed (trimmed); the 270 builder upper-cases and transliterates.
    assert created["subscriber_first_name"] == "José"
    assert created["subscriber_last_name"] == "Müller-O'Brien"
    assert created["subscriber_date_of_birth"] == "1960-01-02"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"subscriber_id": "   "}, "subscriber_id"),
        ({"subscriber_id": "W" * 81}, "subscriber_id"),
        ({"subscriber_id": "W12*345"}, "subscriber_id"),
        ({"subscriber_id": "W12~345"}, "subscriber_id"),
        ({"subscriber_id": "WÄ12345"}, "subscriber_id"),
        ({"subscriber_id": "W12\t345"}, "subscriber_id"),
        ({"effective_from": None}, "effective_from"),
        ({"effective_from": "01/02/2025"}, "effective_from"),
        ({"effective_to": "2024-12-31"}, "effective_to"),
        ({"priority": 0}, "priority"),
        ({"priority": 10}, "priority"),
        ({"relationship": "parent"}, "relationship"),
        ({"payer_id": "not-a-uuid"}, "payer_id"),
        ({"subscriber_first_name": "Ana"}, "subscriber_first_name"),
        ({"subscriber_last_name": "Lee"}, "subscriber_last_name"),
        ({"subscriber_date_of_birth": "1960-01-02"}, "subscriber_date_of_birth"),
        ({"member_id": "x"}, "member_id"),
    ],
)
async def test_each_bad_field_is_named(
    sweeps: httpx.AsyncClient,
    tenant: Tenant,
    ids: dict[str, UUID],
    changes: dict[str, Any],
    field: str,
) -> None:
    body = {k: v for k, v in {**policy(ids["payer_id"]), **changes}.items() if v is not None}

    response = await post(sweeps, tenant, ids["member_id"], body)

    assert locs(response) == [[field]]
    assert await stored_policies(tenant) == 0


async def test_the_subscriber_id_rule_is_stated(add_policy: AddPolicy) -> None:
    response = await add_policy(subscriber_id="W1*2")

    [error] = response.json()["errors"]
    assert error["loc"] == ["subscriber_id"]
    assert "letters A-Z, digits, spaces and the characters - . /" in error["msg"]
    assert "W1*2" not in response.text


async def test_a_dependent_without_the_subscriber_names_each_missing_field(
    add_policy: AddPolicy,
) -> None:
    response = await add_policy(relationship="spouse", subscriber_last_name="Lee")

    assert locs(response) == [["subscriber_first_name"], ["subscriber_date_of_birth"]]
    assert all(
        "required when relationship is spouse" in e["msg"] for e in response.json()["errors"]
    )


async def test_subscriber_fields_for_self_are_refused(add_policy: AddPolicy) -> None:
    response = await add_policy(
        subscriber_first_name="Ana",
        subscriber_last_name="Lee",
        subscriber_date_of_birth="1980-05-17",
    )

    assert locs(response) == [
        ["subscriber_first_name"],
        ["subscriber_last_name"],
        ["subscriber_date_of_birth"],
    ]
    assert all("only for a dependent's policy" in e["msg"] for e in response.json()["errors"])


@pytest.mark.parametrize(
    ("field", "name", "message"),
    [
        ("subscriber_last_name", "Østergaard", "character 'Ø' (U+00D8) is not in the X12"),
        ("subscriber_last_name", "Smith*Jones", "contains the delimiter '*'"),
        ("subscriber_first_name", "Ana\tMaria", "character '\\t' (U+0009)"),
        ("subscriber_first_name", "王", "character '王'"),
        ("subscriber_last_name", "L" * 61, "61 characters, the limit is 60"),
        ("subscriber_first_name", "F" * 36, "36 characters, the limit is 35"),
        ("subscriber_last_name", "  ", "at least 1 character"),
    ],
)
async def test_subscriber_names_must_be_writable_in_x12(
    tenant: Tenant, add_policy: AddPolicy, field: str, name: str, message: str
) -> None:
    response = await add_policy(**dependent(**{field: name}))

    [error] = response.json()["errors"]
    assert error["loc"] == [field]
    assert message in error["msg"]
    assert await stored_policies(tenant) == 0


def test_the_intake_rule_is_the_builders_rule() -> None:
    # Accepted at intake means sendable: the validator calls the builder's own function.
    assert x12_name("  José  Müller ", max_len=60) == "JOSE MULLER"
    with pytest.raises(ValueError, match="character 'Ø'"):
        x12_name("Øst", max_len=60)


async def test_a_date_of_birth_in_the_future_is_refused(
    tenant: Tenant, add_policy: AddPolicy
) -> None:
    tomorrow = date.today() + timedelta(days=2)

    response = await add_policy(**dependent("other", subscriber_date_of_birth=tomorrow.isoformat()))

    assert locs(response) == [["subscriber_date_of_birth"]]
    assert "in the future" in response.json()["errors"][0]["msg"]
    assert await stored_policies(tenant) == 0


async def test_an_unknown_payer_is_named(
    sweeps: httpx.AsyncClient, tenant: Tenant, ids: dict[str, UUID], make_tenant: TenantFactory
) -> None:
    other = await make_tenant()
    async with tenant_session(other) as session:
        their_payer = await add_payer(session, "87726")

    for payer_id in (uuid4(), their_payer):
        response = await post(sweeps, tenant, ids["member_id"], policy(payer_id))

        assert locs(response) == [["payer_id"]]
        assert response.json()["errors"][0]["msg"] == "no payer with this id in your organization"
    assert await stored_policies(tenant) == 0
    assert await audit_rows(tenant, "coverage_policy") == []


async def test_the_same_payer_and_subscriber_id_twice_is_a_conflict(
    tenant: Tenant, add_policy: AddPolicy
) -> None:
    first = await add_policy()
    assert first.status_code == 201, first.text

    again = await add_policy(subscriber_id=" W123456789 ")

    assert again.status_code == 409, again.text
    assert again.headers["content-type"] == "application/problem+json"
    existing = first.json()["coverage_policy_id"]
    assert again.json()["coverage_policy_id"] == existing
    assert existing in again.json()["detail"]
    assert await stored_policies(tenant) == 1
    other_id = await add_policy(subscriber_id="W987")
    assert other_id.status_code == 201, other_id.text


async def test_an_unknown_or_foreign_member_is_not_found(
    sweeps: httpx.AsyncClient, tenant: Tenant, ids: dict[str, UUID], make_tenant: TenantFactory
) -> None:
    other = await make_tenant()
    async with tenant_session(other) as session:
        their_member = await add_member(session, "MRN-1")

    for member_id in (uuid4(), their_member):
        response = await post(sweeps, tenant, member_id, policy(ids["payer_id"]))

        assert response.status_code == 404, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["title"] == "Member not found"
    assert await stored_policies(tenant) == 0
    assert await stored_policies(other) == 0


async def test_adding_a_policy_needs_eligibility_update(
    tenant: Tenant, add_policy: AddPolicy
) -> None:
    response = await add_policy(perms=f"{READ},config.update")

    assert response.status_code == 403
    assert await stored_policies(tenant) == 0


async def test_adding_a_policy_is_audited_without_patient_data(
    tenant: Tenant, ids: dict[str, UUID], add_policy: AddPolicy
) -> None:
    names = dependent(
        subscriber_first_name="Zebulon",
        subscriber_last_name="Quintero",
        subscriber_date_of_birth="1960-01-02",
    )

    response = await add_policy(claims={"sub": "intake.desk"}, **names)

    assert response.status_code == 201, response.text
    [row] = await audit_rows(tenant, "coverage_policy")
    assert (row.actor, row.action) == ("intake.desk", "CREATE")
    assert row.entity_id == response.json()["coverage_policy_id"]
    assert row.request_id == response.headers["x-request-id"]
    assert row.detail == {
        "member_id": str(ids["member_id"]),
        "fields": [
            "effective_from",
            "payer_id",
            "priority",
            "relationship",
            "subscriber_date_of_birth",
            "subscriber_first_name",
            "subscriber_id",
            "subscriber_last_name",
        ],
    }
    for secret in ("Zebulon", "Quintero", "W123456789", "1960"):
        assert secret not in str(row.detail)


async def test_the_route_is_documented(sweeps: httpx.AsyncClient) -> None:
    doc = (await sweeps.get("/openapi.json")).json()
    route = doc["paths"]["/api/v1/members/{member_id}/coverage-policies"]["post"]

    assert "intake" in route["description"] or "insurance card" in route["description"]
    body = route["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"].endswith("/CoveragePolicyCreate")
    answer = route["responses"]["201"]["content"]["application/json"]["schema"]
    assert answer["$ref"].endswith("/CoveragePolicyRead")
