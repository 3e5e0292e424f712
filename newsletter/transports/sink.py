"""A local SMTP sink (aiosmtpd): the demo's and the tests' mail server.

It stores every message it accepts, in memory and optionally as ``.eml`` files in a folder, and can
be told to answer some messages with a temporary failure or to hang up, for failure tests.
"""

from __future__ import annotations

import random
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer  # noqa: N811
from aiosmtpd.smtp import Envelope, Session


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    def parse(self) -> Message:
        return message_from_bytes(self.data)


@dataclass
class FaultPlan:
    """Faults to inject: a share of 451 replies and of dropped connections."""

    temp_fail_ratio: float = 0.0
    drop_ratio: float = 0.0
    seed: int | None = None
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)


class _Handler:
    def __init__(self, sink: SMTPSink) -> None:
        self.sink = sink

    async def handle_EHLO(  # noqa: N802 - aiosmtpd's hook name
        self,
        server: SMTPServer,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname  # the hook takes this over from aiosmtpd
        self.sink.hellos += 1  # one a connection (two with STARTTLS): tests count connections
        if self.sink.pipelining:
            # aiosmtpd reads commands one line at a time, so it takes pipelined ones; it does
            # not say so in its EHLO reply unless told
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        faults = self.sink.faults
        roll = faults.rng.random()
        if roll < faults.drop_ratio:
            if server.transport is not None:
                server.transport.close()
            return "421 closing"
        if roll < faults.drop_ratio + faults.temp_fail_ratio:
            return "451 4.3.0 try again later"
        content = envelope.original_content or envelope.content or b""
        data = content if isinstance(content, bytes) else content.encode()
        self.sink.store(Received(str(envelope.mail_from), list(envelope.rcpt_tos), data))
        return "250 2.0.0 OK queued"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class SMTPSink:
    """``with SMTPSink(folder=...) as sink:`` runs a real SMTP server on ``sink.port``."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        folder: Path | None = None,
        faults: FaultPlan | None = None,
        on_message: Callable[[Received], None] | None = None,
        smtputf8: bool = True,
        pipelining: bool = True,
    ) -> None:
        self.host = host
        self.smtputf8 = smtputf8  # offer SMTPUTF8 (RFC 6531), as modern relays do
        self.pipelining = pipelining  # offer PIPELINING (RFC 2920), as Postfix and others do
        self.port = port or free_port(host)
        self.folder = folder
        self.faults = faults or FaultPlan()
        self.on_message = on_message
        self.messages: list[Received] = []
        self.hellos = 0  # EHLOs answered
        self._lock = threading.Lock()
        self._numbered = 0  # messages the folder held before this sink started
        self._controller: Controller | None = None

    def store(self, received: Received) -> None:
        with self._lock:
            self.messages.append(received)
            number = self._numbered + len(self.messages)
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            # written aside, then renamed: a reader of the folder never sees half a message
            part = self.folder / f".{number:06d}.eml.part"
            part.write_bytes(received.data)
            part.replace(self.folder / f"{number:06d}.eml")
        if self.on_message is not None:
            self.on_message(received)

    def _last_number(self) -> int:
        """The highest NNNNNN.eml already in the folder: a restarted sink overwrites nothing."""
        if self.folder is None or not self.folder.is_dir():
            return 0
        return max((int(p.stem) for p in self.folder.glob("*.eml") if p.stem.isdigit()), default=0)

    def start(self) -> SMTPSink:
        self._numbered = self._last_number()
        self._controller = Controller(
            _Handler(self),
            hostname=self.host,
            port=self.port,
            data_size_limit=50_000_000,
            enable_SMTPUTF8=self.smtputf8,
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SMTPSink:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
