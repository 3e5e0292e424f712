"""A cheap SMTP sink that notes when each message arrives and for whom, and keeps nothing else.

``bench/unsubscribe_storm.py`` needs only (arrival time, recipient) from its sink, but the
project's aiosmtpd sink parses every line of every 68.7 KB message in Python: during a storm it
took about as much CPU as ``newsletter serve`` itself, on the same two cores. This one is an
asyncio protocol that reads the commands (EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT; offering
PIPELINING, 8BITMIME and SMTPUTF8, as the project's sink does) and, in DATA, only looks for the
ending ``CRLF.CRLF`` in each chunk it gets (no line splitting, no copy of the message kept).

A message arrives when its ending dot is read, before its ``250`` is written, on
CLOCK_MONOTONIC (``time.monotonic``): a sender that got its ``250`` had its message noted
earlier. On SIGTERM or SIGINT the arrivals go to ``out`` as lines ``<time> <recipient>``.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

END = b"\r\n.\r\n"
EHLO = (
    b"250-sink\r\n250-SIZE 33554432\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n"
    b"250-PIPELINING\r\n250 HELP\r\n"
)


class ArrivalSink(asyncio.Protocol):
    def __init__(self, arrivals: list[tuple[float, str]]) -> None:
        self.arrivals = arrivals
        self.buffer = bytearray()  # commands not yet read
        self.data: bytearray | None = None  # in DATA: the last bytes read (an ending may span)
        self.rcpts: list[str] = []
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(b"220 sink ESMTP\r\n")

    def data_received(self, chunk: bytes) -> None:
        replies: list[bytes] = []
        if self.data is not None:
            chunk = self._in_data(chunk, replies)
        self.buffer += chunk
        while self.data is None:
            end = self.buffer.find(b"\r\n")
            if end < 0:
                break
            line = bytes(self.buffer[:end])
            del self.buffer[: end + 2]
            replies.append(self._command(line))
            if self.data is not None and self.buffer:  # DATA's content came with it
                rest = self._in_data(bytes(self.buffer), replies)
                self.buffer = bytearray(rest)
        if replies and self.transport is not None:
            self.transport.write(b"".join(replies))
            if replies[-1].startswith(b"221"):
                self.transport.close()

    def _in_data(self, chunk: bytes, replies: list[bytes]) -> bytes:
        """Scan ``chunk`` for the ending; what follows it (pipelined commands) is returned."""
        assert self.data is not None
        self.data += chunk
        at = self.data.find(END)
        if at < 0:
            del self.data[:-4]  # an ending split across reads still matches
            return b""
        now = time.monotonic()
        self.arrivals.extend((now, to) for to in self.rcpts)
        rest = bytes(self.data[at + len(END) :])
        self.data, self.rcpts = None, []
        replies.append(b"250 2.0.0 OK queued\r\n")
        return rest

    def _command(self, line: bytes) -> bytes:
        verb = line[:4].upper()
        if verb in (b"EHLO", b"HELO"):
            self.rcpts = []
            return EHLO if verb == b"EHLO" else b"250 sink\r\n"
        if verb == b"MAIL":
            self.rcpts = []
            return b"250 OK\r\n"
        if verb == b"RCPT":
            address = line.split(b":", 1)[1].strip().split(b" ", 1)[0].strip(b"<>")
            self.rcpts.append(address.decode("utf-8", "replace"))
            return b"250 OK\r\n"
        if verb == b"DATA":
            if not self.rcpts:
                return b"503 no valid recipients\r\n"
            self.data = bytearray(b"\r\n")  # an empty message ends with the first line's dot
            return b"354 End data with <CR><LF>.<CR><LF>\r\n"
        if verb == b"RSET":
            self.rcpts = []
            return b"250 OK\r\n"
        if verb == b"NOOP":
            return b"250 OK\r\n"
        if verb == b"QUIT":
            return b"221 Bye\r\n"
        return b"500 command not recognized\r\n"


def run(port: int, out: Path, host: str = "127.0.0.1") -> None:
    """Serve until SIGTERM/SIGINT, printing the count every half second; then write ``out``."""
    arrivals: list[tuple[float, str]] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        server = await loop.create_server(lambda: ArrivalSink(arrivals), host, port)
        while True:
            try:
                await asyncio.wait_for(stop.wait(), 0.5)
                break
            except TimeoutError:
                print(f"mesg={len(arrivals)}", flush=True)
        part = out.with_suffix(".part")  # before closing: the workers may still hold connections
        with part.open("w") as f:
            f.writelines(f"{at:.6f} {to}\n" for at, to in arrivals)
        part.replace(out)
        server.close()

    asyncio.run(main())
