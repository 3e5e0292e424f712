"""Amazon SES (API v2): our raw MIME message, DKIM signature and all, in one signed request.

``POST /v2/email/outbound-emails`` with ``Content.Raw.Data`` (the message, base64) and the
recipient in ``Destination.ToAddresses``, signed with AWS Signature Version 4 (service
``ses``). A 200 answers ``{"MessageId": ...}``. Errors carry their type in the
``x-amzn-ErrorType`` header (or ``__type`` / ``code`` in the body) and a ``message``:

- ``TooManyRequestsException`` (429), ``LimitExceededException``, 5xx: temporary
- ``SendingPausedException``, ``AccountSuspendedException``,
  ``MailFromDomainNotVerifiedException`` and refused credentials (403): temporary, the
  account's problem and not the recipient's (the send pauses rather than failing everyone)
- ``MessageRejected``, ``BadRequestException`` and other 4xx: permanent
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from urllib.parse import urlsplit

from newsletter.transports import sigv4
from newsletter.transports.http import HTTPTransport, api_address, failure, json_of, short_text

PATH = "/v2/email/outbound-emails"

# not the recipient's fault: retried, and the breaker pauses a send that keeps meeting them
_ACCOUNT_ERRORS = frozenset(
    {
        "TooManyRequestsException",
        "LimitExceededException",
        "SendingPausedException",
        "AccountSuspendedException",
        "MailFromDomainNotVerifiedException",
    }
)


@dataclass(frozen=True)
class SESConfig:
    region: str
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None
    configuration_set: str | None = None
    endpoint: str | None = None  # default https://email.{region}.amazonaws.com
    timeout: float = 30.0

    @property
    def base_url(self) -> str:
        return self.endpoint or f"https://email.{self.region}.amazonaws.com"


class SESTransport(HTTPTransport):
    provider = "ses"

    def __init__(self, config: SESConfig) -> None:
        self.config = config
        super().__init__(config.base_url, timeout=config.timeout, headers={})
        self._host = urlsplit(self.base_url).netloc
        self._path = urlsplit(self.base_url).path.rstrip("/") + PATH

    def send(self, envelope_from: str, to: str, data: bytes) -> str:
        request: dict[str, object] = {
            "Destination": {"ToAddresses": [api_address(to)]},
            "Content": {"Raw": {"Data": base64.b64encode(data).decode("ascii")}},
        }
        if self.config.configuration_set:
            request["ConfigurationSetName"] = self.config.configuration_set
        body = json.dumps(request).encode("utf-8")
        response = self.post(PATH, content=body, headers=self._signed(body))
        reply = json_of(response)
        if 200 <= response.status_code < 300:
            return f"{response.status_code} ses: accepted, MessageId {reply.get('MessageId', '?')}"
        kind = _error_type(response.headers.get("x-amzn-ErrorType"), reply)
        message = str(reply.get("message") or reply.get("Message") or short_text(response))
        temporary = True if kind in _ACCOUNT_ERRORS else None
        text = f"{kind}: {message}" if kind else message
        raise failure(self.provider, response.status_code, text, temporary=temporary)

    def _signed(self, body: bytes) -> dict[str, str]:
        cfg = self.config
        amz_date = sigv4.amz_now()
        headers = {
            "content-type": "application/json",
            "host": self._host,
            "x-amz-date": amz_date,
        }
        if cfg.session_token:
            headers["x-amz-security-token"] = cfg.session_token
        headers["authorization"] = sigv4.authorization(
            method="POST",
            path=self._path,
            headers=headers,
            payload=body,
            access_key=cfg.access_key_id,
            secret=cfg.secret_access_key,
            region=cfg.region,
            service="ses",
            amz_date=amz_date,
        )
        del headers["host"]  # httpx sends the same value itself
        return headers


def _error_type(header: str | None, body: dict[str, object]) -> str:
    """``x-amzn-ErrorType: MessageRejected:http://...`` (or the body's ``__type``) -> the name."""
    raw = header or str(body.get("__type") or body.get("code") or "")
    return raw.split(":", 1)[0].rsplit("#", 1)[-1]
