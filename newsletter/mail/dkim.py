"""DKIM signing (RFC 6376) of rendered messages: rsa-sha256 and ed25519-sha256 (RFC 8463).

Build one ``DKIMSigner`` per process (``signer_from_settings``): it checks the keys once, at
start-up, by signing a small message and verifying the result with dkimpy against the keys' own
DNS records, so a bad key fails there and not on every message. ``sign`` then prepends one
``DKIM-Signature`` header per key to each rendered message (CRLF bytes in, CRLF bytes out): one
RSA key, one ed25519 key, or both (dual signing: receivers that do not know ed25519 skip that
signature and verify the RSA one).

The signing is ours, with the key maths in OpenSSL (``cryptography``), the hashes in ``hashlib``
and relaxed/relaxed canonicalization in ``dkim_canon`` (a relay that refolds a header or trims
trailing whitespace does not break the signature): dkimpy signs with pure-Python RSA, about
8.5 ms a message. The body is hashed once per message for all its signatures. Keys are read and
checked by ``dkim_keys`` (RSA of at least 1024 bits, or Ed25519), the self-test verified by
``dkim_verify``.

The signed headers are those of ``SIGNED_HEADERS`` that the message has. ``OVERSIGNED_HEADERS``
are listed in ``h=`` once more than the message has them (RFC 6376 8.15), so a copy added after
signing (a second From, Subject, or List-Unsubscribe) breaks the signature instead of being shown
unsigned; List-Unsubscribe and List-Unsubscribe-Post are among them, which RFC 8058 requires a
one-click unsubscribe to have covered by a valid signature.

"""

from __future__ import annotations

import base64
import hashlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding

from newsletter.exceptions import InvalidInput
from newsletter.mail.dkim_canon import crlf_only, parse_headers, relaxed_body, relaxed_header
from newsletter.mail.dkim_canon import select_headers as _select
from newsletter.mail.dkim_keys import (
    MIN_KEY_BITS,
    Algorithm,
    DKIMKeyError,
    PrivateKey,
    check_dns_name,
    dns_txt_record,
    generate_key,
    load_private_key,
    txt_record_of,
)
from newsletter.mail.dkim_verify import verify_signature
from newsletter.transports import CleanMessage

if TYPE_CHECKING:
    from pathlib import Path

    from newsletter.config import Settings

__all__ = [
    "MIN_KEY_BITS",
    "OVERSIGNED_HEADERS",
    "SIGNED_HEADERS",
    "DKIMKey",
    "DKIMKeyError",
    "DKIMSigner",
    "check_dns_name",
    "dns_txt_record",
    "generate_key",
    "signer_from_settings",
    "verify_signature",
]

#: headers signed when present, in this order. Reply-To and Feedback-ID go beyond what RFC 8058
#: needs: a Reply-To added by someone else would otherwise pass, and Gmail's feedback loop
#: counts Feedback-ID only when the signature covers it.
SIGNED_HEADERS: tuple[str, ...] = (
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "reply-to",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "list-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "feedback-id",
)

#: listed in ``h=`` once more than the message has them (RFC 6376 8.15), also when it has none:
#: an added copy of one of these would change what the reader sees or where unsubscribes go.
OVERSIGNED_HEADERS: frozenset[str] = frozenset(
    {"from", "subject", "reply-to", "list-unsubscribe", "list-unsubscribe-post"}
)

_SELF_TEST = b"From: dkim-self-test@example.invalid\r\nSubject: DKIM key check\r\n\r\nkey check\r\n"

_LINE_WIDTH = 78


# ---------------------------------------------------------------- signing


@dataclass(frozen=True)
class DKIMKey:
    """One key the signer signs with, and where its public half is published."""

    selector: str
    algorithm: Algorithm
    bits: int
    txt_record: str
    private: PrivateKey = field(repr=False, compare=False)

    @property
    def a_tag(self) -> str:
        return "ed25519-sha256" if self.algorithm == "ed25519" else "rsa-sha256"

    def sign_data(self, data: bytes) -> bytes:
        """The signature of the canonical headers ``data`` (RFC 6376 3.7)."""
        if isinstance(self.private, ed25519.Ed25519PrivateKey):
            return self.private.sign(hashlib.sha256(data).digest())  # RFC 8463 3
        return self.private.sign(data, padding.PKCS1v15(), hashes.SHA256())


def _key(selector: str, pem: bytes) -> DKIMKey:
    private = load_private_key(pem)
    if isinstance(private, ed25519.Ed25519PrivateKey):
        return DKIMKey(selector, "ed25519", 256, txt_record_of(private.public_key()), private)
    return DKIMKey(selector, "rsa", private.key_size, txt_record_of(private.public_key()), private)


