"""Who is calling: HTTP Basic, a bearer token, or CORE's UserName/Password fields.

By default the sandbox accepts anything, so the product can be pointed at it with
whatever credentials a trading partner row holds. Once ``username``/``password`` or
``token`` is configured, one of the offered credentials must match.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass

from clearinghouse_sandbox.config import SandboxConfig

UNAUTHORIZED_TEXT = "Unauthorized: sandbox rejects these credentials"


@dataclass(frozen=True, slots=True)
class Credentials:
    basic: tuple[str, str] | None = None
    bearer: str | None = None
    core: tuple[str, str] | None = None
    """CORE UserName/Password, when the request came as a CORE envelope."""

    @classmethod
    def from_header(
        cls, authorization: str | None, core: tuple[str, str] | None = None
    ) -> Credentials:
        scheme, _, value = (authorization or "").strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer" and value:
            return cls(bearer=value, core=core)
        if scheme.lower() == "basic" and value:
            return cls(basic=_basic(value), core=core)
        return cls(core=core)


def _basic(value: str) -> tuple[str, str] | None:
    try:
        decoded = base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, separator, password = decoded.partition(":")
    return (user, password) if separator else None


def accepts(config: SandboxConfig, credentials: Credentials) -> bool:
    """True when no credentials are configured, or when one offered matches."""
    if not config.requires_credentials:
        return True
    if config.token and credentials.bearer and _same(credentials.bearer, config.token):
        return True
    if not (config.username or config.password):
        return False
    for pair in (credentials.basic, credentials.core):
        if (
            pair is not None
            and _same(pair[0], config.username or "")
            and _same(pair[1], config.password or "")
        ):
            return True
    return False


def _same(offered: str, expected: str) -> bool:
    return hmac.compare_digest(offered.encode(), expected.encode())
