"""Tests for SMTPTransport against a real local SMTP server
(newsletter.transports.sink.SMTPSink)."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator

import pytest

from newsletter.exceptions import PermanentFailure, TemporaryFailure
from newsletter.transports.sink import FaultPlan, SMTPSink, free_port
from newsletter.transports.smtp import SMTPConfig, SMTPTransport

SENDER = "bounces@newsletter.example.org"


def _message(n: int) -> bytes:
    return (
        f"From: weekly@news.example.org\r\nTo: reader{n}@example.org\r\n"
        f"Subject: Issue part {n}\r\nMessage-ID: <{n}@news.example.org>\r\n\r\n"
        f"Body of message {n}.\r\n"
    ).encode()


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every TCP connection smtplib opens, as (host, port)."""
    calls: list[tuple[str, int]] = []
    real = smtplib.SMTP.connect

    def counting(
        self: smtplib.SMTP, host: str = "localhost", port: int = 0, source_address: None = None
    ) -> tuple[int, bytes]:
        calls.append((host, port))
        return real(self, host, port, source_address)

    monkeypatch.setattr(smtplib.SMTP, "connect", counting)
    return calls


@pytest.fixture
def sink() -> Iterator[SMTPSink]:
    with SMTPSink() as running:
        yield running


def _transport(port: int) -> SMTPTransport:
    return SMTPTransport(SMTPConfig(host="127.0.0.1", port=port, timeout=5))


def _send_five(sink: SMTPSink) -> list[str]:
    transport = _transport(sink.port)
    try:
        return [transport.send(SENDER, f"reader{n}@example.org", _message(n)) for n in range(5)]
    finally:
        transport.close()


def test_five_messages_share_one_connection(
    sink: SMTPSink, connects: list[tuple[str, int]]
) -> None:
    _send_five(sink)
    assert connects == [("127.0.0.1", sink.port)]


def test_sink_stores_every_message_with_its_envelope(sink: SMTPSink) -> None:
    _send_five(sink)
    assert [(m.mail_from, m.rcpt_tos) for m in sink.messages] == [
        (SENDER, [f"reader{n}@example.org"]) for n in range(5)
    ]


def test_sink_stores_the_message_content(sink: SMTPSink) -> None:
    _send_five(sink)
    subjects = [m.parse()["Subject"] for m in sink.messages]
    bodies = [
        m.parse().get_payload().replace("\r\n", "\n")  # type: ignore[union-attr]
        for m in sink.messages
    ]
    assert subjects == [f"Issue part {n}" for n in range(5)]
    assert bodies == [f"Body of message {n}.\n" for n in range(5)]


def test_send_returns_the_servers_reply(sink: SMTPSink) -> None:
    assert _send_five(sink) == ["250 2.0.0 OK queued"] * 5


def test_close_then_send_opens_a_new_connection(
    sink: SMTPSink, connects: list[tuple[str, int]]
) -> None:
    transport = _transport(sink.port)
    try:
        transport.send(SENDER, "a@example.org", _message(1))
        transport.close()
        transport.send(SENDER, "b@example.org", _message(2))
    finally:
        transport.close()
    assert len(connects) == 2
    assert [m.rcpt_tos for m in sink.messages] == [["a@example.org"], ["b@example.org"]]


def test_temporary_failure_after_data_raises_temporary_failure_451() -> None:
    with SMTPSink(faults=FaultPlan(temp_fail_ratio=1.0, seed=1)) as failing:
        transport = _transport(failing.port)
        try:
            with pytest.raises(TemporaryFailure) as raised:
                transport.send(SENDER, "reader@example.org", _message(1))
        finally:
            transport.close()
    assert raised.value.code == 451
    assert raised.value.response.startswith("451 4.3.0")


def test_server_not_listening_raises_temporary_failure() -> None:
    port = free_port()  # bound and released: nothing listens there now
    transport = _transport(port)
    with pytest.raises(TemporaryFailure, match=f"cannot connect to 127.0.0.1:{port}") as raised:
        transport.send(SENDER, "reader@example.org", _message(1))
    assert raised.value.code is None


