"""A local stand-in for the mail providers' HTTP APIs (SES v2, Postmark, Mailgun, SendGrid).

``with FakeProvider("ses") as fake:`` runs a real HTTP server (http.server, a thread per
request) on ``fake.url``. It records every request, checks it the way the provider would
(credentials, path, content type; SES: the SigV4 signature recomputed here, independently of
``newsletter.transports.sigv4``, with the same secret) and answers the provider's documented
success body, or a scripted reply for a recipient: ``fake.script[address] = [(status, body,
headers), ...]`` (used up one per request; the last one stays).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import re
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote

SES_KEY = ("AKIDFAKE", "fake-secret/K7MDENG+bPxRfiCY")
POSTMARK_TOKEN = "postmark-server-token"
MAILGUN_KEY = "key-mailgun"
MAILGUN_DOMAIN = "mg.example.org"
SENDGRID_KEY = "SG.fake-key"

Reply = tuple[int, Any, dict[str, str]]


@dataclass
class Seen:
    """One request as the fake received it, and what it made of it."""

    method: str
    path: str
    headers: dict[str, str]  # names lowercased
    body: bytes
    recipient: str = ""
    message: bytes = b""  # the raw MIME (SES, Mailgun)
    fields: dict[str, Any] = field(default_factory=dict)  # JSON or form fields
    problems: list[str] = field(default_factory=list)  # what the real API would refuse
    peer: tuple[str, int] = ("", 0)  # the client's address: one per kept-alive connection
    status: int = 0  # what the fake answered


def sigv4_check(seen: Seen, secret: str, region: str) -> str | None:
    """The request's signature recomputed from what arrived; None when it matches."""
    auth = seen.headers.get("authorization", "")
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        return f"no SigV4 Authorization header: {auth!r}"
    items = dict(part.strip().split("=", 1) for part in auth[len("AWS4-HMAC-SHA256 ") :].split(","))
    _key, date, scope_region, service, terminal = items["Credential"].split("/")
    if (scope_region, service, terminal) != (region, "ses", "aws4_request"):
        return f"bad credential scope {items['Credential']!r}"
    amz_date = seen.headers.get("x-amz-date", "")
    if not amz_date.startswith(date):
        return "x-amz-date does not match the credential scope's date"
    names = items["SignedHeaders"].split(";")
    if not {"host", "x-amz-date"} <= set(names):
        return "host and x-amz-date must be signed"
    canonical = "\n".join(
        [
            seen.method,
            quote(seen.path, safe="/-_.~"),
            "",
            "".join(f"{n}:{' '.join(seen.headers[n].split())}\n" for n in names),
            ";".join(names),
            hashlib.sha256(seen.body).hexdigest(),
        ]
    )
    to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            amz_date,
            f"{date}/{region}/ses/aws4_request",
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )
    key = f"AWS4{secret}".encode()
    for part in (date, region, "ses", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, items["Signature"]):
        return "SignatureDoesNotMatch"
    return None