def _fold(tags: list[tuple[str, str]]) -> bytes:
    """``DKIM-Signature: t1=v1; t2=v2; ...; b=`` folded to ``_LINE_WIDTH``, ``b=`` last and empty.

    Lines break between tags, between the names of ``h=`` and inside base64 values, where RFC
    6376 allows folding whitespace.
    """
    lines: list[str] = []
    line = "DKIM-Signature:"
    for index, (tag, value) in enumerate(tags):
        last = index == len(tags) - 1
        parts: list[str]
        if tag == "h":
            names = value.split(":")
            parts = [f"h={names[0]}"] + [f":{n}" for n in names[1:]]
        else:
            parts = [f"{tag}={value}"]
        if not last:
            parts[-1] += ";"
        for i, part in enumerate(parts):
            sep = " " if i == 0 else ""
            if len(line) + len(sep) + len(part) > _LINE_WIDTH:
                lines.append(line)
                line, sep = " ", ""
            line += sep + part
    lines.append(line)
    return "\r\n".join(lines).encode("ascii")


def _fold_b(header: bytes, signature: bytes) -> bytes:
    """``header`` (ending in ``b=``) with the base64 of ``signature`` folded on, and CRLF."""
    value = base64.b64encode(signature)
    last = len(header) - header.rfind(b"\n") - 1
    room = max(_LINE_WIDTH - last, 0)
    chunks = [value[:room]] if room else []
    rest = value[room:]
    width = _LINE_WIDTH - 1
    chunks += [b"\r\n " + rest[i : i + width] for i in range(0, len(rest), width)]
    return header + b"".join(chunks) + b"\r\n"


class DKIMSigner:
    """Signs messages for ``domain`` with one key, or two (dual signing: RSA and ed25519).

    ``selector``, ``dns_name``, ``txt_record`` and ``key_bits`` are those of the first key;
    ``records()`` lists the DNS record of every key. Construction checks the names and the keys
    (raising ``InvalidInput``, ``DKIMKeyError`` for key problems) and signs a test message that
    must verify; one instance is safe to share between threads.
    """

    def __init__(
        self,
        selector: str,
        domain: str,
        private_key: bytes,
        *,
        ed25519_selector: str | None = None,
        ed25519_key: bytes | None = None,
    ) -> None:
        self.domain = check_dns_name("domain", domain)
        first = _key(check_dns_name("selector", selector), private_key)
        keys = [first]
        if ed25519_key is not None or ed25519_selector is not None:
            if ed25519_key is None or ed25519_selector is None:
                raise InvalidInput("dual DKIM signing needs the ed25519 key and its selector")
            second = _key(check_dns_name("selector", ed25519_selector), ed25519_key)
            if second.algorithm != "ed25519":
                raise DKIMKeyError("not an ed25519 key (the second key signs ed25519-sha256)")
            if first.algorithm != "rsa":
                raise DKIMKeyError(
                    "dual signing pairs an RSA key with the ed25519 one; this is ed25519 too"
                )
            if second.selector == first.selector:
                raise InvalidInput(
                    "the RSA and ed25519 keys need different selectors, not both "
                    f"{first.selector!r}"
                )
            keys.append(second)
        self.keys: tuple[DKIMKey, ...] = tuple(keys)
        self._self_test()

    def __repr__(self) -> str:
        keys = ", ".join(f"{k.selector} ({k.a_tag}, {k.bits} bits)" for k in self.keys)
        return f"DKIMSigner(domain={self.domain!r}, keys=[{keys}])"

    # ------------------------------------------------ what to publish

    @property
    def selector(self) -> str:
        return self.keys[0].selector

    @property
    def key_bits(self) -> int:
        return self.keys[0].bits

    @property
    def dns_name(self) -> str:
        """Where the first key is looked up: ``<selector>._domainkey.<domain>``."""
        return f"{self.selector}._domainkey.{self.domain}"

    @property
    def txt_record(self) -> str:
        """The TXT value to publish at ``dns_name``."""
        return self.keys[0].txt_record

    def records(self) -> list[tuple[str, str]]:
        """(DNS name, TXT value) for every key, the first key's first."""
        return [(f"{k.selector}._domainkey.{self.domain}", k.txt_record) for k in self.keys]

    # ------------------------------------------------ signing

    def sign(self, message: bytes, *, relaxed_body_of_it: bytes | None = None) -> bytes:
        """``message`` (CRLF line ends) with one ``DKIM-Signature`` header per key prepended.

        ``relaxed_body_of_it``: the message's body in relaxed form when the caller has it
        (``MessageTemplate.render_relaxed``, most of it made once per issue); else it is made
        here. Raises ``InvalidInput`` for a message that cannot be signed (no From header, bare
        LF or CR line ends, a malformed header), which is a formatting problem on our side.
        """
        clean = isinstance(message, CleanMessage)  # CRLF throughout, by its maker's word
        if not clean and not crlf_only(message):
            raise InvalidInput("cannot DKIM-sign a message whose lines do not all end in CRLF")
        end = message.find(b"\r\n\r\n")
        if message.startswith(b"\r\n"):
            head, body = b"", message[2:]
        elif end < 0:
            head, body = message.removesuffix(b"\r\n"), b""
        else:
            head, body = message[:end], message[end + 4 :]
        fields = parse_headers(head) if head else []
        counts: dict[str, int] = {}
        for raw_name, _ in fields:
            lower = raw_name.lower().decode("ascii")
            counts[lower] = counts.get(lower, 0) + 1
        if "from" not in counts:
            raise InvalidInput("cannot DKIM-sign a message without a From header")

        listed: list[str] = []
        for name in SIGNED_HEADERS:
            present = counts.get(name, 0)
            listed += [name] * (present + 1 if name in OVERSIGNED_HEADERS else min(present, 1))
        signed_part = b"".join(relaxed_header(n, v) + b"\r\n" for n, v in _select(fields, listed))
        relaxed = relaxed_body(body) if relaxed_body_of_it is None else relaxed_body_of_it
        body_hash = base64.b64encode(hashlib.sha256(relaxed).digest()).decode("ascii")
        timestamp = str(int(time.time()))

        headers: list[bytes] = []
        for key in self.keys:
            header = _fold(
                [
                    ("v", "1"),
                    ("a", key.a_tag),
                    ("c", "relaxed/relaxed"),
                    ("d", self.domain),
                    ("s", key.selector),
                    ("t", timestamp),
                    ("h", ":".join(listed)),
                    ("bh", body_hash),
                    ("b", ""),
                ]
            )
            field_name, _, value = header.partition(b":")
            data = signed_part + relaxed_header(field_name, value)
            headers.append(_fold_b(header, key.sign_data(data)))
        signed = b"".join([*headers, message])
        # the headers added end each line in CRLF and start none with a dot: still clean
        return CleanMessage(signed) if clean else signed

    # ------------------------------------------------ start-up check

    def _self_test(self) -> None:
        """Sign a tiny message and verify each signature against its key's own DNS record."""
        try:
            signed = self.sign(_SELF_TEST)
        except Exception as exc:
            raise DKIMKeyError(f"the key does not sign ({type(exc).__name__}: {exc})") from None
        for index, key in enumerate(self.keys):
            if not verify_signature(signed, index, dict(self.records())):
                raise DKIMKeyError(
                    f"signatures made with the {key.algorithm} key do not verify (damaged key?)"
                )


