"""DKIM signing (RFC 6376) of rendered messages, with dkimpy.

Build one ``DKIMSigner`` per process (``signer_from_settings``): it checks the key once, at
start-up, by signing a small message and verifying the result against the key's own public half,
so a bad key fails there and not on every message. ``sign`` then prepends a ``DKIM-Signature``
header to each rendered message (CRLF bytes in, CRLF bytes out).

Canonicalization is relaxed/relaxed, so a relay that refolds a header or trims trailing
whitespace does not break the signature. The signed headers are those of ``SIGNED_HEADERS`` that
the message has; they include List-Unsubscribe and List-Unsubscribe-Post, which RFC 8058 requires
a one-click unsubscribe to have covered by a valid signature.

Only RSA keys are supported (PEM, PKCS#1 or PKCS#8, unencrypted, at least 1024 bits as RFC 8301
requires; 2048 recommended): dkimpy signs ed25519 only with PyNaCl, which the project does not
install, and many receivers do not verify ed25519 signatures anyway.
"""

from __future__ import annotations

import base64
import binascii
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import dkim
from dkim.crypto import UnparsableKeyError, parse_private_key, parse_public_key

from newsletter.exceptions import InvalidInput, UserError

if TYPE_CHECKING:
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

MIN_KEY_BITS = 1024  # RFC 8301: signers MUST use at least 1024 bits and SHOULD use 2048

_CANONICALIZE = (b"relaxed", b"relaxed")
# a DNS name of LDH labels (RFC 6376 3.1: selector = sub-domain *("." sub-domain))
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DNS_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_PEM = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)
_RSA_OID = bytes.fromhex("06092a864886f70d010101")  # 1.2.840.113549.1.1.1 rsaEncryption
_ED25519_OID = bytes.fromhex("06032b6570")  # 1.3.101.112
_SELF_TEST = b"From: dkim-self-test@example.invalid\r\nSubject: DKIM key check\r\n\r\nkey check\r\n"


class DKIMKeyError(InvalidInput):
    """The private key cannot be read or used; ``reason`` is the cause without the source."""

    def __init__(self, reason: str, *, source: str = "DKIM private key") -> None:
        super().__init__(f"{source}: {reason}")
        self.reason = reason


@dataclass(frozen=True)
class _RSAPublic:
    modulus: int
    exponent: int

    @property
    def bits(self) -> int:
        return self.modulus.bit_length()


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


def _rsa_private(pem: bytes) -> tuple[bytes, _RSAPublic]:
    """(the key as PEM with LF line ends, which is what dkimpy parses, its public half)."""
    label, der = _pem_block(pem)
    if "PRIVATE KEY" not in label:
        raise DKIMKeyError(f"expected a private key, found a PEM {label!r} block")
    if label == "PRIVATE KEY" and _ED25519_OID in der[:16]:
        raise DKIMKeyError("ed25519 keys are not supported; use an RSA key")
    if label not in ("PRIVATE KEY", "RSA PRIVATE KEY"):
        raise DKIMKeyError(f"not an RSA private key (PEM {label!r})")
    try:
        fields = parse_private_key(der)
    except (UnparsableKeyError, AssertionError, IndexError):
        raise DKIMKeyError("not a valid RSA private key (neither PKCS#1 nor PKCS#8)") from None
    public = _RSAPublic(int(fields["modulus"]), int(fields["publicExponent"]))
    if public.bits < MIN_KEY_BITS:
        raise DKIMKeyError(f"the key has {public.bits} bits; DKIM needs at least {MIN_KEY_BITS}")
    body = base64.encodebytes(der)  # 76-character lines, each ending in LF
    normalised = f"-----BEGIN {label}-----\n".encode() + body + f"-----END {label}-----\n".encode()
    return normalised, public


