"""Human or machine: every rule that decides an event's verdict, in order, with its source.

Decided once, when the event is recorded, from the request (method, headers, IP), the time
since the message was delivered and the recipient's recent clicks of the same message; stored
as the verdict and the rule's name, never the IP or the user agent (the IP ranges are used here
only, at decision time). The first rule that matches decides; none matching: human ("human").

========================  =====  ===========================================================
rule                      kind   what and why (source)
========================  =====  ===========================================================
``trap``                  click  the hidden trap link (``analytics.links``): no person sees
                                 or reaches it; scanners fetch every ``href`` of a message
``head``                  both   a HEAD request: browsers follow a link with GET; Microsoft
                                 Office's "existence discovery" and many link checkers send
                                 HEAD first (RFC 9110 9.3.2: HEAD is for metadata)
``prefetch``              both   ``Purpose: prefetch``, ``Sec-Purpose: prefetch`` (Fetch
                                 standard, Chromium speculation rules), ``X-Moz: prefetch``
                                 (Firefox link prefetching), ``X-Purpose: preview`` (Safari):
                                 fetched ahead of any person's click
``no_user_agent``         both   no ``User-Agent``: every browser and mail app sends one
``apple_mpp``             open   Apple Mail Privacy Protection (iOS 15 / macOS 12): Apple's
                                 proxy loads every image of every message at delivery,
                                 whether or not it is read (Apple, "Mail Privacy Protection",
                                 support.apple.com/guide/iphone/iph2b1b2b5b1); its fetches carry
                                 the bare user agent ``Mozilla/5.0`` and come from Apple's
                                 17.0.0.0/8. Reported apart so the report can show the MPP share
``scanner_agent``         both   a link scanner's or a bot's user agent: Barracuda (Link
                                 Protection), Proofpoint (URL Defense), Mimecast (URL Protect),
                                 Microsoft Office's existence discovery, link-preview bots,
                                 HTTP libraries, headless browsers (``SCANNER_AGENTS``)
``scanner_network``       both   from a mail-security network: Exchange Online Protection,
                                 whose Defender for Office 365 Safe Links detonates URLs at
                                 delivery with browser-like user agents (Microsoft, "Microsoft
                                 365 URLs and IP address ranges", ID 10), Proofpoint, Mimecast
                                 and Barracuda's published gateway ranges (``SCANNER_NETWORKS``)
``too_fast``              click  within ``track_machine_seconds`` (10 s) of the message's
                                 delivery: Safe Links, Proofpoint and Mimecast scan at delivery;
                                 a person takes longer to see, open, read and click. An open
                                 is not judged by time (a person with the mail app open may
                                 open at once)
``burst``                 click  the recipient clicked at least ``max(track_burst_links,
                                 track_burst_share x the message's links)`` links of the
                                 message within ``track_burst_seconds``: a scanner clicks every
                                 link in a second or two, a person opens a few stories
``gmail_proxy`` (human)   open   Google's image proxy (``GoogleImageProxy``): Gmail fetches
                                 images when the reader opens the message, then caches them;
                                 a person, but their later opens are not seen (unique openers
                                 are right, repeated opens undercounted)
``yahoo_proxy`` (human)   open   Yahoo Mail's image proxy (``YahooMailProxy``), the same
``human`` (human)         both   none of the above
========================  =====  ===========================================================

A burst, once evident, makes the earlier clicks of the same burst machine too (decided: they
were the same scanner; ``recording`` re-marks the recipient's "human" clicks of the message
within the window as ``burst``; a click another rule already called machine keeps its rule).
Clicks before the window keep their verdict.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from newsletter.models_analytics import EngagementKind, LinkKind, Verdict

#: lower-case pieces of user agents that only machines send
SCANNER_AGENTS = (
    "barracuda",  # Barracuda Email Security / Link Protection
    "proofpoint",  # Proofpoint URL Defense
    "mimecast",  # Mimecast URL Protect
    "ms office existence discovery",
    "microsoft office existence discovery",  # Office checks a link before opening it
    "bot/",  # Googlebot/2.1, bingbot/2.0, Twitterbot/1.0, LinkedInBot/1.0, Discordbot/2.0 ...
    "slackbot",  # Slackbot-LinkExpanding 1.0 (no slash): a pasted link's preview
    "bot;",  # "(compatible; SomeBot; +http://...)"
    "spider",
    "crawler",
    "facebookexternalhit",
    "skypeuripreview",
    "whatsapp",
    "python-requests",
    "python-urllib",
    "aiohttp",
    "httpx",
    "curl/",
    "wget/",
    "go-http-client",
    "okhttp",
    "java/",
    "libwww-perl",
    "headlesschrome",
    "phantomjs",
)
#: mail-security networks (published gateway ranges as of 2026; used at decision time only)
SCANNER_NETWORKS = (
    # Exchange Online Protection (Microsoft 365 endpoints, ID 10): Safe Links scans from here
    "40.92.0.0/15",
    "40.107.0.0/16",
    "52.100.0.0/14",
    "104.47.0.0/17",
    "2a01:111:f400::/48",
    "2a01:111:f403::/48",
    # Proofpoint (Essentials and on-demand gateways)
    "67.231.144.0/20",
    "148.163.128.0/19",
    # Mimecast (US, UK, DE gateways)
    "205.139.110.0/24",
    "207.211.30.0/24",
    "170.10.128.0/22",
    "91.220.42.0/24",
    "195.130.217.0/24",
    "51.163.158.0/24",
    # Barracuda Email Security Service
    "209.222.80.0/21",
    "64.235.144.0/20",
    "35.170.131.0/24",
)
APPLE_NETWORK = "17.0.0.0/8"
APPLE_MPP_AGENT = "mozilla/5.0"
PREFETCH = {"purpose": "prefetch", "sec-purpose": "prefetch", "x-moz": "prefetch"}


@dataclass(frozen=True)
class Limits:
    """``Settings.track_*``: the time and burst rules' thresholds."""

    machine_seconds: float = 10.0
    burst_seconds: float = 5.0
    burst_links: int = 4
    burst_share: float = 0.5

    def burst_size(self, links: int) -> int:
        return max(self.burst_links, math.ceil(self.burst_share * links))


