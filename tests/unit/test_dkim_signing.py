"""Our DKIM signatures (rsa-sha256, ed25519-sha256, both) checked by dkimpy's verifier.

Every message shape the service signs without a database (an issue message from
MessageTemplate, a confirmation email, the same with a non-ASCII name over SMTPUTF8) is signed
with each key set-up and every signature verified by ``dkim.DKIM(...).verify(idx=i)``, with PyNaCl
for ed25519. The shapes that need the database and a worker (a test send, a welcome email, an
issue through the sender) are in tests/integration/test_dkim_messages.py. Oversigning, the
relaxed canonicalization against dkimpy's (hypothesis), and the key and settings checks too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import dkim
import pytest
from dkim.canonicalization import Relaxed
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsletter.audience import confirmations
from newsletter.config import Settings
from newsletter.exceptions import InvalidInput
from newsletter.mail import dkim as ours
from newsletter.mail import dkim_canon
from newsletter.mail.dkim import DKIMKeyError, DKIMSigner, generate_key, signer_from_settings
from tests.unit.test_dkim import DOMAIN, _newsletter, _render, _signature_tags

RSA_SELECTOR, ED_SELECTOR = "nl2025", "nl2025e"
SETUPS = ("rsa", "ed25519", "dual")


@pytest.fixture(scope="module")
def rsa_pem() -> bytes:
    return generate_key(2048)


@pytest.fixture(scope="module")
def ed_pem() -> bytes:
    return generate_key(algorithm="ed25519")


@pytest.fixture(scope="module")
def signers(rsa_pem: bytes, ed_pem: bytes) -> dict[str, DKIMSigner]:
    return {
        "rsa": DKIMSigner(RSA_SELECTOR, DOMAIN, rsa_pem),
        "ed25519": DKIMSigner(ED_SELECTOR, DOMAIN, ed_pem),
        "dual": DKIMSigner(
            RSA_SELECTOR, DOMAIN, rsa_pem, ed25519_selector=ED_SELECTOR, ed25519_key=ed_pem
        ),
    }


def verify_each(signed: bytes, signer: DKIMSigner) -> list[bool]:
    """dkimpy's verdict on every DKIM-Signature of ``signed``, DNS answered from ``signer``."""
    records = dict(signer.records())

    def lookup(name: bytes, timeout: float = 5) -> bytes | None:
        record = records.get(name.decode("ascii").rstrip("."))
        return record.encode("ascii") if record is not None else None

    def verdict(index: int) -> bool:
        try:
            return bool(dkim.DKIM(signed).verify(idx=index, dnsfunc=lookup))
        except dkim.ValidationError:  # a body hash mismatch is raised, not returned
            return False

    count = len(re.findall(rb"(?mi)^DKIM-Signature:", signed.split(b"\r\n\r\n", 1)[0]))
    return [verdict(i) for i in range(count)]


def _confirmation(name: str, to: str = "eve@example.org") -> bytes:
    html = "<html><body><p>Hello,</p><p>  Please   confirm:\t<a href='x'>here</a></p></body></html>"
    text = "Hello,\n\nPlease confirm   your subscription:  \nhttps://news.example.org/c/abc\n\n\n"
    outgoing = confirmations._mime(
        _newsletter(),
        to,
        name,
        "Confirm your subscription to Belarus Weekly",
        html,
        text,
        datetime(2026, 11, 28, 12, 0, tzinfo=UTC),
        "<confirm.1.abc@news.example.org>",
    )
    return outgoing.data


SHAPES: dict[str, Callable[[], bytes]] = {
    "issue": _render,
    "issue-no-reply-to": lambda: _render(_newsletter(reply_to=None)),
    "confirmation": lambda: _confirmation("Eve Adams"),
    "confirmation-smtputf8": lambda: _confirmation("Łukasz Žemaitis", "łukasz@example.org"),
}


# ---------------------------------------------------------------- every shape, every set-up


@pytest.mark.parametrize("setup", SETUPS)
@pytest.mark.parametrize("shape", list(SHAPES))
def test_every_message_shape_verifies_with_every_key_setup(
    signers: dict[str, DKIMSigner], setup: str, shape: str
) -> None:
    signer = signers[setup]
    message = SHAPES[shape]()
    signed = signer.sign(message)
    assert signed.endswith(message)
    assert verify_each(signed, signer) == [True] * (2 if setup == "dual" else 1)


