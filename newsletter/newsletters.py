"""Newsletters: found by slug or id; created, changed and listed; every field checked on save.

Every field that ends up in a header or on one line of a page (sender name, masthead, the
membership line) is one line of text: a line break in a sender name would start a header of its
own. Addresses are validated like subscribers' addresses, URLs (links and the logo) must be
absolute https, the brand colour a ``#rrggbb`` hex colour, the language a BCP 47 tag and the time
zone an IANA name. ``description`` is "about this newsletter" (the public pages, the archive and
its feed); ``footer_text`` is "why you get this" (the email footer).

The CLI, the admin API and the editor UI all save through ``create_newsletter`` and
``update_newsletter``; the text forms (CLI options, HTML forms) give their values as typed to
``parse_typed`` first.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Collection, Iterable, Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from newsletter import text
from newsletter.addresses import normalise_email
from newsletter.exceptions import InvalidInput, NotFound
from newsletter.models import Newsletter

SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,78}[a-z0-9])?")
COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
#: BCP 47, the common shapes: language, optional script, optional region ("en", "be-BY",
#: "sr-Latn-RS", "es-419"); no private-use or extension subtags
LANGUAGE = re.compile(r"([a-zA-Z]{2,3})(?:-([a-zA-Z]{4}))?(?:-([a-zA-Z]{2}|[0-9]{3}))?")
#: field -> longest value; one line each
ONE_LINE = {
    "name": 200,
    "from_name": 200,
    "postal_address": 500,
    "masthead": 300,
    "membership_text": 300,
    "membership_button": 60,
    "signup_pitch": 200,
}
REQUIRED = ("slug", "name", "from_email", "postal_address")
ADDRESSES = ("from_email", "reply_to")
URLS = ("website_url", "membership_url", "logo_url")
LONG_TEXT = {"description": 5000, "footer_text": 2000}
FLAGS = ("membership_cta", "requires_review", "track_clicks", "track_opens")
#: the email's design: field -> the values it takes (the first is the default)
CHOICES = {
    "layout": ("digest", "alert", "letter"),
    "font": ("serif", "sans"),
    "story_images": ("thumbnail", "none"),
    "missing_translation": ("fallback", "block"),  # an edition's untranslated field
}
SPAM_THRESHOLD_RANGE = (-10.0, 20.0)  # SpamAssassin scores; 5.0 is its own "spam" line
SPAM_THRESHOLD_DEFAULT = 5.0
SECTIONS_MAX, SECTION_TITLE_MAX = 20, 200
#: every field an editor sets, in the order forms and listings show them
FIELDS = (
    "slug",
    "name",
    "from_name",
    "from_email",
    "reply_to",
    "postal_address",
    "language",
    "time_zone",
    "brand_color",
    "logo_url",
    "masthead",
    "description",
    "footer_text",
    "website_url",
    "membership_cta",
    "membership_text",
    "membership_button",
    "membership_url",
    "default_sections",
    "requires_review",
    "track_clicks",
    "track_opens",
    "signup_pitch",
    "layout",
    "font",
    "story_images",
    "spam_threshold",
    "relay",
    "missing_translation",
)
MAX_ID = 2_147_483_647  # PostgreSQL integer: a longer number is no row id
_TRUE, _FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0", ""}


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


def list_newsletters(session: Session) -> list[Newsletter]:
    """Every newsletter, oldest first."""
    return list(session.exec(select(Newsletter).order_by(col(Newsletter.id))).all())


def create_newsletter(
    session: Session, data: Mapping[str, Any], *, relays: Collection[str] = ()
) -> Newsletter:
    """A new newsletter from ``data`` (checked); InvalidInput names the field that is wrong.
    ``relays``: the configured relays' names, one of which a newsletter's ``relay`` must be."""
    fields = clean_identity(data)
    _relay_known(fields, relays)
    missing = [k for k in REQUIRED if not fields.get(k)]
    if missing:
        raise InvalidInput(f"a newsletter needs {', '.join(missing)}")
    if not fields.get("from_name"):  # not given, or empty: the name
        fields["from_name"] = fields["name"]
    _check_together(fields)
    _slug_free(session, fields["slug"], None)
    newsletter = Newsletter(**fields)
    return _flush(session, newsletter)


def update_newsletter(
    session: Session, ref: str | int, changes: Mapping[str, Any], *, relays: Collection[str] = ()
) -> Newsletter:
    """Change the fields in ``changes`` only (checked); the rest stay as they are."""
    newsletter = get_newsletter(session, ref)
    fields = clean_identity(changes)
    if fields.get("relay") != newsletter.relay:  # an unchanged name stays, even if unknown now
        _relay_known(fields, relays)
    for key in REQUIRED:
        if key in fields and not fields[key]:
            raise InvalidInput(f"{key} must not be empty")
    if "from_name" in fields and not fields["from_name"]:  # empty: the name
        fields["from_name"] = fields.get("name", newsletter.name)
    merged = {k: getattr(newsletter, k) for k in FIELDS} | fields
    _check_together(merged)
    if "slug" in fields and fields["slug"] != newsletter.slug:
        _slug_free(session, fields["slug"], newsletter.id)
    for key, value in fields.items():
        setattr(newsletter, key, value)
    return _flush(session, newsletter)


def _flush(session: Session, newsletter: Newsletter) -> Newsletter:
    session.add(newsletter)
    try:
        session.flush()
    except IntegrityError:  # a slug taken between our check and the write
        raise InvalidInput(f"slug {newsletter.slug!r} is taken by another newsletter") from None
    return newsletter


def _slug_free(session: Session, slug: str, own_id: int | None) -> None:
    other = session.exec(select(Newsletter).where(Newsletter.slug == slug)).first()
    if other is not None and other.id != own_id:
        raise InvalidInput(f"slug {slug!r} is taken by newsletter {other.id} ({other.name})")


def _relay_known(fields: Mapping[str, Any], relays: Collection[str]) -> None:
    relay = fields.get("relay")
    if relay and relay not in relays:
        known = ", ".join(relays) or "none"
        raise InvalidInput(f"relay {relay!r} is not one of the configured relays ({known})")


def _check_together(fields: Mapping[str, Any]) -> None:
    if fields.get("membership_cta") and not fields.get("membership_url"):
        raise InvalidInput("the membership call-to-action needs a membership_url")


def clean_identity(data: Mapping[str, Any]) -> dict[str, Any]:
    """The newsletter fields of ``data`` checked and normalised; InvalidInput names the field."""
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise InvalidInput(f"unknown newsletter field(s): {', '.join(unknown)[:100]}")
    fields: dict[str, Any] = dict(data)
    if "slug" in fields:
        fields["slug"] = _slug(_str(fields["slug"], "slug"))
    for key, limit in ONE_LINE.items():
        if key in fields:
            fields[key] = text.one_line(_str(fields[key], key), field=key, max_length=limit)
    for key in ADDRESSES:
        if key in fields:
            value = _str(fields[key], key, optional=True).strip()
            fields[key] = normalise_email(value) if value else None
    if "from_email" in fields:
        fields["from_email"] = fields["from_email"] or ""
    for key in URLS:
        if key in fields:
            value = _str(fields[key], key, optional=True).strip()
            fields[key] = _url(value, key) if value else ""
    for key, limit in LONG_TEXT.items():
        if key in fields:
            fields[key] = text.multiline(_str(fields[key], key), field=key, max_length=limit)
    if "brand_color" in fields:
        fields["brand_color"] = _colour(_str(fields["brand_color"], "brand_color"))
    if "language" in fields:
        fields["language"] = language_tag(_str(fields["language"], "language"))
    if "time_zone" in fields:
        fields["time_zone"] = time_zone(_str(fields["time_zone"], "time_zone"))
    for key in FLAGS:
        if key in fields and not isinstance(fields[key], bool):
            raise InvalidInput(f"{key} must be true or false")
    if "default_sections" in fields:
        fields["default_sections"] = _sections(fields["default_sections"])
    for key, allowed in CHOICES.items():
        if key in fields and fields[key] not in allowed:
            raise InvalidInput(f"{key} must be one of {', '.join(allowed)}")
    if "spam_threshold" in fields:
        fields["spam_threshold"] = _threshold(fields["spam_threshold"])
    if "relay" in fields:  # "" the default choice; a name is checked against the settings
        fields["relay"] = text.one_line(
            _str(fields["relay"], "relay", optional=True), field="relay", max_length=64
        ).strip()
    return fields


def _threshold(value: Any) -> float:
    low, high = SPAM_THRESHOLD_RANGE
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput("spam_threshold must be a number, e.g. 5.0")
    if not low <= float(value) <= high:
        raise InvalidInput(f"spam_threshold must be between {low} and {high}")
    return float(value)


def _str(value: Any, field: str, *, optional: bool = False) -> str:
    if value is None and optional:
        return ""
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be text")
    return value


def _slug(value: str) -> str:
    slug = value.strip()
    if not SLUG.fullmatch(slug):
        raise InvalidInput(
            f"slug {slug[:40]!r}: 1 to 80 lower-case letters, digits and hyphens, "
            "not starting or ending with a hyphen"
        )
    return slug


def _url(value: str, field: str) -> str:
    url = text.one_line(value, field=field, max_length=2000)
    parts = urlsplit(url)
    if parts.scheme.lower() != "https" or not parts.hostname:
        raise InvalidInput(f"{field} must be an absolute https URL, not {url[:40]!r}")
    if parts.username or parts.password:
        raise InvalidInput(f"{field} must not carry a user name or password")
    return url


def _colour(value: str) -> str:
    colour = value.strip()
    if not COLOUR.fullmatch(colour):
        raise InvalidInput(f"brand_color {colour[:20]!r} is not a #rrggbb colour")
    return colour.lower()


def language_tag(value: str) -> str:
    """A BCP 47 tag in its usual case ("en", "be-BY", "sr-Latn-RS"); InvalidInput if not one."""
    found = LANGUAGE.fullmatch(value.strip())
    if not found:
        raise InvalidInput(
            f"language {value[:20]!r} is not a BCP 47 tag such as 'en', 'be', 'ru' or 'pt-BR'"
        )
    lang, script, region = found.groups()
    parts = [lang.lower(), script.title() if script else "", region.upper() if region else ""]
    return "-".join(p for p in parts if p)


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones()) | {"UTC"}


def time_zones() -> list[str]:
    """Every zone a subscriber or newsletter may name, sorted (the forms' choices)."""
    return sorted(_zones())


def time_zone(value: str) -> str:
    """An IANA time zone name ("Europe/Minsk", "UTC"); InvalidInput if zoneinfo does not know it."""
    name = value.strip()
    if name not in _zones():
        raise InvalidInput(f"time_zone {name[:40]!r} is not an IANA time zone like 'Europe/Minsk'")
    zoneinfo.ZoneInfo(name)  # loads: a name listed but not loadable would fail here, not later
    return name


def _sections(value: Any) -> list[str]:
    if not isinstance(value, list | tuple):
        raise InvalidInput("default_sections must be a list of section titles")
    titles: list[str] = []
    for raw in value:
        title = text.one_line(
            _str(raw, "default_sections"), field="default section", max_length=SECTION_TITLE_MAX
        )
        if not title:
            continue
        if title in titles:
            raise InvalidInput(f"default section {title[:40]!r} is listed twice")
        titles.append(title)
    if len(titles) > SECTIONS_MAX:
        raise InvalidInput(f"at most {SECTIONS_MAX} default sections")
    return titles


def _number(value: str, field: str) -> float:
    try:
        number = float(value.strip())
    except ValueError:
        raise InvalidInput(f"{field} must be a number, not {value[:20]!r}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise InvalidInput(f"{field} must be a finite number")
    return number


def parse_typed(typed: Mapping[str, str | Iterable[str]]) -> dict[str, Any]:
    """Values as a form or the command line gives them (all text) in the types fields take:
    the flags from yes/no, true/false, on/off, 1/0; the default sections one per line."""
    fields: dict[str, Any] = {}
    for key, value in typed.items():
        if key in FLAGS:
            word = str(value).strip().lower()
            if word not in _TRUE | _FALSE:
                raise InvalidInput(f"{key} must be yes or no, not {str(value)[:20]!r}")
            fields[key] = word in _TRUE
        elif key == "default_sections":
            lines = value.splitlines() if isinstance(value, str) else list(value)
            fields[key] = [line for line in lines if line.strip()]
        elif key in CHOICES:  # a form's empty choice: the default
            fields[key] = str(value).strip() or CHOICES[key][0]
        elif key == "spam_threshold":
            word = str(value).strip()
            fields[key] = _number(word, key) if word else SPAM_THRESHOLD_DEFAULT
        else:
            fields[key] = value
    return fields