def test_server_hanging_up_on_every_try_raises_temporary_failure_after_one_reconnect(
    connects: list[tuple[str, int]],
) -> None:
    with SMTPSink(faults=FaultPlan(drop_ratio=1.0, seed=1)) as dropping:
        transport = _transport(dropping.port)
        try:
            with pytest.raises(TemporaryFailure, match="connection lost") as raised:
                transport.send(SENDER, "reader@example.org", _message(1))
        finally:
            transport.close()
        stored = list(dropping.messages)
    assert raised.value.code is None
    assert connects == [("127.0.0.1", dropping.port)] * 2
    assert stored == []


def test_send_after_the_server_restarted_reconnects_and_delivers(
    connects: list[tuple[str, int]],
) -> None:
    first = SMTPSink().start()
    port = first.port
    transport = _transport(port)
    try:
        transport.send(SENDER, "a@example.org", _message(1))
        first.stop()  # the open connection dies with the server
        with SMTPSink(port=port) as second:
            reply = transport.send(SENDER, "b@example.org", _message(2))
            delivered = [m.rcpt_tos for m in second.messages]
    finally:
        first.stop()
        transport.close()
    assert reply.startswith("250")
    assert delivered == [["b@example.org"]]
    assert connects == [("127.0.0.1", port)] * 2


def test_sink_drop_fault_hangs_up_the_connection() -> None:
    # the transport tests above rely on FaultPlan(drop_ratio=1.0) really closing the socket
    with SMTPSink(faults=FaultPlan(drop_ratio=1.0, seed=1)) as dropping:
        conn = smtplib.SMTP("127.0.0.1", dropping.port, timeout=5)
        try:
            conn.ehlo()
            conn.mail(SENDER)
            conn.rcpt("reader@example.org")
            with pytest.raises(smtplib.SMTPServerDisconnected):
                conn.data(_message(1))
        finally:
            conn.close()


@pytest.mark.parametrize(
    "body",
    [
        b".starts with a dot\r\n",
        b"line one\r\n.\r\nafter a lone dot\r\n",
        b"line one\r\n..two dots\r\n",
        b"no final line break",
    ],
)
def test_dot_stuffing_delivers_the_message_unchanged(body: bytes) -> None:
    message = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: dots\r\n\r\n" + body
    with SMTPSink() as sink:
        transport = SMTPTransport(SMTPConfig("127.0.0.1", sink.port))
        transport.send("a@example.org", "b@example.org", message)
        transport.send("a@example.org", "b@example.org", message)  # the connection still works
        transport.close()
    expected = message if message.endswith(b"\r\n") else message + b"\r\n"
    assert [m.data for m in sink.messages] == [expected, expected]


# ---------------------------------------------------------------- non-ASCII addresses


def _utf8_message(to: str) -> bytes:
    return (
        f"From: weekly@news.example.org\r\nTo: {to}\r\nSubject: Hi\r\n"
        "Message-ID: <u@news.example.org>\r\n\r\nBody.\r\n"
    ).encode()


def test_a_non_ascii_mailbox_goes_over_smtputf8_when_the_relay_offers_it(sink: SMTPSink) -> None:
    reply = _transport(sink.port).send(
        SENDER, "pelé@example.org", _utf8_message("pelé@example.org")
    )
    assert reply.startswith("250")
    assert sink.messages[0].rcpt_tos == ["pelé@example.org"]


def test_a_non_ascii_mailbox_fails_permanently_and_clearly_without_smtputf8() -> None:
    with SMTPSink(smtputf8=False) as plain:
        transport = _transport(plain.port)
        with pytest.raises(PermanentFailure, match="SMTPUTF8") as failed:
            transport.send(SENDER, "pelé@example.org", _utf8_message("pelé@example.org"))
        assert failed.value.code is None  # our refusal, never read as the mailbox's bounce
        # the connection is still good for the next (ASCII) recipient
        assert transport.send(SENDER, "reader1@example.org", _message(1)).startswith("250")
    assert [m.rcpt_tos for m in plain.messages] == [["reader1@example.org"]]


def test_an_internationalised_domain_travels_as_idna_without_smtputf8() -> None:
    with SMTPSink(smtputf8=False) as plain:
        _transport(plain.port).send(SENDER, "reader@bücher.example", _message(2))
    assert plain.messages[0].rcpt_tos == ["reader@xn--bcher-kva.example"]
