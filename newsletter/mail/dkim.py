"""DKIM signing (RFC 6376) of rendered messages: rsa-sha256 and ed25519-sha256 (RFC 8463).

Build one ``DKIMSigner`` per process (``signer_from_settings``): it checks the keys once, at
start-up, by signing a small message and verifying the result with dkimpy against the keys' own
DNS records, so a bad key fails there and not on every message. ``sign`` then prepends one
``DKIM-Signature`` header per key to each rendered message (CRLF bytes in, CRLF bytes out): one
RSA key, one ed25519 key, or both (dual signing: receivers that do not know ed25519 skip that
signature and verify the RSA one).

The signing is ours, with the key maths in OpenSSL (``cryptography``) and the hashes in
``hashlib``: dkimpy signs with pure-Python RSA at about 8.5 ms a message. Canonicalization is
relaxed/relaxed (RFC 6376 3.4.2 and 3.4.4), so a relay that refolds a header or trims trailing
whitespace does not break the signature; the body is canonicalised with a regex and bytes
replaces over the whole body, once per message for all its signatures.

The signed headers are those of ``SIGNED_HEADERS`` that the message has. ``OVERSIGNED_HEADERS``
are listed in ``h=`` once more than the message has them (RFC 6376 8.15), so a copy added after
signing (a second From, Subject, or List-Unsubscribe) breaks the signature instead of being shown
unsigned; List-Unsubscribe and List-Unsubscribe-Post are among them, which RFC 8058 requires a
one-click unsubscribe to have covered by a valid signature.

Keys are PEM, PKCS#1 or PKCS#8, unencrypted: RSA of at least 1024 bits (RFC 8301; 2048
recommended) or Ed25519.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import (
    dsa,
    ec,
    ed448,
    ed25519,
    padding,
    rsa,
    x448,
    x25519,
)

from newsletter.exceptions import InvalidInput

if TYPE_CHECKING:
    from pathlib import Path

    from newsletter.config import Settings

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

MIN_KEY_BITS = 1024  # RFC 8301: signers MUST use at least 1024 bits and SHOULD use 2048

Algorithm = Literal["rsa", "ed25519"]

# a DNS name of LDH labels (RFC 6376 3.1: selector = sub-domain *("." sub-domain))
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DNS_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_PEM = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)
_SELF_TEST = b"From: dkim-self-test@example.invalid\r\nSubject: DKIM key check\r\n\r\nkey check\r\n"

# RFC 5322 2.2: a field name is printable ASCII but the colon; a folded line starts with WSP
_FIELD = re.compile(rb"([!-9;-~]+)[ \t]*:")
# RFC 6376 3.4.2 and 3.4.4: tabs become spaces first, then a run of spaces becomes one
_SPACES = re.compile(rb"  +")
_SPACES_TO_CHANGE = re.compile(rb" [ \r]")  # a run of spaces, or one before CRLF (tabs gone)
_LONE_CR = re.compile(rb"\r(?!\n)")
_FOLD = re.compile(rb"\r\n(?=[ \t])")
_LINE_WIDTH = 78


class DKIMKeyError(InvalidInput):
    """The private key cannot be read or used; ``reason`` is the cause without the source."""

    def __init__(self, reason: str, *, source: str = "DKIM private key") -> None:
        super().__init__(f"{source}: {reason}")
        self.reason = reason


# ---------------------------------------------------------------- keys and DNS


def _pem_block(pem: bytes) -> tuple[str, bytes]:
    """(label, DER) of the first PEM block; LF or CRLF line ends alike."""
    match = _PEM.search(pem)
    if match is None:
        raise DKIMKeyError("not a PEM key (no -----BEGIN ...----- block)")
    label = match.group(1).decode("ascii")
    if b"Proc-Type:" in match.group(2) or label == "ENCRYPTED PRIVATE KEY":
        raise DKIMKeyError("the key is encrypted; decrypt it first (openssl pkey -in KEY -out NEW)")
    try:
        der = base64.b64decode(b"".join(match.group(2).split()), validate=True)
    except binascii.Error as exc:
        raise DKIMKeyError(f"the PEM block is not valid base64 ({exc})") from None
    return label, der


PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
PublicKey = rsa.RSAPublicKey | ed25519.Ed25519PublicKey


_OTHER_KINDS: tuple[tuple[tuple[type, ...], str], ...] = (
    ((ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey), "EC"),
    ((dsa.DSAPrivateKey, dsa.DSAPublicKey), "DSA"),
    ((ed448.Ed448PrivateKey, ed448.Ed448PublicKey), "Ed448"),
    ((x25519.X25519PrivateKey, x25519.X25519PublicKey), "X25519"),
    ((x448.X448PrivateKey, x448.X448PublicKey), "X448"),
)


def _checked(key: object) -> PrivateKey | PublicKey:
    """``key`` if DKIM can use it: RSA of at least ``MIN_KEY_BITS``, or Ed25519."""
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        if key.key_size < MIN_KEY_BITS:
            raise DKIMKeyError(
                f"the key has {key.key_size} bits; DKIM needs at least {MIN_KEY_BITS}"
            )
        return key
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return key
    kind = next((name for types, name in _OTHER_KINDS if isinstance(key, types)), "Such")
    raise DKIMKeyError(f"{kind} keys are not supported; use an RSA or ed25519 key")


def load_private_key(pem: bytes) -> PrivateKey:
    """An RSA (at least ``MIN_KEY_BITS``) or Ed25519 private key from PEM, PKCS#1 or PKCS#8.

    Raises ``DKIMKeyError`` with a one-line reason.
    """
    label, der = _pem_block(pem)
    if "PRIVATE KEY" not in label:
        raise DKIMKeyError(f"expected a private key, found a PEM {label!r} block")
    if label not in ("PRIVATE KEY", "RSA PRIVATE KEY"):
        raise DKIMKeyError(f"not an RSA or ed25519 private key (PEM {label!r})")
    try:
        key = serialization.load_der_private_key(der, password=None)
    except UnsupportedAlgorithm:
        raise DKIMKeyError(
            "the key's algorithm is not supported; use an RSA or ed25519 key"
        ) from None
    except TypeError:  # a password-protected PKCS#8 under the plain label
        raise DKIMKeyError("the key is encrypted; decrypt it first") from None
    except ValueError as exc:
        if "Invalid private key" in str(exc):  # well-formed, but its numbers do not fit
            raise DKIMKeyError("the key is damaged (its numbers do not fit together)") from None
        raise DKIMKeyError("not a valid private key (neither PKCS#1 nor PKCS#8)") from None
    checked = _checked(key)
    assert isinstance(checked, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey)
    return checked


def _public_of(key_pem: bytes) -> PublicKey:
    label, der = _pem_block(key_pem)
    if "PRIVATE KEY" in label:
        return load_private_key(key_pem).public_key()
    if label not in ("PUBLIC KEY", "RSA PUBLIC KEY"):
        raise InvalidInput(f"not an RSA or ed25519 key (PEM {label!r})")
    try:
        key = serialization.load_der_public_key(der)
    except (ValueError, UnsupportedAlgorithm):
        raise InvalidInput("not a valid RSA or ed25519 public key") from None
    checked = _checked(key)
    assert isinstance(checked, rsa.RSAPublicKey | ed25519.Ed25519PublicKey)
    return checked


def _txt(public: PublicKey) -> str:
    """``k=rsa`` with the SubjectPublicKeyInfo, or ``k=ed25519`` with the raw 32 bytes (8463)."""
    if isinstance(public, ed25519.Ed25519PublicKey):
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return "v=DKIM1; k=ed25519; p=" + base64.b64encode(raw).decode("ascii")
    spki = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "v=DKIM1; k=rsa; p=" + base64.b64encode(spki).decode("ascii")


def dns_txt_record(key_pem: bytes) -> str:
    """The TXT value to publish at ``<selector>._domainkey.<domain>`` for a PEM key.

    ``key_pem`` is the private key or its public half (``BEGIN PUBLIC KEY``, or ``BEGIN RSA
    PUBLIC KEY``). A 2048-bit RSA key gives a value longer than 255 characters: zone files take
    it as several quoted strings on one record, which resolvers join back together.
    """
    return _txt(_public_of(key_pem))


def generate_key(bits: int = 2048, algorithm: Algorithm = "rsa") -> bytes:
    """A new unencrypted private key as PEM (PKCS#8): RSA of ``bits``, or Ed25519."""
    key: PrivateKey
    if algorithm == "ed25519":
        key = ed25519.Ed25519PrivateKey.generate()
    elif algorithm == "rsa":
        if bits < MIN_KEY_BITS:
            raise InvalidInput(f"DKIM keys need at least {MIN_KEY_BITS} bits, not {bits}")
        if bits > 8192:
            raise InvalidInput(f"{bits} bits is more than DKIM verifiers accept; use 2048")
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    else:
        raise InvalidInput(f"unknown DKIM key algorithm {algorithm!r}: rsa or ed25519")
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


# ---------------------------------------------------------------- canonicalization


def relaxed_body(body: bytes) -> bytes:
    """RFC 6376 3.4.4 relaxed body canonicalization of CRLF ``body``.

    A last line without CRLF is taken as ending in one, as it will after the SMTP hop. Each
    step is one C-speed pass over the whole body (``in``, ``replace``, a regex search led by a
    literal), and the changes are made only when there is something to change.
    """
    if body and not body.endswith(b"\r\n"):
        body += b"\r\n"
    if b"\t" in body:
        body = body.replace(b"\t", b" ")
    if _SPACES_TO_CHANGE.search(body) is not None:
        # every run of spaces becomes one space, so trailing WSP is a space before CRLF
        body = _SPACES.sub(b" ", body).replace(b" \r\n", b"\r\n")
    body = body.rstrip(b"\r\n")  # CRLF only here (checked): the empty lines at the end
    return body + b"\r\n" if body else b""


def relaxed_header(name: bytes, value: bytes) -> bytes:
    """RFC 6376 3.4.2: ``name:value`` lowercased name, unfolded, WSP runs as one space."""
    value = _SPACES.sub(b" ", _FOLD.sub(b"", value).replace(b"\t", b" ")).strip(b" ")
    return name.lower() + b":" + value


def parse_headers(head: bytes) -> list[tuple[bytes, bytes]]:
    """(name, raw value with its folding) of each header field of ``head`` (CRLF lines).

    Raises ``InvalidInput`` for a line that is neither a field nor a continuation.
    """
    fields: list[tuple[bytes, bytes]] = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, value + b"\r\n" + line)
            continue
        match = _FIELD.match(line)
        if match is None:
            raise InvalidInput(f"cannot DKIM-sign the message: malformed header line {line[:40]!r}")
        fields.append((match.group(1), line[match.end() :]))
    return fields


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