def test_dual_signing_adds_an_rsa_then_an_ed25519_signature(
    signers: dict[str, DKIMSigner],
) -> None:
    signed = signers["dual"].sign(_render())
    heads = re.findall(rb"(?m)^DKIM-Signature:.*?\r\n(?=\S)", signed, re.DOTALL)
    assert len(heads) == 2
    rsa_tags = _signature_tags(heads[0] + b"X: y\r\n")
    ed_tags = _signature_tags(heads[1] + b"X: y\r\n")
    assert (rsa_tags[b"a"], rsa_tags[b"s"]) == (b"rsa-sha256", RSA_SELECTOR.encode())
    assert (ed_tags[b"a"], ed_tags[b"s"]) == (b"ed25519-sha256", ED_SELECTOR.encode())
    assert rsa_tags[b"bh"] == ed_tags[b"bh"]  # one body hash for both
    assert dkim.verify(signed, dnsfunc=_lookup(signers["dual"]))  # the first, as mail servers do


def _lookup(signer: DKIMSigner) -> Callable[..., bytes | None]:
    records = dict(signer.records())
    return lambda name, timeout=5: (records.get(name.decode().rstrip(".")) or "").encode() or None


@pytest.mark.parametrize("setup", SETUPS)
def test_signature_lines_are_folded_and_crlf(signers: dict[str, DKIMSigner], setup: str) -> None:
    message = _render()
    added = signers[setup].sign(message)[: -len(message)]
    assert added.endswith(b"\r\n")
    assert b"\n" not in added.replace(b"\r\n", b"") and b"\r" not in added.replace(b"\r\n", b"")
    assert max(len(line) for line in added.split(b"\r\n")) <= 78


def test_the_records_name_every_key(signers: dict[str, DKIMSigner], ed_pem: bytes) -> None:
    dual = signers["dual"]
    assert dual.records() == [
        (f"{RSA_SELECTOR}._domainkey.{DOMAIN}", dual.txt_record),
        (f"{ED_SELECTOR}._domainkey.{DOMAIN}", ours.dns_txt_record(ed_pem)),
    ]
    assert dual.txt_record.startswith("v=DKIM1; k=rsa; p=MII")
    assert (dual.dns_name, dual.key_bits) == (f"{RSA_SELECTOR}._domainkey.{DOMAIN}", 2048)
    ed = signers["ed25519"]
    assert re.fullmatch(r"v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=", ed.txt_record)
    assert ed.key_bits == 256 and ed.keys[0].algorithm == "ed25519"


# ---------------------------------------------------------------- oversigning


def _add_header(signed: bytes, line: bytes, *, at_top: bool) -> bytes:
    """``line`` added above the message's own headers (below the signatures) or at their end."""
    if at_top:
        at = signed.find(b"\r\nFrom:") + 2
        at = min(at, *(signed.find(b"\r\n" + n) + 2 for n in (b"Date:", b"MIME-Version:")))
        return signed[:at] + line + b"\r\n" + signed[at:]
    head, body = signed.split(b"\r\n\r\n", 1)
    return head + b"\r\n" + line + b"\r\n\r\n" + body


ADDED = {
    "from": b"From: Belarus Weekly <weekly@evil.example.com>",
    "subject": b"Subject: Your account is suspended",
    "list-unsubscribe": b"List-Unsubscribe: <https://evil.example.com/u>",
    "list-unsubscribe-post": b"List-Unsubscribe-Post: List-Unsubscribe=One-Click",
    "reply-to": b"Reply-To: thief@evil.example.com",
}


@pytest.mark.parametrize("at_top", [True, False], ids=["above", "below"])
@pytest.mark.parametrize("header", list(ADDED))
@pytest.mark.parametrize("setup", SETUPS)
def test_a_second_oversigned_header_breaks_every_signature(
    signers: dict[str, DKIMSigner], setup: str, header: str, at_top: bool
) -> None:
    signer = signers[setup]
    signed = signer.sign(_render())
    assert verify_each(signed, signer) == [True] * len(signer.keys)
    forged = _add_header(signed, ADDED[header], at_top=at_top)
    assert forged != signed
    assert verify_each(forged, signer) == [False] * len(signer.keys)


def test_a_reply_to_added_to_a_message_without_one_breaks_the_signature(
    signers: dict[str, DKIMSigner],
) -> None:
    signer = signers["dual"]
    signed = signer.sign(_render(_newsletter(reply_to=None)))
    assert b"\r\nReply-To:" not in signed
    forged = _add_header(signed, ADDED["reply-to"], at_top=True)
    assert verify_each(forged, signer) == [False, False]


