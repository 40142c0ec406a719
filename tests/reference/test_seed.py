from __future__ import annotations

from datetime import date

from rcm_kit.plugins import SeedContext
from rcm_reference.plugin import PLUGIN
from rcm_reference.seed import npi
from tests.conftest import TenantFactory, tenant_session
from tests.reference.files import count


def test_npi_check_digit_follows_cms_luhn() -> None:
    assert npi("123456789") == "1234567893"  # the example in the CMS NPI check-digit note


async def test_seed_is_idempotent(make_tenant: TenantFactory) -> None:
    tenant = await make_tenant()
    assert PLUGIN.seed is not None

    summaries = []
    for _ in range(2):
        async with tenant_session(tenant) as session:
            summaries.append(await PLUGIN.seed(SeedContext(session, date.today(), tenant.slug)))

    assert summaries[0].endswith("(19 inserted, 0 updated)")
    assert summaries[1].endswith("(0 inserted, 0 updated)")
    async with tenant_session(tenant) as session:
        assert await count(session, "ref.facility") == 4
        assert await count(session, "ref.payer") >= 8
        assert await count(session, "ref.billing_entity") == 3
