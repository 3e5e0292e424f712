"""SendGrid (v3): ``POST /v3/mail/send`` with the message's parts as JSON (no raw MIME).

Our message is read back (``http.read_message``) into ``personalizations`` (the recipient),
``from``, ``reply_to``, ``subject``, ``content`` (text/plain first, then text/html, as the API
wants) and ``headers`` (List-Unsubscribe, List-Unsubscribe-Post, Message-ID, ...). SendGrid
builds and DKIM-signs the MIME itself. Bearer API key.

A 202 has no body and the message id in the ``X-Message-Id`` header; a refusal answers
``{"errors": [{"message", "field", "help"}]}``: 400 and 413 permanent; 401/403 (the key or its
permissions) temporary, the account's problem; 429 and 5xx temporary.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import getaddresses

from newsletter.transports.http import HTTPTransport, failure, json_of, read_message, short_text

BASE_URL = "https://api.sendgrid.com"


@dataclass(frozen=True)
class SendGridConfig:
    api_key: str
    base_url: str = BASE_URL
    timeout: float = 30.0


class SendGridTransport(HTTPTransport):
    provider = "sendgrid"

    def __init__(self, config: SendGridConfig) -> None:
        self.config = config
        super().__init__(
            config.base_url,
            timeout=config.timeout,
            headers={"Authorization": f"Bearer {config.api_key}"},
        )

    def send(self, envelope_from: str, to: str, data: bytes) -> str:
        parts = read_message(data, to)
        recipient: dict[str, str] = {"email": parts.to_email}
        if parts.to_name:
            recipient["name"] = parts.to_name
        sender: dict[str, str] = {"email": parts.from_email}
        if parts.from_name:
            sender["name"] = parts.from_name
        content = [
            {"type": f"text/{kind}", "value": body}
            for kind, body in (("plain", parts.text), ("html", parts.html))
            if body is not None
        ]
        request: dict[str, object] = {
            "personalizations": [{"to": [recipient]}],
            "from": sender,
            "subject": parts.subject,
            "content": content,
            "headers": dict(parts.headers),
        }
        if parts.reply_to:
            (name, email), *_ = getaddresses([parts.reply_to])
            request["reply_to"] = {"email": email, "name": name} if name else {"email": email}
        response = self.post("/v3/mail/send", json=request)
        if 200 <= response.status_code < 300:
            message_id = response.headers.get("X-Message-Id", "?")
            return f"{response.status_code} sendgrid: accepted, X-Message-Id {message_id}"
        errors = json_of(response).get("errors")
        if isinstance(errors, list) and errors:
            message = "; ".join(
                str(e.get("message", "")) + (f" ({e['field']})" if e.get("field") else "")
                for e in errors
                if isinstance(e, dict)
            )
        else:
            message = short_text(response)
        raise failure(self.provider, response.status_code, message)
