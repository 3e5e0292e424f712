"""Tests for SMTPTransport's PIPELINING (RFC 2920) and its DATA without dot-stuffing, against
real aiosmtpd servers: the project's sink, and one scripted to refuse senders, recipients
(5xx and 4xx) and messages at the end of DATA."""

from __future__ import annotations

import itertools
import smtplib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import Envelope, Session

from newsletter.exceptions import PermanentFailure, TemporaryFailure
from newsletter.sending.outcomes import Kind, classify
from newsletter.transports import smtp
from newsletter.transports.sink import SMTPSink, free_port
from newsletter.transports.smtp import SMTPConfig, SMTPTransport

SENDER = "bounces@newsletter.example.org"


def _message(n: int, body: str = "") -> bytes:
    return (
        f"From: weekly@news.example.org\r\nTo: reader{n}@example.org\r\n"
        f"Subject: Issue part {n}\r\nMessage-ID: <{n}@news.example.org>\r\n\r\n"
        f"Body of message {n}.\r\n{body}"
    ).encode()


@dataclass
class Script:
    """What the scripted server answers, and what it saw (commands, in order; messages)."""

    pipelining: bool = True
    mail: dict[str, str] = field(default_factory=dict)  # sender -> refusal
    rcpt: dict[str, str] = field(default_factory=dict)  # recipient -> refusal
    data: dict[bytes, str] = field(default_factory=dict)  # content marker -> refusal
    keep_refused_rcpt: bool = False  # a sloppy server: DATA gets 354 with no good recipient
    seen: list[str] = field(default_factory=list)
    accepted: list[tuple[str, list[str], bytes]] = field(default_factory=list)


