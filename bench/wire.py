"""Bytes and round trips per message: the message's build and size, and its SMTP hand-over.

One run, the sample issue of seeds/ in a temporary SQLite database:
  * render: ``MessageTemplate.render`` per recipient against the way it was before issue 17
    (each recipient's whole HTML part in base64 and text part in quoted-printable), same run,
    same recipients, interleaved rounds (the best of each); bytes per message for both;
  * smtp: a message handed to Postfix's ``smtp-sink`` (C, accepts and discards) over one
    connection: ``SMTPTransport`` with PIPELINING, the same announcing each next message after
    the dot (``send_then``: one round trip a message), the same with a sink that does not offer it
    (``smtp-sink -p``: MAIL, RCPT, DATA one by one), and the transport as it was before
    (``--before REV``, default the commit before pipelining, read with ``git show``); the
    sample issue's message (before: the base64 one with the old transport), and a ~100-byte
    message where the round trips are all there is to time. Interleaved rounds; each
    variant's best round (the least disturbed on a shared machine) and median are printed.
The last line is one JSON object.

    python bench/wire.py                       # 3,000 renders; 3,000 messages a variant
    python bench/wire.py --recipients 500 --messages 1000 --rounds 5
"""

from __future__ import annotations

import argparse
import binascii
import importlib.util
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.utils import format_datetime
from pathlib import Path
from types import ModuleType
from typing import Protocol

from newsletter import db, seeding
from newsletter.config import Settings
from newsletter.content.qa import QAConfig
from newsletter.content.rendering import Personaliser
from newsletter.mail.message import CRLF, MessageTemplate, Recipient, _to_header
from newsletter.models import RenderedIssue, utcnow
from newsletter.sending import prepare, recipients
from newsletter.sending.start import fill_ledger
from newsletter.transports.smtp import SMTPConfig, SMTPTransport

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "09b20fa"  # the last commit with base64 HTML and no PIPELINING


class Sender(Protocol):
    """SMTPTransport: this one, or the old one ``transport_before`` loads (untyped: a module)."""

    def send(self, envelope_from: str, to: str, data: bytes) -> str: ...

    def close(self) -> None: ...


class Before(MessageTemplate):
    """``render`` as it was: the personalised parts encoded whole for every recipient."""

    def __init__(self, template: MessageTemplate, html: str, text: str) -> None:
        self.__dict__.update(template.__dict__)
        self._html_p = Personaliser(html, html_escape=True)
        self._text_p = Personaliser(text, html_escape=False)
        self._html_head = self._html_head.replace(b"quoted-printable", b"base64")

    def render(self, recipient: Recipient) -> tuple[str, bytes]:
        mid = self.message_id(recipient.subscriber_id)
        personal = CRLF.join(
            [
                _to_header(recipient.name, recipient.email),
                f"Date: {format_datetime(utcnow())}",
                f"Message-ID: {mid}",
                f"List-Unsubscribe: <{recipient.unsubscribe_url}>,{CRLF}"
                f" <{recipient.unsubscribe_mailto}>",
            ]
        )
        data = b"".join(
            [
                self._head,
                personal.encode("utf-8"),
                (CRLF + CRLF).encode("ascii"),
                self._text_head,
                _qp(self._text_p(recipient.values)),
                self._html_head,
                _base64(self._html_p(recipient.values)),
                self._tail,
            ]
        )
        return mid, data


def _base64(text: str) -> bytes:
    raw = binascii.b2a_base64(text.encode("utf-8"), newline=False)
    return b"\r\n".join(raw[i : i + 76] for i in range(0, len(raw), 76)) + b"\r\n"