def check_dns_name(what: str, value: str) -> str:
    """``value`` (a ``selector`` or ``domain``) trimmed, or ``InvalidInput`` saying why not."""
    value = value.strip().rstrip(".").lower() if what == "domain" else value.strip()
    if not _DNS_NAME.fullmatch(value):
        raise InvalidInput(
            f"DKIM {what} {value!r} is not a DNS name (ASCII letters, digits, hyphens and dots)"
        )
    return value


def _key(selector: str, pem: bytes) -> DKIMKey:
    private = load_private_key(pem)
    if isinstance(private, ed25519.Ed25519PrivateKey):
        return DKIMKey(selector, "ed25519", 256, _txt(private.public_key()), private)
    return DKIMKey(selector, "rsa", private.key_size, _txt(private.public_key()), private)


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

    def sign(self, message: bytes) -> bytes:
        """``message`` (CRLF line ends) with one ``DKIM-Signature`` header per key prepended.

        Raises ``InvalidInput`` for a message that cannot be signed (no From header, bare LF or
        CR line ends, a malformed header), which is a formatting problem on our side.
        """
        if not _crlf_only(message):
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
        body_hash = base64.b64encode(hashlib.sha256(relaxed_body(body)).digest()).decode("ascii")
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
        return b"".join(headers) + message

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


