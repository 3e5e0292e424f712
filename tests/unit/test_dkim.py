"""Tests for newsletter.mail.dkim: signatures that verify, also after a real SMTP hop, and key
checks.

Keys are made here (``openssl``, as ``generate_key`` does), never committed; the verifier's DNS
look-up is a function that answers with the signer's own TXT record.
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import dkim
import pytest
from dkim.crypto import parse_pem_private_key
from dkim.util import parse_tag_value
from sqlmodel import Session

from newsletter.config import Settings
from newsletter.content.qa import QAConfig
from newsletter.content.rendering import PLACEHOLDERS, CompiledIssue
from newsletter.exceptions import InvalidInput
from newsletter.mail.dkim import (
    SIGNED_HEADERS,
    DKIMKeyError,
    DKIMSigner,
    dns_txt_record,
    generate_key,
    signer_from_settings,
)
from newsletter.mail.message import MessageTemplate, Recipient
from newsletter.models import Newsletter
from newsletter.sending import prepare
from newsletter.sending.start import fill_ledger
from newsletter.transports.sink import SMTPSink
from newsletter.transports.smtp import SMTPConfig, SMTPTransport
from tests.conftest import make_issue, make_subscribers, require

SELECTOR = "nl2025"
DOMAIN = "news.example.org"
UNSUBSCRIBE = "https://news.example.org/unsubscribe/tok-101"

DnsFunc = Callable[..., bytes | None]


def _openssl(*args: str, stdin: bytes | None = None) -> bytes:
    if shutil.which("openssl") is None:
        require("openssl", "the openssl command is not installed")
    return subprocess.run(["openssl", *args], input=stdin, capture_output=True, check=True).stdout


@pytest.fixture(scope="module")
def key_pem() -> bytes:
    if shutil.which("openssl") is None:
        require("openssl", "the openssl command is not installed")
    return generate_key(2048)


@pytest.fixture(scope="module")
def signer(key_pem: bytes) -> DKIMSigner:
    return DKIMSigner(SELECTOR, DOMAIN, key_pem)


def _dnsfunc(records: dict[str, str]) -> DnsFunc:
    """A stand-in for dkimpy's TXT look-up: ``{"sel._domainkey.example.org": "v=DKIM1; ..."}``."""

    def lookup(name: bytes, timeout: float = 5) -> bytes | None:
        record = records.get(name.decode("ascii").rstrip("."))
        return record.encode("ascii") if record is not None else None

    return lookup


@pytest.fixture(scope="module")
def dnsfunc(key_pem: bytes) -> DnsFunc:
    return _dnsfunc({f"{SELECTOR}._domainkey.{DOMAIN}": dns_txt_record(key_pem)})


def _newsletter(**overrides: object) -> Newsletter:
    values: dict[str, object] = {
        "id": 1,
        "slug": "weekly",
        "name": "Belarus Weekly",
        "from_name": "Belarus Weekly",
        "from_email": f"weekly@{DOMAIN}",
        "reply_to": f"editors@{DOMAIN}",
        "postal_address": "Example News Ltd, 12 Sample Street, Warsaw",
    }
    values.update(overrides)
    return Newsletter(**values)  # type: ignore[arg-type]