class _ScriptedHandler:
    def __init__(self, script: Script) -> None:
        self.script = script

    async def handle_EHLO(
        self,
        server: SMTPServer,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        if self.script.pipelining:
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_MAIL(
        self,
        server: SMTPServer,
        session: Session,
        envelope: Envelope,
        address: str,
        options: list[str],
    ) -> str:
        self.script.seen.append(f"MAIL {address}")
        refusal = self.script.mail.get(address)
        if refusal:
            return refusal
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTPServer,
        session: Session,
        envelope: Envelope,
        address: str,
        options: list[str],
    ) -> str:
        self.script.seen.append(f"RCPT {address}")
        refusal = self.script.rcpt.get(address)
        if refusal is None or self.script.keep_refused_rcpt:
            envelope.rcpt_tos.append(address)
        return refusal or "250 OK"

    async def handle_RSET(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        self.script.seen.append("RSET")
        return "250 OK"

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.script.seen.append("DATA")
        for marker, refusal in self.script.data.items():
            if marker in content:
                return refusal
        if any(r in self.script.rcpt for r in envelope.rcpt_tos):
            return "554 5.5.1 no valid recipients"  # the sloppy server, after all
        self.script.accepted.append((str(envelope.mail_from), list(envelope.rcpt_tos), content))
        return "250 2.0.0 OK queued"


@pytest.fixture
def script() -> Script:
    return Script()


@pytest.fixture
def server(script: Script) -> Iterator[int]:
    controller = Controller(_ScriptedHandler(script), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller.port
    finally:
        controller.stop()


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The client's side of the conversation: "W <bytes>" per write, "R <code>" per reply."""
    events: list[str] = []
    send, getreply, send_parts = smtplib.SMTP.send, smtplib.SMTP.getreply, smtp._send_parts

    def logged_send(self: smtplib.SMTP, s: Any) -> None:
        events.append(f"W {s.decode() if isinstance(s, bytes) else s}")
        send(self, s)

    def logged_getreply(self: smtplib.SMTP) -> tuple[int, bytes]:
        code, msg = getreply(self)
        events.append(f"R {code}")
        return code, msg

    def logged_parts(conn: smtplib.SMTP, parts: list[bytes]) -> None:
        events.append("W <message>")
        send_parts(conn, parts)

    monkeypatch.setattr(smtplib.SMTP, "send", logged_send)
    monkeypatch.setattr(smtplib.SMTP, "getreply", logged_getreply)
    monkeypatch.setattr(smtp, "_send_parts", logged_parts)
    return events


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = smtplib.SMTP.connect

    def counting(
        self: smtplib.SMTP, host: str = "localhost", port: int = 0, source_address: None = None
    ) -> tuple[int, bytes]:
        calls.append(port)
        return real(self, host, port, source_address)

    monkeypatch.setattr(smtplib.SMTP, "connect", counting)
    return calls


def _transport(port: int) -> SMTPTransport:
    return SMTPTransport(SMTPConfig(host="127.0.0.1", port=port, timeout=5))


def round_trips(events: list[str]) -> int:
    """Writes followed by a wait for a reply."""
    return sum(1 for a, b in itertools.pairwise(events) if a[0] == "W" and b[0] == "R")


def _transaction(events: list[str]) -> list[str]:
    """The events of the last message: from its MAIL FROM to the QUIT, if any."""
    start = max(i for i, e in enumerate(events) if e.upper().startswith("W MAIL FROM"))
    rest = events[start:]
    return rest[: rest.index("W quit\r\n")] if "W quit\r\n" in rest else rest


# ---------------------------------------------------------------- the happy path


def test_mail_rcpt_and_data_go_in_one_write_two_round_trips_a_message(
    server: int, script: Script, wire: list[str], connects: list[int]
) -> None:
    transport = _transport(server)
    try:
        replies = [transport.send(SENDER, f"reader{n}@example.org", _message(n)) for n in range(3)]
    finally:
        transport.close()
    assert replies == ["250 2.0.0 OK queued"] * 3
    assert _transaction(wire) == [
        f"W MAIL FROM:<{SENDER}>\r\nRCPT TO:<reader2@example.org>\r\nDATA\r\n",
        "R 250",
        "R 250",
        "R 354",
        "W <message>",
        "R 250",
    ]
    assert round_trips(_transaction(wire)) == 2
    assert connects == [server]
    assert [(m, r, c) for m, r, c in script.accepted] == [
        (SENDER, [f"reader{n}@example.org"], _message(n)) for n in range(3)
    ]


def test_without_pipelining_the_commands_go_one_by_one_four_round_trips(
    script: Script, wire: list[str]
) -> None:
    script.pipelining = False
    controller = Controller(_ScriptedHandler(script), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        transport = _transport(controller.port)
        assert transport.send(SENDER, "a@example.org", _message(1)).startswith("250")
        transport.close()
    finally:
        controller.stop()
    assert round_trips(_transaction(wire)) == 4
    assert script.accepted == [(SENDER, ["a@example.org"], _message(1))]


def test_the_projects_sink_offers_pipelining_and_can_be_told_not_to(wire: list[str]) -> None:
    for offered, trips in ((True, 2), (False, 4)):
        with SMTPSink(pipelining=offered) as sink:
            transport = _transport(sink.port)
            transport.send(SENDER, "a@example.org", _message(1))
            transport.close()
            assert [m.data for m in sink.messages] == [_message(1)]
        assert round_trips(_transaction(wire)) == trips, offered


# ---------------------------------------------------------------- refusals, pipelined


def _send(transport: SMTPTransport, to: str, n: int = 1, body: str = "") -> str:
    return transport.send(SENDER, to, _message(n, body))


def test_a_recipient_refused_5xx_is_a_permanent_failure_and_the_connection_goes_on(
    server: int, script: Script, wire: list[str], connects: list[int]
) -> None:
    script.rcpt["gone@example.org"] = "550 5.1.1 <gone@example.org>: no such user"
    transport = _transport(server)
    try:
        with pytest.raises(PermanentFailure) as refused:
            _send(transport, "gone@example.org")
        events_after_refusal = list(wire)
        assert _send(transport, "reader2@example.org", 2).startswith("250")
    finally:
        transport.close()
    assert refused.value.code == 550
    assert refused.value.response == "550 5.1.1 <gone@example.org>: no such user"
    assert classify(refused.value, "<m>").kind is Kind.bounced
    # the refused transaction: three replies read (DATA's 503 too), then RSET, in step
    assert _transaction(events_after_refusal) == [
        f"W MAIL FROM:<{SENDER}>\r\nRCPT TO:<gone@example.org>\r\nDATA\r\n",
        "R 250",
        "R 550",
        "R 503",
        "W rset\r\n",
        "R 250",
    ]
    assert script.seen[:4] == [f"MAIL {SENDER}", "RCPT gone@example.org", "RSET", f"MAIL {SENDER}"]
    assert connects == [server]
    assert [r for _, r, _ in script.accepted] == [["reader2@example.org"]]


def test_a_recipient_refused_4xx_is_a_temporary_failure_and_the_connection_goes_on(
    server: int, script: Script, connects: list[int]
) -> None:
    script.rcpt["busy@example.org"] = "450 4.2.1 mailbox busy, try later"
    transport = _transport(server)
    try:
        with pytest.raises(TemporaryFailure) as refused:
            _send(transport, "busy@example.org")
        assert _send(transport, "reader2@example.org", 2).startswith("250")
    finally:
        transport.close()
    assert refused.value.code == 450
    assert refused.value.response.startswith("450 4.2.1")
    assert classify(refused.value, "<m>").kind is Kind.retry
    assert connects == [server]
    assert "RSET" in script.seen


def test_a_message_refused_at_the_end_of_data_is_failed_not_bounced(
    server: int, script: Script, connects: list[int]
) -> None:
    script.data[b"casino"] = "554 5.6.0 message content refused"
    transport = _transport(server)
    try:
        with pytest.raises(PermanentFailure) as refused:
            _send(transport, "reader1@example.org", body="Win big at the casino\r\n")
        assert _send(transport, "reader2@example.org", 2).startswith("250")
    finally:
        transport.close()
    assert refused.value.code == 554
    assert classify(refused.value, "<m>").kind is Kind.failed
    assert connects == [server]
    assert [r for _, r, _ in script.accepted] == [["reader2@example.org"]]


def test_a_temporary_refusal_at_the_end_of_data_is_a_retry(server: int, script: Script) -> None:
    script.data[b"later"] = "451 4.3.0 try again later"
    transport = _transport(server)
    try:
        with pytest.raises(TemporaryFailure) as refused:
            _send(transport, "reader1@example.org", body="later\r\n")
        assert _send(transport, "reader2@example.org", 2).startswith("250")
    finally:
        transport.close()
    assert refused.value.code == 451


def test_a_refused_sender_counts_not_the_replies_that_follow_it(
    server: int, script: Script, wire: list[str]
) -> None:
    script.mail[SENDER] = "553 5.7.1 sender not allowed"
    transport = _transport(server)
    try:
        with pytest.raises(PermanentFailure) as refused:
            _send(transport, "reader1@example.org")
        del script.mail[SENDER]
        assert _send(transport, "reader2@example.org", 2).startswith("250")
    finally:
        transport.close()
    assert refused.value.code == 553  # not RCPT's or DATA's 503
    assert refused.value.response == "553 5.7.1 sender not allowed"


def test_a_server_that_takes_data_after_refusing_every_recipient_gets_an_empty_message(
    server: int, script: Script, wire: list[str]
) -> None:
    # RFC 2920 3.1: the client must check DATA's reply too; a 354 is answered with a lone dot
    script.keep_refused_rcpt = True
    script.rcpt["gone@example.org"] = "550 5.1.1 no such user"
    transport = _transport(server)
    try:
        with pytest.raises(PermanentFailure) as refused:
            _send(transport, "gone@example.org")
        refusal_events = list(wire)
        assert _send(transport, "reader2@example.org", 2).startswith("250")
    finally:
        transport.close()
    assert refused.value.code == 550
    assert _transaction(refusal_events)[1:] == [
        "R 250",
        "R 550",
        "R 354",
        "W .\r\n",
        "R 554",
        "W rset\r\n",
        "R 250",
    ]
    assert [r for _, r, _ in script.accepted] == [["reader2@example.org"]]


def test_a_421_while_reading_the_pipelined_replies_drops_the_connection(
    server: int, script: Script, connects: list[int]
) -> None:
    script.rcpt["reader1@example.org"] = "421 4.3.2 closing, too busy"
    transport = _transport(server)
    try:
        with pytest.raises(TemporaryFailure) as refused:
            _send(transport, "reader1@example.org")
        assert _send(transport, "reader2@example.org", 2).startswith("250")
    finally:
        transport.close()
    assert refused.value.code == 421
    assert connects == [server, server]  # a new connection for the next message


def test_a_line_break_in_an_address_is_refused_before_anything_is_sent(
    server: int, script: Script
) -> None:
    transport = _transport(server)
    try:
        with pytest.raises(PermanentFailure, match="line break") as refused:
            _send(transport, "a@example.org>\r\nRCPT TO:<b@example.org")
        assert _send(transport, "reader2@example.org", 2).startswith("250")
    finally:
        transport.close()
    assert refused.value.code is None  # ours: never read as the mailbox's bounce
    assert "RCPT b@example.org" not in script.seen


# ---------------------------------------------------------------- DATA without dot-stuffing


def test_a_message_without_leading_dots_is_sent_as_it_is_not_copied() -> None:
    data = _message(1, "a line with . in it\r\n")
    parts = smtp._data_parts(data)
    assert parts[0] is data
    assert parts[1] == b".\r\n"


@pytest.mark.parametrize(
    ("data", "stuffed"),
    [
        (b".x\r\n", b"..x\r\n.\r\n"),
        (b"a\r\n.\r\nb\r\n", b"a\r\n..\r\nb\r\n.\r\n"),
        (b"a\r\n..b", b"a\r\n...b\r\n.\r\n"),
    ],
)
def test_a_message_with_a_leading_dot_is_still_stuffed(data: bytes, stuffed: bytes) -> None:
    assert b"".join(smtp._data_parts(data)) == stuffed


def test_a_large_message_arrives_whole_through_one_gathered_write(
    server: int, script: Script
) -> None:
    body = "".join(f"line {n:06d} " + "x" * 60 + "\r\n" for n in range(20_000))  # ~1.4 MB
    transport = _transport(server)
    try:
        _send(transport, "reader1@example.org", body=body)
    finally:
        transport.close()
    assert script.accepted[0][2] == _message(1, body)


# ---------------------------------------------------------------- the next message announced


def _send_then(transport: SMTPTransport, n: int, then: int | None, body: str = "") -> str:
    nxt = None if then is None else f"reader{then}@example.org"
    return transport.send_then(SENDER, f"reader{n}@example.org", _message(n, body), nxt)


def test_each_message_opens_the_next_ones_transaction_one_round_trip_a_message(
    server: int, script: Script, wire: list[str], connects: list[int]
) -> None:
    transport = _transport(server)
    try:
        replies = [_send_then(transport, n, n + 1 if n < 4 else None) for n in range(5)]
    finally:
        transport.close()
    assert replies == ["250 2.0.0 OK queued"] * 5
    start = next(i for i, e in enumerate(wire) if e.startswith("W MAIL FROM"))
    talk = wire[start : wire.index("W quit\r\n")]
    # the commands once, alone; after that each message's write carries the next commands
    assert talk[:4] == [
        f"W MAIL FROM:<{SENDER}>\r\nRCPT TO:<reader0@example.org>\r\nDATA\r\n",
        "R 250",
        "R 250",
        "R 354",
    ]
    assert talk[4:] == ["W <message>", "R 250", "R 250", "R 250", "R 354"] * 4 + [
        "W <message>",
        "R 250",
    ]
    assert round_trips(talk) == 6  # 5 messages: the first commands, then one per message
    assert connects == [server]
    assert [(m, r, c) for m, r, c in script.accepted] == [
        (SENDER, [f"reader{n}@example.org"], _message(n)) for n in range(5)
    ]


def test_an_announced_recipient_not_sent_next_costs_its_connection_never_an_empty_message(
    server: int, script: Script, connects: list[int]
) -> None:
    transport = _transport(server)
    try:
        _send_then(transport, 1, 2)  # reader2's DATA is open on this connection
        _send_then(transport, 3, None)  # but reader3 comes next: a new connection
        _send_then(transport, 4, 5)
        transport.abandon()  # reader5 will not come: the connection goes
        _send_then(transport, 6, 7)
    finally:
        transport.close()  # reader7's DATA is open: closed without its dot
    assert [r for _, r, _ in script.accepted] == [
        ["reader1@example.org"],
        ["reader3@example.org"],
        ["reader4@example.org"],
        ["reader6@example.org"],
    ]
    assert len(connects) == 3
    assert script.seen.count("DATA") == 4  # no DATA ended for an announced recipient


def test_an_announced_recipient_refused_fails_on_its_own_send_and_the_connection_goes_on(
    server: int, script: Script, wire: list[str], connects: list[int]
) -> None:
    script.rcpt["reader2@example.org"] = "550 5.1.1 <reader2@example.org>: no such user"
    transport = _transport(server)
    try:
        assert _send_then(transport, 1, 2).startswith("250")
        with pytest.raises(PermanentFailure) as refused:
            _send_then(transport, 2, 3)  # its replies read here: 250, 550, 503
        assert _send_then(transport, 3, None).startswith("250")
    finally:
        transport.close()
    assert refused.value.code == 550
    assert "RSET" in script.seen  # after the refusal, in step again
    assert connects == [server]
    assert [r for _, r, _ in script.accepted] == [["reader1@example.org"], ["reader3@example.org"]]


def test_a_message_refused_at_its_end_leaves_the_announced_one_to_go_on_the_same_connection(
    server: int, script: Script, connects: list[int]
) -> None:
    script.data[b"casino"] = "554 5.6.0 message content refused"
    transport = _transport(server)
    try:
        with pytest.raises(PermanentFailure) as refused:
            _send_then(transport, 1, 2, body="Win big at the casino\r\n")
        assert _send_then(transport, 2, None).startswith("250")
    finally:
        transport.close()
    assert refused.value.code == 554
    assert "RSET" not in script.seen  # an RSET would have landed in reader2's DATA
    assert connects == [server]
    assert [r for _, r, _ in script.accepted] == [["reader2@example.org"]]


def test_a_recipient_needing_smtputf8_is_not_announced(
    wire: list[str], connects: list[int]
) -> None:
    with SMTPSink() as sink:
        transport = _transport(sink.port)
        try:
            transport.send_then(SENDER, "a@example.org", _message(1), "józef@example.org")
            transport.send_then(SENDER, "józef@example.org", _message(2), None)
        finally:
            transport.close()
        assert [m.rcpt_tos for m in sink.messages] == [["a@example.org"], ["józef@example.org"]]
    commands = [e for e in wire if e.startswith("W MAIL FROM")]
    assert len(commands) == 2  # each written alone, the second with its SMTPUTF8 option
    assert "SMTPUTF8" in commands[1]
    assert len(connects) == 1


def test_without_pipelining_nothing_is_announced(script: Script, wire: list[str]) -> None:
    script.pipelining = False
    controller = Controller(_ScriptedHandler(script), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        transport = _transport(controller.port)
        assert _send_then(transport, 1, 2).startswith("250")
        assert _send_then(transport, 2, None).startswith("250")
        transport.close()
    finally:
        controller.stop()
    assert round_trips(_transaction(wire)) == 4
    assert [r for _, r, _ in script.accepted] == [["reader1@example.org"], ["reader2@example.org"]]


def test_meanwhile_runs_once_the_message_is_written_before_its_reply_is_read(
    server: int, script: Script, wire: list[str]
) -> None:
    script.rcpt["gone@example.org"] = "550 5.1.1 no such user"
    transport = _transport(server)
    try:
        transport.send_then(
            SENDER, "reader1@example.org", _message(1), None, lambda: wire.append("meanwhile")
        )
        with pytest.raises(PermanentFailure):  # refused before its content: nothing runs
            transport.send_then(
                SENDER, "gone@example.org", _message(2), None, lambda: wire.append("refused")
            )
    finally:
        transport.close()
    at = wire.index("meanwhile")
    assert wire[at - 1 : at + 2] == ["W <message>", "meanwhile", "R 250"]
    assert "refused" not in wire


def test_a_subclass_that_takes_each_message_itself_gets_them_from_send_then_too(
    server: int, script: Script
) -> None:
    taken: list[str] = []
    ran: list[str] = []

    class Taking(SMTPTransport):
        def send(self, envelope_from: str, to: str, data: bytes) -> str:
            taken.append(to)
            return super().send(envelope_from, to, data)

    transport = Taking(SMTPConfig(host="127.0.0.1", port=server, timeout=5))
    try:
        _send_then(transport, 1, 2)
        transport.send_then(
            SENDER, "reader2@example.org", _message(2), None, lambda: ran.append("x")
        )
    finally:
        transport.close()
    assert taken == ["reader1@example.org", "reader2@example.org"]
    assert ran == []  # its send knows nothing of what comes next: built at its own turn
    assert script.seen.count("RCPT reader2@example.org") == 1  # never announced
    assert [r for _, r, _ in script.accepted] == [["reader1@example.org"], ["reader2@example.org"]]
