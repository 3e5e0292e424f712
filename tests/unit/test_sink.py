"""The local SMTP sink's outbox folder: a restarted sink numbers on, never overwriting."""

from __future__ import annotations

import smtplib
from pathlib import Path

from newsletter.mail import outbox
from newsletter.transports.sink import SMTPSink

MESSAGE = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: %s\r\n\r\nbody\r\n"


def send(sink: SMTPSink, subject: bytes) -> None:
    with smtplib.SMTP(sink.host, sink.port, timeout=10) as smtp:
        smtp.sendmail("a@example.org", ["b@example.org"], MESSAGE % subject)


def test_a_restarted_sink_numbers_on_after_the_messages_already_there(tmp_path: Path) -> None:
    folder = tmp_path / "outbox"
    with SMTPSink(folder=folder) as sink:
        send(sink, b"first")
    with SMTPSink(folder=folder) as sink:
        send(sink, b"second")
    assert sorted(p.name for p in folder.iterdir()) == ["000001.eml", "000002.eml"]
    assert b"Subject: first" in (folder / "000001.eml").read_bytes()
    listed = outbox.listing(folder)
    assert listed.total == 2
    assert {e.subject for e in listed.entries} == {"first", "second"}