@dataclass(frozen=True)
class Seen:
    """One request to ``/r/`` or ``/o/`` as the rules see it."""

    kind: str  # EngagementKind
    method: str
    headers: Mapping[str, str]  # names in lower case
    ip: str | None
    at: datetime
    link_kind: str | None = None  # LinkKind of the clicked link
    delivered_at: datetime | None = None  # the ledger's sent_at
    burst_clicks: int = 0  # the recipient's clicks of this message in the burst window, this one
    links: int = 0  # the message's links, the trap aside


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    rule: str

    @property
    def human(self) -> bool:
        return self.verdict == Verdict.human


def machine(rule: str) -> Decision:
    return Decision(Verdict.machine, rule)


@lru_cache(maxsize=1)
def _networks() -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(n) for n in SCANNER_NETWORKS)


def _address(ip: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(ip or "")
    except ValueError:
        return None


@lru_cache(maxsize=4096)  # a busy redirect sees the same few addresses again and again
def in_networks(ip: str | None, networks: tuple[str, ...] | None = None) -> bool:
    address = _address(ip)
    if address is None:
        return False
    nets = _networks() if networks is None else tuple(ipaddress.ip_network(n) for n in networks)
    return any(address.version == n.version and address in n for n in nets)


def is_burst(clicks: int, links: int, limits: Limits) -> bool:
    return clicks >= limits.burst_size(links)


def decide(seen: Seen, limits: Limits) -> Decision:
    """The verdict and the rule that decided it (see the table above)."""
    agent = seen.headers.get("user-agent", "").strip().lower()
    opened = seen.kind == EngagementKind.open
    if seen.kind == EngagementKind.click and seen.link_kind == LinkKind.trap:
        return machine("trap")
    if seen.method.upper() == "HEAD":
        return machine("head")
    for header, value in PREFETCH.items():
        if value in seen.headers.get(header, "").lower():
            return machine("prefetch")
    if seen.headers.get("x-purpose", "").lower() in {"preview", "prefetch"}:
        return machine("prefetch")
    if not agent:
        return machine("no_user_agent")
    if opened and (agent == APPLE_MPP_AGENT or in_networks(seen.ip, (APPLE_NETWORK,))):
        return machine("apple_mpp")
    if any(piece in agent for piece in SCANNER_AGENTS):
        return machine("scanner_agent")
    if in_networks(seen.ip):
        return machine("scanner_network")
    if not opened:
        if seen.delivered_at is not None:
            elapsed = (seen.at - seen.delivered_at).total_seconds()
            if elapsed < limits.machine_seconds:
                return machine("too_fast")
        if is_burst(seen.burst_clicks, seen.links, limits):
            return machine("burst")
        return Decision(Verdict.human, "human")
    if "googleimageproxy" in agent:
        return Decision(Verdict.human, "gmail_proxy")
    if "yahoomailproxy" in agent:
        return Decision(Verdict.human, "yahoo_proxy")
    return Decision(Verdict.human, "human")
