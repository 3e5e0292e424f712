"""HTTP exchanges over a connection to a vetted address: deadlines, size cap, hop by hop."""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urljoin

from newsletter.outbound.policy import (
    NOT_ALLOWED,
    AddressNotAllowed,
    IPAddress,
    OutboundError,
    OutboundPolicy,
    Target,
    permitted_addresses,
)

USER_AGENT = "newsletter/1"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
NO_ANSWER = "no answer from the server"
_CHUNK = 64 * 1024


# ---------------------------------------------------------------- requests


@dataclass(frozen=True)
class Response:
    """One HTTP answer; header names are lower-case."""

    url: str
    status: int
    headers: Mapping[str, str]
    body: bytes


def fetch(url: str, policy: OutboundPolicy, *, headers: Mapping[str, str] | None = None) -> bytes:
    """GET ``url`` through the guard, following redirects; the body of a 2xx answer."""
    current = url
    for hop in range(policy.max_redirects + 1):
        named = url if hop == 0 else f"{url} (redirected to {current})"
        response = _request("GET", current, policy, named=named, headers=headers, follow=True)
        location = response.headers.get("location")
        if response.status not in REDIRECT_STATUSES or not location:
            if not 200 <= response.status < 300:
                raise OutboundError(f"could not fetch {named}: HTTP {response.status}")
            return response.body
        current = _next_hop(current, location, named)
    raise OutboundError(f"could not fetch {url}: more than {policy.max_redirects} redirects")


def _next_hop(current: str, location: str, named: str) -> str:
    """Where a redirect points, absolute (it is checked like any URL before it is fetched)."""
    try:
        return urljoin(current, location.strip())
    except ValueError:  # an unclosed IPv6 bracket
        raise OutboundError(f"could not fetch {named}: a malformed redirect") from None


def request(
    method: str,
    url: str,
    policy: OutboundPolicy,
    *,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    truncate_at: int | None = None,
) -> Response:
    """One exchange through the guard, redirects not followed (a 3xx is returned as it is).

    ``truncate_at`` keeps that many bytes of the body and ignores the rest, where otherwise a
    body above ``policy.max_bytes`` is refused.
    """
    return _request(method, url, policy, named=url, body=body, headers=headers, keep=truncate_at)


def _request(
    method: str,
    url: str,
    policy: OutboundPolicy,
    *,
    named: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    keep: int | None = None,
    follow: bool = False,
) -> Response:
    """``request`` with ``named`` as the URL its errors show (the original one and the hop);
    ``follow``: the body of a redirect is not read, as the next hop is all that matters."""
    verb = "fetch" if method == "GET" else f"{method} to"
    target = Target.parse(url, f"could not {verb} {named}")
    addresses = permitted_addresses(target.host, policy)
    if addresses is None:
        raise AddressNotAllowed(f"could not {verb} {named}: {NOT_ALLOWED}")
    exchange = _Exchange(target, addresses, policy, failure=f"could not {verb} {named}")
    sent = {"User-Agent": USER_AGENT, **(headers or {})}
    return exchange.run(method, body, sent, keep=keep, follow=follow)


