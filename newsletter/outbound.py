"""Every outbound HTTP request goes through here: feed fetches, webhook POSTs, any later fetch.

- The URL must be http(s) with a host and no credentials. The host is resolved once and refused
  unless every address is public (``is_public``) or inside the policy's ``allowed_networks``:
  loopback, private, link-local, CGNAT, multicast, reserved, unspecified and broadcast addresses
  are refused, and so is IPv6 that embeds such an IPv4 (mapped, 6to4, Teredo, NAT64). Decimal,
  octal and hex host forms (``http://2130706433/``) are caught because what counts is the
  address the name resolves to.
- The connection goes to a vetted address itself, never to a second resolution of the name (no
  DNS-rebinding window); the name is kept for the Host header and for TLS (SNI, certificate).
- ``fetch`` follows redirects one hop at a time, each new URL checked again like the first, at
  most ``max_redirects``; ``request`` follows none (a 3xx is the answer).
- Connecting may take ``connect_timeout``; the whole exchange (connection included) must end
  within ``read_timeout``, so a server trickling a byte now and then is cut off too. A body
  above ``max_bytes`` is refused. Proxies from the environment are never used.
- Every failure is one ``OutboundError`` (an ``InvalidInput``). A refused connection, a timeout,
  a reset and an unreachable host all read "no answer from the server", so the messages do
  not map the network behind us; a refused address says so, and an HTTP status is named.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from urllib.parse import quote, urljoin, urlsplit

from newsletter.config import Settings
from newsletter.exceptions import InvalidInput

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network
#: host name -> its addresses; OSError (socket.gaierror) when it has none
Resolver = Callable[[str], Sequence[IPAddress]]

USER_AGENT = "newsletter/1"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
NO_ANSWER = "no answer from the server"
NOT_ALLOWED = "the address is not allowed (not a public address)"
_CHUNK = 64 * 1024
_CGNAT = ip_network("100.64.0.0/10")  # RFC 6598 shared address space: a carrier's inside
_NAT64 = ip_network("64:ff9b::/96")  # RFC 6052 well-known prefix: the last 32 bits are IPv4
# characters left as they are in a request target (RFC 3986 reserved and unreserved, and '%')
_SAFE_PATH = "/%:@!$&'()*+,;=-._~"
_SAFE_QUERY = _SAFE_PATH + "?"


class OutboundError(InvalidInput):
    """An outbound request that was refused or got no usable answer."""


class AddressNotAllowed(OutboundError):
    """The host does not resolve to public (or explicitly allowed) addresses only."""


def system_resolver(host: str) -> list[IPAddress]:
    """The host's IPv4 and IPv6 addresses from getaddrinfo, in its order, without repeats."""
    found = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    families = (socket.AF_INET, socket.AF_INET6)
    return list(dict.fromkeys(ip_address(info[4][0]) for info in found if info[0] in families))


@dataclass(frozen=True)
class OutboundPolicy:
    """What outbound requests may reach and how long and large their answers may be."""

    allowed_networks: tuple[IPNetwork, ...] = ()
    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    max_bytes: int = 10_000_000
    max_redirects: int = 3
    resolver: Resolver = system_resolver

    @classmethod
    def from_settings(cls, settings: Settings) -> OutboundPolicy:
        return cls(
            allowed_networks=settings.allowed_networks,
            connect_timeout=settings.outbound_connect_timeout,
            read_timeout=settings.outbound_read_timeout,
            max_bytes=settings.outbound_max_bytes,
            max_redirects=settings.outbound_max_redirects,
        )

    def permits(self, ip: IPAddress) -> bool:
        """Whether ``ip`` is public or inside an allowed network (IPv4-mapped IPv6 as IPv4)."""
        plain = ip.ipv4_mapped if isinstance(ip, IPv6Address) and ip.ipv4_mapped else ip
        return is_public(ip) or any(plain in network for network in self.allowed_networks)


