"""Tests for newsletter.mail.qp: a part encoded once and patched per recipient decodes to the
personalised text byte for byte, with lines of at most 76 characters, CRLF line ends and no
line starting with a dot (so the message needs no SMTP dot-stuffing)."""

from __future__ import annotations

import binascii
import email
import email.policy
import shutil
from collections.abc import Iterator, Mapping
from email.message import EmailMessage
from pathlib import Path

import dkim
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, select

from newsletter import db, seeding
from newsletter.content import issues, rendering
from newsletter.content.rendering import PLACEHOLDERS, CompiledIssue, Personaliser
from newsletter.mail import qp
from newsletter.mail.dkim import DKIMSigner, generate_key
from newsletter.mail.dkim_canon import relaxed_body, relaxed_lines
from newsletter.mail.message import MessageTemplate, Recipient
from newsletter.mail.qp import QPTemplate, canonical_text
from newsletter.models import Newsletter

FIELDS = sorted(PLACEHOLDERS)
WIRE_LIMIT = 72_000  # the issue's bound for the sample issue's message, in bytes


@pytest.fixture(scope="module")
def sample(
    sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[CompiledIssue, Newsletter]]:
    """The sample issue of seeds/ (~55-60 KB of HTML), compiled, and its newsletter."""
    path = tmp_path_factory.mktemp("qp") / "newsletter.db"
    shutil.copyfile(sqlite_template, path)
    url = f"sqlite:///{path}"
    with Session(db.get_engine(url), expire_on_commit=False) as session:
        seeding.seed(session)
        issue = seeding.draft_sample_issue(session)
        compiled = rendering.compile_issue(issues.load_outline(session, issue.id))  # type: ignore[arg-type]
        newsletter = session.exec(select(Newsletter)).first()
        assert newsletter is not None
    yield compiled, newsletter
    db.get_engine(url).dispose()


def today_html(template: str, values: Mapping[str, str]) -> bytes:
    """What the HTML part decoded to before (base64 of the personalised HTML)."""
    return Personaliser(template, html_escape=True)(values).encode("utf-8")


def today_text(template: str, values: Mapping[str, str]) -> bytes:
    """What the text part decoded to before (quoted-printable of the whole personalised text)."""
    text = Personaliser(template, html_escape=False)(values)
    normalised = text.replace("\r\n", "\n").replace("\n", "\r\n")
    if not normalised.endswith("\r\n"):
        normalised += "\r\n"
    return normalised.encode("utf-8")


def expected(template: str, values: Mapping[str, str], *, html: bool) -> bytes:
    """The fixed text's line breaks as CRLF, the values byte for byte (and a final line break
    for text): what the encoded part must decode to."""
    data = Personaliser(canonical_text(template), html_escape=html)(values).encode("utf-8")
    if not html and not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data


def wire_problems(encoded: bytes) -> list[str]:
    problems = []
    if encoded and not encoded.endswith(b"\r\n"):
        problems.append("does not end with CRLF")
    if b"\n" in encoded.replace(b"\r\n", b"") or b"\r" in encoded.replace(b"\r\n", b""):
        problems.append("bare CR or LF")
    for line in encoded.split(b"\r\n"):
        if len(line) > qp.MAX_LINE:
            problems.append(f"line of {len(line)}: {line!r}")
        if line.startswith(b"."):
            problems.append(f"leading dot: {line!r}")
        if not line.isascii() or any(c < 32 and c != 9 for c in line):
            problems.append(f"not printable ASCII: {line!r}")
        if line.endswith((b" ", b"\t")):
            problems.append(f"trailing white space: {line!r}")
    return problems


def check(template: str, values: Mapping[str, str], *, html: bool) -> bytes:
    encoded = QPTemplate(template, html_escape=html, final_newline=not html).render(values)
    assert wire_problems(encoded) == []
    assert binascii.a2b_qp(encoded) == expected(template, values, html=html)
    return encoded