class _Deadline:
    """Shuts the connection down when the exchange outlasts its time. A socket timeout bounds
    one read only, which a server sending a byte every few seconds never hits."""

    def __init__(self, seconds: float) -> None:
        self._at = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._stopped = False
        self.expired = False
        self._timer = threading.Timer(seconds, self._cut)
        self._timer.daemon = True
        self._timer.start()

    def remaining(self) -> float:
        return max(self._at - time.monotonic(), 0.001)

    def watch(self, sock: socket.socket) -> None:
        # the descriptor, not the object: TLS wraps the socket in a new object on the same one
        with self._lock:
            self._fd = sock.fileno()

    def _cut(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self.expired = True
            if self._fd is not None:
                _shutdown(self._fd)

    def stop(self) -> None:
        """Call before the socket is closed: its descriptor number may be reused at once."""
        self._timer.cancel()
        with self._lock:
            self._stopped = True


def _shutdown(fd: int) -> None:
    """Shut a connected socket down by descriptor, making blocked reads return at once."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        sock.detach()


class _Exchange:
    """One connection to a vetted address of ``target``, one request and its response."""

    def __init__(
        self,
        target: Target,
        addresses: Sequence[IPAddress],
        policy: OutboundPolicy,
        *,
        failure: str,
    ) -> None:
        self.target = target
        self.addresses = addresses
        self.policy = policy
        self.failure = failure  # "could not fetch <url>", the start of every error

    def run(
        self,
        method: str,
        body: bytes | None,
        headers: Mapping[str, str],
        *,
        keep: int | None,
        follow: bool,
    ) -> Response:
        deadline = _Deadline(self.policy.read_timeout)
        connection = self._connection(deadline)
        try:
            connection.request(method, self.target.path, body=body, headers=dict(headers))
            answer = connection.getresponse()
            skip = follow and answer.status in REDIRECT_STATUSES
            data = b"" if skip else self._read(answer, keep)
        except ssl.SSLCertVerificationError:
            invalid = "the server's TLS certificate is not valid"
            raise OutboundError(f"{self.failure}: {invalid}") from None
        except (OSError, http.client.HTTPException):
            # refused, reset, timed out, unreachable: one message, so it cannot map the network
            raise OutboundError(f"{self.failure}: {NO_ANSWER}") from None
        finally:
            deadline.stop()
            connection.close()
        if deadline.expired:  # a cut connection can look like a body that simply ended
            raise OutboundError(f"{self.failure}: {NO_ANSWER}")
        headers_seen = {name.lower(): value for name, value in answer.getheaders()}
        return Response(self.target.url, answer.status, headers_seen, data)

    def _connection(self, deadline: _Deadline) -> http.client.HTTPConnection:
        host, port = self.target.host, self.target.port
        if self.target.https:
            return _PinnedHTTPS(host, port, self._opener(deadline), ssl.create_default_context())
        return _PinnedHTTP(host, port, self._opener(deadline))

    def _opener(self, deadline: _Deadline) -> Callable[[], socket.socket]:
        def open_socket() -> socket.socket:
            sock = _connect(self.addresses, self.target.port, self.policy, deadline)
            deadline.watch(sock)
            sock.settimeout(deadline.remaining())
            return sock

        return open_socket

    def _read(self, answer: http.client.HTTPResponse, keep: int | None) -> bytes:
        """The body: at most ``keep`` bytes, or all of it and refused above the cap."""
        limit = self.policy.max_bytes if keep is None else keep
        declared = answer.getheader("Content-Length", "")
        if keep is None and declared.isdigit() and int(declared) > limit:
            raise OutboundError(f"{self.failure}: the response is larger than {limit} bytes")
        data = _read_up_to(answer, limit + 1)
        if len(data) > limit:
            if keep is None:
                raise OutboundError(f"{self.failure}: the response is larger than {limit} bytes")
            data = data[:limit]
        return data


def _read_up_to(answer: http.client.HTTPResponse, size: int) -> bytes:
    """At most ``size`` bytes of the body, in chunks (never the whole of an endless one);
    IncompleteRead when the connection ends before the declared length."""
    chunks: list[bytes] = []
    total = 0
    while total < size:
        chunk = answer.read(min(_CHUNK, size - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    if total < size and answer.length:  # read(amt) returns a body cut short without a word
        raise http.client.IncompleteRead(b"".join(chunks), answer.length)
    return b"".join(chunks)


def _connect(
    addresses: Sequence[IPAddress], port: int, policy: OutboundPolicy, deadline: _Deadline
) -> socket.socket:
    """A TCP connection to the first vetted address that answers (the name is not resolved
    again: a second lookup could give another address)."""
    failure: OSError = ConnectionError("no address")
    for address in addresses:
        timeout = min(policy.connect_timeout, deadline.remaining())
        try:
            return socket.create_connection((str(address), port), timeout=timeout)
        except OSError as exc:
            failure = exc
    raise failure


class _PinnedHTTP(http.client.HTTPConnection):
    """HTTPConnection whose socket comes from ``opener`` (a vetted address), not from the name."""

    def __init__(self, host: str, port: int, opener: Callable[[], socket.socket]) -> None:
        super().__init__(host, port)
        self._create_connection = lambda *_args, **_kwargs: opener()


class _PinnedHTTPS(http.client.HTTPSConnection):
    """The same over TLS: the host name still goes to SNI and the certificate check."""

    def __init__(
        self, host: str, port: int, opener: Callable[[], socket.socket], context: ssl.SSLContext
    ) -> None:
        super().__init__(host, port, context=context)
        self._create_connection = lambda *_args, **_kwargs: opener()
