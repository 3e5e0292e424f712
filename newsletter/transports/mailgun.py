"""Mailgun: our raw MIME message (DKIM signature and all) to ``/v3/{domain}/messages.mime``.

A multipart form with ``to`` (the recipient: Mailgun delivers to it, whatever the headers
say) and ``message`` (the MIME, as a file part), HTTP Basic auth ``api:KEY``. The US API is
``https://api.mailgun.net``, the EU one ``https://api.eu.mailgun.net`` (a setting).

A 200 answers ``{"id": "<...>", "message": "Queued. Thank you."}``; a refusal answers
``{"message": ...}`` (400: a bad address or request, permanent); 401/403 (the key) and 404 (the
domain is not on the account) are the account's problem: temporary; 429, 5xx: temporary.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from urllib.parse import quote

from newsletter.transports.http import HTTPTransport, api_address, failure, json_of, short_text

BASE_URL = "https://api.mailgun.net"
EU_BASE_URL = "https://api.eu.mailgun.net"


@dataclass(frozen=True)
class MailgunConfig:
    domain: str
    api_key: str
    base_url: str = BASE_URL
    timeout: float = 30.0


class MailgunTransport(HTTPTransport):
    provider = "mailgun"

    def __init__(self, config: MailgunConfig) -> None:
        self.config = config
        token = base64.b64encode(f"api:{config.api_key}".encode()).decode("ascii")
        super().__init__(
            config.base_url, timeout=config.timeout, headers={"Authorization": f"Basic {token}"}
        )
        self._path = f"/v3/{quote(config.domain, safe='')}/messages.mime"

    def send(self, envelope_from: str, to: str, data: bytes) -> str:
        response = self.post(
            self._path,
            data={"to": api_address(to)},
            files={"message": ("message.eml", data, "message/rfc822")},
        )
        reply = json_of(response)
        if 200 <= response.status_code < 300:
            said, message_id = reply.get("message", "queued"), reply.get("id", "?")
            return f"{response.status_code} mailgun: {said} id {message_id}"
        message = str(reply.get("message") or short_text(response))
        temporary = True if response.status_code == 404 else None
        raise failure(self.provider, response.status_code, message, temporary=temporary)
