"""The email as bytes: MIME built once per issue, and its DKIM signature.

- ``message``  the issue's message template (headers and parts built once; per recipient only
               To, Date, Message-ID, List-Unsubscribe and the personal values change)
- ``qp``       quoted-printable for a part encoded once and patched per recipient (no line
               starts with a dot: nothing to dot-stuff)
- ``dkim``     DKIM signing (RFC 6376, RFC 8463: RSA, ed25519 or both), checked at start;
               ``dkim_keys`` reads keys and makes the DNS record, ``dkim_canon`` canonicalizes,
               ``dkim_verify`` verifies the self-test with dkimpy
- ``outbox``   the local SMTP sink's ``.eml`` files read back (``/dev/outbox``)
"""

from __future__ import annotations

from newsletter.mail.dkim import (
    DKIMKeyError,
    DKIMSigner,
    dns_txt_record,
    generate_key,
    signer_from_settings,
)
from newsletter.mail.message import MessageTemplate, Recipient, address_header, message_id

__all__ = [
    "DKIMKeyError",
    "DKIMSigner",
    "MessageTemplate",
    "Recipient",
    "address_header",
    "dns_txt_record",
    "generate_key",
    "message_id",
    "signer_from_settings",
]