# values: non-ASCII, "=", dots (at a line's start too), white space, long, line breaks
_value = st.one_of(
    st.text(max_size=30),
    st.text(".= \tж€x", max_size=200),
    st.text(st.characters(codec="utf-8"), min_size=70, max_size=300),
    st.builds(lambda s: "https://news.example.org/u/" + s, st.text("ab.=-_~%", max_size=150)),
    st.sampled_from(["", ".", "..", ". ", "=", " ", "\t", "\r", "\n", "\r\n", "a\r", "é" * 80]),
)
_values = st.fixed_dictionaries({}, optional=dict.fromkeys(FIELDS, _value))
_placeholder = st.sampled_from([PLACEHOLDERS[f] for f in FIELDS])
# fixed text cut at awkward places: lines near 76 characters, dots and spaces at the ends
_fixed = st.one_of(
    st.text(max_size=20),
    st.text("ab. =\n\t", max_size=200),
    st.builds(lambda n, end: "x" * n + end, st.integers(0, 160), st.sampled_from(["", " ", "."])),
    st.builds(lambda s: s, st.text("é.\r\n", max_size=90)),
)
_template = st.builds(
    lambda parts: "".join(parts),
    st.lists(st.one_of(_fixed, _placeholder), max_size=12),
)


@settings(max_examples=300, deadline=None)
@given(template=_template, values=_values, html=st.booleans())
@example(template="x" * 76 + PLACEHOLDERS["name"], values={"name": "." * 200}, html=True)
@example(template="." + PLACEHOLDERS["name"] + "\n.", values={"name": ".="}, html=False)
@example(template=PLACEHOLDERS["name"] + "\n", values={"name": "a\r"}, html=False)
@example(template="a" + PLACEHOLDERS["name"], values={"name": "b\r\n"}, html=False)
# binascii writes this text's last line at 77 characters (the =20 before the break uncounted)
@example(template="0000" + "\x80" * 9 + "𐀀𐀀0\x1f" + "\x80" * 6 + "𐀀𐀀x \n", values={}, html=False)
def test_any_template_and_values_decode_exactly_and_keep_the_line_rules(
    template: str, values: dict[str, str], html: bool
) -> None:
    check(template, values, html=html)


@settings(max_examples=60, deadline=None)
@given(values=_values)
def test_the_sample_issue_decodes_to_todays_html_and_text(
    sample: tuple[CompiledIssue, Newsletter], values: dict[str, str]
) -> None:
    compiled, _ = sample
    html = check(compiled.html, values, html=True)
    text = check(compiled.text, values, html=False)
    assert "\r" not in compiled.html + compiled.text  # so canonical_text only turns LF to CRLF
    if not any("\r" in v or "\n" in v for v in values.values()):
        # today's base64 kept the HTML's LF line ends; quoted-printable's are CRLF (text's
        # canonical form, RFC 2045), the only difference, and one no HTML reader sees
        decoded_html = binascii.a2b_qp(html)
        assert decoded_html.replace(b"\r\n", b"\n") == today_html(compiled.html, values)
        assert binascii.a2b_qp(text) == today_text(compiled.text, values)


def test_a_leading_dot_is_written_as_2e_and_a_full_line_is_broken_again() -> None:
    line = "." + "y" * 75  # 76 characters: "=2E" makes it 78, so it must break once more
    encoded = check(line + "\n" + line, {}, html=False)
    assert encoded.startswith(b"=2E")
    assert b"\r\n." not in encoded


