"""Postmark: ``POST /email`` with the message's parts as JSON (the API takes no raw MIME).

Our message is read back (``http.read_message``) into From, To, Subject, TextBody, HtmlBody,
ReplyTo and Headers (List-Unsubscribe, List-Unsubscribe-Post, Message-ID, ...), with the
``MessageStream`` from the settings. Postmark builds and DKIM-signs the MIME itself, so our
own DKIM signature does not travel.

A 200 answers ``{"ErrorCode": 0, "Message": "OK", "MessageID": ...}``; a refusal (422, mostly)
answers ``{"ErrorCode": n, "Message": ...}``. Sorted by ErrorCode first:

- 406 (inactive recipient: a hard bounce, a complaint or a manual suppression: the address is
  dropped here too, code 550), 300 (invalid
  email request, e.g. an illegal address) and the other request errors: permanent
- 10 (bad server token), 400/401 (sender signature missing or unconfirmed), 405 (not allowed
  to send: credits), 412/413 (account pending): temporary, the account's problem
- HTTP 429, 5xx, timeouts: temporary
"""

from __future__ import annotations

from dataclasses import dataclass

from newsletter.transports.http import (
    BAD_MAILBOX,
    HTTPTransport,
    failure,
    json_of,
    read_message,
    short_text,
)

BASE_URL = "https://api.postmarkapp.com"
_ACCOUNT_CODES = frozenset({10, 400, 401, 405, 412, 413})
INACTIVE_RECIPIENT = 406  # Postmark will not send to it again: dropped here too (as a 5.1.1)


@dataclass(frozen=True)
class PostmarkConfig:
    server_token: str
    message_stream: str = "broadcast"
    base_url: str = BASE_URL
    timeout: float = 30.0


class PostmarkTransport(HTTPTransport):
    provider = "postmark"

    def __init__(self, config: PostmarkConfig) -> None:
        self.config = config
        super().__init__(
            config.base_url,
            timeout=config.timeout,
            headers={"X-Postmark-Server-Token": config.server_token, "Accept": "application/json"},
        )

    def send(self, envelope_from: str, to: str, data: bytes) -> str:
        parts = read_message(data, to)
        request: dict[str, object] = {
            "From": parts.from_header,
            "To": parts.to_header,
            "Subject": parts.subject,
            "Headers": [{"Name": name, "Value": value} for name, value in parts.headers],
            "MessageStream": self.config.message_stream,
        }
        if parts.text is not None:
            request["TextBody"] = parts.text
        if parts.html is not None:
            request["HtmlBody"] = parts.html
        if parts.reply_to:
            request["ReplyTo"] = parts.reply_to
        response = self.post("/email", json=request)
        reply = json_of(response)
        code = reply.get("ErrorCode")
        if 200 <= response.status_code < 300 and code in (0, None):
            message_id = reply.get("MessageID", "?")
            return f"{response.status_code} postmark: accepted, MessageID {message_id}"
        message = str(reply.get("Message") or short_text(response))
        temporary: bool | None = None
        code_for_sender = BAD_MAILBOX if code == INACTIVE_RECIPIENT else None
        if (
            isinstance(code, int)
            and response.status_code not in (429,)
            and response.status_code < 500
        ):
            temporary = code in _ACCOUNT_CODES
        text = f"ErrorCode {code}: {message}" if code is not None else message
        raise failure(
            self.provider, response.status_code, text, temporary=temporary, code=code_for_sender
        )
