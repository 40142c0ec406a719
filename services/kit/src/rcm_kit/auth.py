"""Bearer JWT verification and permission checks, as FastAPI dependencies.

HS256 tokens are checked against ``JWT_SECRET``; RS256/ES256 tokens against the keys
published at ``JWT_JWKS_URL``. ``iss`` and ``aud`` are enforced when configured. The
tenant comes from the ``tenant_id`` claim and the permissions from ``perms``. Each
service verifies tokens itself: it never trusts the gateway to have done it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import anyio
import jwt

from rcm_kit.errors import Forbidden, Unauthenticated

ASYMMETRIC = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512")

ELIGIBILITY_READ = "eligibility.read"
ELIGIBILITY_UPDATE = "eligibility.update"
ELIGIBILITY_INBOUND = "eligibility.inbound"
CONFIG_READ = "config.read"
CONFIG_UPDATE = "config.update"
ALL_PERMISSIONS = (
    ELIGIBILITY_READ,
    ELIGIBILITY_UPDATE,
    ELIGIBILITY_INBOUND,
    CONFIG_READ,
    CONFIG_UPDATE,
)


@dataclass(frozen=True)
class Principal:
    subject: str
    tenant_id: UUID
    permissions: frozenset[str]

    def require_any(self, *permissions: str) -> None:
        if not self.permissions.intersection(permissions):
            raise Forbidden(f"This action needs the permission {' or '.join(permissions)}.")


class TokenVerifier:
    def __init__(
        self,
        *,
        secret: str | None,
        jwks_url: str | None,
        issuer: str | None,
        audience: str | None,
    ) -> None:
        self._secret = secret
        self._issuer = issuer
        self._audience = audience
        self._jwks = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=300) if jwks_url else None

    async def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated("The bearer token is not a readable JWT.") from None
        algorithm = header.get("alg")
        key: Any
        if algorithm == "HS256" and self._secret:
            key = self._secret
        elif algorithm in ASYMMETRIC and self._jwks is not None:
            jwks = self._jwks
            try:
                # PyJWKClient fetches with urllib: keep the event loop free while it does.
                key = (await anyio.to_thread.run_sync(jwks.get_signing_key_from_jwt, token)).key
            except jwt.PyJWKClientError as error:
                raise Unauthenticated(f"The token's signing key cannot be found: {error}") from None
        else:
            raise Unauthenticated(f"Tokens signed with {algorithm!r} are not accepted here.")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                issuer=self._issuer,
                audience=self._audience,
                options={
                    "require": ["exp", "sub", "tenant_id"],
                    "verify_aud": self._audience is not None,
                    "verify_iss": self._issuer is not None,
                },
                leeway=30,
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("The bearer token has expired.") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated("The bearer token is meant for another audience.") from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated(
                "The bearer token comes from an issuer not trusted here."
            ) from None
        except jwt.InvalidSignatureError:
            raise Unauthenticated("The bearer token's signature does not verify.") from None
        except jwt.MissingRequiredClaimError as error:
            raise Unauthenticated(f"The bearer token lacks the {error.claim!r} claim.") from None
        except jwt.PyJWTError as error:
            raise Unauthenticated(f"The bearer token is invalid: {error}") from None
        try:
            tenant_id = UUID(str(claims["tenant_id"]))
        except ValueError:
            raise Unauthenticated("The token's tenant_id claim is not a UUID.") from None
        perms = claims.get("perms", [])
        if isinstance(perms, str):
            perms = perms.replace(",", " ").split()
        return Principal(str(claims["sub"]), tenant_id, frozenset(str(p) for p in perms))


def bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise Unauthenticated("This route needs an Authorization: Bearer token.")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("The Authorization header must be 'Bearer <token>'.")
    return token.strip()


def issue_token(
    secret: str,
    *,
    tenant_id: UUID,
    perms: list[str],
    subject: str,
    ttl_seconds: int,
    issuer: str | None = None,
    audience: str | None = None,
    now: int | None = None,
) -> str:
    """An HS256 token for development, scripts and tests (``rcm token``)."""
    import time

    issued = int(time.time()) if now is None else now
    claims: dict[str, Any] = {
        "sub": subject,
        "tenant_id": str(tenant_id),
        "perms": perms,
        "iat": issued,
        "exp": issued + ttl_seconds,
    }
    if issuer:
        claims["iss"] = issuer
    if audience:
        claims["aud"] = audience
    return jwt.encode(claims, secret, algorithm="HS256")
