"""Checks of what an editor types about a subscriber: attributes, language, time zone, a tag.

Attributes are a flat JSON object (segments compare them, emails print them): names of 1-64
printable characters, values text, finite numbers, true/false or null, at most
``ATTRIBUTES_MAX_KEYS`` names and ``ATTRIBUTES_MAX_BYTES`` of JSON. A language is a BCP 47 tag and
a time zone an IANA name (the same checks as a newsletter's); empty means "the newsletter's".
Every refusal is an ``InvalidInput`` naming what is wrong.
"""

from __future__ import annotations

import json
import math
from typing import Any

from newsletter import i18n, newsletters
from newsletter.exceptions import InvalidInput

__all__ = [
    "ATTRIBUTES_MAX_BYTES",
    "ATTRIBUTES_MAX_KEYS",
    "KEY_MAX",
    "TAG_MAX",
    "check_attributes",
    "check_language",
    "check_locale",
    "check_tag",
    "check_time_zone",
    "parse_attributes",
]

KEY_MAX = 64  # characters in an attribute name
ATTRIBUTES_MAX_KEYS = 100
ATTRIBUTES_MAX_BYTES = 16_384  # the whole object as compact JSON
TAG_MAX = 64  # the column's length


def check_attributes(value: Any) -> dict[str, Any]:
    """A flat JSON object: names of 1-64 characters, values text, numbers, true/false or null."""
    if not isinstance(value, dict):
        raise InvalidInput('attributes must be a JSON object, like {"city": "Minsk"}')
    if len(value) > ATTRIBUTES_MAX_KEYS:
        raise InvalidInput(f"attributes: at most {ATTRIBUTES_MAX_KEYS} names, not {len(value)}")
    for key, item in value.items():
        if not isinstance(key, str) or not key.strip():
            raise InvalidInput("attributes: every name must be non-empty text")
        if len(key) > KEY_MAX:
            raise InvalidInput(f"attributes: the name {key[:20]!r}... is longer than {KEY_MAX}")
        if not key.isprintable():
            raise InvalidInput(f"attributes: the name {key[:20]!r} has a control character")
        if not (item is None or isinstance(item, str | int | float | bool)):
            kind = "a list" if isinstance(item, list) else "an object"
            raise InvalidInput(
                f"attributes: {key!r} is {kind}; a value is text, a number, true/false or null"
            )
        if isinstance(item, float) and not math.isfinite(item):
            raise InvalidInput(f"attributes: {key!r} is not a finite number")
    size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())
    if size > ATTRIBUTES_MAX_BYTES:
        raise InvalidInput(
            f"attributes: {size:,} bytes of JSON, the most is {ATTRIBUTES_MAX_BYTES:,}"
        )
    return dict(value)


def parse_attributes(text: str) -> dict[str, Any]:
    """The attributes typed as JSON (an empty box is no attributes), checked."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"attributes are not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    return check_attributes(value)


def _no_constant(name: str) -> Any:
    raise InvalidInput(f"attributes: {name} is not a JSON number")


def check_language(value: str) -> str | None:
    """A BCP 47 tag, or None for an empty value (the newsletter's language)."""
    return newsletters.language_tag(value) if value.strip() else None


def check_locale(value: str) -> str | None:
    """One of the shipped locales (the pages and the email chrome speak it: ``i18n.LOCALES``),
    or None for an empty value (the newsletter's language)."""
    tag = value.strip()
    if not tag:
        return None
    if tag not in i18n.LOCALES:
        raise InvalidInput(f"unknown language {tag[:40]!r}: one of {', '.join(i18n.LOCALES)}")
    return tag


def check_time_zone(value: str) -> str | None:
    """An IANA zone, or None for an empty value (the newsletter's zone)."""
    return newsletters.time_zone(value) if value.strip() else None


def check_tag(value: str) -> str:
    tag = " ".join(value.split())
    if not tag:
        raise InvalidInput("a tag cannot be empty")
    if len(tag) > TAG_MAX or not tag.isprintable():
        raise InvalidInput(f"a tag is one line of at most {TAG_MAX} characters")
    return tag
