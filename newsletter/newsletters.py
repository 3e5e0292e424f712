"""Newsletter identity: finding a newsletter by slug or id, and its sender, postal address, links
and colour, checked on save.

Every field that ends up in a header or a footer is one line of text: a line break in a sender
name would start a header of its own. Addresses are validated like subscribers' addresses, URLs
must be absolute http(s), and the brand colour a ``#rrggbb`` hex colour.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from sqlmodel import Session, select

from newsletter import text
from newsletter.addresses import normalise_email
from newsletter.exceptions import InvalidInput, NotFound
from newsletter.models import Newsletter

SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,78}[a-z0-9])?")
COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
#: field -> longest value; one line each
ONE_LINE = {"name": 200, "from_name": 200, "postal_address": 500}
ADDRESSES = ("from_email", "reply_to")
URLS = ("website_url", "membership_url")
MAX_ID = 2_147_483_647  # PostgreSQL integer: a longer number is no row id


def get_newsletter(session: Session, ref: str | int) -> Newsletter:
    """The newsletter with this id (all digits) or slug, or NotFound."""
    key = str(ref)
    by_id = key.isascii() and key.isdigit()
    if by_id and (len(key) > 10 or int(key) > MAX_ID):  # beyond any row id
        raise NotFound(f"no newsletter {ref!r}")
    stmt = select(Newsletter).where(Newsletter.id == int(key) if by_id else Newsletter.slug == key)
    newsletter = session.exec(stmt).first()
    if newsletter is None:
        raise NotFound(f"no newsletter {ref!r}")
    return newsletter


def clean_identity(data: Mapping[str, Any]) -> dict[str, Any]:
    """The newsletter fields of ``data`` checked and normalised; InvalidInput names the field."""
    fields: dict[str, Any] = dict(data)
    if "slug" in fields and not SLUG.fullmatch(str(fields["slug"])):
        raise InvalidInput(
            f"slug {str(fields['slug'])[:40]!r}: lower-case letters, digits and hyphens only"
        )
    for key, limit in ONE_LINE.items():
        if key in fields:
            fields[key] = text.one_line(str(fields[key]), field=key, max_length=limit)
    for key in ADDRESSES:
        if fields.get(key):
            fields[key] = normalise_email(str(fields[key]))
    for key in URLS:
        if fields.get(key):
            fields[key] = _url(str(fields[key]), key)
    if "description" in fields:
        fields["description"] = text.multiline(str(fields["description"]), field="description")
    if "brand_color" in fields and not COLOUR.fullmatch(str(fields["brand_color"])):
        raise InvalidInput(f"brand_color {str(fields['brand_color'])[:20]!r} is not #rrggbb")
    return fields


def _url(value: str, field: str) -> str:
    url = text.one_line(value, field=field, max_length=2000)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"{field} must be an absolute http(s) URL")
    return url