def test_oversigned_headers_are_listed_once_more_than_they_occur(
    signers: dict[str, DKIMSigner],
) -> None:
    signed = signers["rsa"].sign(_render())
    listed = [h.strip() for h in _signature_tags(signed)[b"h"].decode().split(":")]
    for name in ("from", "subject", "reply-to", "list-unsubscribe", "list-unsubscribe-post"):
        assert listed.count(name) == 2, name
    for name in ("to", "date", "message-id", "mime-version", "content-type", "list-id"):
        assert listed.count(name) == 1, name


@pytest.mark.parametrize("setup", SETUPS)
def test_an_unrelated_header_added_later_keeps_the_signatures(
    signers: dict[str, DKIMSigner], setup: str
) -> None:
    signer = signers[setup]
    signed = signer.sign(_render())
    relayed = _add_header(signed, b"X-Spam-Score: 0.1", at_top=False)
    assert verify_each(relayed, signer) == [True] * len(signer.keys)


@pytest.mark.parametrize("setup", SETUPS)
def test_a_changed_body_breaks_every_signature(signers: dict[str, DKIMSigner], setup: str) -> None:
    signer = signers[setup]
    signed = signer.sign(_confirmation("Eve"))
    forged = signed.replace(b"https://news.example.org/c/abc", b"https://evil.example/c/abc")
    assert forged != signed
    assert verify_each(forged, signer) == [False] * len(signer.keys)


# ---------------------------------------------------------------- relaxed canonicalization


_line = st.text(alphabet="ab \t=.", max_size=12).map(lambda s: s.encode("ascii"))
_body = st.lists(_line, max_size=12).map(lambda lines: b"".join(x + b"\r\n" for x in lines))


@settings(max_examples=300, deadline=None)
@given(body=_body)
def test_relaxed_body_is_dkimpys(body: bytes) -> None:
    assert dkim_canon.relaxed_body(body) == Relaxed.canonicalize_body(body)


@settings(max_examples=300, deadline=None)
@given(
    value=st.lists(st.text(alphabet="ab \t:;", max_size=8), min_size=1, max_size=4),
    name=st.sampled_from([b"Subject", b"FROM", b"x-Weird"]),
)
def test_relaxed_header_is_dkimpys(value: list[str], name: bytes) -> None:
    raw = "\r\n ".join(value).encode("ascii")  # folded at every piece
    (expected,) = Relaxed.canonicalize_headers([(name, raw)])
    assert dkim_canon.relaxed_header(name, raw) + b"\r\n" == expected[0] + b":" + expected[1]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=_body, subject=st.text(alphabet="ab \t", min_size=1, max_size=20))
def test_random_bodies_and_headers_sign_and_verify(
    signers: dict[str, DKIMSigner], body: bytes, subject: str
) -> None:
    signer = signers["dual"]
    message = (
        b"From: a@news.example.org\r\nSubject: " + subject.strip(" \t").encode() + b"x \t\r\n"
        b"To: b@example.org\r\n\r\n" + body
    )
    assert verify_each(signer.sign(message), signer) == [True, True]


def test_a_last_line_without_crlf_is_hashed_as_it_arrives(signers: dict[str, DKIMSigner]) -> None:
    # SMTP ends the data with CRLF, so the receiver hashes the body with one
    signer = signers["rsa"]
    signed = signer.sign(b"From: a@news.example.org\r\n\r\nlast line  \t")
    assert verify_each(signed + b"\r\n", signer) == [True]


# ---------------------------------------------------------------- keys and settings


def test_an_ed25519_key_alone_signs(ed_pem: bytes, signers: dict[str, DKIMSigner]) -> None:
    tags = _signature_tags(signers["ed25519"].sign(_render()))
    assert tags[b"a"] == b"ed25519-sha256"


def test_dual_signing_needs_an_rsa_key_then_an_ed25519_key(rsa_pem: bytes, ed_pem: bytes) -> None:
    with pytest.raises(DKIMKeyError, match="not an ed25519 key"):
        DKIMSigner("a", DOMAIN, rsa_pem, ed25519_selector="b", ed25519_key=rsa_pem)
    with pytest.raises(DKIMKeyError, match="pairs an RSA key with the ed25519 one"):
        DKIMSigner("a", DOMAIN, ed_pem, ed25519_selector="b", ed25519_key=ed_pem)
    with pytest.raises(InvalidInput, match="need different selectors"):
        DKIMSigner("a", DOMAIN, rsa_pem, ed25519_selector="a", ed25519_key=ed_pem)
    with pytest.raises(InvalidInput, match="is not a DNS name"):
        DKIMSigner("a", DOMAIN, rsa_pem, ed25519_selector="b c", ed25519_key=ed_pem)


