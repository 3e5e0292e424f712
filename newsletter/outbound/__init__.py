"""Every outbound HTTP request goes through here: feed fetches, webhook POSTs, any later fetch.

- ``policy``  what may be reached: the address classes, the allow-list, URL vetting
- ``http``    one exchange over a connection to a vetted address; ``fetch`` follows redirects

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

from newsletter.outbound.http import (
    NO_ANSWER,
    REDIRECT_STATUSES,
    USER_AGENT,
    Response,
    fetch,
    request,
)
from newsletter.outbound.policy import (
    NOT_ALLOWED,
    AddressNotAllowed,
    IPAddress,
    IPNetwork,
    OutboundError,
    OutboundPolicy,
    Resolver,
    is_public,
    system_resolver,
    vet_url,
)

__all__ = [
    "NOT_ALLOWED",
    "NO_ANSWER",
    "REDIRECT_STATUSES",
    "USER_AGENT",
    "AddressNotAllowed",
    "IPAddress",
    "IPNetwork",
    "OutboundError",
    "OutboundPolicy",
    "Resolver",
    "Response",
    "fetch",
    "is_public",
    "request",
    "system_resolver",
    "vet_url",
]