def _public_of(key_pem: bytes) -> _RSAPublic:
    label, der = _pem_block(key_pem)
    if "PRIVATE KEY" in label:
        return _rsa_private(key_pem)[1]
    if label not in ("PUBLIC KEY", "RSA PUBLIC KEY"):
        raise InvalidInput(f"not an RSA key (PEM {label!r})")
    if label == "PUBLIC KEY" and _RSA_OID not in der[:24]:
        raise InvalidInput("not an RSA public key")
    try:
        fields = parse_public_key(der)
    except (UnparsableKeyError, AssertionError, IndexError):
        raise InvalidInput("not a valid RSA public key") from None
    return _RSAPublic(int(fields["modulus"]), int(fields["publicExponent"]))


def _der(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


def _der_int(value: int) -> bytes:
    # one more byte than the bits need keeps the sign bit clear, and stays minimal
    return _der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def _spki(public: _RSAPublic) -> bytes:
    """SubjectPublicKeyInfo DER, what ``openssl pkey -pubout -outform DER`` writes."""
    rsa_public_key = _der(0x30, _der_int(public.modulus) + _der_int(public.exponent))
    algorithm = _der(0x30, _RSA_OID + b"\x05\x00")
    return _der(0x30, algorithm + _der(0x03, b"\x00" + rsa_public_key))


def _txt(public: _RSAPublic) -> str:
    return "v=DKIM1; k=rsa; p=" + base64.b64encode(_spki(public)).decode("ascii")


def dns_txt_record(key_pem: bytes) -> str:
    """The TXT value to publish at ``<selector>._domainkey.<domain>`` for a PEM RSA key.

    ``key_pem`` is the private key or its public half (``BEGIN PUBLIC KEY`` or ``BEGIN RSA
    PUBLIC KEY``). A 2048-bit key gives a value longer than 255 characters: zone files take it
    as several quoted strings on one record, which resolvers join back together.
    """
    return _txt(_public_of(key_pem))


def generate_key(bits: int = 2048) -> bytes:
    """A new unencrypted RSA private key as PEM (PKCS#8), made by the ``openssl`` command.

    That is how dkimpy's own ``dknewkey`` makes keys; the project does not depend on a Python
    cryptography package.
    """
    if bits < MIN_KEY_BITS:
        raise InvalidInput(f"DKIM keys need at least {MIN_KEY_BITS} bits, not {bits}")
    openssl = shutil.which("openssl")
    if openssl is None:
        raise UserError("generating a DKIM key needs the openssl command (apt-get install openssl)")
    proc = subprocess.run(
        [openssl, "genpkey", "-algorithm", "RSA", "-pkeyopt", f"rsa_keygen_bits:{bits}"],
        capture_output=True,
        check=False,
        timeout=300,
    )
    if proc.returncode != 0:
        detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[:1]
        raise UserError(f"openssl genpkey failed: {detail[0] if detail else proc.returncode}")
    _rsa_private(proc.stdout)
    return proc.stdout


# ---------------------------------------------------------------- signing


@dataclass(frozen=True)
class DKIMSigner:
    """Signs messages for ``domain`` with the key published at ``<selector>._domainkey.<domain>``.

    Construction checks the names and the key (raising ``InvalidInput``, ``DKIMKeyError`` for key
    problems); one instance is safe to share between threads.
    """

    selector: str
    domain: str
    private_key: bytes = field(repr=False)
    key_bits: int = field(init=False)
    _public: _RSAPublic = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        selector = self.selector.strip()
        domain = self.domain.strip().rstrip(".").lower()
        for what, value in (("selector", selector), ("domain", domain)):
            if not _DNS_NAME.fullmatch(value):
                raise InvalidInput(
                    f"DKIM {what} {value!r} is not a DNS name (ASCII letters, digits, hyphens "
                    "and dots)"
                )
        key, public = _rsa_private(self.private_key)
        object.__setattr__(self, "selector", selector)
        object.__setattr__(self, "domain", domain)
        object.__setattr__(self, "private_key", key)
        object.__setattr__(self, "key_bits", public.bits)
        object.__setattr__(self, "_public", public)
        self._self_test()

    def _self_test(self) -> None:
        """Sign a tiny message and verify it with the key's public half."""
        record = self.txt_record.encode("ascii")
        name = f"{self.dns_name}.".encode("ascii")

        def own_key(qname: bytes, timeout: float = 5) -> bytes | None:
            return record if qname == name else None

        try:
            signed = self.sign(_SELF_TEST)
            # dkimpy's pure-Python key maths fails in many ways on a damaged key; any of them
            # means the same thing here
            ok = bool(dkim.verify(signed, dnsfunc=own_key, minkey=MIN_KEY_BITS))
        except Exception as exc:
            raise DKIMKeyError(f"the key does not sign ({type(exc).__name__}: {exc})") from None
        if not ok:
            raise DKIMKeyError("signatures made with the key do not verify (damaged key?)")

    @property
    def dns_name(self) -> str:
        """Where the public key is looked up: ``<selector>._domainkey.<domain>``."""
        return f"{self.selector}._domainkey.{self.domain}"

    @property
    def txt_record(self) -> str:
        """The TXT value to publish at ``dns_name``."""
        return _txt(self._public)

    def sign(self, message: bytes) -> bytes:
        """``message`` (CRLF line ends) with a ``DKIM-Signature`` header prepended.

        Raises ``InvalidInput`` for a message that cannot be signed (no From header, bare LF or
        CR line ends, a malformed header), which is a formatting problem on our side.
        """
        crlf = message.count(b"\r\n")
        if message.count(b"\n") != crlf or message.count(b"\r") != crlf:
            raise InvalidInput("cannot DKIM-sign a message whose lines do not all end in CRLF")
        try:
            signer: Any = dkim.DKIM(message, linesep=b"\r\n")
            present = {bytes(name).lower().decode("ascii") for name, _ in signer.headers}
            if "from" not in present:
                raise InvalidInput("cannot DKIM-sign a message without a From header")
            header = signer.sign(
                self.selector.encode("ascii"),
                self.domain.encode("ascii"),
                self.private_key,
                canonicalize=_CANONICALIZE,
                include_headers=[h.encode("ascii") for h in SIGNED_HEADERS if h in present],
            )
        except dkim.DKIMException as exc:
            raise InvalidInput(f"cannot DKIM-sign the message: {exc}") from exc
        return bytes(header) + message


def signer_from_settings(settings: Settings) -> DKIMSigner | None:
    """The configured signer, or None when DKIM is not configured at all.

    Half a configuration, a key file that cannot be read and a key that is not a usable RSA
    private key all raise ``InvalidInput`` with a one-line message.
    """
    selector = (settings.dkim_selector or "").strip()
    domain = (settings.dkim_domain or "").strip()
    # an empty NEWSLETTER_DKIM_KEY_FILE reaches us as Path("."), never a key file
    key_file = settings.dkim_key_file if str(settings.dkim_key_file or ".") != "." else None
    given = {
        "NEWSLETTER_DKIM_SELECTOR": bool(selector),
        "NEWSLETTER_DKIM_DOMAIN": bool(domain),
        "NEWSLETTER_DKIM_KEY_FILE": key_file is not None,
    }
    missing = [name for name, present in given.items() if not present]
    if len(missing) == len(given):
        return None
    if missing or key_file is None:
        raise InvalidInput(f"DKIM is half configured: set {' and '.join(missing)} too")
    path = key_file.expanduser()
    source = f"DKIM key file {path}"
    try:
        pem = path.read_bytes()
    except FileNotFoundError:
        raise DKIMKeyError("not found", source=source) from None
    except IsADirectoryError:
        raise DKIMKeyError("is a directory", source=source) from None
    except PermissionError:
        raise DKIMKeyError("permission denied", source=source) from None
    except OSError as exc:
        raise DKIMKeyError(exc.strerror or str(exc), source=source) from None
    try:
        return DKIMSigner(selector, domain, pem)
    except DKIMKeyError as exc:
        raise DKIMKeyError(exc.reason, source=source) from None
