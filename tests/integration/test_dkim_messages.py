"""Every message the service sends, DKIM-signed as configured (RSA, ed25519, or both) and
received by the SMTP sink, verifies with dkimpy: an issue through the sender, a test send, a
welcome email and a confirmation email. Also ``newsletter dkim keygen``'s round trip: the key it
writes signs messages that verify against the record it prints.
"""

from __future__ import annotations

import re
import stat
from pathlib import Path

import dkim
import pytest
from sqlmodel import Session

from newsletter.audience import confirmations
from newsletter.audience.confirmations import ConfirmationRequest
from newsletter.config import Settings
from newsletter.content.qa import QAConfig
from newsletter.mail.dkim import DKIMSigner, generate_key, signer_from_settings
from newsletter.models import Subscriber, Subscription
from newsletter.sending import batch, prepare, testsend, welcome
from newsletter.sending.start import fill_ledger
from newsletter.transports.sink import SMTPSink
from newsletter.transports.smtp import SMTPConfig, SMTPTransport
from tests.conftest import make_issue, make_newsletter, make_subscribers
from tests.integration.test_cli import assert_one_line_error, cli_env
from tests.unit.test_dkim_signing import verify_each

DOMAIN = "news.example.org"

# signing does not depend on the database: one is enough (both double the time of this file)
on_postgresql = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@pytest.fixture(scope="module")
def keys() -> dict[str, bytes]:
    return {"rsa": generate_key(2048), "ed25519": generate_key(algorithm="ed25519")}