# ---------------------------------------------------------------- addresses


def is_public(ip: IPAddress) -> bool:
    """Whether ``ip`` is an ordinary public unicast address; IPv6 carrying IPv4 is judged by it."""
    if isinstance(ip, IPv6Address):
        if ip.ipv4_mapped is not None:
            return is_public(ip.ipv4_mapped)
        if ip in _NAT64:  # Python calls the prefix reserved, but it stands for the IPv4 inside
            return is_public(IPv4Address(int(ip) & 0xFFFFFFFF))
        if not all(is_public(inner) for inner in _tunnelled(ip)):
            return False
    return _ordinary_public(ip)


def _tunnelled(ip: IPv6Address) -> tuple[IPv4Address, ...]:
    """The IPv4 addresses a 6to4 or Teredo address carries (Teredo: server and client)."""
    if ip.sixtofour is not None:
        return (ip.sixtofour,)
    return ip.teredo or ()


def _ordinary_public(ip: IPAddress) -> bool:
    # is_global alone is not enough: multicast and some reserved ranges count as global
    special = (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved  # includes 240.0.0.0/4 and so the broadcast 255.255.255.255
        or ip.is_unspecified
        or ip in _CGNAT
        or (isinstance(ip, IPv6Address) and ip.is_site_local)
    )
    return ip.is_global and not special


def vet_url(url: str, policy: OutboundPolicy) -> tuple[IPAddress, ...]:
    """Check an http(s) URL as a request would, without connecting: its vetted addresses.

    AddressNotAllowed when the host resolves to nothing, too: whether an internal name exists
    is not told."""
    target = _Target.parse(url, url)
    addresses = _permitted_addresses(target.host, policy)
    if addresses is None:
        raise AddressNotAllowed(f"{url}: {NOT_ALLOWED}")
    return addresses


def _permitted_addresses(host: str, policy: OutboundPolicy) -> tuple[IPAddress, ...] | None:
    """The host's addresses when all are permitted; None when one is not or there are none."""
    try:
        addresses: Sequence[IPAddress] = (ip_address(host),)  # a literal needs no lookup
    except ValueError:
        try:
            addresses = policy.resolver(host)
        except (OSError, UnicodeError, ValueError):
            return None
    if not addresses or not all(policy.permits(ip) for ip in addresses):
        return None
    return tuple(addresses)


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
    target = _Target.parse(url, f"could not {verb} {named}")
    addresses = _permitted_addresses(target.host, policy)
    if addresses is None:
        raise AddressNotAllowed(f"could not {verb} {named}: {NOT_ALLOWED}")
    exchange = _Exchange(target, addresses, policy, failure=f"could not {verb} {named}")
    sent = {"User-Agent": USER_AGENT, **(headers or {})}
    return exchange.run(method, body, sent, keep=keep, follow=follow)


@dataclass(frozen=True)
class _Target:
    """The parts of an http(s) URL a request needs."""

    url: str
    https: bool
    host: str  # ASCII (IDNA), IPv6 without brackets
    port: int
    path: str  # the request target: path and query, percent-encoded

    @classmethod
    def parse(cls, url: str, context: str) -> _Target:
        """The target of ``url``; OutboundError starting with ``context`` when it is unusable."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise OutboundError(f"{context}: not a valid URL") from None
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise OutboundError(f"{context}: only http(s) URLs with a host can be fetched")
        if parts.username is not None or parts.password is not None:
            raise OutboundError(f"{context}: the URL must not contain a user name or password")
        try:
            host = parts.hostname.encode("idna").decode("ascii")
        except UnicodeError:
            raise OutboundError(f"{context}: the host name is malformed") from None
        path = quote(parts.path or "/", safe=_SAFE_PATH)
        query = quote(parts.query, safe=_SAFE_QUERY)
        https = scheme == "https"
        return cls(url, https, host, port or (443 if https else 80), path + (query and "?" + query))


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
        target: _Target,
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
