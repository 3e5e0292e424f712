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

import contextlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses
from typing import TYPE_CHECKING, Any

from newsletter.transports import PermanentFailure, TemporaryFailure, TransportError
from newsletter.transports.smtp import envelope_address

if TYPE_CHECKING:
    import httpx  # imported by the first client: the settings name these transports' configs,
    # and every command (``newsletter demo`` on SMTP) would otherwise load httpx for nothing

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
        import httpx

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
        import httpx

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
    names the same address. Parsed with the ``compat32`` policy and headers decoded by hand:
    the ``default`` policy's header objects cost about 5 ms a message, this well under one.
    """
    msg = message_from_bytes(data, policy=policy.compat32)
    from_name, from_email = _first_address(msg.get("From", ""))
    to_name = ""
    for name, address in getaddresses([str(v) for v in msg.get_all("To", [])]):
        if address.lower() == to.lower():
            to_name = _decoded(name)
    address = api_address(to)
    text, html = _bodies(msg)
    if text is None and html is None:
        reason = "local: the message has neither a text nor an HTML part"
        raise PermanentFailure(reason, response=reason)
    headers = tuple(
        (name, _decoded(value)) for name, value in msg.items() if name.lower() not in _OWN_HEADERS
    )
    reply_to = msg.get("Reply-To")
    return Parts(
        from_header=_display(from_name, from_email),
        from_email=from_email,
        from_name=from_name,
        to_email=address,
        to_header=_display(to_name, address),
        to_name=to_name,
        reply_to=_display(*_first_address(reply_to)) if reply_to is not None else None,
        subject=_decoded(msg.get("Subject", "")),
        text=text,
        html=html,
        headers=headers,
    )


_SPECIALS = re.compile(r'[()<>@,;:\\".\[\]]')


def _first_address(value: object) -> tuple[str, str]:
    """(display name decoded, address) of an address header's first address; split before
    decoding, so a comma inside an encoded name does not split it."""
    pairs = getaddresses([str(value)])
    name, address = pairs[0] if pairs else ("", "")
    return _decoded(name), address


def _display(name: str, address: str) -> str:
    """``Name <address>``, the name quoted when it needs to be, kept in Unicode (JSON)."""
    if not name:
        return address
    if _SPECIALS.search(name):
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{name} <{address}>"


def _bodies(msg: Message) -> tuple[str | None, str | None]:
    """The first text/plain and text/html parts that are not attachments, decoded."""
    found: dict[str, str] = {}
    for part in msg.walk():
        kind = part.get_content_type()
        if kind not in ("text/plain", "text/html") or kind in found:
            continue
        if part.get_content_disposition() == "attachment":
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        charset = part.get_content_charset() or "utf-8"
        try:
            content = payload.decode(charset, "replace")
        except LookupError:  # an unknown charset name
            content = payload.decode("utf-8", "replace")
        # the API encodes the text again: plain line ends, as JSON strings usually carry them
        found[kind] = content.replace("\r\n", "\n")
    return found.get("text/plain"), found.get("text/html")


def _decoded(value: object) -> str:
    """A header value with its RFC 2047 encoded words decoded, on one line."""
    text = str(value)
    if "=?" in text:
        # not valid encoded words: the text as it is
        with contextlib.suppress(ValueError, LookupError, UnicodeDecodeError):
            text = str(make_header(decode_header(text)))
    return _unfold(text)


def _unfold(value: str) -> str:
    return " ".join(value.replace("\r", " ").replace("\n", " ").split())
