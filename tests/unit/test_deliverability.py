"""The settings page's DNS records: SPF starter, the configured key's DKIM record, DMARC."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsletter.config import Settings
from newsletter.mail import deliverability, dkim
from newsletter.models import Newsletter


def weekly(from_email: str = "weekly@news.example.org") -> Newsletter:
    return Newsletter(
        slug="weekly", name="W", from_name="W", from_email=from_email, postal_address="a"
    )


@pytest.mark.parametrize(
    ("host", "include"),
    [
        ("smtp.relay.example.net", "smtp.relay.example.net"),
        ("127.0.0.1", deliverability.RELAY_PLACEHOLDER),
        ("localhost", deliverability.RELAY_PLACEHOLDER),
        ("mailpit", deliverability.RELAY_PLACEHOLDER),
    ],
)
def test_the_spf_starter_names_the_relay_or_a_placeholder(host: str, include: str) -> None:
    card = deliverability.records_for(weekly(), Settings(smtp_host=host))
    spf = card.records[0]
    assert (spf.kind, spf.name) == ("SPF", "news.example.org")
    assert spf.value == f"v=spf1 include:{include} ~all"


def test_dmarc_starter_and_https_check() -> None:
    card = deliverability.records_for(weekly(), Settings(base_url="https://news.example.org"))
    dmarc = card.records[-1]
    assert (dmarc.kind, dmarc.name) == ("DMARC", "_dmarc.news.example.org")
    assert dmarc.value.startswith("v=DMARC1; p=none;")
    assert card.https is True and card.dkim_missing is not None
    assert deliverability.records_for(weekly(), Settings()).https is False


def test_the_dkim_record_is_the_configured_keys_and_a_foreign_domain_is_flagged(
    tmp_path: Path,
) -> None:
    key = tmp_path / "k.pem"
    key.write_bytes(dkim.generate_key(2048))
    settings = Settings(dkim_selector="s1", dkim_domain="news.example.org", dkim_key_file=key)
    signer = dkim.signer_from_settings(settings)
    assert signer is not None

    card = deliverability.records_for(weekly(), settings)
    (record,) = [r for r in card.records if r.kind == "DKIM"]
    assert (record.name, record.value) == ("s1._domainkey.news.example.org", signer.txt_record)
    assert "2048-bit" in record.note and card.dkim_missing is None

    other = deliverability.records_for(weekly("desk@other.example.com"), settings)
    (foreign,) = [r for r in other.records if r.kind == "DKIM"]
    assert "not other.example.com" in foreign.note


def test_a_key_that_does_not_load_is_said_not_raised(tmp_path: Path) -> None:
    settings = Settings(
        dkim_selector="s1", dkim_domain="news.example.org", dkim_key_file=tmp_path / "missing"
    )
    card = deliverability.records_for(weekly(), settings)
    assert card.dkim_missing is not None and "does not load" in card.dkim_missing
    assert [r.kind for r in card.records] == ["SPF", "DMARC"]


def test_dual_signing_lists_the_record_of_each_key(tmp_path: Path) -> None:
    (tmp_path / "rsa.pem").write_bytes(dkim.generate_key(2048))
    (tmp_path / "ed.pem").write_bytes(dkim.generate_key(algorithm="ed25519"))
    settings = Settings(
        dkim_selector="s1",
        dkim_domain="news.example.org",
        dkim_key_file=tmp_path / "rsa.pem",
        dkim_ed25519_selector="s1e",
        dkim_ed25519_key_file=tmp_path / "ed.pem",
    )
    card = deliverability.records_for(weekly(), settings)
    rsa, ed = [r for r in card.records if r.kind == "DKIM"]
    assert rsa.name == "s1._domainkey.news.example.org" and "k=rsa;" in rsa.value
    assert ed.name == "s1e._domainkey.news.example.org" and "k=ed25519;" in ed.value
    assert "2048-bit RSA" in rsa.note and "ed25519 key" in ed.note
    assert [r.kind for r in card.records] == ["SPF", "DKIM", "DKIM", "DMARC"]
