"""Verifying our own DKIM signatures, for the start-up self-test: with dkimpy, an independent
implementation, against the keys' own TXT records (no DNS look-up).

dkimpy verifies ed25519 only with PyNaCl (a dependency of the project): without it, an
ed25519-sha256 signature is checked with ``cryptography`` on the same canonical data.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from newsletter.mail.dkim_canon import (
    FOLD,
    parse_headers,
    relaxed_body,
    relaxed_header,
    select_headers,
)
from newsletter.mail.dkim_keys import MIN_KEY_BITS


def verify_signature(signed: bytes, index: int, records: dict[str, str]) -> bool:
    """Whether the ``index``-th DKIM-Signature of ``signed`` verifies with dkimpy, its DNS
    look-ups answered from ``records`` (``{"sel._domainkey.example.org": "v=DKIM1; ..."}``).

    dkimpy verifies ed25519 only with PyNaCl: without it, an ed25519 signature is checked
    with ``cryptography`` on the same canonical data instead.
    """
    import dkim

    def lookup(qname: bytes, timeout: float = 5) -> bytes | None:
        record = records.get(qname.decode("ascii").rstrip("."))
        return record.encode("ascii") if record is not None else None

    try:
        verifier = dkim.DKIM(signed, minkey=MIN_KEY_BITS)
        return bool(verifier.verify(idx=index, dnsfunc=lookup))
    except dkim.NaClNotFoundError:
        return _verify_ed25519(signed, index, records)
    except Exception:  # dkimpy's pure-Python key maths fails in many ways on a damaged key
        return False


def _verify_ed25519(signed: bytes, index: int, records: dict[str, str]) -> bool:
    """An ed25519-sha256 signature checked with ``cryptography`` (no PyNaCl for dkimpy)."""
    from dkim.util import parse_tag_value

    end = signed.find(b"\r\n\r\n")
    fields = parse_headers(signed[:end] if end >= 0 else signed.removesuffix(b"\r\n"))
    name, value = [(n, v) for n, v in fields if n.lower() == b"dkim-signature"][index]
    tags = {k: re.sub(rb"\s+", b"", v) for k, v in parse_tag_value(FOLD.sub(b"", value)).items()}
    record = records.get(f"{tags[b's'].decode()}._domainkey.{tags[b'd'].decode()}", "")
    public = parse_tag_value(record.encode("ascii")).get(b"p", b"")
    body = signed[end + 4 :] if end >= 0 else b""
    if base64.b64encode(hashlib.sha256(relaxed_body(body)).digest()) != tags[b"bh"]:
        return False
    listed = [h.strip().lower().decode("ascii") for h in tags[b"h"].split(b":")]
    others = [(n, v) for n, v in fields if n.lower() != b"dkim-signature"]
    data = b"".join(relaxed_header(n, v) + b"\r\n" for n, v in select_headers(others, listed))
    data += relaxed_header(name, re.sub(rb"(^|;)(\s*b\s*=)[^;]*", rb"\1\2", value))
    try:
        key = ed25519.Ed25519PublicKey.from_public_bytes(base64.b64decode(public))
        key.verify(base64.b64decode(tags[b"b"]), hashlib.sha256(data).digest())
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True
