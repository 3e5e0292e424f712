"""Test sends: the draft as it stands, to a few typed addresses, before the real send.

The message is the one subscribers would get (same template, same headers, DKIM-signed when
configured) with "[Test]" before the subject, the personal values of nobody (subscriber 0: the
links verify but unsubscribe no one) and a fresh Message-ID per copy. Nothing is written to the
ledger; the issue stays a draft.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.utils import make_msgid

from newsletter import db
from newsletter.addresses import normalise_email
from newsletter.config import Settings
from newsletter.content import issues, rendering
from newsletter.exceptions import InvalidInput, TransportError
from newsletter.mail.dkim import signer_from_settings
from newsletter.mail.message import MessageTemplate, Recipient
from newsletter.sending import recipients, relays
from newsletter.transports import Transport

MAX_ADDRESSES = 10
SUBJECT_PREFIX = "[Test] "


@dataclass(frozen=True)
class TestSendResult:
    __test__ = False  # not a pytest class

    sent: list[str]
    failed: dict[str, str]  # address -> the server's reply or the connection error


def parse_addresses(text: str) -> list[str]:
    """Addresses separated by commas, semicolons, spaces or lines; each validated."""
    raw = [part for part in re.split(r"[\s,;]+", text or "") if part]
    if not raw:
        raise InvalidInput("type at least one email address for the test send")
    if len(raw) > MAX_ADDRESSES:
        raise InvalidInput(f"a test send goes to at most {MAX_ADDRESSES} addresses")
    return list(dict.fromkeys(normalise_email(address) for address in raw))


def send_test(
    settings: Settings, *, issue_id: int, addresses: str, transport: Transport | None = None
) -> TestSendResult:
    """Compile the issue now and hand one copy per address to the SMTP server."""
    to = parse_addresses(addresses)
    with db.session_scope(settings.database_url) as session:
        outline = issues.load_outline(session, issue_id)
        compiled = rendering.compile_issue(outline)
        newsletter, issue = outline.newsletter, outline.issue
    test = rendering.CompiledIssue(
        SUBJECT_PREFIX + compiled.subject, compiled.preheader, compiled.html, compiled.text
    )
    template = MessageTemplate(
        compiled=test, newsletter=newsletter, issue_id=issue_id, secret=settings.secret_key
    )
    signer = signer_from_settings(settings)
    own = transport is None
    if transport is None:  # the relays the newsletter's issues go through
        transport = relays.relay_set(settings)
        relays.route(transport, newsletter.relay)
    result = TestSendResult(sent=[], failed={})
    try:
        for address in to:
            values, links = recipients.recipient_values(
                settings, newsletter, issue, subscriber_id=0, email=address, name=""
            )
            mid, data = template.render(
                Recipient(
                    subscriber_id=0,
                    email=address,
                    name="",
                    values=values,
                    unsubscribe_url=links["unsubscribe_url"],
                    unsubscribe_mailto=links["unsubscribe_mailto"],
                )
            )
            fresh = make_msgid(domain=template.domain)
            data = data.replace(f"Message-ID: {mid}".encode(), f"Message-ID: {fresh}".encode(), 1)
            if signer is not None:
                data = signer.sign(data)
            try:
                transport.send(settings.bounce_address, address, data)
            except TransportError as exc:
                result.failed[address] = str(exc)
            else:
                result.sent.append(address)
    finally:
        if own:
            transport.close()
    return result
