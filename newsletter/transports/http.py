"""What the HTTP API transports share: one pooled client, replies sorted into failures, and
our finished message read back into the parts of APIs that take no raw MIME.

A transport keeps one ``httpx.Client`` (its connection pool, kept alive across messages) and
posts one message per request. Sorting, for every provider alike:

- 2xx: accepted; the reply names the provider's message id
- 429, 5xx, a timeout or a dropped connection: ``TemporaryFailure`` (retry later)
- 401 and 403 (credentials or account refused): ``TemporaryFailure`` too: nothing is wrong with
  the recipient, and a send whose every message fails pauses (the circuit breaker) rather
  than marking every address failed for good
- any other 4xx (bad address, suppressed or inactive recipient, refused content):
  ``PermanentFailure`` with the provider's message

A provider module may sort its own documented error codes before falling back to this.

The envelope sender (``envelope_from``, our bounce address) does not travel: each provider
uses its own return path, and its bounces come back through its webhook (``/webhooks/bounces/
<provider>``), not to the bounce mailbox.

The reply text (``response``) starts with the HTTP status and the provider's name. ``code`` is
what the sender reads as an SMTP reply code, so it means the same as SMTP's: 451 for a rate
limit (429; the shared send rate slows down), None for other temporary failures (no reply to
speak of), 554 for a message refused for good, 550 only where the provider says the address
itself is dead (the address is then dropped, as for a 5.1.1 bounce).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import formataddr, getaddresses
from typing import Any

import httpx

from newsletter.transports import PermanentFailure, TemporaryFailure, TransportError
from newsletter.transports.smtp import envelope_address

# the headers an API takes as fields of its own, or sets itself: never passed as extra headers
_OWN_HEADERS = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "subject",
        "reply-to",
        "date",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "dkim-signature",
        "return-path",
        "received",
    }
)


class HTTPTransport:
    """A pooled HTTP client for one provider; subclasses build the request and read the reply."""

    provider = "http"

    def __init__(self, base_url: str, *, timeout: float, headers: Mapping[str, str]) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout),
            headers=dict(headers),
            follow_redirects=False,
            # one more try when a connection cannot be made: nothing was sent, so no duplicate
            transport=httpx.HTTPTransport(retries=1),
        )

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        """POST; a timeout or a connection failure is a ``TemporaryFailure``."""
        try:
            return self._client.post(path, **kwargs)
        except httpx.TimeoutException as exc:
            raise TemporaryFailure(f"{self.provider}: timed out: {exc}") from exc
        except httpx.HTTPError as exc:
            raise TemporaryFailure(f"{self.provider}: cannot reach the API: {exc}") from exc

    def close(self) -> None:
        self._client.close()


THROTTLED = 451  # SMTP "try again later": the shared send rate slows down
REFUSED = 554  # SMTP "transaction failed": this message, for good
BAD_MAILBOX = 550  # SMTP "mailbox unavailable": the address is dropped


def failure(
    provider: str,
    status: int,
    message: str,
    *,
    temporary: bool | None = None,
    code: int | None = None,
) -> TransportError:
    """The error for a refused request; ``temporary`` None: sorted by the HTTP status alone;
    ``code`` None: 451 for a 429, else None (temporary) or 554 (permanent)."""
    if temporary is None:
        temporary = status == 429 or status >= 500 or status in (401, 403) or status < 400
    if code is None:
        code = THROTTLED if status == 429 else None if temporary else REFUSED
    reply = f"{status} {provider}: {message}".strip()
    if temporary:
        return TemporaryFailure(f"temporary failure: {reply}", code=code, response=reply)
    return PermanentFailure(f"permanent failure: {reply}", code=code, response=reply)


def api_address(to: str) -> str:
    """The recipient as an API takes it: an internationalised domain as its IDNA (``xn--``)
    form; a line break or a domain that is not valid IDNA refused on our side (code None)."""
    return envelope_address(to)[0]


def json_of(response: httpx.Response) -> dict[str, Any]:
    """The reply's JSON object, or {} when it is none (an HTML error page, an empty 202)."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def short_text(response: httpx.Response, limit: int = 300) -> str:
    return " ".join(response.text.split())[:limit]


@dataclass(frozen=True)
class Parts:
    """Our message read back for an API that builds the MIME itself."""

    from_header: str
    from_email: str
    from_name: str
    to_email: str  # the recipient, as ``api_address`` gives it
    to_header: str
    to_name: str
    reply_to: str | None
    subject: str
    text: str | None
    html: str | None
    headers: tuple[tuple[str, str], ...]  # the rest: List-Unsubscribe, Message-ID, ...


def read_message(data: bytes, to: str) -> Parts:
    """Parse our message's bytes (the stdlib email package) into what such an API takes.

    The recipient is ``to`` (the envelope's), with the To header's display name when that header
    names the same address.
    """
    msg = message_from_bytes(data, policy=policy.default)
    if not isinstance(msg, EmailMessage):  # pragma: no cover - policy.default makes one
        raise PermanentFailure("local: the message cannot be parsed", response="local: unparsable")
    (from_name, from_email), *_ = getaddresses([str(msg.get("From", ""))]) or [("", "")]
    to_name = ""
    for name, address in getaddresses([str(msg.get("To", ""))]):
        if address.lower() == to.lower():
            to_name = name
    address = api_address(to)
    to_header = formataddr((to_name, address)) if to_name else address
    text = _body(msg, "plain")
    html = _body(msg, "html")
    if text is None and html is None:
        reason = "local: the message has neither a text nor an HTML part"
        raise PermanentFailure(reason, response=reason)
    headers = tuple(
        (name, _unfold(str(value)))
        for name, value in msg.items()
        if name.lower() not in _OWN_HEADERS
    )
    reply_to = msg.get("Reply-To")
    return Parts(
        from_header=_unfold(str(msg.get("From", ""))),
        from_email=from_email,
        from_name=from_name,
        to_email=address,
        to_header=to_header,
        to_name=to_name,
        reply_to=_unfold(str(reply_to)) if reply_to is not None else None,
        subject=_unfold(str(msg.get("Subject", ""))),
        text=text,
        html=html,
        headers=headers,
    )


def _body(msg: EmailMessage, subtype: str) -> str | None:
    part = msg.get_body(preferencelist=(subtype,))
    if part is None or part.get_content_type() != f"text/{subtype}":
        return None
    content = part.get_content()
    # the API encodes the text again: plain line ends, as JSON strings usually carry them
    return content.replace("\r\n", "\n") if isinstance(content, str) else None


def _unfold(value: str) -> str:
    return " ".join(value.replace("\r", " ").replace("\n", " ").split())