def _qp(text: str) -> bytes:
    normalised = text.replace("\r\n", "\n").replace("\n", CRLF)
    if not normalised.endswith(CRLF):
        normalised += CRLF
    return binascii.b2a_qp(normalised.encode("utf-8"), quotetabs=False, istext=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def smtp_sink(*flags: str) -> Iterator[int]:
    binary = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
    if not os.access(binary, os.X_OK):
        raise SystemExit("smtp-sink not found (apt-get install postfix)")
    port = free_port()
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    child = subprocess.Popen([binary, *flags, *user, f"127.0.0.1:{port}", "100"])
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield port
    finally:
        child.terminate()
        child.wait()


def transport_before(rev: str) -> ModuleType:
    source = subprocess.run(
        ["git", "show", f"{rev}:newsletter/transports/smtp.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "smtp_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("smtp_before", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["smtp_before"] = module  # its dataclass looks itself up there
    spec.loader.exec_module(module)
    return module


def per_second(send: Callable[[], object], n: int) -> float:
    send()  # connect and EHLO outside the timing
    t0 = time.perf_counter()
    for _ in range(n):
        send()
    return n / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=3000)
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved SMTP rounds")
    parser.add_argument("--before", default=BEFORE, help="git revision of the old transport")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(database_url=f"sqlite:///{Path(tmp) / 'bench.db'}")
        db.upgrade(settings.database_url)
        with db.session_scope(settings.database_url) as session:
            seeding.seed(session)
            issue_id = seeding.draft_sample_issue(session).id
            assert issue_id is not None
            fill_ledger(
                session, issue_id=issue_id, checks=QAConfig(size_warn=10**9, size_limit=10**9)
            )
        with db.session_scope(settings.database_url) as session:
            prep = prepare.prepared(session, issue_id, settings)
            frozen = session.get(RenderedIssue, issue_id)
            assert frozen is not None
            html, text = frozen.html, frozen.text
        people = [
            recipients.recipient(
                settings, prep, subscriber_id=i, email=f"r{i}@example.org", name=f"Reader {i}"
            )
            for i in range(args.recipients)
        ]
    after = prep.template
    before = Before(after, html, text)

    timings: dict[str, float] = {}
    sizes: dict[str, int] = {}
    for _ in range(args.rounds):  # interleaved; the best round of each
        for label, template in (("before", before), ("after", after)):
            t0 = time.perf_counter()
            total = sum(len(template.render(p)[1]) for p in people)
            took = (time.perf_counter() - t0) / len(people) * 1e6
            timings[label] = min(timings.get(label, took), took)
            sizes[label] = total // len(people)

    old = transport_before(args.before)
    message, message_before = after.render(people[0])[1], before.render(people[0])[1]
    small = b"Subject: a small message\r\n\r\n" + b"x" * 70 + b"\r\n"  # round trips alone
    runs: dict[str, list[float]] = {}
    with smtp_sink() as port, smtp_sink("-p") as port_p:
        variants: dict[str, tuple[Callable[[SMTPConfig], Sender], int, bytes]] = {
            # label: (transport class, sink port, message)
            "before": (old.SMTPTransport, port, message_before),
            "old_transport": (old.SMTPTransport, port, message),
            "unpipelined": (SMTPTransport, port_p, message),
            "pipelined": (SMTPTransport, port, message),
            "announced": (SMTPTransport, port, message),
            "small_old_transport": (old.SMTPTransport, port, small),
            "small_unpipelined": (SMTPTransport, port_p, small),
            "small_pipelined": (SMTPTransport, port, small),
            "small_announced": (SMTPTransport, port, small),
        }
        # interleaved rounds: the machine is shared, so each variant's best round is quoted
        # (the least disturbed) with its median
        for _ in range(args.rounds):
            for label, (cls, sink_port, data) in variants.items():
                transport = cls(SMTPConfig("127.0.0.1", sink_port))

                def send(t: Sender = transport, d: bytes = data) -> str:
                    return t.send("b@example.org", "r@example.org", d)

                if label.endswith("announced"):  # each message opens the next one's transaction

                    def send(t: Sender = transport, d: bytes = data) -> str:
                        assert isinstance(t, SMTPTransport)
                        return t.send_then("b@example.org", "r@example.org", d, "r@example.org")

                rate = per_second(send, args.messages // args.rounds)
                transport.close()
                runs.setdefault(label, []).append(rate)

    result: dict[str, float] = {
        "html_kb": round(len(html.encode()) / 1024, 1),
        "message_kb_before": round(sizes["before"] / 1024, 1),
        "message_kb_after": round(sizes["after"] / 1024, 1),
        "render_us_before": round(timings["before"], 1),
        "render_us_after": round(timings["after"], 1),
    }
    for label, rates in runs.items():
        result[f"smtp_per_s_{label}_best"] = round(max(rates))
        result[f"smtp_per_s_{label}_median"] = round(statistics.median(rates))
    print(f"HTML {result['html_kb']} KB")
    print(
        f"message on the wire: {result['message_kb_before']} KB before, "
        f"{result['message_kb_after']} KB after"
    )
    print(
        f"render per message: {result['render_us_before']} us before, "
        f"{result['render_us_after']} us after"
    )
    print("SMTP to smtp-sink, one connection, messages/s (best round, median):")
    for label in runs:
        best, median = result[f"smtp_per_s_{label}_best"], result[f"smtp_per_s_{label}_median"]
        print(f"  {label:<20} {best:>7,.0f} {median:>7,.0f}")
    print(json.dumps(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