# ---------------------------------------------------------------- settings


def _read_key(path: Path) -> tuple[bytes, str]:
    path = path.expanduser()
    source = f"DKIM key file {path}"
    try:
        return path.read_bytes(), source
    except FileNotFoundError:
        raise DKIMKeyError("not found", source=source) from None
    except IsADirectoryError:
        raise DKIMKeyError("is a directory", source=source) from None
    except PermissionError:
        raise DKIMKeyError("permission denied", source=source) from None
    except OSError as exc:
        raise DKIMKeyError(exc.strerror or str(exc), source=source) from None


def _path(value: Path | None) -> Path | None:
    # an empty NEWSLETTER_DKIM_..._KEY_FILE reaches us as Path("."), never a key file
    return value if str(value or ".") != "." else None


def signer_from_settings(settings: Settings) -> DKIMSigner | None:
    """The configured signer, or None when DKIM is not configured at all.

    Half a configuration, a key file that cannot be read and a key that is not a usable RSA or
    ed25519 private key all raise ``InvalidInput`` with a one-line message.
    """
    selector = (settings.dkim_selector or "").strip()
    domain = (settings.dkim_domain or "").strip()
    key_file = _path(settings.dkim_key_file)
    ed_selector = (settings.dkim_ed25519_selector or "").strip()
    ed_key_file = _path(settings.dkim_ed25519_key_file)
    given = {
        "NEWSLETTER_DKIM_SELECTOR": bool(selector),
        "NEWSLETTER_DKIM_DOMAIN": bool(domain),
        "NEWSLETTER_DKIM_KEY_FILE": key_file is not None,
    }
    dual = {
        "NEWSLETTER_DKIM_ED25519_SELECTOR": bool(ed_selector),
        "NEWSLETTER_DKIM_ED25519_KEY_FILE": ed_key_file is not None,
    }
    missing = [name for name, present in given.items() if not present]
    if len(missing) == len(given) and not any(dual.values()):
        return None
    if any(dual.values()):
        missing += [name for name, present in dual.items() if not present]
    if missing or key_file is None:
        raise InvalidInput(f"DKIM is half configured: set {' and '.join(missing)} too")
    pem, source = _read_key(key_file)
    _load(pem, source)
    ed_pem: bytes | None = None
    if ed_key_file is not None:
        ed_pem, ed_source = _read_key(ed_key_file)
        if not isinstance(_load(ed_pem, ed_source), ed25519.Ed25519PrivateKey):
            raise DKIMKeyError("not an ed25519 private key", source=ed_source)
        source = f"DKIM key files {key_file.expanduser()} and {ed_key_file.expanduser()}"
    try:
        return DKIMSigner(
            selector, domain, pem, ed25519_selector=ed_selector or None, ed25519_key=ed_pem
        )
    except DKIMKeyError as exc:
        raise DKIMKeyError(exc.reason, source=source) from None


def _load(pem: bytes, source: str) -> PrivateKey:
    try:
        return load_private_key(pem)
    except DKIMKeyError as exc:
        raise DKIMKeyError(exc.reason, source=source) from None