def _dual_settings(tmp_path: Path, rsa: bytes, ed: bytes, **overrides: object) -> Settings:
    (tmp_path / "rsa.pem").write_bytes(rsa)
    (tmp_path / "ed.pem").write_bytes(ed)
    values: dict[str, object] = {
        "dkim_selector": RSA_SELECTOR,
        "dkim_domain": DOMAIN,
        "dkim_key_file": tmp_path / "rsa.pem",
        "dkim_ed25519_selector": ED_SELECTOR,
        "dkim_ed25519_key_file": tmp_path / "ed.pem",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_dual_settings_give_a_signer_with_both_keys(
    tmp_path: Path, rsa_pem: bytes, ed_pem: bytes
) -> None:
    signer = signer_from_settings(_dual_settings(tmp_path, rsa_pem, ed_pem))
    assert signer is not None
    assert [(k.selector, k.algorithm) for k in signer.keys] == [
        (RSA_SELECTOR, "rsa"),
        (ED_SELECTOR, "ed25519"),
    ]
    assert verify_each(signer.sign(_render()), signer) == [True, True]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"dkim_ed25519_key_file": None},
            "DKIM is half configured: set NEWSLETTER_DKIM_ED25519_KEY_FILE too",
        ),
        (
            {"dkim_ed25519_selector": ""},
            "DKIM is half configured: set NEWSLETTER_DKIM_ED25519_SELECTOR too",
        ),
        (
            {"dkim_selector": None, "dkim_key_file": None},
            "DKIM is half configured: set NEWSLETTER_DKIM_SELECTOR and NEWSLETTER_DKIM_KEY_FILE",
        ),
        ({"dkim_ed25519_selector": RSA_SELECTOR}, "need different selectors"),
    ],
)
def test_half_a_dual_configuration_is_refused_in_one_line(
    tmp_path: Path, rsa_pem: bytes, ed_pem: bytes, overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidInput) as info:
        signer_from_settings(_dual_settings(tmp_path, rsa_pem, ed_pem, **overrides))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_wrong_key_in_a_dual_setup_names_its_file(
    tmp_path: Path, rsa_pem: bytes, ed_pem: bytes
) -> None:
    with pytest.raises(DKIMKeyError) as info:
        signer_from_settings(_dual_settings(tmp_path, rsa_pem, rsa_pem))
    assert str(info.value) == f"DKIM key file {tmp_path / 'ed.pem'}: not an ed25519 private key"
    (tmp_path / "ed.pem").unlink()
    with pytest.raises(DKIMKeyError) as info:
        signer_from_settings(_dual_settings(tmp_path, ed_pem, b"garbage"))
    assert str(info.value) == (
        f"DKIM key file {tmp_path / 'ed.pem'}: not a PEM key (no -----BEGIN ...----- block)"
    )
    with pytest.raises(DKIMKeyError, match="pairs an RSA key with the ed25519 one"):
        signer_from_settings(_dual_settings(tmp_path, ed_pem, ed_pem))


def test_the_self_test_uses_cryptography_when_dkimpy_has_no_pynacl(
    signers: dict[str, DKIMSigner], monkeypatch: pytest.MonkeyPatch, ed_pem: bytes
) -> None:
    dual = signers["dual"]
    signed = dual.sign(_render())
    records = dict(dual.records())
    assert ours.verify_signature(signed, 1, records)
    monkeypatch.delattr(dkim, "nacl")  # what dkimpy is without PyNaCl
    with pytest.raises(dkim.NaClNotFoundError):
        dkim.DKIM(signed).verify(idx=1, dnsfunc=_lookup(dual))
    assert ours.verify_signature(signed, 1, records)
    assert ours.verify_signature(signed, 0, records)  # RSA: dkimpy itself
    assert not ours.verify_signature(signed.replace(b"Dear Eve", b"Dear Bob"), 1, records)
    forged = _add_header(signed, ADDED["subject"], at_top=True)
    assert not ours.verify_signature(forged, 1, records)
    other = DKIMSigner("x", DOMAIN, generate_key(algorithm="ed25519"))
    wrong = {**records, f"{ED_SELECTOR}._domainkey.{DOMAIN}": other.txt_record}
    assert not ours.verify_signature(signed, 1, wrong)
    assert DKIMSigner(ED_SELECTOR, DOMAIN, ed_pem).keys[0].algorithm == "ed25519"


def test_generated_ed25519_keys_are_pkcs8_and_differ() -> None:
    first, second = generate_key(algorithm="ed25519"), generate_key(algorithm="ed25519")
    assert first.startswith(b"-----BEGIN PRIVATE KEY-----") and first != second
    with pytest.raises(InvalidInput, match="unknown DKIM key algorithm"):
        generate_key(algorithm="dsa")  # type: ignore[arg-type]