def test_the_fixed_chunks_are_encoded_once_and_only_values_per_recipient(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    template = QPTemplate(
        "<p>" + "static text " * 500 + PLACEHOLDERS["name"] + "</p>" + "more " * 500,
        html_escape=True,
        final_newline=False,
    )
    sizes: list[int] = []
    real = binascii.b2a_qp

    def counting(data: bytes, *args: object, **kwargs: object) -> bytes:
        sizes.append(len(data))
        return real(data, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(qp.binascii, "b2a_qp", counting)
    encoded = template.render({"name": "Łukasz <x>"})
    assert sizes == [len("Łukasz &lt;x&gt;".encode())]
    assert b"=C5=81ukasz &lt;x&gt;=\r\n" in encoded


def test_the_sample_issues_message_is_quoted_printable_and_fits_72_kb(
    sample: tuple[CompiledIssue, Newsletter],
) -> None:
    compiled, newsletter = sample
    template = MessageTemplate(compiled=compiled, newsletter=newsletter, issue_id=1, secret="s")
    values = {
        "name": "Reader 1",
        "greeting": "Dear Reader,",
        "email": "reader1@example.org",
        "unsubscribe_url": "https://news.example.org/unsubscribe/WzEsMV0.awtRZw.NeRwVGtRcAVXbiC7",
        "preferences_url": "https://news.example.org/preferences/WzEsbnVsbF0.awtRZw.1EoeJUnJp5l",
        "view_url": "https://news.example.org/archive/belarus-weekly/1",
    }
    person = Recipient(1, "reader1@example.org", "Reader 1", values, values["unsubscribe_url"], "")
    data = template.render(person)[1]
    assert len(data) <= WIRE_LIMIT, len(data)
    assert b"\r\n." not in data  # nothing for the transport to dot-stuff
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    text_part, html_part = msg.iter_parts()
    assert html_part["Content-Transfer-Encoding"] == "quoted-printable"
    html = html_part.get_payload(decode=True)  # type: ignore[union-attr]
    assert html.replace(b"\r\n", b"\n") == today_html(compiled.html, values)  # type: ignore[union-attr]
    assert text_part.get_payload(decode=True) == today_text(compiled.text, values)  # type: ignore[union-attr]


@settings(max_examples=200, deadline=None)
@given(template=_template, values=_values, html=st.booleans())
@example(
    template="a  \tb  " + PLACEHOLDERS["name"] + "  \n\n", values={"name": "  x \t"}, html=True
)
# a "%" in the fixed text stays itself (``render`` once filled a bytes format)
@example(template="100% %b %s" + PLACEHOLDERS["name"] + "%", values={"name": "%b"}, html=False)
# the decoded end before the final line break runs back over short pieces and values
@example(template="x" + PLACEHOLDERS["name"] + "\r" + PLACEHOLDERS["email"], values={"name": "\n"},
         html=False)  # fmt: skip
def test_the_pieces_relaxed_apart_are_the_whole_relaxed(
    template: str, values: dict[str, str], html: bool
) -> None:
    """DKIM's relaxed lines of a part, made from fixed pieces relaxed once and personal ones per
    recipient, are exactly the lines of the whole part relaxed."""
    part = QPTemplate(template, html_escape=html, final_newline=not html)
    encoded, relaxed = part.render_relaxed(values)
    assert encoded == part.render(values)
    assert relaxed == relaxed_lines(encoded)


@settings(max_examples=40, deadline=None)
@given(values=_values)
def test_the_sample_messages_relaxed_body_is_its_body_relaxed_and_its_signature_verifies(
    sample: tuple[CompiledIssue, Newsletter], values: dict[str, str]
) -> None:
    compiled, newsletter = sample
    template = MessageTemplate(compiled=compiled, newsletter=newsletter, issue_id=1, secret="s")
    person = Recipient(1, "reader1@example.org", "Reader 1", values, "https://x.org/u/1", "")
    mid, data, relaxed = template.render_relaxed(person)
    other_mid, other = template.render(person)
    body = data.split(b"\r\n\r\n", 1)[1]
    assert (mid, body) == (other_mid, other.split(b"\r\n\r\n", 1)[1])  # the Date may differ
    assert relaxed == relaxed_body(body)
    signed = SIGNER.sign(data, relaxed_body_of_it=relaxed)
    assert dkim.verify(signed, dnsfunc=signer_dns)


SIGNER = DKIMSigner("s1", "news.example.org", generate_key(1024))


def signer_dns(name: bytes, timeout: float = 5) -> bytes | None:
    """dkimpy's DNS lookup, answering with SIGNER's record only."""
    record = SIGNER.txt_record.encode("ascii")
    return record if name == f"{SIGNER.dns_name}.".encode("ascii") else None