@pytest.fixture(params=["rsa", "ed25519", "dual"])
def signing(
    request: pytest.FixtureRequest,
    settings: Settings,
    keys: dict[str, bytes],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> DKIMSigner:
    """``settings`` set to sign with RSA, ed25519 or both; the signer the code will build."""
    setup = str(request.param)
    first = "ed25519" if setup == "ed25519" else "rsa"
    (tmp_path / "first.pem").write_bytes(keys[first])
    monkeypatch.setattr(settings, "dkim_selector", "s1")
    monkeypatch.setattr(settings, "dkim_domain", DOMAIN)
    monkeypatch.setattr(settings, "dkim_key_file", tmp_path / "first.pem")
    if setup == "dual":
        (tmp_path / "ed.pem").write_bytes(keys["ed25519"])
        monkeypatch.setattr(settings, "dkim_ed25519_selector", "s2")
        monkeypatch.setattr(settings, "dkim_ed25519_key_file", tmp_path / "ed.pem")
    monkeypatch.setattr(prepare, "_templates", {})  # ids repeat across test databases
    signer = signer_from_settings(settings)
    assert signer is not None
    return signer


def _all_verify(data: bytes, signer: DKIMSigner) -> None:
    assert data.startswith(b"DKIM-Signature:")
    assert verify_each(data, signer) == [True] * len(signer.keys)


@on_postgresql
def test_an_issue_through_the_sender(
    session: Session, settings: Settings, signing: DKIMSigner
) -> None:
    fx = make_issue(session)
    make_subscribers(session, fx.newsletter, 2)
    fill_ledger(session, issue_id=fx.issue.id, checks=QAConfig())  # type: ignore[arg-type]
    session.commit()
    with SMTPSink() as sink:
        transport = SMTPTransport(SMTPConfig("127.0.0.1", sink.port))
        result = batch.run_batch(settings, issue_id=fx.issue.id, transport=transport)  # type: ignore[arg-type]
        transport.close()
    assert result.sent == 2 and len(sink.messages) == 2
    for received in sink.messages:
        _all_verify(received.data, signing)


@on_postgresql
def test_a_test_send(session: Session, settings: Settings, signing: DKIMSigner) -> None:
    fx = make_issue(session)
    session.commit()
    with SMTPSink() as sink:
        transport = SMTPTransport(SMTPConfig("127.0.0.1", sink.port))
        result = testsend.send_test(
            settings,
            issue_id=fx.issue.id,  # type: ignore[arg-type]
            addresses="ed@example.org, desk@example.org",
            transport=transport,
        )
        transport.close()
    assert sorted(result.sent) == ["desk@example.org", "ed@example.org"]
    for received in sink.messages:
        prefix = re.escape(testsend.SUBJECT_PREFIX.encode())
        assert re.search(rb"(?m)^Subject: " + prefix, received.data)
        _all_verify(received.data, signing)


@on_postgresql
def test_a_welcome_email(session: Session, settings: Settings, signing: DKIMSigner) -> None:
    nl = make_newsletter(session)
    standing = welcome.create(session, newsletter=nl.slug)
    welcome.configure(
        session,
        newsletter=nl.slug,
        issue_id=standing.id,  # type: ignore[arg-type]
        enabled=True,
        with_latest=False,
        checks=QAConfig(),
    )
    session.commit()
    (reader,) = make_subscribers(session, nl, 1)
    assert welcome.queue(session, subscriber_id=reader.id, newsletter_ids=[nl.id]) == (  # type: ignore[arg-type]
        standing.id,
    )
    session.commit()
    with SMTPSink() as sink:
        transport = SMTPTransport(SMTPConfig("127.0.0.1", sink.port))
        result = batch.run_batch(settings, issue_id=standing.id, transport=transport)  # type: ignore[arg-type]
        transport.close()
    assert result.sent == 1 and len(sink.messages) == 1
    _all_verify(sink.messages[0].data, signing)


@on_postgresql
@pytest.mark.parametrize("name", ["Ales", "Łukasz Žemaitis"])
def test_a_confirmation_email(
    session: Session, settings: Settings, signing: DKIMSigner, name: str
) -> None:
    nl = make_newsletter(session)
    person = Subscriber(email=f"reader-{nl.id}@example.org", name=name)
    session.add(person)
    session.flush()
    session.add(Subscription(subscriber_id=person.id, newsletter_id=nl.id, status="pending"))  # type: ignore[arg-type]
    session.commit()
    request = ConfirmationRequest(person.id, (nl.id,), "form", "2025-10")  # type: ignore[arg-type]
    with SMTPSink() as sink:
        transport = SMTPTransport(SMTPConfig("127.0.0.1", sink.port))
        outcome = confirmations.send_confirmation(settings, request, transport=transport)
        transport.close()
    assert outcome.startswith("sent <") and len(sink.messages) == 1
    _all_verify(sink.messages[0].data, signing)


# ---------------------------------------------------------------- newsletter dkim keygen


def _printed(stdout: str, label: str) -> str:
    (value,) = re.findall(rf"(?m)^{label}: (.+)$", stdout)
    return value


@pytest.mark.parametrize("algorithm", ["rsa", "ed25519"])
def test_keygen_writes_a_key_that_verifies_against_the_printed_record(
    tmp_path: Path, algorithm: str
) -> None:
    done = cli_env(
        tmp_path,
        {},
        "dkim",
        "keygen",
        "--algorithm",
        algorithm,
        "--selector",
        "k1",
        "--domain",
        DOMAIN,
        "--out",
        "key.pem",
    )
    assert done.returncode == 0, done.stderr
    key = tmp_path / "key.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    name, value = _printed(done.stdout, "name"), _printed(done.stdout, "value")
    assert name == f"k1._domainkey.{DOMAIN}"
    assert value.startswith(f"v=DKIM1; k={algorithm}; p=")
    if algorithm == "ed25519":  # RFC 8463: the raw 32-byte key, not a SubjectPublicKeyInfo
        assert len(value.rsplit("p=", 1)[1]) == 44
    zone = _printed(done.stdout, "zone file")
    assert "".join(re.findall(r'"([^"]*)"', zone)) == value
    assert all(len(part) <= 255 for part in re.findall(r'"([^"]*)"', zone))

    signed = DKIMSigner("k1", DOMAIN, key.read_bytes()).sign(
        b"From: a@news.example.org\r\nSubject: hello\r\n\r\nHello, world.\r\n"
    )

    def lookup(qname: bytes, timeout: float = 5) -> bytes | None:
        return value.encode() if qname.decode().rstrip(".") == name else None

    assert dkim.verify(signed, dnsfunc=lookup)


def test_keygen_refuses_to_overwrite_and_bad_input_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "key.pem").write_text("precious", encoding="utf-8")
    base = ["dkim", "keygen", "--selector", "k1", "--domain", DOMAIN]
    assert_one_line_error(
        cli_env(tmp_path, {}, *base, "--out", "key.pem"), "key.pem exists; choose another --out"
    )
    assert (tmp_path / "key.pem").read_text(encoding="utf-8") == "precious"
    assert_one_line_error(
        cli_env(tmp_path, {}, *base, "--bits", "512"), "DKIM keys need at least 1024 bits"
    )
    assert_one_line_error(
        cli_env(tmp_path, {}, "dkim", "keygen", "--selector", "a b", "--domain", DOMAIN),
        "is not a DNS name",
    )
    assert not (tmp_path / "dkim-k1.pem").exists()
