"""What outbound requests may reach: public addresses only, or networks allowed by name."""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from urllib.parse import quote, urlsplit

from newsletter.config import Settings
from newsletter.exceptions import InvalidInput

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network
#: host name -> its addresses; OSError (socket.gaierror) when it has none
Resolver = Callable[[str], Sequence[IPAddress]]

NOT_ALLOWED = "the address is not allowed (not a public address)"
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
    target = Target.parse(url, url)
    addresses = permitted_addresses(target.host, policy)
    if addresses is None:
        raise AddressNotAllowed(f"{url}: {NOT_ALLOWED}")
    return addresses


def permitted_addresses(host: str, policy: OutboundPolicy) -> tuple[IPAddress, ...] | None:
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


@dataclass(frozen=True)
class Target:
    """The parts of an http(s) URL a request needs."""

    url: str
    https: bool
    host: str  # ASCII (IDNA), IPv6 without brackets
    port: int
    path: str  # the request target: path and query, percent-encoded

    @classmethod
    def parse(cls, url: str, context: str) -> Target:
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