def _render(newsletter: Newsletter | None = None, *, paragraphs: int = 600) -> bytes:
    """One recipient's message from MessageTemplate: about 80 KB with the default size."""
    ph = PLACEHOLDERS
    story = "Minsk, Hrodna and Brest: what happened this week, in a few sentences. "
    html = (
        f"<html><body><p>{ph['greeting']}</p>"
        + "".join(f"<p>{i}. {story}</p>" for i in range(paragraphs))
        + f'<p><a href="{ph["unsubscribe_url"]}">Unsubscribe</a></p></body></html>'
    )
    text = (
        f"{ph['greeting']}\n\n"
        + "".join(f"{i}. {story}\n" for i in range(paragraphs // 4))
        + ".. and one more thing: a line that SMTP dot-stuffs on the way\n"
        + f"\nUnsubscribe: {ph['unsubscribe_url']}\n"
    )
    template = MessageTemplate(
        compiled=CompiledIssue("Belarus Weekly: Łódź, Minsk & more", "", html, text),
        newsletter=newsletter or _newsletter(),
        issue_id=7,
        secret="test-secret",
    )
    values = {
        "name": "Eve Adams",
        "greeting": "Dear Eve,",
        "email": "eve@example.org",
        "unsubscribe_url": UNSUBSCRIBE,
        "preferences_url": "https://news.example.org/preferences/p-101",
        "view_url": "https://news.example.org/archive/weekly/7",
    }
    recipient = Recipient(
        subscriber_id=101,
        email="eve@example.org",
        name="Eve Adams",
        values=values,
        unsubscribe_url=UNSUBSCRIBE,
        unsubscribe_mailto="mailto:unsubscribe@newsletter.example.org?subject=unsubscribe%20tok",
    )
    return template.render(recipient)[1]


def _signature_tags(signed: bytes) -> dict[bytes, bytes]:
    """The DKIM-Signature's tags, its folding undone."""
    head = signed.split(b"\r\n\r\n", 1)[0]
    match = re.match(rb"DKIM-Signature:(.*?)\r\n(?=\S)", head, re.DOTALL)
    assert match is not None
    return dict(parse_tag_value(re.sub(rb"\r\n[ \t]", b" ", match.group(1))))


def _signed_headers(signed: bytes) -> list[str]:
    h = _signature_tags(signed)[b"h"].decode("ascii")
    return [name.strip() for name in h.split(":")]


# ---------------------------------------------------------------- signing


def test_signed_newsletter_verifies(signer: DKIMSigner, dnsfunc: DnsFunc) -> None:
    signed = signer.sign(_render())
    assert dkim.verify(signed, dnsfunc=dnsfunc)


def test_signature_covers_the_one_click_unsubscribe_headers(signer: DKIMSigner) -> None:
    signed_headers = _signed_headers(signer.sign(_render()))
    assert "list-unsubscribe" in signed_headers
    assert "list-unsubscribe-post" in signed_headers


def test_signature_covers_every_listed_header_the_message_has(signer: DKIMSigner) -> None:
    message = _render()
    signed_headers = _signed_headers(signer.sign(message))
    for name in (
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "mime-version",
        "content-type",
        "list-id",
        "list-unsubscribe",
        "list-unsubscribe-post",
        "reply-to",
        "feedback-id",
    ):
        assert name in signed_headers, name
    # in SIGNED_HEADERS' order; the oversigned ones twice (see test_dkim_signing.py)
    assert list(dict.fromkeys(signed_headers)) == [h for h in SIGNED_HEADERS if h in signed_headers]
    assert "precedence" not in signed_headers  # not in the list, so not signed


def test_headers_the_message_lacks_are_listed_only_when_oversigned(
    signer: DKIMSigner, dnsfunc: DnsFunc
) -> None:
    # before oversigning (RFC 6376 8.15) a missing header was not listed at all; now a missing
    # Reply-To is listed once, so that one added later breaks the signature
    signed = signer.sign(_render(_newsletter(reply_to=None)))
    assert _signed_headers(signed).count("reply-to") == 1
    assert dkim.verify(signed, dnsfunc=dnsfunc)
    minimal = b"From: a@news.example.org\r\nSubject: hi\r\n\r\nhello\r\n"
    assert _signed_headers(signer.sign(minimal)) == [
        "from",
        "from",
        "subject",
        "subject",
        "reply-to",
        "list-unsubscribe",
        "list-unsubscribe-post",
    ]


def test_signature_tags(signer: DKIMSigner) -> None:
    tags = _signature_tags(signer.sign(_render()))
    assert tags[b"v"] == b"1"
    assert tags[b"a"] == b"rsa-sha256"
    assert tags[b"c"] == b"relaxed/relaxed"
    assert (tags[b"d"], tags[b"s"]) == (DOMAIN.encode(), SELECTOR.encode())


def test_signature_is_prepended_and_everything_stays_crlf(signer: DKIMSigner) -> None:
    message = _render()
    signed = signer.sign(message)
    assert signed.startswith(b"DKIM-Signature: ")
    assert signed.endswith(message)  # the message itself is untouched
    assert b"\n" not in signed.replace(b"\r\n", b"")
    assert b"\r" not in signed.replace(b"\r\n", b"")
    header = signed[: len(signed) - len(message)]
    assert header.endswith(b"\r\n")
    assert max(len(line) for line in header.split(b"\r\n")) <= 78


def test_relaxed_canonicalization_survives_refolding(signer: DKIMSigner, dnsfunc: DnsFunc) -> None:
    signed = signer.sign(_render())
    refolded = signed.replace(b"List-Unsubscribe-Post: ", b"List-Unsubscribe-Post:   ", 1)
    refolded = refolded.replace(b"Subject: ", b"Subject:\r\n\t", 1)
    assert refolded != signed
    assert dkim.verify(refolded, dnsfunc=dnsfunc)


def test_unknown_key_does_not_verify(signer: DKIMSigner) -> None:
    other = _dnsfunc({f"{SELECTOR}._domainkey.{DOMAIN}": dns_txt_record(generate_key(1024))})
    assert not dkim.verify(signer.sign(_render()), dnsfunc=other)


def test_message_without_from_is_refused(signer: DKIMSigner) -> None:
    with pytest.raises(InvalidInput, match="without a From header"):
        signer.sign(b"Subject: hi\r\n\r\nhello\r\n")


@pytest.mark.parametrize(
    "message",
    [b"From: a@news.example.org\nSubject: hi\n\nhello\n", b"From: a@x.org\r\n\r\nbare\rCR\r\n"],
    ids=["bare-LF", "bare-CR"],
)
def test_message_with_other_line_ends_is_refused(signer: DKIMSigner, message: bytes) -> None:
    with pytest.raises(InvalidInput, match="CRLF"):
        signer.sign(message)


# ---------------------------------------------------------------- through a real SMTP hop


@pytest.fixture
def received(signer: DKIMSigner) -> Iterator[bytes]:
    """The signed newsletter as the SMTP sink received it."""
    with SMTPSink() as sink:
        transport = SMTPTransport(SMTPConfig(host=sink.host, port=sink.port, timeout=5))
        try:
            transport.send(
                "bounces@newsletter.example.org", "eve@example.org", signer.sign(_render())
            )
        finally:
            transport.close()
        assert len(sink.messages) == 1
        yield sink.messages[0].data


def test_signature_verifies_as_received_over_smtp(received: bytes, dnsfunc: DnsFunc) -> None:
    assert received.startswith(b"DKIM-Signature: ")
    assert f"List-Unsubscribe: <{UNSUBSCRIBE}>".encode() in received
    # the text's leading dot travels as quoted-printable's =2E: nothing for SMTP to dot-stuff
    assert b"\r\n=2E. and one more thing" in received
    assert dkim.verify(received, dnsfunc=dnsfunc)


def test_changed_unsubscribe_url_fails_verification(received: bytes, dnsfunc: DnsFunc) -> None:
    forged = received.replace(
        f"<{UNSUBSCRIBE}>".encode(), b"<https://evil.example.com/unsubscribe/x>", 1
    )
    assert forged != received
    assert not dkim.verify(forged, dnsfunc=dnsfunc)


def test_dropped_one_click_header_fails_verification(received: bytes, dnsfunc: DnsFunc) -> None:
    forged = received.replace(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n", b"", 1)
    assert forged != received
    assert not dkim.verify(forged, dnsfunc=dnsfunc)


def test_changed_body_fails_verification(received: bytes, dnsfunc: DnsFunc) -> None:
    head, body = received.split(b"\r\n\r\n", 1)
    forged = head + b"\r\n\r\n" + body.replace(b"Dear Eve,", b"Dear Bob,", 1)
    assert forged != received
    assert not dkim.verify(forged, dnsfunc=dnsfunc)


def test_header_added_by_a_relay_keeps_the_signature(received: bytes, dnsfunc: DnsFunc) -> None:
    relayed = b"Received: from relay.example.net by mx.example.org; Mon, 1 Jan 2029\r\n" + received
    assert dkim.verify(relayed, dnsfunc=dnsfunc)


# ---------------------------------------------------------------- settings


def _settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_unconfigured_settings_give_no_signer(tmp_path: Path) -> None:
    assert signer_from_settings(_settings(tmp_path)) is None
    empty = _settings(tmp_path, dkim_selector="", dkim_domain="", dkim_key_file=Path(""))
    assert signer_from_settings(empty) is None


def test_configured_settings_give_a_working_signer(
    tmp_path: Path, key_pem: bytes, dnsfunc: DnsFunc
) -> None:
    key_file = tmp_path / "dkim.pem"
    key_file.write_bytes(key_pem)
    settings = _settings(
        tmp_path, dkim_selector=SELECTOR, dkim_domain=DOMAIN, dkim_key_file=key_file
    )
    signer = signer_from_settings(settings)
    assert signer is not None
    assert (signer.selector, signer.domain, signer.key_bits) == (SELECTOR, DOMAIN, 2048)
    assert dkim.verify(signer.sign(_render()), dnsfunc=dnsfunc)


@pytest.mark.parametrize(
    "values",
    [
        {"dkim_selector": SELECTOR},
        {"dkim_domain": DOMAIN},
        {"dkim_key_file": Path("/etc/dkim.pem")},
        {"dkim_selector": SELECTOR, "dkim_domain": DOMAIN},
        {"dkim_selector": SELECTOR, "dkim_key_file": Path("/etc/dkim.pem")},
        {"dkim_domain": DOMAIN, "dkim_key_file": Path("/etc/dkim.pem")},
    ],
)
def test_partial_settings_are_refused(tmp_path: Path, values: dict[str, object]) -> None:
    with pytest.raises(InvalidInput, match="DKIM is half configured: set NEWSLETTER_DKIM_"):
        signer_from_settings(_settings(tmp_path, **values))


def _settings_with_key(tmp_path: Path, key_file: Path) -> Settings:
    return _settings(tmp_path, dkim_selector=SELECTOR, dkim_domain=DOMAIN, dkim_key_file=key_file)


def test_missing_key_file_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "nope.pem"
    with pytest.raises(InvalidInput) as info:
        signer_from_settings(_settings_with_key(tmp_path, key_file))
    assert str(info.value) == f"DKIM key file {key_file}: not found"


def test_key_file_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"DKIM key file .*: is a directory"):
        signer_from_settings(_settings_with_key(tmp_path, tmp_path))


def _bad_key_cases(key_pem: bytes) -> dict[str, tuple[bytes, str]]:
    label, der = re.search(rb"-----BEGIN ([A-Z ]+)-----(.*?)-----END", key_pem, re.DOTALL).groups()  # type: ignore[union-attr]
    raw = bytearray(base64.b64decode(b"".join(der.split())))
    raw[-5] ^= 0xFF  # inside the last integer (the CRT coefficient): still well-formed DER
    damaged = b"-----BEGIN %s-----\n%s-----END %s-----\n" % (
        label,
        base64.encodebytes(bytes(raw)),
        label,
    )
    return {
        "garbage": (b"this is not a key\n", "not a PEM key"),
        "empty": (b"", "not a PEM key"),
        "bad-base64": (
            b"-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n",
            "not valid base64",
        ),
        "not-der": (
            b"-----BEGIN PRIVATE KEY-----\n"
            + base64.encodebytes(b"hello, world")
            + b"-----END PRIVATE KEY-----\n",
            "not a valid private key",
        ),
        # cryptography checks the RSA numbers on load; dkimpy only noticed when signing
        "damaged": (damaged, "damaged|do not verify|does not sign"),
        "public-key": (_openssl("pkey", "-pubout", stdin=key_pem), "expected a private key"),
        "certificate-label": (
            key_pem.replace(b"PRIVATE KEY", b"CERTIFICATE"),
            "expected a private key",
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "garbage",
        "empty",
        "bad-base64",
        "not-der",
        "damaged",
        "public-key",
        "certificate-label",
    ],
)
def test_unusable_key_file_is_refused(tmp_path: Path, key_pem: bytes, case: str) -> None:
    content, reason = _bad_key_cases(key_pem)[case]
    key_file = tmp_path / "dkim.pem"
    key_file.write_bytes(content)
    with pytest.raises(InvalidInput, match=rf"^DKIM key file {re.escape(str(key_file))}: ") as info:
        signer_from_settings(_settings_with_key(tmp_path, key_file))
    assert re.search(reason, str(info.value)), str(info.value)
    assert "\n" not in str(info.value)


def test_short_key_is_refused() -> None:
    short = _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:512")
    with pytest.raises(DKIMKeyError, match="512 bits; DKIM needs at least 1024"):
        DKIMSigner(SELECTOR, DOMAIN, short)


def test_encrypted_key_is_refused(key_pem: bytes) -> None:
    encrypted = _openssl("pkey", "-aes256", "-passout", "pass:secret", stdin=key_pem)
    with pytest.raises(DKIMKeyError, match="encrypted"):
        DKIMSigner(SELECTOR, DOMAIN, encrypted)


@pytest.mark.parametrize(("algorithm", "name"), [("EC", "EC"), ("ed448", "Ed448")])
def test_other_key_algorithms_are_refused_with_a_clear_reason(algorithm: str, name: str) -> None:
    args = ["-pkeyopt", "ec_paramgen_curve:P-256"] if algorithm == "EC" else []
    key = _openssl("genpkey", "-algorithm", algorithm, *args)
    with pytest.raises(DKIMKeyError, match=f"^DKIM private key: {name} keys are not supported"):
        DKIMSigner(SELECTOR, DOMAIN, key)


@pytest.mark.parametrize("form", ["pkcs1", "crlf"])
def test_other_key_encodings_are_accepted(key_pem: bytes, dnsfunc: DnsFunc, form: str) -> None:
    if form == "pkcs1":
        pem = _openssl("pkey", "-traditional", stdin=key_pem)
        assert pem.startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    else:
        pem = key_pem.replace(b"\n", b"\r\n")  # a key file saved on Windows
    assert dkim.verify(DKIMSigner(SELECTOR, DOMAIN, pem).sign(_render()), dnsfunc=dnsfunc)


@pytest.mark.parametrize(
    ("selector", "domain"),
    [
        ("bad selector", DOMAIN),
        ("s1;x=y", DOMAIN),
        (SELECTOR, "news.example.org\r\nX: y"),
        ("", DOMAIN),
    ],
)
def test_selector_and_domain_must_be_dns_names(key_pem: bytes, selector: str, domain: str) -> None:
    with pytest.raises(InvalidInput, match="is not a DNS name"):
        DKIMSigner(selector, domain, key_pem)


def test_domain_is_normalised(key_pem: bytes) -> None:
    signer = DKIMSigner(" nl2025 ", "News.Example.ORG.", key_pem)
    assert (signer.selector, signer.domain) == (SELECTOR, DOMAIN)
    assert signer.dns_name == f"{SELECTOR}._domainkey.{DOMAIN}"


def test_repr_does_not_show_the_private_key(signer: DKIMSigner) -> None:
    assert "PRIVATE" not in repr(signer) and "MII" not in repr(signer)


# ---------------------------------------------------------------- DNS record and key generation


def test_txt_record_is_the_key_openssl_derives(key_pem: bytes, signer: DKIMSigner) -> None:
    spki = _openssl("pkey", "-pubout", "-outform", "DER", stdin=key_pem)
    expected = "v=DKIM1; k=rsa; p=" + base64.b64encode(spki).decode("ascii")
    assert dns_txt_record(key_pem) == expected
    assert signer.txt_record == expected


def test_txt_record_from_a_public_key(key_pem: bytes) -> None:
    spki_pem = _openssl("pkey", "-pubout", stdin=key_pem)
    pkcs1_pem = _openssl("rsa", "-RSAPublicKey_out", stdin=key_pem)
    assert pkcs1_pem.startswith(b"-----BEGIN RSA PUBLIC KEY-----")
    assert dns_txt_record(spki_pem) == dns_txt_record(pkcs1_pem) == dns_txt_record(key_pem)


def test_txt_record_of_garbage_is_refused() -> None:
    with pytest.raises(InvalidInput):
        dns_txt_record(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")


def test_generated_key_has_the_bits_asked_for(key_pem: bytes) -> None:
    assert key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert parse_pem_private_key(key_pem)["modulus"].bit_length() == 2048
    small = generate_key(1024)
    assert parse_pem_private_key(small)["modulus"].bit_length() == 1024
    assert small != generate_key(1024)


def test_generate_key_refuses_short_keys() -> None:
    with pytest.raises(InvalidInput, match="at least 1024 bits"):
        generate_key(512)


# ---------------------------------------------------------------- through the sender


def test_the_sender_signs_every_message_when_a_key_is_configured(
    session: Session,
    settings: Settings,
    key_pem: bytes,
    dnsfunc: DnsFunc,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from newsletter.sending import batch

    key_file = tmp_path / "dkim.pem"
    key_file.write_bytes(key_pem)
    monkeypatch.setenv("NEWSLETTER_DKIM_SELECTOR", SELECTOR)
    monkeypatch.setenv("NEWSLETTER_DKIM_DOMAIN", DOMAIN)
    monkeypatch.setenv("NEWSLETTER_DKIM_KEY_FILE", str(key_file))
    monkeypatch.setattr(prepare, "_templates", {})
    settings = Settings()
    fx = make_issue(session)
    make_subscribers(session, fx.newsletter, 3)
    fill_ledger(session, issue_id=fx.issue.id, checks=QAConfig())  # type: ignore[arg-type]
    session.commit()
    with SMTPSink() as sink:
        transport = SMTPTransport(SMTPConfig("127.0.0.1", sink.port))
        result = batch.run_batch(settings, issue_id=fx.issue.id, transport=transport)  # type: ignore[arg-type]
        transport.close()
    assert result.sent == 3 and len(sink.messages) == 3
    for received in sink.messages:
        assert received.data.startswith(b"DKIM-Signature:")
        assert dkim.verify(received.data, dnsfunc=dnsfunc)
        assert "list-unsubscribe" in _signed_headers(received.data)
