"""DKIM keys (RFC 6376, RFC 8463): loading and checking a PEM private key, the TXT record that
publishes its public half, and new keys.

Keys are PEM, PKCS#1 or PKCS#8, unencrypted: RSA of at least 1024 bits (RFC 8301; 2048
recommended) or Ed25519, read with ``cryptography``'s serialization. Anything else is refused
with a one-line ``DKIMKeyError`` that says why.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Literal

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa, x448, x25519

from newsletter.exceptions import InvalidInput

MIN_KEY_BITS = 1024  # RFC 8301: signers MUST use at least 1024 bits and SHOULD use 2048

Algorithm = Literal["rsa", "ed25519"]

# a DNS name of LDH labels (RFC 6376 3.1: selector = sub-domain *("." sub-domain))
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DNS_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_PEM = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)


class DKIMKeyError(InvalidInput):
    """The private key cannot be read or used; ``reason`` is the cause without the source."""

    def __init__(self, reason: str, *, source: str = "DKIM private key") -> None:
        super().__init__(f"{source}: {reason}")
        self.reason = reason


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


def txt_record_of(public: PublicKey) -> str:
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
    return txt_record_of(_public_of(key_pem))


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


def check_dns_name(what: str, value: str) -> str:
    """``value`` (a ``selector`` or ``domain``) trimmed, or ``InvalidInput`` saying why not."""
    value = value.strip().rstrip(".").lower() if what == "domain" else value.strip()
    if not _DNS_NAME.fullmatch(value):
        raise InvalidInput(
            f"DKIM {what} {value!r} is not a DNS name (ASCII letters, digits, hyphens and dots)"
        )
    return value