class FakeProvider:
    def __init__(self, provider: str, *, region: str = "eu-west-1") -> None:
        self.provider = provider
        self.region = region
        self.requests: list[Seen] = []
        self.script: dict[str, list[Reply]] = {}
        self.delay = 0.0  # seconds each answer waits (timeouts)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the providers' APIs
            # the head and the body go out in two writes: without this, Nagle holds the body
            # back until the client's delayed ACK (40 ms a request)
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                seen = Seen(
                    "POST",
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length),
                    peer=(str(self.client_address[0]), int(self.client_address[1])),
                )
                status, body, headers = fake.answer(seen)
                if fake.delay:
                    threading.Event().wait(fake.delay)
                raw = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if raw:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # --- reading a request, per provider --------------------------------------------------

    def answer(self, seen: Seen) -> Reply:
        read = getattr(self, f"_read_{self.provider}")
        refusal: Reply | None = read(seen)
        with self._lock:
            self.requests.append(seen)
            number = next(self._ids)
            scripted = self.script.get(seen.recipient)
            if refusal is None and scripted:
                refusal = scripted.pop(0) if len(scripted) > 1 else scripted[0]
        reply = refusal or getattr(self, f"_ok_{self.provider}")(number)
        seen.status = reply[0]
        return reply

    def _read_ses(self, seen: Seen) -> Reply | None:
        if seen.path != "/v2/email/outbound-emails":
            return 404, {"message": "not found"}, {}
        problem = sigv4_check(seen, SES_KEY[1], self.region)
        if problem:
            seen.problems.append(problem)
            return 403, {"message": problem}, {"x-amzn-ErrorType": "SignatureDoesNotMatch:"}
        seen.fields = json.loads(seen.body)
        seen.recipient = seen.fields["Destination"]["ToAddresses"][0]
        seen.message = base64.b64decode(seen.fields["Content"]["Raw"]["Data"], validate=True)
        return None

    def _read_postmark(self, seen: Seen) -> Reply | None:
        if seen.headers.get("x-postmark-server-token") != POSTMARK_TOKEN:
            return 401, {"ErrorCode": 10, "Message": "Bad or missing Server API token."}, {}
        if seen.path != "/email" or not seen.headers.get("content-type", "").startswith(
            "application/json"
        ):
            return 422, {"ErrorCode": 402, "Message": "Invalid JSON"}, {}
        seen.fields = json.loads(seen.body)
        seen.recipient = (
            message_from_bytes(f"To: {seen.fields['To']}\r\n\r\n".encode(), policy=policy.default)[
                "To"
            ]
            .addresses[0]
            .addr_spec
        )
        return None

    def _read_mailgun(self, seen: Seen) -> Reply | None:
        expected = base64.b64encode(f"api:{MAILGUN_KEY}".encode()).decode()
        if seen.headers.get("authorization") != f"Basic {expected}":
            return 401, b"Forbidden", {}
        if seen.path != f"/v3/{MAILGUN_DOMAIN}/messages.mime":
            return 404, {"message": "Domain not found"}, {}
        ctype = seen.headers.get("content-type", "")
        if not ctype.startswith("multipart/form-data"):
            return 400, {"message": "need multipart/form-data"}, {}
        boundary = ctype.split("boundary=", 1)[1].strip('"').encode()
        for chunk in seen.body.split(b"--" + boundary)[1:-1]:  # split by hand: byte-exact
            head, _, content = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
            name = re.search(rb'name="([^"]+)"', head)
            if name is None:
                return 400, {"message": "a form part without a name"}, {}
            seen.fields[name.group(1).decode()] = content.removesuffix(b"\r\n")
        seen.recipient = seen.fields["to"].decode()
        seen.message = seen.fields["message"]
        return None

    def _read_sendgrid(self, seen: Seen) -> Reply | None:
        if seen.headers.get("authorization") != f"Bearer {SENDGRID_KEY}":
            return 401, {"errors": [{"message": "The provided authorization grant is invalid"}]}, {}
        if seen.path != "/v3/mail/send":
            return 404, {"errors": [{"message": "not found"}]}, {}
        seen.fields = json.loads(seen.body)
        seen.recipient = seen.fields["personalizations"][0]["to"][0]["email"]
        return None

    # --- the documented success bodies ----------------------------------------------------

    def _ok_ses(self, n: int) -> Reply:
        return 200, {"MessageId": f"0102018c-ses-{n:06d}"}, {}

    def _ok_postmark(self, n: int) -> Reply:
        return (
            200,
            {
                "To": "",
                "SubmittedAt": "2026-11-28T23:00:00.0000000Z",
                "MessageID": f"b7bc2f4a-pm-{n:06d}",
                "ErrorCode": 0,
                "Message": "OK",
            },
            {},
        )

    def _ok_mailgun(self, n: int) -> Reply:
        return 200, {"id": f"<mg-{n:06d}@{MAILGUN_DOMAIN}>", "message": "Queued. Thank you."}, {}

    def _ok_sendgrid(self, n: int) -> Reply:
        return 202, b"", {"X-Message-Id": f"sg-{n:06d}"}

    # --- life -----------------------------------------------------------------------------

    def accepted(self) -> list[Seen]:
        """The requests the fake answered with a 2xx."""
        return [s for s in self.requests if 200 <= s.status < 300]

    def __enter__(self) -> FakeProvider:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
