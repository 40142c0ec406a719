"""Authentication of a trading partner delivering a late answer with its inbound
credential (``POST /api/v1/eligibility/inbound/{trading_partner_id}``).

No JWT here: partners hold one long random credential, sent as the HTTP Basic password
(any user name) or as a bearer token. The credential names its tenant (see
``credentials.new_inbound_credential``); its digest is compared with the partner's in
that tenant's database. Every way of being wrong answers the same 401, so a caller
learns nothing about which tenants or partners exist (a suspended tenant, like
everywhere, answers 403).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from fastapi import Depends, Request

from eligibility_sweeps.trading_partner.credentials import tenant_of_credential
from eligibility_sweeps.trading_partner.repository import verify_inbound_credential
from rcm_kit.errors import Forbidden, Unauthenticated
from rcm_kit.service import Runtime, get_runtime
from rcm_kit.tenancy import Tenant

AUTHENTICATES = "trading partner inbound credential"
_REFUSED = (
    "An inbound credential of this trading partner is required: the HTTP Basic password "
    "or a bearer token, as issued when the partner was created or its credential rotated."
)


@dataclass(frozen=True, slots=True)
class PartnerCaller:
    runtime: Runtime
    tenant: Tenant
    trading_partner_id: UUID


def presented_credential(authorization: str | None) -> str | None:
    """The credential in an ``Authorization`` header: a bearer token or a Basic password."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return value or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2] or None
    return None


def partner_credential() -> Any:
    """Dependency: the caller proved to be the partner of the path, in its tenant."""

    async def dependency(request: Request, trading_partner_id: UUID) -> PartnerCaller:
        presented = presented_credential(request.headers.get("authorization"))
        tenant_id = tenant_of_credential(presented) if presented else None
        if presented is None or tenant_id is None:
            raise _refused()
        runtime = get_runtime(request)
        tenant = await runtime.directory.get(tenant_id)
        if tenant is None:
            raise _refused()
        async with runtime.directory.transaction(tenant) as session:
            if not await verify_inbound_credential(session, trading_partner_id, presented):
                raise _refused()
        # Only after the credential is proved: a forged one must not learn the tenant is
        # suspended (the tenant id in a credential is not secret).
        if not tenant.active:
            raise Forbidden("This trading partner's organization is suspended.")
        return PartnerCaller(runtime, tenant, trading_partner_id)

    # The auth tests read this marker: the route is protected, by a credential not a JWT.
    dependency.authenticates = AUTHENTICATES  # type: ignore[attr-defined]
    return Depends(dependency)


def _refused() -> Unauthenticated:
    return Unauthenticated(_REFUSED, headers={"WWW-Authenticate": 'Basic realm="inbound"'})
