"""AWS Signature Version 4 for one request (hashlib and hmac; no SDK).

The signing key is HMAC-SHA256 chained over the date, region, service and ``aws4_request``,
starting from ``"AWS4" + secret``; the signature is that key's HMAC of the string to sign,
which names the algorithm, the time, the credential scope and the hash of the canonical
request (method, path, query, the signed headers lowercased and sorted, the payload's hash).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import quote

ALGORITHM = "AWS4-HMAC-SHA256"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = _hmac(f"AWS4{secret}".encode(), date)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    return key


def canonical_query(query: str) -> str:
    pairs = []
    for item in filter(None, query.split("&")):
        name, _, value = item.partition("=")
        pairs.append((quote(name, safe="-_.~"), quote(value, safe="-_.~")))
    return "&".join(f"{n}={v}" for n, v in sorted(pairs))


def canonical_request(
    method: str, path: str, query: str, headers: Mapping[str, str], payload_hash: str
) -> tuple[str, str]:
    """(the canonical request, its signed-headers list)."""
    lowered = {name.lower(): " ".join(value.split()) for name, value in headers.items()}
    names = sorted(lowered)
    signed = ";".join(names)
    lines = "".join(f"{name}:{lowered[name]}\n" for name in names)
    uri = quote(path or "/", safe="/-_.~")
    text = f"{method}\n{uri}\n{canonical_query(query)}\n{lines}\n{signed}\n{payload_hash}"
    return text, signed


def authorization(
    *,
    method: str,
    path: str,
    query: str = "",
    headers: Mapping[str, str],
    payload: bytes,
    access_key: str,
    secret: str,
    region: str,
    service: str,
    amz_date: str,
) -> str:
    """The ``Authorization`` header for a request whose ``headers`` (all signed) include
    ``host`` and ``x-amz-date`` (``amz_date``, as ``YYYYMMDDTHHMMSSZ``)."""
    date = amz_date[:8]
    scope = f"{date}/{region}/{service}/aws4_request"
    creq, signed = canonical_request(
        method, path, query, headers, hashlib.sha256(payload).hexdigest()
    )
    to_sign = f"{ALGORITHM}\n{amz_date}\n{scope}\n{hashlib.sha256(creq.encode()).hexdigest()}"
    signature = hmac.new(
        signing_key(secret, date, region, service), to_sign.encode(), hashlib.sha256
    ).hexdigest()
    credential = f"{access_key}/{scope}"
    return f"{ALGORITHM} Credential={credential}, SignedHeaders={signed}, Signature={signature}"


def amz_now() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
