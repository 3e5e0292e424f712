"""``CleanMessage``: what MessageTemplate builds is CRLF throughout with no line starting with a
dot, so SMTP sends it without scanning for dot-stuffing and the DKIM signer skips its line-end
check; plain bytes are still checked and stuffed."""

from __future__ import annotations

import dkim
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsletter.content.rendering import PLACEHOLDERS, CompiledIssue
from newsletter.exceptions import InvalidInput
from newsletter.mail import dkim as ours
from newsletter.mail.dkim import DKIMSigner, generate_key
from newsletter.mail.dkim_canon import crlf_only
from newsletter.mail.message import MessageTemplate, Recipient
from newsletter.transports import CleanMessage, smtp
from tests.unit.test_dkim import DOMAIN, _newsletter

# text with what a newsroom's copy and an export's junk can hold: dots at line starts, lone
# CR/LF, tabs, trailing spaces, non-ASCII
_TEXT = st.lists(
    st.sampled_from([".", "..", "a", " ", "\t", "\n", "\r", "\r\n", "Ł", "€", "=", "<"]),
    max_size=60,
).map("".join)
_WORD = st.text(alphabet=st.sampled_from([".", "a", "Ž", " ", "-", "'", "\t"]), max_size=20)


def _template(text: str, html: str, subject: str) -> MessageTemplate:
    ph = PLACEHOLDERS
    return MessageTemplate(
        compiled=CompiledIssue(
            subject,
            "",
            f"<p>{ph['greeting']}</p><pre>{html}</pre><a href='{ph['unsubscribe_url']}'>x</a>",
            f"{ph['greeting']}\n{text}\n{ph['name']}\n.{ph['unsubscribe_url']}\n",
        ),
        newsletter=_newsletter(),
        issue_id=3,
        secret="s",
    )


def _recipient(name: str, greeting: str) -> Recipient:
    url = "https://news.example.org/u/.tok"
    values = {
        "name": name,
        "greeting": greeting,
        "email": "eve@example.org",
        "unsubscribe_url": url,
        "preferences_url": url,
        "view_url": url,
    }
    return Recipient(5, "eve@example.org", name, values, url, "mailto:u@example.org?subject=x")


def _lines_ok(data: bytes) -> None:
    assert crlf_only(data)
    assert not data.startswith(b".")
    assert b"\r\n." not in data


@settings(max_examples=150, deadline=None)
@given(
    text=_TEXT,
    html=_TEXT,
    subject=st.text(alphabet=st.sampled_from([".", "a", " ", "Ł"]), min_size=1, max_size=90),
    name=_WORD,
    greeting=_TEXT,
)
def test_what_the_template_builds_is_clean_as_it_says(
    text: str, html: str, subject: str, name: str, greeting: str
) -> None:
    template = _template(text, html, subject)
    person = _recipient(name, greeting)
    _mid, plain = template.render(person)
    _mid, relaxed_data, _relaxed = template.render_relaxed(person)
    for data in (plain, relaxed_data):
        assert isinstance(data, CleanMessage)
        _lines_ok(data)


@pytest.fixture(scope="module")
def signer() -> DKIMSigner:
    return DKIMSigner(
        "s1",
        DOMAIN,
        generate_key(2048),
        ed25519_selector="s2",
        ed25519_key=generate_key(algorithm="ed25519"),
    )


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=_TEXT, name=_WORD)
def test_a_signed_clean_message_stays_clean_and_verifies(
    signer: DKIMSigner, text: str, name: str
) -> None:
    template = _template(text, text, "Weekly")
    _mid, data, relaxed = template.render_relaxed(_recipient(name, "Hi,"))
    signed = signer.sign(data, relaxed_body_of_it=relaxed)
    assert isinstance(signed, CleanMessage)
    _lines_ok(signed)
    records = {name.encode(): value.encode() for name, value in signer.records()}
    for index in range(2):
        assert dkim.DKIM(signed).verify(idx=index, dnsfunc=lambda n, timeout=5: records[n[:-1]])


def test_the_signer_checks_plain_bytes_and_trusts_a_clean_message(
    signer: DKIMSigner, monkeypatch: pytest.MonkeyPatch
) -> None:
    message = b"From: a@example.org\r\nSubject: x\r\n\r\nbody\nwith a bare LF\r\n"
    with pytest.raises(InvalidInput, match="CRLF"):
        signer.sign(message)
    assert not isinstance(signer.sign(message.replace(b"\nwith", b"\r\nwith")), CleanMessage)

    def scanned(_message: bytes) -> bool:
        raise AssertionError("a CleanMessage is not scanned")

    monkeypatch.setattr(ours, "crlf_only", scanned)
    clean = CleanMessage(message.replace(b"\nwith", b"\r\nwith"))
    assert isinstance(signer.sign(clean), CleanMessage)


def test_smtp_sends_a_clean_message_as_it_is_and_still_stuffs_plain_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plain = b"a\r\n.b\r\n"
    assert b"".join(smtp._data_parts(plain)) == b"a\r\n..b\r\n.\r\n"

    class Unscanned(CleanMessage):
        def __contains__(self, _needle: object) -> bool:
            raise AssertionError("a CleanMessage is not scanned for dot-stuffing")

    clean = Unscanned(b"a\r\nb.\r\n")
    parts = smtp._data_parts(clean)
    assert parts[0] is clean
    assert parts[1] == b".\r\n"
