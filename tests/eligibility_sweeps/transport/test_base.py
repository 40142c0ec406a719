"""Building a transport's view of a partner from its stored row."""

from __future__ import annotations

from uuid import uuid4

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from eligibility_sweeps.models.trading_partner import AuthType, Transport
from eligibility_sweeps.trading_partner.credentials import SecretBox, SecretsKeyMissing
from eligibility_sweeps.transport import PartnerEndpoint


def row(**overrides: object) -> dict[str, object]:
    return {
        "trading_partner_id": uuid4(),
        "name": "Acme Clearinghouse",
        "transport": "x12-http",
        "endpoint_url": "https://ch.example/x12",
        "auth_type": "basic",
        "auth_username": "acme-user",
        "auth_secret_encrypted": None,
        "sender_id": "SUBMITTER01",
        "receiver_id": "ACMECH",
        "timeout_seconds": 20,
        **overrides,
    }


def test_from_row_decrypts_the_secret_and_keeps_it_out_of_repr() -> None:
    box = SecretBox(SecretStr(Fernet.generate_key().decode()))

    partner = PartnerEndpoint.from_row(
        row(auth_secret_encrypted=box.encrypt("s3cr3t-Pa55word")), box=box
    )

    assert partner.secret == "s3cr3t-Pa55word"
    assert partner.transport is Transport.X12_HTTP
    assert partner.auth_type is AuthType.BASIC
    assert "s3cr3t" not in repr(partner)
    assert "secret='***'" in repr(partner)


def test_from_row_without_a_key_for_a_stored_secret_says_so() -> None:
    with pytest.raises(SecretsKeyMissing):
        PartnerEndpoint.from_row(row(auth_secret_encrypted="gAAAA..."), box=None)


def test_from_row_without_auth_needs_no_key() -> None:
    partner = PartnerEndpoint.from_row(
        row(auth_type="none", auth_username=None, transport="core-mime"), box=None
    )

    assert (partner.secret, partner.username, partner.transport) == (
        None,
        None,
        Transport.CORE_MIME,
    )