def _crlf_only(message: bytes) -> bool:
    """Whether every CR and LF of ``message`` is in a CRLF pair.

    As many CRs as LFs, and each CR followed by an LF, leaves no LF unpaired either: two C-speed
    counts and a literal-led regex search, cheaper than counting b"\\r\\n" on a large message.
    """
    return message.count(b"\r") == message.count(b"\n") and _LONE_CR.search(message) is None


def _select(fields: list[tuple[bytes, bytes]], listed: list[str]) -> list[tuple[bytes, bytes]]:
    """The fields ``h=`` names, each name taking its instances from the bottom up (RFC 6376
    5.4.2); a name listed more often than the message has it selects nothing more."""
    by_name: dict[str, list[tuple[bytes, bytes]]] = {}
    for raw_name, value in fields:
        by_name.setdefault(raw_name.lower().decode("ascii"), []).append((raw_name, value))
    chosen: list[tuple[bytes, bytes]] = []
    for name in listed:
        instances = by_name.get(name)
        if instances:
            chosen.append(instances.pop())
    return chosen


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
    tags = {k: re.sub(rb"\s+", b"", v) for k, v in parse_tag_value(_FOLD.sub(b"", value)).items()}
    record = records.get(f"{tags[b's'].decode()}._domainkey.{tags[b'd'].decode()}", "")
    public = parse_tag_value(record.encode("ascii")).get(b"p", b"")
    body = signed[end + 4 :] if end >= 0 else b""
    if base64.b64encode(hashlib.sha256(relaxed_body(body)).digest()) != tags[b"bh"]:
        return False
    listed = [h.strip().lower().decode("ascii") for h in tags[b"h"].split(b":")]
    others = [(n, v) for n, v in fields if n.lower() != b"dkim-signature"]
    data = b"".join(relaxed_header(n, v) + b"\r\n" for n, v in _select(others, listed))
    data += relaxed_header(name, re.sub(rb"(^|;)(\s*b\s*=)[^;]*", rb"\1\2", value))
    try:
        key = ed25519.Ed25519PublicKey.from_public_bytes(base64.b64decode(public))
        key.verify(base64.b64decode(tags[b"b"]), hashlib.sha256(data).digest())
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True


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
