"""What a newsletter's sender domain should publish in DNS, for the settings page's card.

Three records: an SPF starter for the From domain (the relay's own include is the newsroom's to
fill in), the DKIM TXT record of the key the workers sign with (``NEWSLETTER_DKIM_*``), and a
DMARC starter at ``p=none``. Also whether ``base_url`` is https: one-click unsubscribe and every
personal link depend on it. Nothing here looks anything up in DNS.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from newsletter.config import Settings
from newsletter.exceptions import InvalidInput
from newsletter.mail.dkim import signer_from_settings
from newsletter.models import Newsletter

#: shown when the SMTP host names no relay (a local sink, an IP address)
RELAY_PLACEHOLDER = "_spf.your-relay.example"


@dataclass(frozen=True)
class DnsRecord:
    kind: str  # what it is for: SPF, DKIM, DMARC
    name: str  # where to publish it
    value: str  # the TXT value
    note: str


@dataclass(frozen=True)
class Deliverability:
    from_domain: str
    records: list[DnsRecord] = field(default_factory=list)
    #: why there is no DKIM record (not configured, or the key does not load)
    dkim_missing: str | None = None
    https: bool = False
    base_url: str = ""


def _relay(host: str) -> str:
    """The SMTP host as an SPF include target, or a placeholder when it names no relay."""
    name = host.strip().rstrip(".").lower()
    try:
        ipaddress.ip_address(name)
        return RELAY_PLACEHOLDER
    except ValueError:
        pass
    if not name or "." not in name or name.endswith((".local", ".internal")):
        return RELAY_PLACEHOLDER
    return name


def records_for(newsletter: Newsletter, settings: Settings) -> Deliverability:
    """The DNS records ``newsletter``'s From domain should publish, and the https check."""
    domain = newsletter.from_email.rpartition("@")[2].lower()
    bounce_domain = settings.bounce_address.rpartition("@")[2].lower()
    spf_note = (
        "A starter: replace the include with the one your SMTP relay documents. SPF is "
        "checked on the envelope sender"
        + (
            f" ({settings.bounce_address}), so publish it at {bounce_domain} too."
            if bounce_domain and bounce_domain != domain
            else "."
        )
    )
    records = [
        DnsRecord("SPF", domain, f"v=spf1 include:{_relay(settings.smtp_host)} ~all", spf_note)
    ]
    missing: str | None = None
    try:
        signer = signer_from_settings(settings)
    except InvalidInput as exc:
        signer, missing = None, f"the DKIM key does not load: {exc}"
    if signer is not None:
        aligned = domain == signer.domain or domain.endswith("." + signer.domain)
        for key, (name, value) in zip(signer.keys, signer.records(), strict=True):
            what = f"{key.bits}-bit RSA" if key.algorithm == "rsa" else "ed25519"
            note = (
                f"The public half of the {what} key the workers sign with."
                if aligned
                else f"The key signs as {signer.domain}, not {domain}: DMARC needs the DKIM "
                "domain to match the From domain, so set NEWSLETTER_DKIM_DOMAIN to it."
            )
            records.append(DnsRecord("DKIM", name, value, note))
    elif missing is None:
        missing = (
            "DKIM is not configured: set NEWSLETTER_DKIM_SELECTOR, _DOMAIN and _KEY_FILE, "
            "then this card shows the record to publish."
        )
    records.append(
        DnsRecord(
            "DMARC",
            f"_dmarc.{domain}",
            f"v=DMARC1; p=none; rua=mailto:dmarc-reports@{domain}",
            "A starter that only reports: read the reports for a few weeks, then move to "
            "p=quarantine and p=reject. Create the report mailbox or change it.",
        )
    )
    return Deliverability(
        from_domain=domain,
        records=records,
        dkim_missing=missing,
        https=settings.base_url.startswith("https://"),
        base_url=settings.base_url,
    )
