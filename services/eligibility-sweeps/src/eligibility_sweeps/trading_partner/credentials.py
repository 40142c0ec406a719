"""Secrets of trading partners: outbound passwords and tokens encrypted with
``SECRETS_KEY`` (Fernet), inbound credentials issued once and kept as a digest."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from uuid import UUID

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr

from rcm_kit.errors import Conflict

# Tells an operator which credential a pasted value is; the 32 random bytes after it
# carry all the strength.
CREDENTIAL_PREFIX = "tpc_"


class SecretsKeyMissing(Conflict):
    title = "Secrets key not configured"


class SecretUnreadable(Exception):
    """A stored ciphertext that none of the configured keys opens (key lost or rotated out)."""


class SecretBox:
    """Encrypts with the first key, decrypts with any (so keys can be rotated)."""

    def __init__(self, keys: SecretStr) -> None:
        self._fernet = MultiFernet(
            [Fernet(key.strip()) for key in keys.get_secret_value().split(",")]
        )

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise SecretUnreadable("no configured SECRETS_KEY decrypts this secret") from None


def require_box(box: SecretBox | None) -> SecretBox:
    if box is None:
        raise SecretsKeyMissing(
            "SECRETS_KEY is not configured on the sweeps service, so a password or token "
            "cannot be stored. Set it to a Fernet key and restart, or use auth type none."
        )
    return box


def new_inbound_credential(tenant_id: UUID) -> str:
    """``tpc_<tenant id, 32 hex>_<43 random characters>``.

    The tenant id is not secret: it tells the credential-only inbound route which
    tenant's database holds the digest to compare with, since that route has no JWT.
    """
    return f"{CREDENTIAL_PREFIX}{tenant_id.hex}_{secrets.token_urlsafe(32)}"


def tenant_of_credential(credential: str) -> UUID | None:
    """The tenant a credential was issued for, or None when it is not one of ours."""
    head = len(CREDENTIAL_PREFIX)
    if not credential.startswith(CREDENTIAL_PREFIX) or credential[head + 32 : head + 33] != "_":
        return None
    try:
        return UUID(hex=credential[head : head + 32])
    except ValueError:
        return None


def credential_hash(credential: str) -> str:
    """SHA-256, hex. A slow KDF adds nothing against 256 random bits and would cost every
    inbound request; the digest only has to keep a database reader from using it."""
    return hashlib.sha256(credential.encode()).hexdigest()


def credential_matches(presented: str, stored_hash: str | None) -> bool:
    # Hash and compare even when nothing is stored, so timing tells nothing either way.
    expected = stored_hash or "0" * 64
    matches = hmac.compare_digest(credential_hash(presented), expected)
    return matches and stored_hash is not None
