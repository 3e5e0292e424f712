"""Several connections to the mail server, each driven by a thread of its own.

Against a relay across a network each message costs its round trips (two with PIPELINING) of
waiting: one connection carries about 1000 / (2 x RTT ms) messages a second, whatever the CPU.
``TransportPool`` overlaps those waits: ``submit`` hands a message to the next free connection
and returns at once with a future for the server's reply (or the ``TransportError``). The caller
keeps at most ``size`` messages in flight; each connection is used by one thread at a time.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from newsletter.transports import Transport


class TransportPool:
    def __init__(self, make: Callable[[], Transport], size: int) -> None:
        if size < 1:
            raise ValueError("a transport pool needs at least one connection")
        self.size = size
        self._all = [make() for _ in range(size)]
        self._free: queue.SimpleQueue[Transport] = queue.SimpleQueue()
        for transport in self._all:
            self._free.put(transport)
        self._threads = ThreadPoolExecutor(size, thread_name_prefix="smtp")

    def _send(self, envelope_from: str, to: str, data: bytes) -> str:
        transport = self._free.get()
        try:
            return transport.send(envelope_from, to, data)
        finally:
            self._free.put(transport)

    def submit(self, envelope_from: str, to: str, data: bytes) -> Future[str]:
        """Send on the next free connection; the future holds the reply or the failure."""
        return self._threads.submit(self._send, envelope_from, to, data)

    def close(self) -> None:
        self._threads.shutdown(wait=True)
        for transport in self._all:
            transport.close()
